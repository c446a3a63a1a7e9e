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
import time

import cryptography.x509
import pyftpdlib.handlers
import pyftpdlib.utils
import trustme
import zope.component.testlayer
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL

import zeit.cds
import zeit.cds.delivery
import zeit.cds.names
import zeit.cds.server
import zeit.cds.spool

USER = 'test'
PASSWORD = 'testpw'


class FTPServerThread(zeit.cds.server.EmbeddedServer):
    """The embedded server on 127.0.0.1 and a port the OS picks, with the
    test user.

    ``handler`` may be a subclass of pyftpdlib's FTPHandler that
    misbehaves on purpose. ``port`` may be given to start a server again
    where a stopped one listened.
    """

    def __init__(self, root, handler=pyftpdlib.handlers.FTPHandler,
                 user=USER, password=PASSWORD, port=0):
        # No pause after a failed login: tests fail logins on purpose.
        super().__init__(root, user, password, handler=handler, port=port,
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


def folder_contents(path):
    """The files in the folder ``path``: a dict of name to bytes."""
    result = {}
    for name in os.listdir(path):
        child = os.path.join(path, name)
        if os.path.isfile(child):
            with open(child, 'rb') as f:
                result[name] = f.read()
    return result


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
        self._handler = _RecordingHandler(self._stream)
        self._handler.setFormatter(logging.Formatter('%(message)s'))
        root = logging.getLogger()
        self._old_level = root.level
        root.addHandler(self._handler)
        root.setLevel(level)

    def getvalue(self):
        return self._stream.getvalue()

    def warnings(self):
        """The messages logged at WARNING level or above."""
        return [message for level, message in self._handler.messages
                if level >= logging.WARNING]

    def logged_at(self, level):
        """The messages logged at ``level`` exactly."""
        return [message for at, message in self._handler.messages
                if at == level]

    def clear(self):
        self._stream.seek(0)
        self._stream.truncate()
        self._handler.messages.clear()

    def uninstall(self):
        root = logging.getLogger()
        root.removeHandler(self._handler)
        root.setLevel(self._old_level)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.uninstall()


class _RecordingHandler(logging.StreamHandler):
    """Writes to its stream, and keeps each (level, message)."""

    def __init__(self, stream):
        super().__init__(stream)
        self.messages = []

    def emit(self, record):
        self.messages.append((record.levelno, record.getMessage()))
        super().emit(record)


# Tests build their spools with it.
make_spool = zeit.cds.spool.make_spool


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


def upload(target, name, data):
    """Upload the bytes ``data`` as ``name`` through the connected
    ``target``; returns the size, or raises what kept it from arriving."""
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        result = zeit.cds.delivery.upload_all(
            target, [(name, lambda: open(f.name, 'rb'))])[name]
    if isinstance(result, Exception):
        raise result
    return result


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


class OddHandler(pyftpdlib.handlers.FTPHandler):
    """A server with the odd replies of servers in the field, each
    switched on by a class attribute (``odd_handler`` makes the class).

    ``empty_nlst_reply``: the reply to NLST of an empty directory, instead
    of an empty listing (GNU inetutils' ftpd: ``550 No files found.``).

    ``nlst_needs_argument``: a bare NLST is refused (Twisted's FTP server).

    ``refuse_pipelined``: a command that arrived before the reply to the
    one before it is refused with 503 and has no effect, as from a server
    that reads one command at a time and takes no more.

    ``abort_early_transfers``: a STOR or RETR that arrived before the
    reply to the PASV (or EPSV) before it is aborted with 426 and the
    passive port closed; a STOR leaves an empty file behind (Twisted's
    FTP server). Other commands may come ahead of their predecessor's
    reply.

    A command arrived before the reply to the one before it when it was
    read with it: asynchat still holds it in ``ac_in_buffer`` once the
    one before it is done.

    Any attribute of pyftpdlib's FTPHandler can be set too, such as
    ``use_gmt_times = False`` for a server that gives MDTM in its local
    time.
    """

    empty_nlst_reply = None
    nlst_needs_argument = False
    refuse_pipelined = False
    abort_early_transfers = False

    # Whether the command at hand arrived before the previous one's reply.
    arrived_early = False
    _next_arrived_early = False

    def found_terminator(self):
        self.arrived_early = self._next_arrived_early
        super().found_terminator()
        self._next_arrived_early = bool(self.ac_in_buffer)

    def pre_process_command(self, line, cmd, arg):
        if self.refuse_pipelined and self.arrived_early:
            self.respond('503 Bad sequence of commands.')
        elif cmd == 'NLST' and not arg and self.nlst_needs_argument:
            self.respond('500 Syntax error: NLST requires an argument.')
        else:
            super().pre_process_command(line, cmd, arg)

    def ftp_NLST(self, path):
        if (self.empty_nlst_reply and self.fs.isdir(path)
                and not self.fs.listdir(path)):
            self.respond(self.empty_nlst_reply)
            return None
        return super().ftp_NLST(path)

    def ftp_STOR(self, file, mode='w'):
        if not self._too_early():
            return super().ftp_STOR(file, mode)
        # Before the reply, which may reach the client at once.
        self.run_as_current_user(self.fs.open, file, 'wb').close()
        return self._abort()

    def ftp_RETR(self, file):
        if not self._too_early():
            return super().ftp_RETR(file)
        return self._abort()

    def _too_early(self):
        return self.abort_early_transfers and self.arrived_early

    def _abort(self):
        self._shutdown_connecting_dtp()
        self.respond('426 Transfer aborted. Data connection closed.')


def odd_handler(unknown=(), **odd):
    """An OddHandler class with the attributes ``odd``, to which the
    commands ``unknown`` (such as SIZE or MLSD) are unknown: it answers
    them with 500 and leaves them out of FEAT."""
    for name in odd:
        if not hasattr(OddHandler, name):
            raise TypeError(f'OddHandler has no attribute {name!r}')
    proto_cmds = {name: info for name, info in OddHandler.proto_cmds.items()
                  if name not in unknown}
    return type('OddHandler', (OddHandler,), dict(odd, proto_cmds=proto_cmds))


# The odd replies of the servers of the interop tests, for odd_handler.
LIKE_INETUTILS = dict(empty_nlst_reply='550 No files found.',
                      unknown=('MLSD', 'MLST'))
LIKE_TWISTED = dict(nlst_needs_argument=True, abort_early_transfers=True,
                    unknown=('MLSD', 'MLST'))


def local_timezone(testcase, name):
    """Let the test's process (and its servers in threads) keep local time
    in the time zone ``name`` (e.g. 'EST5EDT') until the test ends."""
    testcase.addCleanup(time.tzset)
    previous = os.environ.get('TZ')
    if previous is None:
        testcase.addCleanup(os.environ.pop, 'TZ', None)
    else:
        testcase.addCleanup(os.environ.__setitem__, 'TZ', previous)
    os.environ['TZ'] = name
    time.tzset()


class KeepingHandler(pyftpdlib.handlers.FTPHandler):
    """Refuses to delete anything but lock files."""

    def ftp_DELE(self, path):
        if os.path.basename(path) not in zeit.cds.names.LOCKS:
            self.respond('550 Not allowed to delete files.')
            return None
        return super().ftp_DELE(path)
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
