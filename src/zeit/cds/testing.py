"""Test fixtures: a real FTP server in a thread, ZCML, captured log lines."""
import io
import logging
import os
import shutil
import socket
import tempfile
import threading

import cryptography.x509
import gocept.filestore.filestore
import pyftpdlib.authorizers
import pyftpdlib.handlers
import pyftpdlib.ioloop
import pyftpdlib.servers
import pyftpdlib.utils
import trustme
import zope.component.testlayer
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL

import zeit.cds

USER = 'test'
PASSWORD = 'testpw'
# Every permission, including MFMT and SITE CHMOD, so the server never
# stands in the way of what a test wants to show.
ALL_PERMISSIONS = 'elradfmwMT'


class FTPServerThread:
    """A pyftpdlib server on 127.0.0.1 and a port the OS picks.

    ``handler`` may be a subclass of pyftpdlib's FTPHandler that
    misbehaves on purpose.
    """

    def __init__(self, root, handler=pyftpdlib.handlers.FTPHandler,
                 user=USER, password=PASSWORD):
        authorizer = pyftpdlib.authorizers.DummyAuthorizer()
        authorizer.add_user(user, password, root, perm=ALL_PERMISSIONS)
        # A subclass per server, so that the caller's class stays as it was.
        # No pause after a failed login: tests fail logins on purpose.
        handler = type(handler.__name__, (handler,),
                       {'authorizer': authorizer, 'auth_failed_timeout': 0})
        self.root = root
        self._server = pyftpdlib.servers.FTPServer(
            ('127.0.0.1', 0), handler, ioloop=pyftpdlib.ioloop.IOLoop())
        self.host, self.port = self._server.address[:2]
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, name=f'ftp-server-{self.port}', daemon=True)

    def _serve(self):
        while not self._stopping.is_set():
            # One round of the IO loop; the timeout only bounds how long
            # a stop request waits to be noticed.
            self._server.ioloop.loop(timeout=0.05, blocking=False)
        self._server.close_all()

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        self._thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


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


def closed_port():
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)


# FTPS: servers that insist on TLS, with certificates made by trustme.

class CommandRecorder:
    """Mixin for a pyftpdlib handler: appends each command it receives to
    the list ``commands``, with whether the control connection was TLS at
    that moment (RecordingServerThread gives each server its own lists)."""

    commands = data_connections = None

    def pre_process_command(self, line, cmd, arg):
        self.commands.append((cmd, pyftpdlib.utils.is_ssl_sock(self.socket)))
        super().pre_process_command(line, cmd, arg)


class RecordingHandler(CommandRecorder, pyftpdlib.handlers.FTPHandler):
    """A plain FTP server that records the commands it receives."""


class TLSDataHandler(pyftpdlib.handlers.TLS_DTPHandler):
    """Appends the TLS version of each data connection to the list
    ``data_connections`` of its control connection, once the handshake is
    done; a data connection in the clear never gets there, nor one that
    ends before its handshake (pyftpdlib ends an empty listing so)."""

    def handle_ssl_established(self):
        super().handle_ssl_established()
        self.cmd_channel.data_connections.append(
            self.socket.get_protocol_version_name())


class TLSHandler(CommandRecorder, pyftpdlib.handlers.TLS_FTPHandler):
    """Insists on TLS for the login (USER and PASS are refused before
    AUTH TLS) and for every data connection (PROT P before PASV).

    With ``certificate`` and ``private_key`` set (FTPSServerThread does),
    only the control connection presents them. A data connection gets the
    TLS context's certificate only when it does not resume the control
    connection's TLS session (a resumed session needs none); when that is
    one nobody trusts, such a data connection fails, as with vsftpd's
    ``require_ssl_reuse=YES``.
    """

    tls_control_required = True
    tls_data_required = True
    dtp_handler = TLSDataHandler
    certificate = private_key = None

    def secure_connection(self, ssl_context):
        super().secure_connection(ssl_context)
        if (self.certificate is not None
                and pyftpdlib.utils.is_ssl_sock(self.socket)):
            self.socket.use_certificate(self.certificate)
            self.socket.use_privatekey(self.private_key)


class RecordingServerThread(FTPServerThread):
    """A server whose handler, a CommandRecorder, records into this
    server's lists ``commands`` and ``data_connections``."""

    def __init__(self, root, handler=RecordingHandler, **kw):
        self.commands = []
        self.data_connections = []
        handler = type(handler.__name__, (handler,), {
            'commands': self.commands,
            'data_connections': self.data_connections})
        super().__init__(root, handler, **kw)


class FTPSServerThread(RecordingServerThread):
    """A server that insists on TLS, and on data connections resuming the
    control connection's TLS session (unless the client verifies no
    certificate), with a certificate for ``hosts``
    issued by ``ca`` (a trustme.CA); ``max_version`` (e.g.
    ``SSL.TLS1_2_VERSION``) limits the TLS versions it speaks."""

    def __init__(self, root, ca, hosts=('localhost', '127.0.0.1'),
                 handler=TLSHandler, max_version=None, **kw):
        context = SSL.Context(SSL.TLS_SERVER_METHOD)
        context.set_min_proto_version(SSL.TLS1_2_VERSION)
        if max_version is not None:
            context.set_max_proto_version(max_version)
        # For data connections that do not resume (see TLSHandler).
        trustme.CA().issue_cert('not-resumed.invalid').configure_cert(
            context)
        leaf = ca.issue_cert(*hosts)
        handler = type(handler.__name__, (handler,), {
            'ssl_context': context,
            'certificate': cryptography.x509.load_pem_x509_certificate(
                leaf.cert_chain_pems[0].bytes()),
            'private_key': serialization.load_pem_private_key(
                leaf.private_key_pem.bytes(), None)})
        super().__init__(root, handler, **kw)


def write_ca_file(ca, folder, name='ca.pem'):
    """Write the certificate of ``ca`` (a trustme.CA) into ``folder`` as
    PEM, for an FTPSTarget's ``ca_file``; returns its path."""
    path = os.path.join(folder, name)
    ca.cert_pem.write_to_path(path)
    return path


class FTPSServerLayer(zope.component.testlayer.LayerBase):
    """Runs one FTPS server (FTPSServerThread) for all tests of the layer,
    with a certificate for localhost and 127.0.0.1 from the CA ``ca``,
    whose PEM is in the file ``ca_file``. Every test starts with an empty
    server root and empty records. (FTP_LAYER below keeps the server's log
    quiet.)"""

    __bases__ = (FTP_LAYER,)

    def setUp(self):
        self.folder = tempfile.mkdtemp(prefix='cds-ftps-')
        self.ca = trustme.CA()
        self.ca_file = write_ca_file(self.ca, self.folder)
        self.root = os.path.join(self.folder, 'root')
        os.mkdir(self.root)
        self.server = FTPSServerThread(self.root, self.ca).start()

    def tearDown(self):
        self.server.stop()
        shutil.rmtree(self.folder)

    def testSetUp(self):
        empty_folder(self.root)
        self.server.commands.clear()
        self.server.data_connections.clear()


FTPS_LAYER = FTPSServerLayer(zeit.cds, 'FTPSServerLayer')


class FTPSFunctionalLayer(zope.component.testlayer.LayerBase):
    """The package's ZCML and an FTPS server."""

    __bases__ = (ZCML_LAYER, FTPS_LAYER)


FTPS_FUNCTIONAL_LAYER = FTPSFunctionalLayer(zeit.cds, 'FTPSFunctionalLayer')
