"""Whatever waits in ``new``: odd names, links, folders. One file that
cannot go fails alone, with one ERROR line; nothing else is held up, and
nothing but regular files leaves the spool."""
import os
import tempfile

import pyftpdlib.handlers
from zope.interface.verify import verifyObject

import zeit.cds.testing
from zeit.cds.exporter import Exporter
from zeit.cds.importer import Importer
from zeit.cds.interfaces import ISpool
from zeit.cds.interfaces import NotARegularFile
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests.test_components import ExportTestCase
from zeit.cds.tests.test_components import ftp_target

GOOD = {'a.xml': b'A' * 10, 'z.xml': b'Z' * 20}
LATIN_1 = b'caf\xe9.xml'


class OddFilesTest(ExportTestCase):

    files = GOOD

    def setUp(self):
        super().setUp()
        self.new = os.path.join(self.store_dir, 'new')

    def export(self):
        exporter = Exporter(FileStoreSpool(self.store),
                            ftp_target(self.layer.server))
        # One connection, as in the reproduction: before, a bad name
        # ended the run and held up every file sorted after it.
        exporter.connections = 1
        return exporter.run()

    def remote(self):
        return sorted(os.listdir(os.fsencode(self.layer.server.root)))

    def errors(self):
        return [line for line in self.log.getvalue().splitlines()
                if line.startswith(('Refusing', 'Cannot'))]

    def assert_good_ones_delivered(self, summary, failures=1):
        self.assertEqual([os.fsencode(name) for name in sorted(GOOD)],
                         self.remote())
        self.assertEqual(sorted(GOOD), self.spool_files('cur'))
        self.assertEqual((len(GOOD), failures),
                         (summary.files, summary.failures))

    def test_line_breaks_and_nul_in_a_name_fail_alone(self):
        for odd in ['a\nb.xml', 'c\rd.xml']:
            with open(os.path.join(self.new, odd), 'wb') as f:
                f.write(b'x')
        summary = self.export()
        self.assert_good_ones_delivered(summary, failures=2)
        self.assertEqual(['a\nb.xml', 'c\rd.xml'], self.spool_files('new'))
        self.assertEqual([
            "Refusing to export 'a\\nb.xml': a line break or NUL in a name "
            "cannot be sent",
            "Refusing to export 'c\\rd.xml': a line break or NUL in a name "
            "cannot be sent"], self.errors())

    def test_name_not_in_utf8_goes_byte_for_byte_and_comes_back(self):
        with open(os.path.join(os.fsencode(self.new), LATIN_1), 'wb') as f:
            f.write(b'latin')
        summary = self.export()
        self.assertEqual(3, summary.files)
        self.assertIn(LATIN_1, self.remote())
        self.assertIn("Uploaded file 'caf\\udce9.xml'",
                      self.log.getvalue())
        other = tempfile.mkdtemp(prefix='cds-spool-')
        self.addCleanup(zeit.cds.testing.remove_tree, other)
        store = zeit.cds.testing.make_spool(other, {})
        Importer(FileStoreSpool(store), ftp_target(self.layer.server)).run()
        with open(os.path.join(os.fsencode(other), b'new', LATIN_1),
                  'rb') as f:
            self.assertEqual(b'latin', f.read())
        self.assertEqual([], self.remote())

    def test_a_line_break_on_the_server_is_refused_alone(self):
        # cds-server lists every name it holds on one line (a line break
        # as NUL): the import refuses the odd ones, takes the others, and
        # so does every later run, never asking for names not there.
        for name in ['a\nb.xml', 'c\rd.xml', 'ok.xml']:
            with open(os.path.join(self.layer.server.root, name), 'w') as f:
                f.write('x')
        other = tempfile.mkdtemp(prefix='cds-spool-')
        self.addCleanup(zeit.cds.testing.remove_tree, other)
        store = zeit.cds.testing.make_spool(other, {})
        for run in range(2):
            self.log.clear()
            summary = Importer(FileStoreSpool(store),
                               ftp_target(self.layer.server)).run()
            self.assertEqual((1 - run, 2), (summary.files, summary.failures))
            self.assertEqual([
                "Refusing to import 'a\\x00b.xml': not a plain file name",
                "Refusing to import 'c\\x00d.xml': not a plain file name"],
                [line for line in self.log.getvalue().splitlines()
                 if line.startswith(('Refusing', 'Cannot'))])
        self.assertEqual(['ok.xml'], os.listdir(os.path.join(other, 'new')))
        self.assertEqual([b'a\nb.xml', b'c\rd.xml'], self.remote())

    def test_link_to_a_readable_file_is_not_followed(self):
        secret = os.path.join(self.store_dir, 'secret')
        with open(secret, 'wb') as f:
            f.write(b'password')
        os.symlink(secret, os.path.join(self.new, 'link.xml'))
        summary = self.export()
        self.assert_good_ones_delivered(summary)
        self.assertEqual(['link.xml'], self.spool_files('new'))
        self.assertEqual(
            ['Refusing to export link.xml: not a regular file'],
            self.errors())

    def test_folder_and_dangling_link_fail_alone(self):
        os.mkdir(os.path.join(self.new, 'folder'))
        os.symlink('/nonexistent', os.path.join(self.new, 'dangling.xml'))
        summary = self.export()
        self.assert_good_ones_delivered(summary, failures=2)
        self.assertEqual(['dangling.xml', 'folder'], self.spool_files('new'))

    def test_dry_run_plans_regular_files_and_names_the_others(self):
        os.mkdir(os.path.join(self.new, 'folder'))
        os.symlink('a.xml', os.path.join(self.new, 'link.xml'))
        exporter = Exporter(FileStoreSpool(self.store),
                            ftp_target(self.layer.server))
        planned, refused = exporter.plan()
        self.assertEqual(sorted(GOOD), planned)
        self.assertEqual(
            {'folder': 'Refusing to export folder: not a regular file',
             'link.xml': 'Refusing to export link.xml: not a regular file'},
            {name: str(error) for name, error in refused.items()})


class ReplacedDuringUploadTest(ExportTestCase):
    """zeit.cms puts a newer version of a file into new (tmp, then a
    rename) while the older one is on its way to the CDS."""

    files = {'a.xml': b'old version'}

    def test_the_newer_version_stays_for_the_next_run(self):
        spool_dir = self.store_dir

        class Replacing(pyftpdlib.handlers.FTPHandler):
            def ftp_STOR(self, file, mode='w'):
                if file.endswith('a.xml') and not type(self).done:
                    type(self).done = True
                    tmp = os.path.join(spool_dir, 'tmp', 'a.xml')
                    with open(tmp, 'wb') as f:
                        f.write(b'NEW version!')
                    os.rename(tmp, os.path.join(spool_dir, 'new', 'a.xml'))
                return super().ftp_STOR(file, mode)
            done = False

        server = zeit.cds.testing.server_for(self, Replacing)
        exporter = Exporter(FileStoreSpool(self.store), ftp_target(server))
        exporter.run()
        with open(os.path.join(server.root, 'a.xml'), 'rb') as f:
            self.assertEqual(b'old version', f.read())
        self.assertEqual(['a.xml'], self.spool_files('new'))
        self.assertIn("File a.xml was replaced in 'new' during its upload",
                      self.log.getvalue())
        Exporter(FileStoreSpool(self.store), ftp_target(server)).run()
        with open(os.path.join(server.root, 'a.xml'), 'rb') as f:
            self.assertEqual(b'NEW version!', f.read())
        self.assertEqual([], self.spool_files('new'))
        self.assertEqual(['a.xml'], self.spool_files('cur'))


class SpoolOpenTest(ExportTestCase):
    """What ``open`` finds may differ from what was listed."""

    def setUp(self):
        super().setUp()
        self.spool = FileStoreSpool(self.store)
        self.new = os.path.join(self.store_dir, 'new')

    def test_provides_the_interface(self):
        verifyObject(ISpool, self.spool)

    def test_a_link_put_in_place_of_a_file_is_refused(self):
        zeit.cds.testing.make_spool(self.store_dir, {'a.xml': b'A'})
        self.assertEqual(['a.xml'], self.spool.waiting())
        os.remove(os.path.join(self.new, 'a.xml'))
        os.symlink('/etc/passwd', os.path.join(self.new, 'a.xml'))
        with self.assertRaises(NotARegularFile):
            self.spool.open('a.xml')

    def test_a_fifo_is_refused_without_waiting_for_a_writer(self):
        os.mkfifo(os.path.join(self.new, 'pipe.xml'))
        self.assertEqual(['pipe.xml'], self.spool.strays())
        with self.assertRaises(NotARegularFile):
            self.spool.open('pipe.xml')
