"""The export and the listing against real FTP servers: vsftpd, ProFTPD
and Pure-FTPd.

Each server runs in a layer of its own (see realservers.py) and the same
tests run against each of them. Where a server cannot run here, its tests
are skipped with the reason; under CI (``CI=true``) every server must run,
so there they fail instead.
"""
import hashlib
import os

import zeit.cds.main
import zeit.cds.testing
from zeit.cds import names
from zeit.cds.remote import FTPTarget
from zeit.cds.tests import realservers
from zeit.cds.tests.test_components import SpoolTestCase

MIB = 1024 * 1024
# A name as a Latin-1 client leaves it: the servers keep and list its bytes.
LATIN_1_NAME = os.fsdecode('Größe.xml'.encode('latin-1'))


def under_ci():
    return os.environ.get('CI', '').lower() == 'true'


class RealServerTestCase(SpoolTestCase):
    """A test against the real server of its layer (``self.server``), with
    a fresh spool in ``self.store_dir`` and an empty root folder on the
    server.

    Concrete classes combine mixins of tests with this class and name one
    of the layers of realservers.py.
    """

    layer = None

    def setUp(self):
        reason = self.layer.unavailable
        if reason is not None:
            if under_ci():
                self.fail(f'{reason} (under CI every server must run)')
            self.skipTest(reason)
        super().setUp()
        self.server = self.layer.server

    def run_main(self, function):
        """Run ``zeit.cds.main.export`` or ``import_`` against the server;
        return the lines it logged."""
        with zeit.cds.testing.LogCapture() as log:
            function(self.store_dir, self.server.host, self.server.port,
                     self.server.user, self.server.password,
                     self.server.directory)
        return log.getvalue().splitlines()

    def connected(self):
        """An FTPTarget with an open session on the server."""
        target = FTPTarget(
            host=self.server.host, port=self.server.port,
            user=self.server.user, password=self.server.password,
            directory=self.server.directory, timeout=10)
        target.connect()
        self.addCleanup(target.close)
        return target

    def remote_digest(self, name):
        digest = hashlib.sha256()
        with open(os.path.join(self.server.root, name), 'rb') as f:
            while chunk := f.read(MIB):
                digest.update(chunk)
        return digest.hexdigest()


class ExportTests:
    """zeit.cds.main.export and FTPTarget against the layer's server."""

    def export(self, files):
        """Put ``files`` (name to bytes) into the spool's ``new`` and
        export them; return the lines logged."""
        zeit.cds.testing.make_spool(self.store_dir, files)
        return self.run_main(zeit.cds.main.export)

    def assert_exported(self, names):
        self.assertEqual([], self.spool_files('new'))
        self.assertEqual(sorted(names), self.spool_files('cur'))
        # No lock file and no temporary upload is left behind.
        self.assertEqual(sorted(names), sorted(os.listdir(self.server.root)))

    def test_round_trip(self):
        files = {'a-file': b'This is the A file',
                 'b-file': bytes(range(256)) + b'\r\n\n\r'}
        log = self.export(files)
        self.assertEqual([
            f'Connecting to CDS FTP server (host {self.server.host}, '
            f'port {self.server.port}, user {self.server.user}, '
            f'upload_dir {self.server.directory})',
            f'Accessed filestore {self.store_dir}',
            'Creating lock file',
            'Lock file successfully created',
            'Uploaded file a-file',
            "Moved file a-file from 'new' to 'cur'",
            'Uploaded file b-file',
            "Moved file b-file from 'new' to 'cur'",
            'Removing lock file',
            'Lock file successfully removed',
            'Disconnected from CDS FTP server',
        ], log)
        self.assertEqual(files, self.server.contents())
        self.assert_exported(files)

    def test_foreign_lock_makes_export_back_off(self):
        zeit.cds.testing.make_spool(self.store_dir, {'a-file': b'A'})
        for lock in names.LOCKS:
            with self.subTest(lock=lock):
                self.server.put(lock, b'held by the CDS\n')
                log = self.run_main(zeit.cds.main.export)
                self.assertIn(f"lock file '{lock}' exists", log[-1])
                self.assertEqual({lock: b'held by the CDS\n'},
                                 self.server.contents())
                self.assertEqual(['a-file'], self.spool_files('new'))
                self.assertEqual([], self.spool_files('cur'))
                os.remove(os.path.join(self.server.root, lock))

    def test_name_with_spaces_and_umlauts(self):
        files = {'Größe und Maß.xml': '<Maß>Größe</Maß>'.encode()}
        self.export(files)
        # Stored under its UTF-8 name, listed under the same name.
        self.assertEqual(files, self.server.contents())
        self.assert_exported(files)
        self.assertEqual(['Größe und Maß.xml'], self.connected().names())

    def test_empty_file(self):
        self.export({'empty.xml': b''})
        self.assertEqual({'empty.xml': b''}, self.server.contents())
        self.assert_exported(['empty.xml'])

    def test_50_mib_file(self):
        data = os.urandom(50 * MIB)
        self.export({'big.xml': data})
        self.assert_exported(['big.xml'])
        self.assertEqual(hashlib.sha256(data).hexdigest(),
                         self.remote_digest('big.xml'))

    def test_name_not_in_utf8_on_the_server(self):
        self.server.put(LATIN_1_NAME, b'from elsewhere')
        self.export({'a-file': b'A'})
        self.assertEqual({'a-file': b'A', LATIN_1_NAME: b'from elsewhere'},
                         self.server.contents())
        self.assertEqual(['a-file'], self.spool_files('cur'))

    def test_existing_remote_file_is_replaced(self):
        self.server.put('a-file', b'yesterday')
        self.export({'a-file': b'today'})
        self.assertEqual({'a-file': b'today'}, self.server.contents())
        self.assert_exported(['a-file'])


class ListingTests:
    """FTPTarget.names() against the layer's server."""

    def make_remote(self):
        os.mkdir(os.path.join(self.server.root, 'folder'))
        for name in ['b.xml', 'a.xml', 'Größe und Maß.xml', '.hidden']:
            self.server.put(name, b'x')

    def test_names(self):
        self.make_remote()
        target = self.connected()
        listed = target.names()
        self.assertEqual(self.server.has_mlsd, target._use_mlsd)
        expected = {'a.xml', 'b.xml', 'Größe und Maß.xml'}
        if not self.server.has_mlsd:
            # NLST cannot tell folders from files.
            expected.add('folder')
        self.assertEqual(sorted(expected), [
            name for name in listed if not name.startswith('.')])

    def test_names_by_nlst(self):
        # What the fallback sees, should a server lack MLSD.
        self.make_remote()
        target = self.connected()
        target._use_mlsd = False
        self.assertEqual(
            ['Größe und Maß.xml', 'a.xml', 'b.xml', 'folder'],
            [name for name in target.names() if not name.startswith('.')])

    def test_name_not_in_utf8(self):
        # Listed with surrogates for the bytes that are not UTF-8, so the
        # import can refuse the name; the listing itself goes on.
        self.server.put(LATIN_1_NAME, b'x')
        self.server.put('a.xml', b'x')
        target = self.connected()
        self.assertEqual(['Gr\udcf6\udcdfe.xml', 'a.xml'], target.names())
        target._use_mlsd = False
        self.assertEqual(['Gr\udcf6\udcdfe.xml', 'a.xml'], target.names())

    def test_empty_directory(self):
        target = self.connected()
        self.assertEqual([], target.names())
        target._use_mlsd = False
        self.assertEqual([], target.names())


# One class per server, each running every mixin of tests above; import
# tests join them as another mixin.

class VsftpdTest(ExportTests, ListingTests, RealServerTestCase):
    layer = realservers.VSFTPD_LAYER


class ProFTPDTest(ExportTests, ListingTests, RealServerTestCase):
    layer = realservers.PROFTPD_LAYER


class PureFTPdTest(ExportTests, ListingTests, RealServerTestCase):
    layer = realservers.PUREFTPD_LAYER


class ProFTPDWithoutOverwriteTest(RealServerTestCase):
    """A CDS that never replaces a file: re-exporting a name that is still
    there fails, and leaves nothing in the way of a later run."""

    layer = realservers.PROFTPD_WITHOUT_OVERWRITE_LAYER

    def test_existing_name_is_kept_until_the_cds_took_it(self):
        self.server.put('a-file', b'yesterday')
        zeit.cds.testing.make_spool(self.store_dir, {'a-file': b'today'})
        for _ in range(2):
            log = self.run_main(zeit.cds.main.export)
            self.assertIn(
                'Cannot upload file a-file: 550 a-file: Rename permission '
                'denied', log)
            # Neither replaced nor a temporary upload left behind.
            self.assertEqual({'a-file': b'yesterday'}, self.server.contents())
            self.assertEqual(['a-file'], self.spool_files('new'))
        os.remove(os.path.join(self.server.root, 'a-file'))
        self.run_main(zeit.cds.main.export)
        self.assertEqual({'a-file': b'today'}, self.server.contents())
        self.assertEqual(['a-file'], self.spool_files('cur'))
