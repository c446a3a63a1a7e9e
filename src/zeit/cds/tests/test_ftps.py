"""The FTPS target against real pyftpdlib servers with TLS: what works, and
every way TLS can be missing or not trusted, which must fail cleanly."""
import doctest
import ftplib
import logging
import os
import socket
import ssl
import tempfile
import unittest

import pyftpdlib.handlers
import trustme
import zope.component
from OpenSSL import SSL
from zope.interface.verify import verifyObject

import zeit.cds.testing
from zeit.cds.exporter import Exporter
from zeit.cds.targets.ftps import FTPSTarget
from zeit.cds.interfaces import AuthenticationError
from zeit.cds.interfaces import SettingsError
from zeit.cds.interfaces import ConnectError
from zeit.cds.interfaces import IExporter
from zeit.cds.interfaces import IRemoteTarget
from zeit.cds.interfaces import IRemoteTargetFactory
from zeit.cds.interfaces import ISpool
from zeit.cds.interfaces import NoAnswer
from zeit.cds.interfaces import TLSError
from zeit.cds.targets.ftp import FTPTarget
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests.test_components import SpoolTestCase

FILES = {'a.xml': b'A' * 100, 'b.xml': bytes(range(256)) * 1000}


def ftps_target(server, host='localhost',
                password=zeit.cds.testing.PASSWORD, **kw):
    return FTPSTarget(host=host, port=server.port, user=zeit.cds.testing.USER,
                      password=password, timeout=10, **kw)


def commands(server):
    return [command for command, tls in server.commands]


def in_the_clear(server):
    """The commands the server received before TLS was established."""
    return [command for command, tls in server.commands if not tls]


class RefusingAuthHandler(zeit.cds.testing.RecordingHandler):
    """A server that knows AUTH, but has no TLS to offer."""

    reply = '534 Request denied for policy reasons.'
    proto_cmds = dict(pyftpdlib.handlers.FTPHandler.proto_cmds, AUTH=dict(
        perm=None, auth=False, arg=True, help='Syntax: AUTH <SP> TLS.'))

    def ftp_AUTH(self, line):
        self.respond(self.reply)


class FakeAuthHandler(RefusingAuthHandler):
    """Says yes to AUTH TLS, then goes on in the clear."""

    reply = '234 AUTH TLS successful.'


class RefusingProtHandler(zeit.cds.testing.TLSHandler):
    """Has TLS for the control connection only."""

    def ftp_PROT(self, line):
        self.respond('534 Data connections stay in the clear.')


class FTPSTestCase(SpoolTestCase):

    layer = zeit.cds.testing.FTPS_LAYER

    def setUp(self):
        super().setUp()
        self.log = zeit.cds.testing.LogCapture(logging.WARNING)
        self.addCleanup(self.log.uninstall)

    def server(self, server_class=zeit.cds.testing.FTPSServerThread,
               *args, **kw):
        """A server of its own."""
        root = tempfile.mkdtemp(prefix='cds-ftp-')
        self.addCleanup(zeit.cds.testing.remove_tree, root)
        server = server_class(root, *args, **kw).start()
        self.addCleanup(server.stop)
        return server

    def connected(self, server=None, **kw):
        kw.setdefault('ca_file', self.layer.ca_file)
        target = ftps_target(server or self.layer.server, **kw)
        target.connect()
        self.addCleanup(target.close)
        return target

    def remote(self, name, server=None):
        with open(os.path.join((server or self.layer.server).root, name),
                  'rb') as f:
            return f.read()


class InterfaceTest(unittest.TestCase):

    def test_a_target_factory_making_targets(self):
        verifyObject(IRemoteTargetFactory, FTPSTarget)
        verifyObject(IRemoteTarget, FTPSTarget(
            host='localhost', user='u', password='p'))

    def test_description_says_tls_never_the_password(self):
        target = FTPSTarget(host='h', user='u', password='s3cret')
        self.assertEqual('host h, port 21, user u, TLS', target.description)
        self.assertEqual('<FTPSTarget host h, port 21, user u, TLS, '
                         'directory />', repr(target))
        self.assertNotIn('s3cret', repr(target))
        insecure = FTPSTarget(host='h', user='u', password='p', verify=False)
        self.assertEqual('host h, port 21, user u, TLS without certificate '
                         'check', insecure.description)


class CAFileTest(unittest.TestCase):
    """A CA file that cannot be used is a configuration error, found when
    the target is made, before anything else happens."""

    def assertSettingsError(self, message, **kw):
        with self.assertRaises(SettingsError) as raised:
            FTPSTarget(host='h', user='u', password='p', **kw)
        self.assertEqual(message, str(raised.exception))
        self.assertEqual(2, raised.exception.exit_code)

    def test_missing(self):
        self.assertSettingsError(
            'Cannot use CA file /nonexistent.pem: No such file or directory',
            ca_file='/nonexistent.pem')

    def test_not_pem(self):
        with tempfile.NamedTemporaryFile(suffix='.pem') as f:
            f.write(b'no certificate here\n')
            f.flush()
            self.assertSettingsError(
                f'Cannot use CA file {f.name}: no certificate or crl found',
                ca_file=f.name)

    def test_contradicts_skipping_verification(self):
        self.assertSettingsError(
            'CA file ca.pem given, but certificate verification is off',
            ca_file='ca.pem', verify=False)


class ConfigureZCMLTest(SpoolTestCase):
    """The exporter, as zeit.cms finds it in the registry, over FTPS."""

    layer = zeit.cds.testing.FTPS_FUNCTIONAL_LAYER

    def test_ftps_scheme_names_the_ftps_factory(self):
        self.assertIs(FTPSTarget, zope.component.getUtility(
            IRemoteTargetFactory, name='ftps'))

    def test_export(self):
        zeit.cds.testing.make_spool(self.store_dir, FILES)
        server = zeit.cds.testing.FTPS_LAYER.server
        factory = zope.component.getUtility(IRemoteTargetFactory, 'ftps')
        target = factory(host='localhost', port=server.port,
                         user=zeit.cds.testing.USER,
                         password=zeit.cds.testing.PASSWORD, directory='/',
                         ca_file=zeit.cds.testing.FTPS_LAYER.ca_file)
        exporter = zope.component.getMultiAdapter(
            (ISpool(self.store), target), IExporter)
        exporter.connections = 1  # the log lines in the order of the files
        with zeit.cds.testing.LogCapture() as log:
            summary = exporter.run()
        self.assertEqual((2, 0), (summary.files, summary.failures))
        self.assertEqual(sorted(FILES), sorted(os.listdir(server.root)))
        for name, data in FILES.items():
            self.assertEqual(data, self.remote(name, server))
        self.assertEqual(sorted(FILES), self.spool_files('cur'))
        self.assertEqual([], self.spool_files('new'))
        self.assertEqual(
            f'Connecting to CDS FTP server (host localhost, port '
            f'{server.port}, user test, TLS, upload_dir /)\n'
            f'Accessed filestore {self.store_dir}\n'
            'Creating lock file\n'
            'Lock file successfully created\n'
            'Uploaded file a.xml\n'
            "Moved file a.xml from 'new' to 'cur'\n"
            'Uploaded file b.xml\n'
            "Moved file b.xml from 'new' to 'cur'\n"
            'Removing lock file\n'
            'Lock file successfully removed\n'
            'Disconnected from CDS FTP server\n', log.getvalue())

    def remote(self, name, server):
        with open(os.path.join(server.root, name), 'rb') as f:
            return f.read()


class TransferTest(FTPSTestCase):

    def test_round_trip_keeps_bytes_exactly(self):
        data = bytes(range(256)) * 4000 + b'\r\n\n\r'
        target = self.connected()
        self.assertEqual(len(data), zeit.cds.testing.upload(target, 'binary', data))
        self.assertEqual(data, self.remote('binary'))
        self.assertEqual(['binary'], target.names())
        with tempfile.TemporaryFile() as local:
            self.assertEqual(len(data), target.download('binary', local))
            local.seek(0)
            self.assertEqual(data, local.read())
        target.create('write', b'lock\n')
        self.assertEqual(b'lock\n', target.read('write'))
        target.modified('write')
        self.assertEqual({'binary': None}, target.remove_all(['binary']))
        self.assertEqual({'write': None}, target.remove_all(['write']))
        self.assertEqual([], target.names())

    def test_empty_file(self):
        target = self.connected()
        self.assertEqual(0, zeit.cds.testing.upload(target, 'empty', b''))
        self.assertEqual(b'', target.read('empty'))

    def test_many_uploads_in_a_row_all_complete(self):
        # Each data connection ends with a TLS close_notify. Without it,
        # with TLS 1.3, most of these uploads arrive cut short (the size
        # check catches that, but the file fails).
        target = self.connected()
        for i in range(20):
            data = os.urandom(100_000 + i)
            zeit.cds.testing.upload(target, f'f{i}', data)
            self.assertEqual(data, self.remote(f'f{i}'))

    def test_data_connections_send_without_delay(self):
        # Else the close_notify that ends an upload waits for the server's
        # acknowledgement of the data (Nagle's algorithm), which ProFTPD
        # and Pure-FTPd delay by 40 ms: every upload took that long.
        target = self.connected()
        zeit.cds.testing.upload(target, 'a.xml', b'A')
        with target._ftp.transfercmd('NLST') as data:
            self.assertEqual(1, data.getsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY))
            while data.recv(1024):
                pass
        target._ftp.voidresp()


class ProtectionTest(FTPSTestCase):
    """What the server saw: TLS before the login, TLS on every data
    connection, and data connections resuming the control connection's
    TLS session."""

    def test_login_only_under_tls(self):
        self.connected().names()
        server = self.layer.server
        self.assertEqual(['AUTH', 'USER', 'PASS', 'PBSZ', 'PROT'],
                         commands(server)[:5])
        self.assertEqual(['AUTH'], in_the_clear(server))

    def test_server_refuses_data_connections_that_do_not_resume(self):
        # ftplib's own FTP_TLS does not resume the control connection's
        # session; this server, like vsftpd with require_ssl_reuse=YES,
        # then fails the data connection.
        ftp = ftplib.FTP_TLS(context=ssl.create_default_context(
            cafile=self.layer.ca_file), timeout=10)
        self.addCleanup(ftp.close)
        ftp.connect('localhost', self.layer.server.port)
        ftp.login(zeit.cds.testing.USER, zeit.cds.testing.PASSWORD)
        ftp.prot_p()
        with self.assertRaises(ssl.SSLCertVerificationError):
            ftp.nlst()
        self.assertEqual([], self.layer.server.data_connections)

    def test_wrong_password_too_only_under_tls(self):
        server = self.layer.server
        with self.assertRaises(AuthenticationError):
            self.connected(password='wrong')
        self.assertEqual(['AUTH', 'USER', 'PASS', 'QUIT'], commands(server))
        self.assertEqual(['AUTH'], in_the_clear(server))

    def test_server_refuses_login_in_the_clear(self):
        # The test server is strict: the plain FTP target cannot log in.
        # That FTPSTarget can shows that it sent its password under TLS.
        server = self.layer.server
        plain = FTPTarget(host='localhost', port=server.port,
                          user=zeit.cds.testing.USER,
                          password=zeit.cds.testing.PASSWORD)
        with self.assertRaises(AuthenticationError) as raised:
            plain.connect()
        self.assertEqual(
            'CDS FTP server refused login for user test: '
            '550 SSL/TLS required on the control channel.',
            str(raised.exception))
        self.connected()

    def test_every_data_connection_is_tls(self):
        target = self.connected()
        zeit.cds.testing.upload(target, 'a.xml', b'A')
        target.names()
        target.read('a.xml')
        # STOR, MLSD, RETR: three data connections, all through TLS 1.3.
        self.assertEqual(['TLSv1.3'] * 3, self.layer.server.data_connections)

    def assertDataConnectionResumes(self, target):
        zeit.cds.testing.upload(target, 'a.xml', b'A')
        ftp = target._ftp
        with ftp.transfercmd('NLST') as data:
            self.assertTrue(data.session_reused)
            self.assertEqual(b'a.xml\r\n', data.recv(1024))
        ftp.voidresp()

    def test_data_connections_resume_the_tls_1_3_session(self):
        target = self.connected()
        self.assertEqual('TLSv1.3', target._ftp.sock.version())
        # TLS 1.3 session tickets arrive after the handshake; the login's
        # replies have brought them in.
        self.assertTrue(target._ftp.sock.session.has_ticket)
        self.assertDataConnectionResumes(target)
        self.assertDataConnectionResumes(target)

    def test_data_connections_resume_the_tls_1_2_session(self):
        server = self.server(zeit.cds.testing.FTPSServerThread,
                             self.layer.ca, max_version=SSL.TLS1_2_VERSION)
        target = self.connected(server)
        self.assertEqual('TLSv1.2', target._ftp.sock.version())
        self.assertDataConnectionResumes(target)
        # STOR, SIZE, NLST.
        self.assertEqual(['TLSv1.2', 'TLSv1.2'], server.data_connections)


class UntrustedTest(FTPSTestCase):
    """A server whose certificate is not trusted, or not for the host we
    asked for: one TLSError, nothing sent but AUTH TLS, nothing moved."""

    def assertRefused(self, server, message, **kw):
        target = ftps_target(server, **kw)
        with self.assertRaises(TLSError) as raised:
            target.connect()
        self.assertEqual(message, str(raised.exception))
        self.assertIsInstance(raised.exception, ConnectError)
        self.assertEqual(1, raised.exception.exit_code)
        self.assertIsNone(target._ftp)
        # Nothing more, not even QUIT, after the failed handshake.
        self.assertEqual(['AUTH'], commands(server))
        return raised.exception

    def test_certificate_from_another_ca(self):
        server = self.server(zeit.cds.testing.FTPSServerThread,
                             trustme.CA())
        self.assertRefused(
            server, 'TLS certificate of host localhost not trusted: '
            'unable to get local issuer certificate',
            ca_file=self.layer.ca_file)

    def test_system_trust_store_is_the_default(self):
        self.assertRefused(
            self.layer.server, 'TLS certificate of host localhost not '
            'trusted: unable to get local issuer certificate')

    def test_certificate_for_another_host_name(self):
        server = self.server(zeit.cds.testing.FTPSServerThread,
                             self.layer.ca, hosts=['cds.example.org'])
        error = self.assertRefused(
            server, 'TLS certificate of host localhost not trusted: '
            "Hostname mismatch, certificate is not valid for 'localhost'.",
            ca_file=self.layer.ca_file)
        self.assertIsInstance(error.__cause__, ssl.SSLCertVerificationError)

    def test_certificate_for_another_ip_address(self):
        server = self.server(zeit.cds.testing.FTPSServerThread,
                             self.layer.ca, hosts=['localhost'])
        self.assertRefused(
            server, 'TLS certificate of host 127.0.0.1 not trusted: '
            "IP address mismatch, certificate is not valid for '127.0.0.1'.",
            host='127.0.0.1', ca_file=self.layer.ca_file)

    def test_export_moves_nothing(self):
        server = self.server(zeit.cds.testing.FTPSServerThread,
                             trustme.CA())
        zeit.cds.testing.make_spool(self.store_dir, FILES)
        target = ftps_target(server, ca_file=self.layer.ca_file)
        with self.assertRaises(TLSError):
            Exporter(FileStoreSpool(self.store), target).run()
        self.assertEqual(sorted(FILES), self.spool_files('new'))
        self.assertEqual([], self.spool_files('cur'))
        self.assertEqual([], os.listdir(server.root))
        self.assertEqual(['AUTH'], commands(server))


class InsecureSkipVerifyTest(FTPSTestCase):

    def test_untrusted_server_with_a_warning_at_every_connect(self):
        server = self.server(zeit.cds.testing.FTPSServerThread,
                             trustme.CA(), hosts=['cds.example.org'])
        target = self.connected(server, ca_file=None, verify=False)
        zeit.cds.testing.upload(target, 'a.xml', b'A')
        self.assertEqual(b'A', self.remote('a.xml', server))
        target.close()
        target.connect()
        self.assertEqual(['a.xml'], target.names())
        warning = (
            'TLS certificate verification is OFF for host localhost: the '
            'connection is encrypted, but the server is not authenticated '
            '(insecure skip verify)\n')
        self.assertEqual(warning * 2, self.log.getvalue())
        # Still TLS all the way.
        self.assertEqual(['AUTH', 'AUTH'], in_the_clear(server))
        self.assertEqual(['TLSv1.3'] * 2, server.data_connections)


class NoTLSTest(FTPSTestCase):
    """A server without TLS when TLS was asked for: one TLSError, and the
    user name and password were never sent; no fall-back to plain FTP."""

    def assertNoFallback(self, handler, message):
        server = self.server(zeit.cds.testing.RecordingServerThread, handler)
        zeit.cds.testing.make_spool(self.store_dir, FILES)
        target = ftps_target(server, host='127.0.0.1',
                             ca_file=self.layer.ca_file)
        with self.assertRaises(TLSError) as raised:
            Exporter(FileStoreSpool(self.store), target).run()
        self.assertEqual(message.format(port=server.port),
                         str(raised.exception))
        self.assertEqual(1, raised.exception.exit_code)
        self.assertEqual([('AUTH', False), ('QUIT', False)], server.commands)
        self.assertEqual(sorted(FILES), self.spool_files('new'))
        self.assertEqual([], os.listdir(server.root))

    def test_plain_ftp_server(self):
        self.assertNoFallback(
            zeit.cds.testing.RecordingHandler,
            'CDS FTP server at 127.0.0.1 port {port} refused TLS (AUTH TLS): '
            '500 Command "AUTH" not understood.')

    def test_server_refusing_auth(self):
        self.assertNoFallback(
            RefusingAuthHandler,
            'CDS FTP server at 127.0.0.1 port {port} refused TLS (AUTH TLS): '
            '534 Request denied for policy reasons.')

    def test_server_refusing_auth_for_now(self):
        handler = type('Busy', (RefusingAuthHandler,), {
            'reply': '431 Unable to accept security mechanism.'})
        self.assertNoFallback(
            handler,
            'CDS FTP server at 127.0.0.1 port {port} refused TLS (AUTH TLS): '
            '431 Unable to accept security mechanism.')

    def test_server_that_only_pretends(self):
        server = self.server(zeit.cds.testing.RecordingServerThread,
                             FakeAuthHandler)
        target = ftps_target(server, ca_file=self.layer.ca_file)
        target.timeout = 0.5
        with self.assertRaises(NoAnswer) as raised:
            target.connect()
        # A ConnectError, as every failure of TLS at the connect.
        self.assertIsInstance(raised.exception, ConnectError)
        self.assertEqual(
            'No answer from the CDS FTP server within 0.5 s while securing '
            'the connection (AUTH TLS)', str(raised.exception))
        self.assertNotIn('USER', commands(server))
        self.assertNotIn('PASS', commands(server))


class UnprotectedDataTest(FTPSTestCase):

    def test_server_refusing_prot_p(self):
        server = self.server(zeit.cds.testing.FTPSServerThread,
                             self.layer.ca, handler=RefusingProtHandler)
        target = ftps_target(server, ca_file=self.layer.ca_file)
        with self.assertRaises(TLSError) as raised:
            target.connect()
        self.assertEqual(
            f'CDS FTP server at localhost port {server.port} refused to '
            'protect data connections (PROT P): 534 Data connections stay '
            'in the clear.', str(raised.exception))
        self.assertIsNone(target._ftp)
        self.assertEqual(['AUTH', 'USER', 'PASS', 'PBSZ', 'PROT', 'QUIT'],
                         commands(server))
        self.assertEqual(['AUTH'], in_the_clear(server))


def set_up(test):
    layer = zeit.cds.testing.FTPS_LAYER
    test.globs.update(ftps_server=layer.server, ca=layer.ca,
                      ca_file=layer.ca_file)


def test_suite():
    narrative = doctest.DocFileSuite(
        'ftps.txt', package='zeit.cds', setUp=set_up,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    narrative.layer = zeit.cds.testing.FTPS_FUNCTIONAL_LAYER
    return unittest.TestSuite([
        unittest.defaultTestLoader.loadTestsFromName(__name__), narrative])
