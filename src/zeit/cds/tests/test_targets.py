"""The same stories against every kind of remote target: what holds for
FTP must hold for a mounted folder and for the CDS in memory."""
import io
import os
import tempfile
import unittest

from zope.interface.verify import verifyObject

import zeit.cds.testing
from zeit.cds import names
from zeit.cds.exporter import Exporter
from zeit.cds.importer import Importer
from zeit.cds.interfaces import ConnectionLost
from zeit.cds.interfaces import IRemoteTarget
from zeit.cds.interfaces import IRemoteTargetFactory
from zeit.cds.interfaces import RemoteDirectoryError
from zeit.cds.interfaces import RemoteExists
from zeit.cds.interfaces import RemoteLocked
from zeit.cds.run.lock import LockOwner
from zeit.cds.spool import FileStoreSpool
from zeit.cds.targets.folder import FileTarget
from zeit.cds.targets.memory import MemoryCDS
from zeit.cds.tests.test_components import SpoolTestCase
from zeit.cds.tests.test_components import ftp_target
from zeit.cds.tests.test_lock import dead_pid

FILES = {'a.xml': b'A' * 10, 'Größe und Maß.xml': 'ü'.encode() * 5,
         'empty.xml': b''}


class TargetStories:
    """Mixed into a test case that provides ``make_target()`` (an
    unconnected IRemoteTarget), ``remote()`` (the files there, a dict of
    name to bytes) and ``offer(files)`` (puts files there)."""

    def setUp(self):
        super().setUp()
        zeit.cds.testing.make_spool(self.store_dir, FILES)

    def export(self):
        return Exporter(FileStoreSpool(self.store), self.make_target()).run()

    def connected(self):
        target = self.make_target()
        target.connect()
        self.addCleanup(target.close)
        return target

    def test_provides_the_interface(self):
        verifyObject(IRemoteTarget, self.make_target())

    def test_export_delivers_every_file_with_its_bytes(self):
        summary = self.export()
        self.assertEqual(FILES, self.remote())
        self.assertEqual(sorted(FILES), self.spool_files('cur'))
        self.assertEqual((3, 20), (summary.files, summary.bytes))

    def test_foreign_lock_makes_the_export_back_off(self):
        self.offer({names.READ_LOCK: b'partner\n'})
        with self.assertRaises(RemoteLocked):
            self.export()
        self.assertEqual({names.READ_LOCK: b'partner\n'}, self.remote())
        self.assertEqual(sorted(FILES), self.spool_files('new'))

    def test_present_tells_which_files_are_there_and_when(self):
        self.offer({'a.xml': b'A'})
        target = self.connected()
        found = target.present(['a.xml', 'missing.xml'])
        self.assertEqual(['a.xml'], list(found))
        # Told as ``modified`` tells it, or left to it.
        self.assertIn(found['a.xml'], (None, target.modified('a.xml')))

    def test_lock_of_a_killed_run_is_taken_over(self):
        owner = LockOwner.this_process(self.store_dir)
        stale = LockOwner(host=owner.host, pid=dead_pid(), spool=owner.spool,
                          time=owner.time)
        self.offer({names.WRITE_LOCK: stale.dumps()})
        self.export()
        self.assertEqual(FILES, self.remote())

    def test_interrupted_upload_is_finished_not_repeated(self):
        spool = FileStoreSpool(self.store)
        spool.publishing('a.xml')
        self.offer({names.partial_name('a.xml'): FILES['a.xml']})
        summary = self.export()
        self.assertEqual((3, 0), (summary.files, summary.failures))
        self.assertEqual(FILES, self.remote())
        self.assertEqual(sorted(FILES), self.spool_files('cur'))

    def test_name_with_a_line_break_fails_alone(self):
        zeit.cds.testing.make_spool(self.store_dir, {'a\nb.xml': b'x'})
        summary = self.export()
        self.assertEqual(FILES, self.remote())
        self.assertEqual(['a\nb.xml'], self.spool_files('new'))
        self.assertEqual((3, 1), (summary.files, summary.failures))

    def import_(self):
        return Importer(FileStoreSpool(self.store), self.make_target()).run()

    def test_import_delivers_every_file_once_and_removes_it(self):
        os.rename(os.path.join(self.store_dir, 'new'),
                  os.path.join(self.store_dir, 'exported'))
        os.mkdir(os.path.join(self.store_dir, 'new'))
        self.offer(FILES)
        self.offer({names.partial_name('half.xml'): b'half'})
        summary = self.import_()
        self.assertEqual({names.partial_name('half.xml'): b'half'},
                         self.remote())
        self.assertEqual(sorted(FILES), self.spool_files('new'))
        for name, data in FILES.items():
            with open(os.path.join(self.store_dir, 'new', name), 'rb') as f:
                self.assertEqual(data, f.read())
        self.assertEqual((3, 20), (summary.files, summary.bytes))

    def deliver_as_a_killed_run(self, name, data):
        """What a run killed after the removal of ``name`` from the CDS,
        but before its journal entry was dropped, leaves behind."""
        self.offer({name: data})
        target = self.make_target()
        target.connect()
        self.addCleanup(target.close)
        spool = FileStoreSpool(self.store)
        with spool.receiving(name) as f:
            target.download(name, f)
        spool.deliver(target.identities([name]))
        return target

    def test_a_file_delivered_by_a_killed_run_is_only_removed(self):
        self.deliver_as_a_killed_run('foo.xml', b'old')
        summary = self.import_()
        self.assertEqual((0, 0), (summary.files, summary.failures))
        self.assertEqual({}, self.remote())

    def test_a_newer_file_under_a_delivered_name_is_imported_anew(self):
        target = self.deliver_as_a_killed_run('foo.xml', b'old')
        self.assertEqual({'foo.xml': None}, target.remove_all(['foo.xml']))
        # The partner offers a new article under the same name.
        self.offer({'foo.xml': b'the new one'})
        summary = self.import_()
        self.assertEqual((1, 0), (summary.files, summary.failures))
        with open(os.path.join(self.store_dir, 'new', 'foo.xml'), 'rb') as f:
            self.assertEqual(b'the new one', f.read())
        self.assertEqual({}, self.remote())
        self.assertEqual({}, FileStoreSpool(self.store).received())

    def test_foreign_lock_makes_the_import_back_off(self):
        offered = {'a.xml': b'A', names.WRITE_LOCK: b'partner\n'}
        self.offer(offered)
        with self.assertRaises(RemoteLocked):
            self.import_()
        self.assertEqual(offered, self.remote())
        self.assertEqual([], self.spool_files('tmp'))



class FolderStories(TargetStories):
    """Mixed into a test case that provides ``remote_root``, the folder of
    the target's directory."""

    def remote(self):
        return zeit.cds.testing.folder_contents(self.remote_root)

    def offer(self, files):
        for name, data in files.items():
            with open(os.path.join(self.remote_root, name), 'wb') as f:
                f.write(data)

    def test_listing_shows_plain_files_only(self):
        os.mkdir(os.path.join(self.remote_root, 'folder'))
        self.offer(FILES)
        self.assertEqual(sorted(FILES), self.connected().names())

    def test_present_leaves_folders_out_as_the_listing_does(self):
        os.mkdir(os.path.join(self.remote_root, 'folder'))
        self.offer(FILES)
        self.assertEqual(sorted(FILES), sorted(
            self.connected().present(['folder', *FILES])))

    def test_missing_directory(self):
        target = self.make_target()
        target.directory = '/no/such/folder'
        with self.assertRaises(RemoteDirectoryError):
            target.connect()


class FTPTargetStoriesTest(FolderStories, SpoolTestCase):

    layer = zeit.cds.testing.FTP_LAYER

    def setUp(self):
        super().setUp()
        self.remote_root = self.layer.server.root

    def make_target(self):
        return ftp_target(self.layer.server)


class FileTargetStoriesTest(FolderStories, SpoolTestCase):

    def setUp(self):
        super().setUp()
        self.remote_root = tempfile.mkdtemp(prefix='cds-share-')
        self.addCleanup(zeit.cds.testing.remove_tree, self.remote_root)

    def make_target(self):
        return FileTarget(directory=self.remote_root)


class MemoryTargetStoriesTest(TargetStories, SpoolTestCase):

    def setUp(self):
        self.cds = MemoryCDS()
        super().setUp()

    def make_target(self):
        return self.cds(directory='/cds')

    def remote(self):
        return self.cds.files('/cds')

    def offer(self, files):
        target = self.make_target()
        target.connect()
        for name, data in files.items():
            target.store(name, io.BytesIO(data))

    def test_factory_provides_its_interface(self):
        verifyObject(IRemoteTargetFactory, self.cds)

    def test_exclusive_create(self):
        target = self.make_target()
        target.connect()
        target.create('write', b'one')
        with self.assertRaises(RemoteExists):
            target.create('write', b'two')
        self.assertEqual({'write': b'one'}, self.remote())

    def test_no_session_no_files(self):
        with self.assertRaises(ConnectionLost):
            self.make_target().names()


class FileTargetTest(unittest.TestCase):

    def test_class_is_a_target_factory(self):
        verifyObject(IRemoteTargetFactory, FileTarget)
