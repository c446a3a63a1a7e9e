"""Twisted's FTP server (twisted.protocols.ftp) for the interop tests.

Usage: python -m zeit.cds.tests.twistedftp ROOT USER PASSWORD_FILE

It serves the folder ROOT to USER, whose password is in PASSWORD_FILE (so
that it shows in no process list), with a checker that keeps it in memory,
and to nobody else. It listens on 127.0.0.1 and a
port the OS picks (so do its passive data connections), prints that port
on a line of its own once it listens, logs to standard error, and ends at
SIGTERM.
"""
import sys

from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.portal import Portal
from twisted.internet import reactor
from twisted.logger import globalLogBeginner
from twisted.logger import textFileLogObserver
from twisted.protocols.ftp import BaseFTPRealm
from twisted.protocols.ftp import FTPFactory
from twisted.python.filepath import FilePath

HOST = '127.0.0.1'


class FolderRealm(BaseFTPRealm):
    """Every user's home, and the root of its session, is one folder."""

    def __init__(self, root):
        super().__init__(root)
        self.root = FilePath(root)

    def getHomeDirectory(self, avatarId):
        return self.root


def main(args):
    root, user, password_file = args
    with open(password_file, encoding='utf-8') as f:
        password = f.read()
    globalLogBeginner.beginLoggingTo(
        [textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    checker = InMemoryUsernamePasswordDatabaseDontUse()
    # As str: the FTP server hands the checker the name and password as it
    # decoded them from the command (Latin-1), not as bytes.
    checker.addUser(user, password)
    factory = FTPFactory(Portal(FolderRealm(root), [checker]))
    factory.allowAnonymous = False
    port = reactor.listenTCP(0, factory, interface=HOST)
    print(port.getHost().port, flush=True)
    reactor.run()


if __name__ == '__main__':
    main(sys.argv[1:])
