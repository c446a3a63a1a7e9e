"""pyftpdlib handlers that misbehave on purpose, as real servers do.

Unless a handler says otherwise, the troubles hit files whose name
contains "b.xml".
"""
import os
import stat
import threading

import math

import pyftpdlib.filesystems

import pyftpdlib.handlers
import pyftpdlib.ioloop
import pyftpdlib.log

import zeit.cds.names


class NoMLSDHandler(pyftpdlib.handlers.FTPHandler):
    """An older server: MLSD is an unknown command."""

    proto_cmds = {name: info for name, info
                  in pyftpdlib.handlers.FTPHandler.proto_cmds.items()
                  if name != 'MLSD'}


class ShortSizeHandler(pyftpdlib.handlers.FTPHandler):
    """Reports one byte less than a file has, as after a cut transfer."""

    def ftp_SIZE(self, path):
        self.respond(f'213 {max(self.fs.getsize(path) - 1, 0)}')


class CutDataHandler(pyftpdlib.handlers.FTPHandler):
    """Cuts the data connection of uploads of b.xml after 64 KiB, and
    reports the transfer complete, as a confused server would."""

    class dtp_handler(pyftpdlib.handlers.DTPHandler):

        def handle_read(self):
            super().handle_read()
            if (self.tot_bytes_received > 65536 and not self._closed
                    and 'b.xml' in self.file_obj.name):
                self.handle_close()

        handle_read_event = handle_read


class DropControlOnceHandler(pyftpdlib.handlers.FTPHandler):
    """Hangs up the control connection at the first upload of b.xml."""

    dropped = False

    def ftp_STOR(self, file, mode='w'):
        if 'b.xml' in file and not type(self).dropped:
            type(self).dropped = True
            self.close()
            return None
        return super().ftp_STOR(file, mode)


class GoneHandler(pyftpdlib.handlers.FTPHandler):
    """The server goes away at the upload of b.xml: it refuses the
    ``away_for`` connections after it (all of them, unless a subclass
    says how many)."""

    away_for = math.inf
    refusals = 0

    def handle(self):
        if type(self).refusals:
            type(self).refusals -= 1
            self.respond('421 Service not available.')
            self.close_when_done()
            return
        super().handle()

    def ftp_STOR(self, file, mode='w'):
        if 'b.xml' in file:
            type(self).refusals = self.away_for
            self.close()
            return None
        return super().ftp_STOR(file, mode)


class DiskFullHandler(pyftpdlib.handlers.FTPHandler):
    """The disk is full for b.xml."""

    def ftp_STOR(self, file, mode='w'):
        if 'b.xml' in file:
            self.respond('552 Disk full.')
            return None
        return super().ftp_STOR(file, mode)


class PausingHandler(pyftpdlib.handlers.FTPHandler):
    """Holds the whole server at the first upload of b.xml: it sets the
    Event ``paused`` and waits until the test sets the Event ``go`` (both
    given to the handler class by the test)."""

    paused = None
    go = None

    def ftp_STOR(self, file, mode='w'):
        if 'b.xml' in file and not type(self).paused.is_set():
            type(self).paused.set()
            type(self).go.wait(timeout=30)
        return super().ftp_STOR(file, mode)


def pausing(testcase):
    """A PausingHandler class with Events of its own, ``paused`` and
    ``go``; ``go`` is set when the test ends, so no server stays held."""
    paused, go = threading.Event(), threading.Event()
    testcase.addCleanup(go.set)
    return type('Pausing', (PausingHandler,), {'paused': paused, 'go': go})


class DropOnBHandler(pyftpdlib.handlers.FTPHandler):
    """Hangs up the control connection at every upload of b.xml."""

    def ftp_STOR(self, file, mode='w'):
        if 'b.xml' in file:
            self.close()
            return None
        return super().ftp_STOR(file, mode)


# The CDS lock files: stores that fail, files that cannot be read, clocks
# that are off.

def _is_lock(path):
    return os.path.basename(path) in zeit.cds.names.LOCKS


class _LockAbortingDTPHandler(pyftpdlib.handlers.DTPHandler):

    def _aborting(self):
        return (self.cmd_channel.refusing and not self._closed
                and _is_lock(self.file_obj.name))

    def enable_receiving(self, type, cmd):
        super().enable_receiving(type, cmd)
        if self._aborting() and not self.cmd_channel.kept:
            self._abort()

    def handle_read(self):
        super().handle_read()
        if self._aborting():
            self.file_obj.truncate(self.cmd_channel.kept)
            self._abort()

    handle_read_event = handle_read

    def _abort(self):
        self._resp = ('426 Transfer aborted. Data connection closed.',
                      pyftpdlib.log.logger.debug)
        self.close()


class AbortedLockStoreHandler(pyftpdlib.handlers.FTPHandler):
    """Aborts the upload of a lock file with 426 when ``kept`` bytes of it
    are on disk (0: the file stays empty), as Twisted's server does to a
    STOR sent together with its PASV. An ordinary server once the test
    sets ``refusing`` false."""

    refusing = True
    kept = 0
    dtp_handler = _LockAbortingDTPHandler


class DropAtLockStoreOnceHandler(pyftpdlib.handlers.FTPHandler):
    """At the first upload of a lock file, creates it empty and hangs up
    the control connection."""

    dropped = False

    def ftp_STOR(self, file, mode='w'):
        if _is_lock(file) and not type(self).dropped:
            type(self).dropped = True
            self.run_as_current_user(self.fs.open, file, 'wb').close()
            self.hang_up()
            return None
        return super().ftp_STOR(file, mode)

    def hang_up(self):
        self.close()


class SilentAtLockStoreOnceHandler(DropAtLockStoreOnceHandler):
    """At the first upload of a lock file, creates it empty and never
    answers, as a server that hangs."""

    def hang_up(self):
        pass


class GoneAtLockStoreHandler(DropAtLockStoreOnceHandler):
    """As DropAtLockStoreOnceHandler, and then answers every connection
    with 421 while the Event ``down`` (given by the test) is set; it is
    set at the hang-up."""

    down = None

    def handle(self):
        if self.down.is_set():
            self.respond('421 Service not available.')
            self.close_when_done()
            return
        super().handle()

    def hang_up(self):
        self.down.set()
        super().hang_up()


class UnreadableLockHandler(pyftpdlib.handlers.FTPHandler):
    """Refuses to send the lock files it did not receive itself, as a
    server does with a file of another user that only its owner may
    read."""

    received = frozenset()

    def ftp_STOR(self, file, mode='w'):
        type(self).received |= {file}
        return super().ftp_STOR(file, mode)

    def ftp_DELE(self, path):
        type(self).received -= {path}
        return super().ftp_DELE(path)

    def ftp_RETR(self, file):
        if _is_lock(file) and file not in self.received:
            self.respond('550 Permission denied.')
            return None
        return super().ftp_RETR(file)


class _ShiftedClockFS(pyftpdlib.filesystems.AbstractedFS):

    def getmtime(self, path):
        return super().getmtime(path) + self.cmd_channel.clock_shift

    def stat(self, path):
        # The times of MLSD and MLST facts, shifted alike, or left in UTC.
        fields = list(super().stat(path)[:10])
        if self.cmd_channel.shift_facts:
            fields[stat.ST_MTIME] += self.cmd_channel.clock_shift
        return os.stat_result(fields)


class LocalTimeHandler(pyftpdlib.handlers.FTPHandler):
    """Reports times (MDTM, MLSD, MLST) ``clock_shift`` seconds off UTC: by default
    in the local time of a server five hours west of UTC, as pyftpdlib's
    own ``use_gmt_times = False`` does in New York in winter. Without
    ``shift_facts``, MDTM alone is off, and the facts of MLSD and MLST are
    in UTC."""

    abstracted_fs = _ShiftedClockFS
    clock_shift = -5 * 3600
    shift_facts = True


class StallingHandler(pyftpdlib.handlers.FTPHandler):
    """Gets stuck at the command ``stalls_at`` (such as "SIZE") where its
    argument contains ``stalls_on`` (b.xml by default; "" for any, as for
    PASV or MLSD), once it has answered ``after`` such commands: it neither
    carries that command out nor answers it or anything after it on that
    connection, as a server stuck on a file. New connections are served.
    With ``for_good`` the whole server hangs then: no answer to anything,
    and no greeting for a new connection."""

    stalls_at = None
    stalls_on = 'b.xml'
    after = 0
    for_good = False
    hung = False
    stuck = False

    def handle(self):
        if not type(self).hung:
            super().handle()

    def pre_process_command(self, line, cmd, arg):
        if self.stuck or type(self).hung:
            return
        if cmd == self.stalls_at and self.stalls_on in arg:
            if type(self).after:
                type(self).after -= 1
            else:
                self.stuck = True
                if self.for_good:
                    type(self).hung = True
                return
        super().pre_process_command(line, cmd, arg)


def stalling(command, **options):
    """A StallingHandler class that stalls at ``command``."""
    return type('StallingHandler', (StallingHandler,),
                dict(options, stalls_at=command))


class StalledDataHandler(pyftpdlib.handlers.FTPHandler):
    """Stops reading an upload of b.xml, or sending a download of it, after
    64 KiB, without closing the data connection; the control connection
    answers on."""

    # sendfile() would bypass the data handler's sending.
    use_sendfile = False

    class dtp_handler(pyftpdlib.handlers.DTPHandler):

        def _stalled(self):
            if (self.file_obj is None or 'b.xml' not in self.file_obj.name
                    or self.get_transmitted_bytes() < 65536):
                return False
            # Not even polled any more: the server does not busy-wait.
            self.modify_ioloop_events(0)
            return True

        def handle_read(self):
            if not self._stalled():
                super().handle_read()

        handle_read_event = handle_read

        def initiate_send(self):
            if not self._stalled():
                super().initiate_send()


class Rewrite:
    """Which reply a ReplyRewritingHandler rewrites: the first reply to
    ``command`` ("" for the greeting) becomes the raw line ``reply``
    (bytes), the next ``times`` times (None: every time)."""

    def __init__(self, command=None, reply=b'', times=None):
        self.command = command
        self.reply = reply
        self.times = times

    def due(self, command):
        """Whether the reply to ``command`` is to be rewritten now."""
        if command != self.command or self.times == 0:
            return False
        if self.times is not None:
            self.times -= 1
        return True


class ReplyRewritingHandler(pyftpdlib.handlers.FTPHandler):
    """Says what its Rewrite ``rewrite`` asks instead of one reply, as a
    broken server might: garbage, a wrong code, an overlong line, bytes
    that are not UTF-8. The command is carried out all the same; a reply
    of several lines is replaced whole."""

    rewrite = Rewrite()
    _rewriting = False

    def handle(self):
        self._rewriting = self.rewrite.due('')
        super().handle()

    def pre_process_command(self, line, cmd, arg):
        self._rewriting = self.rewrite.due(cmd)
        super().pre_process_command(line, cmd, arg)

    def push(self, data):
        if not self._rewriting:
            super().push(data)

    def respond(self, resp, *args, **kw):
        if not self._rewriting:
            return super().respond(resp, *args, **kw)
        self._rewriting = False
        # As bytes: FTPHandler.push would encode text.
        pyftpdlib.ioloop.AsyncChat.push(self, self.rewrite.reply + b'\r\n')
