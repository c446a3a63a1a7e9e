"""Test fixtures: a real FTP server in a thread, ZCML, captured log lines."""
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
