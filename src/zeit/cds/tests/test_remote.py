"""The FTP target against real pyftpdlib servers, some failing on purpose."""
import os
import tempfile

import zeit.cds.server
import zeit.cds.testing
from zeit.cds import names
from zeit.cds.exporter import Exporter
from zeit.cds.importer import Importer
from zeit.cds.interfaces import AuthenticationError
from zeit.cds.interfaces import ConnectError
from zeit.cds.interfaces import NoAnswer
from zeit.cds.interfaces import RemoteDirectoryError
from zeit.cds.interfaces import TransferError
from zeit.cds.spool import FileStoreSpool
from zeit.cds.targets.ftp import FTPTarget
from zeit.cds.tests.handlers import DiskFullHandler
from zeit.cds.tests.handlers import NoMLSDHandler
from zeit.cds.tests.handlers import ShortSizeHandler
from zeit.cds.tests.handlers import stalling
from zeit.cds.tests.test_components import SpoolTestCase
from zeit.cds.tests.test_components import ftp_target


class FTPTargetTestCase(SpoolTestCase):

    layer = zeit.cds.testing.FTP_LAYER

    def connected(self, server=None, **kw):
        target = ftp_target(server or self.layer.server, **kw)
        target.connect()
        self.addCleanup(target.close)
        return target


class ConnectTest(FTPTargetTestCase):

    def test_nothing_listening(self):
        target = FTPTarget(host='127.0.0.1', port=zeit.cds.testing.closed_port(), user='u',
                           password='s3cret')
        with self.assertRaises(ConnectError) as raised:
            target.connect()
        self.assertIn('Cannot connect to CDS FTP server at 127.0.0.1 port',
                      str(raised.exception))

    def test_a_host_name_that_cannot_be_looked_up(self):
        # Python's lookup refuses an empty label, or one of over 63
        # letters, with a UnicodeError before it asks anybody.
        for host in ['cds..example', 'x' * 64 + '.example', '.']:
            with self.subTest(host):
                target = FTPTarget(host=host, user='u', password='s3cret')
                with self.assertRaises(ConnectError) as raised:
                    target.connect()
                self.assertEqual(
                    f'Cannot connect to CDS FTP server at {host} port 21: '
                    'not a name or address that can be looked up',
                    str(raised.exception))

    def test_wrong_password_names_user_never_password(self):
        target = ftp_target(self.layer.server)
        target._password = 'wrong-s3cret'
        with self.assertRaises(AuthenticationError) as raised:
            target.connect()
        self.assertEqual(
            'CDS FTP server refused login for user test: '
            '530 Authentication failed.', str(raised.exception))
        self.assertNotIn('s3cret', repr(raised.exception))

    def test_missing_directory(self):
        target = ftp_target(self.layer.server, directory='/missing')
        with self.assertRaises(RemoteDirectoryError):
            target.connect()

    def test_failed_login_leaves_target_unconnected(self):
        target = ftp_target(self.layer.server, directory='/missing')
        with self.assertRaises(RemoteDirectoryError):
            target.connect()
        self.assertIsNone(target._ftp)


class ListingTest(FTPTargetTestCase):

    def make_remote(self, root):
        os.mkdir(os.path.join(root, 'folder'))
        for name in ['b.xml', 'a.xml', 'mit Leerzeichen ü.xml']:
            with open(os.path.join(root, name), 'w') as f:
                f.write(name)

    def test_mlsd_lists_plain_files_sorted(self):
        self.make_remote(self.layer.server.root)
        self.assertEqual(['a.xml', 'b.xml', 'mit Leerzeichen ü.xml'],
                         self.connected().names())

    def test_nlst_is_used_where_mlsd_is_missing(self):
        server = zeit.cds.testing.server_for(self, NoMLSDHandler)
        self.make_remote(server.root)
        target = self.connected(server)
        # NLST lists the folder too; SIZE refuses it with 550.
        self.assertEqual(['a.xml', 'b.xml', 'mit Leerzeichen ü.xml'],
                         target.names())
        self.assertFalse(target._habits.mlsd)

    def test_nlst_asks_sizes_only_of_names_new_to_it(self):
        handler = type('Handler', (SizeNotingHandler,), {'asked': []})
        server = zeit.cds.testing.server_for(self, handler)
        self.make_remote(server.root)
        target = self.connected(server)
        target.names()
        self.assertEqual(['a.xml', 'b.xml', 'folder', 'mit Leerzeichen ü.xml'],
                         sorted(handler.asked))
        handler.asked.clear()
        with open(os.path.join(server.root, 'c.xml'), 'wb') as f:
            f.write(b'c')
        self.assertEqual(['a.xml', 'b.xml', 'c.xml', 'mit Leerzeichen ü.xml'],
                         target.names())
        # The folder again (it is no file), and the new file.
        self.assertEqual(['c.xml', 'folder'], sorted(handler.asked))


class SizeNotingHandler(NoMLSDHandler):
    """Notes the names it is asked the size of (in ``asked``)."""

    asked = None

    def ftp_SIZE(self, path):
        type(self).asked.append(os.path.basename(path))
        return super().ftp_SIZE(path)


class IdentityTest(FTPTargetTestCase):

    def identity_before_and_after_a_change(self, server):
        path = os.path.join(server.root, 'a.xml')
        with open(path, 'wb') as f:
            f.write(b'old')
        target = self.connected(server)
        target.names()
        before = target.identities(['a.xml'])['a.xml']
        with open(path, 'wb') as f:
            f.write(b'the new one')
        target.names()
        return before, target.identities(['a.xml', 'gone.xml'])

    def test_from_the_mlsd_listing(self):
        before, after = self.identity_before_and_after_a_change(
            self.layer.server)
        self.assertIsNotNone(before)
        self.assertNotEqual(before, after['a.xml'])
        self.assertIsNone(after['gone.xml'])

    def test_from_size_and_mdtm_without_mlsd(self):
        server = zeit.cds.testing.server_for(self, NoMLSDHandler)
        before, after = self.identity_before_and_after_a_change(server)
        self.assertIsNotNone(before)
        self.assertNotEqual(before, after['a.xml'])
        self.assertIsNone(after['gone.xml'])


class UploadTest(FTPTargetTestCase):

    def test_upload_keeps_bytes_exactly(self):
        data = bytes(range(256)) * 1000 + b'\r\n\n\r'
        size = zeit.cds.testing.upload(self.connected(), 'binary', data)
        self.assertEqual(len(data), size)
        with open(os.path.join(self.layer.server.root, 'binary'), 'rb') as f:
            self.assertEqual(data, f.read())

    def test_empty_file(self):
        self.assertEqual(0, zeit.cds.testing.upload(self.connected(), 'empty', b''))
        self.assertEqual(
            0, os.path.getsize(os.path.join(self.layer.server.root, 'empty')))

    def test_refused_upload_leaves_nothing_under_final_name(self):
        server = zeit.cds.testing.server_for(self, DiskFullHandler)
        target = self.connected(server)
        with self.assertRaises(TransferError) as raised:
            zeit.cds.testing.upload(target, 'b.xml', b'x' * 1000)
        self.assertEqual('Cannot upload file b.xml: 552 Disk full.',
                         str(raised.exception))
        self.assertEqual([], os.listdir(server.root))
        # The session is still usable for the next file.
        zeit.cds.testing.upload(target, 'small.xml', b'x')
        self.assertEqual(['small.xml'], os.listdir(server.root))

    def test_size_mismatch_is_not_published(self):
        server = zeit.cds.testing.server_for(self, ShortSizeHandler)
        with self.assertRaises(TransferError) as raised:
            zeit.cds.testing.upload(self.connected(server), 'a.xml', b'12345')
        self.assertEqual(
            'Cannot upload file a.xml: the server has 4 of 5 bytes',
            str(raised.exception))
        self.assertEqual([], os.listdir(server.root))

    def test_partial_names_are_reserved(self):
        self.assertTrue(names.is_reserved(names.partial_name('a.xml')))
        self.assertTrue(names.is_reserved('write'))
        self.assertTrue(names.is_reserved('read'))
        self.assertFalse(names.is_reserved('a.xml'))


class DownloadTest(FTPTargetTestCase):

    def test_download_read_remove(self):
        data = bytes(range(256)) * 4000
        with open(os.path.join(self.layer.server.root, 'f'), 'wb') as f:
            f.write(data)
        target = self.connected()
        with tempfile.TemporaryFile() as local:
            self.assertEqual(len(data), target.download('f', local))
            local.seek(0)
            self.assertEqual(data, local.read())
        self.assertEqual(data, target.read('f'))
        self.assertEqual({'f': None}, target.remove_all(['f']))
        self.assertEqual([], target.names())

    def test_missing_file(self):
        with self.assertRaises(TransferError):
            self.connected().read('nothing-here')


class NoAnswerTest(FTPTargetTestCase):
    """Each wait of the FTP target ends after its timeout, with a message
    that says what it was doing; at the connect it is a ConnectError."""

    def setUp(self):
        super().setUp()
        self.handler = stalling(None)
        self.server = zeit.cds.testing.server_for(self, self.handler)
        with open(os.path.join(self.server.root, 'b.xml'), 'wb') as f:
            f.write(b'B')

    def stuck_at(self, command, argument=''):
        self.handler.stalls_at = command
        self.handler.stalls_on = argument
        return ftp_target(self.server, timeout=0.25)

    def assertNoAnswer(self, doing, call, *args):
        with self.assertRaises(NoAnswer) as raised:
            call(*args)
        self.assertEqual(
            f'No answer from the CDS FTP server within 0.25 s while {doing}',
            str(raised.exception))

    def test_connect(self):
        port = self.server.port
        for command, doing in [
                ('USER', 'logging in as test'),
                ('CWD', 'entering directory /'),
                ('TYPE', 'setting binary mode')]:
            with self.subTest(command):
                target = self.stuck_at(command)
                self.assertNoAnswer(doing, target.connect)
                self.assertIsNone(target._ftp)
        self.handler.hung = True
        target = self.stuck_at(None)
        self.assertNoAnswer(f'connecting to 127.0.0.1 port {port}',
                            target.connect)

    def test_commands(self):
        for command, doing, call, args in [
                ('MLSD', 'listing /', 'names', ()),
                ('PASV', 'listing /', 'names', ()),
                ('STOR', 'storing b.xml', 'create', ('b.xml', b'')),
                ('SIZE', 'asking for the sizes of files', 'sizes',
                 (['b.xml'],)),
                ('RNTO', 'renaming files', 'rename_all',
                 ([('a.xml', 'b.xml')],)),
                ('RETR', 'downloading b.xml', 'read', ('b.xml',)),
                ('MLST', 'looking for files', 'present', (['b.xml'],)),
                ('MDTM', 'asking for the time of b.xml', 'modified',
                 ('b.xml',)),
                ('DELE', 'removing files', 'remove_all', (['b.xml'],))]:
            with self.subTest(command):
                target = self.stuck_at(None)
                target.connect()
                self.addCleanup(target.close)
                self.stuck_at(command)
                self.assertNoAnswer(doing, getattr(target, call), *args)


class IPv6Test(SpoolTestCase):
    """Over IPv6 a session asks for data connections with EPSV, and opens
    them to the address of its own peer."""

    def setUp(self):
        super().setUp()
        root = tempfile.mkdtemp(prefix='cds-ftp-')
        self.addCleanup(zeit.cds.testing.remove_tree, root)
        try:
            self.server = zeit.cds.server.EmbeddedServer(
                root, zeit.cds.testing.USER, zeit.cds.testing.PASSWORD,
                host='::1').start()
        except OSError as e:
            self.skipTest(f'no IPv6 loopback here: {e}')
        self.addCleanup(self.server.stop)

    def test_files_go_and_come_back(self):
        zeit.cds.testing.make_spool(
            self.store_dir, {'a.xml': b'A' * 100_000, 'b.xml': b''})
        target = ftp_target(self.server)
        summary = Exporter(FileStoreSpool(self.store), target).run()
        self.assertEqual((2, 0), (summary.files, summary.failures))
        self.assertEqual({'a.xml': b'A' * 100_000, 'b.xml': b''},
                         zeit.cds.testing.folder_contents(self.server.root))
        store = zeit.cds.testing.make_spool(
            tempfile.mkdtemp(prefix='cds-spool-'), {})
        self.addCleanup(zeit.cds.testing.remove_tree, store.path)
        summary = Importer(
            FileStoreSpool(store), ftp_target(self.server)).run()
        self.assertEqual((2, 0), (summary.files, summary.failures))
        self.assertEqual({'a.xml': b'A' * 100_000, 'b.xml': b''},
                         zeit.cds.testing.folder_contents(
                             os.path.join(store.path, 'new')))
