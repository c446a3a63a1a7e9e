"""The import against real FTP servers, some listing crafted names."""
import os
import tempfile
import unittest

import zeit.cds.testing
from zeit.cds import names
from zeit.cds.importer import Importer
from zeit.cds.interfaces import LocalFileError
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests.test_components import SpoolTestCase
from zeit.cds.tests.test_components import ftp_target


class PlainFileNameTest(unittest.TestCase):

    def test_plain_names(self):
        for name in ['a.xml', 'mit Leerzeichen.xml', 'Grüße aus Köln.xml',
                     'Ελληνικά.xml', 'a..b', '.hidden', '-', 'ü' * 127 + 'x',
                     'x' * 255,
                     # Latin-1 bytes, listed as surrogates: written as such.
                     'caf\udce9.xml']:
            with self.subTest(name=name):
                self.assertTrue(names.is_plain_file_name(name))

    def test_names_that_are_refused(self):
        for name in ['', '.', '..', '../evil', 'a/b', '/etc/passwd', 'x\\y',
                     '..\\evil', 'bell\a', 'tab\tname', 'nul\0', 'esc\x1b[2J',
                     'del\x7f', 'c1\x85', 'rtl\u202eLMX.exe', 'x' * 256,
                     'ü' * 128, 'lone\ud800']:
            with self.subTest(name=name):
                self.assertFalse(names.is_plain_file_name(name))


class ImportTestCase(SpoolTestCase):
    """An import into ``self.store_dir`` (a folder of its own in
    ``self.base``) from a server of the test's choice."""

    layer = zeit.cds.testing.FTP_LAYER

    def setUp(self):
        super().setUp()
        self.base = tempfile.mkdtemp(prefix='cds-base-')
        self.addCleanup(zeit.cds.testing.remove_tree, self.base)
        self.store_dir = os.path.join(self.base, 'spool')
        self.store = zeit.cds.testing.make_spool(self.store_dir, {})
        self.spool = FileStoreSpool(self.store)
        self.log = zeit.cds.testing.LogCapture()
        self.addCleanup(self.log.uninstall)

    def server(self, handler):
        """A server of its own on the layer server's directory."""
        server = zeit.cds.testing.FTPServerThread(
            self.layer.server.root, handler).start()
        self.addCleanup(server.stop)
        return server

    def put_remote(self, name, data):
        with open(self.remote(name), 'wb') as f:
            f.write(data)

    def remote(self, name):
        return os.path.join(self.layer.server.root, name)

    def run_import(self, server=None):
        importer = Importer(self.spool, ftp_target(server or self.layer.server))
        # One connection: the log lines come in the order of the files.
        importer.connections = 1
        return importer.run()

    def errors(self):
        return [line for line in self.log.getvalue().splitlines()
                if line.startswith(('Refusing', 'Cannot'))]


class CraftedNamesTest(ImportTestCase):

    CRAFTED = ['../evil', '../../evil', 'a/b', '/abs', 'x\\y', '..\\evil',
               'ctl\x01', 'esc\x1b[2J', 'nul\x00', 'rtl\u202e.xml',
               'x' * 256, 'ü' * 128]
    SHOWN = ["'../evil'", "'../../evil'", "'a/b'", "'/abs'", "'x\\\\y'",
             "'..\\\\evil'", "'ctl\\x01'", "'esc\\x1b[2J'", "'nul\\x00'",
             "'rtl\\u202e.xml'", repr('x' * 256), repr('ü' * 128)]

    def setUp(self):
        super().setUp()
        self.put_remote('ok.xml', b'ok')
        self.put_remote('mit Leerzeichen ü.xml', b'spaces')
        self.put_remote('ü' * 127 + 'x', b'long')

    def assert_refused_and_imported_the_rest(self, summary):
        self.assertEqual(
            sorted(f'Refusing to import {shown}: not a plain file name'
                   for shown in self.SHOWN),
            sorted(self.errors()))
        self.assertEqual(len(self.SHOWN), summary.failures)
        self.assertEqual(3, summary.files)
        self.assertEqual(['mit Leerzeichen ü.xml', 'ok.xml', 'ü' * 127 + 'x'],
                         self.spool_files('new'))
        self.assertEqual([], self.spool_files('tmp'))
        self.assertEqual(['spool'], os.listdir(self.base))
        self.assertEqual(
            ['cds-journal', 'cds-memory', 'cds.lock', 'cur', 'new', 'tmp'],
            sorted(os.listdir(self.store_dir)))
        self.assertEqual([], os.listdir(self.layer.server.root))

    def test_mlsd(self):
        server = self.server(zeit.cds.testing.listing(self.CRAFTED))
        self.assert_refused_and_imported_the_rest(self.run_import(server))

    def test_nlst(self):
        server = self.server(zeit.cds.testing.listing(self.CRAFTED,
                                                      mlsd=False))
        self.assert_refused_and_imported_the_rest(self.run_import(server))

    def test_dots_and_reserved_names_are_skipped_silently(self):
        # Our own lock file ``read`` is listed too.
        crafted = ['.', '..', names.partial_name('ok.xml')]
        server = self.server(zeit.cds.testing.listing(crafted))
        summary = self.run_import(server)
        self.assertEqual([], self.errors())
        self.assertEqual(0, summary.failures)
        self.assertEqual(3, summary.files)

    def test_empty_name_in_listing_is_refused(self):
        server = self.server(zeit.cds.testing.listing(['']))
        summary = self.run_import(server)
        self.assertEqual(["Refusing to import '': not a plain file name"],
                         self.errors())
        self.assertEqual(1, summary.failures)


class SummaryTest(ImportTestCase):

    def test_counts_files_bytes_and_failures(self):
        self.put_remote('a.xml', b'12345')
        self.put_remote('broken.xml', b'x' * 100)
        self.put_remote('c.xml', b'123')
        summary = self.run_import(self.server(zeit.cds.testing.CutOffHandler))
        self.assertEqual((2, 8, 1), (summary.files, summary.bytes,
                                     summary.failures))
        self.assertGreater(summary.seconds, 0)
        self.assertEqual(['a.xml', 'c.xml'], self.spool_files('new'))
        self.assertEqual([], self.spool_files('tmp'))
        self.assertEqual(['broken.xml'], os.listdir(self.layer.server.root))

    def test_large_file_arrives_exactly(self):
        data = os.urandom(3 * 1024 * 1024 + 17)
        self.put_remote('big.bin', data)
        summary = self.run_import()
        self.assertEqual(len(data), summary.bytes)
        with open(os.path.join(self.store_dir, 'new', 'big.bin'), 'rb') as f:
            self.assertEqual(data, f.read())


class NewerVersionTest(ImportTestCase):

    def test_a_newer_version_replaces_one_not_taken_yet_and_says_so(self):
        self.put_remote('a.xml', b'version 1')
        self.put_remote('b.xml', b'B')
        self.run_import()
        self.put_remote('a.xml', b'version 2, longer')
        self.run_import()
        with open(os.path.join(self.store_dir, 'new', 'a.xml'), 'rb') as f:
            self.assertEqual(b'version 2, longer', f.read())
        self.assertEqual(1, self.log.getvalue().count(
            "File a.xml in 'new' was not taken yet; the newer one from the "
            'CDS replaces it\n'))
        self.assertEqual([], os.listdir(self.layer.server.root))

    def test_a_version_taken_already_is_no_news(self):
        self.put_remote('a.xml', b'version 1')
        self.run_import()
        os.rename(os.path.join(self.store_dir, 'new', 'a.xml'),
                  os.path.join(self.store_dir, 'cur', 'a.xml'))
        self.put_remote('a.xml', b'version 2')
        self.run_import()
        self.assertNotIn('not taken yet', self.log.getvalue())
        self.assertEqual(['a.xml'], self.spool_files('new'))


class JournalTest(ImportTestCase):

    def test_entry_lives_from_before_the_move_until_the_remote_removal(self):
        with self.spool.receiving('a.xml') as f:
            f.write(b'A')
        self.assertEqual({}, self.spool.received())
        self.assertEqual(['a.xml'], self.spool_files('tmp'))
        self.spool.deliver({'a.xml': None})
        self.assertEqual(['a.xml'], list(self.spool.received()))
        self.assertEqual(['a.xml'], self.spool_files('new'))
        self.spool.forget(['a.xml'])
        self.assertEqual({}, self.spool.received())
        self.spool.forget(['a.xml'])  # harmless a second time

    def test_failed_receiving_leaves_no_entry_and_no_file(self):
        with self.assertRaises(RuntimeError):
            with self.spool.receiving('a.xml') as f:
                f.write(b'partial')
                raise RuntimeError('download failed')
        self.assertEqual({}, self.spool.received())
        self.assertEqual([], self.spool_files('tmp'))
        self.assertEqual([], self.spool_files('new'))

    def test_move_cut_off_after_the_entry_is_finished(self):
        with open(os.path.join(self.store_dir, 'tmp', 'a.xml'), 'wb') as f:
            f.write(b'A')
        os.mkdir(os.path.join(self.store_dir, 'cds-journal'))
        open(os.path.join(self.store_dir, 'cds-journal', 'a.xml'), 'w').close()
        self.assertEqual(['a.xml'], list(self.spool.received()))
        self.assertEqual(['a.xml'], self.spool_files('new'))
        self.assertEqual([], self.spool_files('tmp'))

    def test_unusable_journal_is_a_local_error(self):
        with open(os.path.join(self.store_dir, 'cds-journal'), 'w'):
            pass  # a file where the folder belongs
        with self.assertRaises(LocalFileError):
            self.spool.received()

    def test_entry_of_a_file_gone_remotely_is_cleared_silently(self):
        with self.spool.receiving('gone.xml') as f:
            f.write(b'G')
        self.spool.deliver({'gone.xml': None})
        summary = self.run_import()
        self.assertEqual({}, self.spool.received())
        self.assertEqual('', ''.join(
            line for line in self.log.getvalue().splitlines()
            if 'gone.xml' in line))
        self.assertEqual(0, summary.failures)

    def test_delivered_file_is_only_removed_remotely(self):
        self.put_remote('a.xml', b'A')
        with self.spool.receiving('a.xml') as f:
            f.write(b'A')
        self.spool.deliver({'a.xml': None})
        os.remove(os.path.join(self.store_dir, 'new', 'a.xml'))  # consumed
        summary = self.run_import()
        self.assertEqual((0, 0), (summary.files, summary.failures))
        self.assertEqual([], self.spool_files('new'))
        self.assertEqual([], os.listdir(self.layer.server.root))
        self.assertEqual({}, self.spool.received())

    def test_refused_removal_keeps_the_entry_for_the_next_run(self):
        self.put_remote('a.xml', b'A')
        server = self.server(zeit.cds.testing.KeepingHandler)
        summary = self.run_import(server)
        self.assertEqual((1, 1), (summary.files, summary.failures))
        self.assertEqual(['a.xml'], list(self.spool.received()))
        # Refused again on the next run: still not downloaded again.
        summary = self.run_import(server)
        self.assertEqual((0, 1), (summary.files, summary.failures))
        self.assertEqual(
            ['Cannot remove file a.xml: 550 Not allowed to delete files.'] * 2,
            self.errors())
        self.assertEqual(['a.xml'], list(self.spool.received()))
        self.assertEqual(1, self.log.getvalue().count('Downloaded file a.xml'))
