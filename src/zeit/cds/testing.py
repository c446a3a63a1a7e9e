"""Test fixtures: a real FTP server in a thread, ZCML, captured log lines."""
import errno
import importlib.metadata
import io
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile

import gocept.filestore.filestore
import pyftpdlib.handlers
import zope.component.testlayer

import zeit.cds
import zeit.cds.names
import zeit.cds.server

USER = 'test'
PASSWORD = 'testpw'


class FTPServerThread(zeit.cds.server.EmbeddedServer):
    """The embedded server on 127.0.0.1 and a port the OS picks, with the
    test user.

    ``handler`` may be a subclass of pyftpdlib's FTPHandler that
    misbehaves on purpose.
    """

    def __init__(self, root, handler=pyftpdlib.handlers.FTPHandler,
                 user=USER, password=PASSWORD):
        # No pause after a failed login: tests fail logins on purpose.
        super().__init__(root, user, password, handler=handler,
                         auth_failed_timeout=0)


def server_for(testcase, handler=pyftpdlib.handlers.FTPHandler):
    """A server of the test's own, often with a misbehaving ``handler``;
    it stops and its root is removed when the test ends."""
    root = tempfile.mkdtemp(prefix='cds-ftp-')
    testcase.addCleanup(remove_tree, root)
    server = FTPServerThread(root, handler).start()
    testcase.addCleanup(server.stop)
    return server


class FTPServerLayer(zope.component.testlayer.LayerBase):
    """Runs one FTP server for all tests of the layer; every test starts
    with an empty server root."""

    def setUp(self):
        pyftpdlib_log = logging.getLogger('pyftpdlib')
        self._saved_log = pyftpdlib_log.propagate, pyftpdlib_log.handlers[:]
        # Server chatter stays out of the log lines the tests look at.
        pyftpdlib_log.propagate = False
        pyftpdlib_log.handlers[:] = [logging.NullHandler()]
        self.root = tempfile.mkdtemp(prefix='cds-ftp-')
        self.server = FTPServerThread(self.root).start()

    def tearDown(self):
        self.server.stop()
        shutil.rmtree(self.root)
        pyftpdlib_log = logging.getLogger('pyftpdlib')
        pyftpdlib_log.propagate, pyftpdlib_log.handlers[:] = self._saved_log

    def testSetUp(self):
        empty_folder(self.root)


def empty_folder(path):
    for name in os.listdir(path):
        child = os.path.join(path, name)
        if os.path.isdir(child) and not os.path.islink(child):
            shutil.rmtree(child)
        else:
            os.remove(child)


FTP_LAYER = FTPServerLayer(zeit.cds, 'FTPServerLayer')
ZCML_LAYER = zope.component.testlayer.ZCMLFileLayer(
    zeit.cds, 'configure.zcml', 'ZCMLLayer')


class FunctionalLayer(zope.component.testlayer.LayerBase):
    """The package's ZCML and an FTP server."""

    __bases__ = (ZCML_LAYER, FTP_LAYER)


FUNCTIONAL_LAYER = FunctionalLayer(zeit.cds, 'FunctionalLayer')


class LogCapture:
    """Collects the messages logged while it is installed, one per line.

    It listens on the root logger, as an application's handler would.
    """

    def __init__(self, level=logging.INFO):
        self._stream = io.StringIO()
        self._handler = logging.StreamHandler(self._stream)
        self._handler.setFormatter(logging.Formatter('%(message)s'))
        root = logging.getLogger()
        self._old_level = root.level
        root.addHandler(self._handler)
        root.setLevel(level)

    def getvalue(self):
        return self._stream.getvalue()

    def clear(self):
        self._stream.seek(0)
        self._stream.truncate()

    def uninstall(self):
        root = logging.getLogger()
        root.removeHandler(self._handler)
        root.setLevel(self._old_level)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.uninstall()


def make_spool(path, files):
    """A prepared gocept.filestore in ``path`` with ``files`` (a dict of
    name to bytes) waiting in ``new``."""
    store = gocept.filestore.filestore.FileStore(path)
    store.prepare()
    for name, data in files.items():
        with store.create(name, 'wb') as f:
            f.write(data)
        store.move(name, 'tmp', 'new')
    return store


def run_script(name, *args, env=None, timeout=60):
    """Run zeit.cds's console script ``name`` in a subprocess, as the
    script buildout generates would; returns the CompletedProcess."""
    entry_point, = importlib.metadata.entry_points(
        group='console_scripts', name=name)
    code = (f'import sys; sys.argv[0] = {name!r}; '
            f'from {entry_point.module} import {entry_point.attr}; '
            f'{entry_point.attr}()')
    return subprocess.run(
        [sys.executable, '-c', code, *args], env=child_environment(env),
        capture_output=True, text=True, timeout=timeout)


def child_environment(extra=None):
    """The environment for a child Python that imports what we import."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env.pop('CDS_PASSWORD', None)
    env.update(extra or {})
    return env


def closed_port():
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)


class ListingHandler(pyftpdlib.handlers.FTPHandler):
    """Lists the ``crafted`` names besides the real entries, as a broken or
    hostile server might: str, or bytes for names that are not UTF-8.

    MLSD calls every crafted name a file; a subclass with ``mlsd = False``
    answers like an older server that knows NLST only.
    """

    crafted = ()
    mlsd = True

    def _entries(self, path):
        for name in sorted(self.fs.listdir(path)):
            kind = 'dir' if self.fs.isdir(os.path.join(path, name)) else 'file'
            yield kind, name.encode('utf-8', 'surrogateescape')
        for name in self.crafted:
            yield 'file', name if isinstance(name, bytes) else name.encode()

    def ftp_MLSD(self, path):
        if not self.mlsd:
            self.respond('500 Command "MLSD" not understood.')
            return None
        self.push_dtp_data(b''.join(
            b'type=%s;size=0; %s\r\n' % (kind.encode(), name)
            for kind, name in self._entries(path)), cmd='MLSD')
        return path

    def ftp_NLST(self, path):
        self.push_dtp_data(b''.join(
            name + b'\r\n' for kind, name in self._entries(path)), cmd='NLST')
        return path


def listing(crafted=(), mlsd=True):
    """A ListingHandler class that lists ``crafted``."""
    return type('ListingHandler', (ListingHandler,),
                {'crafted': tuple(crafted), 'mlsd': mlsd})


class RetrieveHandler(pyftpdlib.handlers.FTPHandler):
    """Lets a subclass step into the sending of files (RETR)."""

    # sendfile() would bypass the producer the subclass hands out.
    use_sendfile = False

    def retrieving(self, name, producer):
        """The producer that sends the file ``name``; ``producer`` by
        default."""
        return producer

    def push_dtp_data(self, data, isproducer=False, file=None, cmd=None):
        if cmd == 'RETR':
            data = self.retrieving(os.path.basename(file.name), data)
        return super().push_dtp_data(data, isproducer, file, cmd)


class CutOffHandler(RetrieveHandler):
    """Breaks off sending any file whose name contains "broken" halfway,
    as a server whose disk fails does."""

    def retrieving(self, name, producer):
        if 'broken' not in name:
            return producer
        return _CutOffProducer(producer.file)


class _CutOffProducer:

    def __init__(self, file):
        self.file = file
        self.sent = False

    def more(self):
        if self.sent:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        self.sent = True
        return self.file.read(max(os.fstat(self.file.fileno()).st_size // 2,
                                  1))


class KeepingHandler(pyftpdlib.handlers.FTPHandler):
    """Refuses to delete anything but lock files."""

    def ftp_DELE(self, path):
        if os.path.basename(path) not in zeit.cds.names.LOCKS:
            self.respond('550 Not allowed to delete files.')
            return None
        return super().ftp_DELE(path)
