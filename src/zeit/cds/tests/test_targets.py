"""The same stories against every kind of remote target: what holds for
FTP must hold for a mounted folder."""
import os
import tempfile
import unittest

from zope.interface.verify import verifyObject

import zeit.cds.testing
from zeit.cds import names
from zeit.cds.exporter import Exporter
from zeit.cds.targets.folder import FileTarget
from zeit.cds.importer import Importer
from zeit.cds.interfaces import IRemoteTarget
from zeit.cds.interfaces import IRemoteTargetFactory
from zeit.cds.interfaces import RemoteDirectoryError
from zeit.cds.interfaces import RemoteLocked
from zeit.cds.run.lock import LockOwner
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests.test_components import SpoolTestCase
from zeit.cds.tests.test_components import ftp_target
from zeit.cds.tests.test_lock import dead_pid

FILES = {'a.xml': b'A' * 10, 'Größe und Maß.xml': 'ü'.encode() * 5,
         'empty.xml': b''}


class TargetStories:
    """Mixed into a test case that provides ``remote_root`` (a folder) and
    ``make_target()`` (an unconnected IRemoteTarget on that folder)."""

    def setUp(self):
        super().setUp()
        zeit.cds.testing.make_spool(self.store_dir, FILES)

    def remote(self):
        return sorted(os.listdir(self.remote_root))

    def export(self):
        return Exporter(FileStoreSpool(self.store), self.make_target()).run()

    def test_provides_the_interface(self):
        verifyObject(IRemoteTarget, self.make_target())

    def test_export_delivers_every_file_with_its_bytes(self):
        summary = self.export()
        self.assertEqual(sorted(FILES), self.remote())
        for name, data in FILES.items():
            with open(os.path.join(self.remote_root, name), 'rb') as f:
                self.assertEqual(data, f.read())
        self.assertEqual(sorted(FILES), self.spool_files('cur'))
        self.assertEqual((3, 20), (summary.files, summary.bytes))

    def test_foreign_lock_makes_the_export_back_off(self):
        with open(os.path.join(self.remote_root, names.READ_LOCK), 'w') as f:
            f.write('partner\n')
        with self.assertRaises(RemoteLocked):
            self.export()
        self.assertEqual([names.READ_LOCK], self.remote())
        self.assertEqual(sorted(FILES), self.spool_files('new'))

    def test_lock_of_a_killed_run_is_taken_over(self):
        owner = LockOwner.this_process(self.store_dir)
        stale = LockOwner(host=owner.host, pid=dead_pid(), spool=owner.spool,
                          time=owner.time)
        with open(os.path.join(self.remote_root, names.WRITE_LOCK),
                  'wb') as f:
            f.write(stale.dumps())
        self.export()
        self.assertEqual(sorted(FILES), self.remote())

    def test_listing_shows_plain_files_only(self):
        os.mkdir(os.path.join(self.remote_root, 'folder'))
        self.export()
        target = self.make_target()
        target.connect()
        self.addCleanup(target.close)
        self.assertEqual(sorted(FILES), target.names())

    def offer(self, files):
        for name, data in files.items():
            with open(os.path.join(self.remote_root, name), 'wb') as f:
                f.write(data)

    def import_(self):
        return Importer(FileStoreSpool(self.store), self.make_target()).run()

    def test_import_delivers_every_file_once_and_removes_it(self):
        os.rename(os.path.join(self.store_dir, 'new'),
                  os.path.join(self.store_dir, 'exported'))
        os.mkdir(os.path.join(self.store_dir, 'new'))
        self.offer(FILES)
        self.offer({names.partial_name('half.xml'): b'half'})
        summary = self.import_()
        self.assertEqual([names.partial_name('half.xml')], self.remote())
        self.assertEqual(sorted(FILES), self.spool_files('new'))
        for name, data in FILES.items():
            with open(os.path.join(self.store_dir, 'new', name), 'rb') as f:
                self.assertEqual(data, f.read())
        self.assertEqual((3, 20), (summary.files, summary.bytes))

    def test_foreign_lock_makes_the_import_back_off(self):
        self.offer({'a.xml': b'A', names.WRITE_LOCK: b'partner\n'})
        with self.assertRaises(RemoteLocked):
            self.import_()
        self.assertEqual(['a.xml', names.WRITE_LOCK], self.remote())
        self.assertEqual([], self.spool_files('tmp'))

    def test_missing_directory(self):
        target = self.make_target()
        target.directory = '/no/such/folder'
        with self.assertRaises(RemoteDirectoryError):
            target.connect()


class FTPTargetStoriesTest(TargetStories, SpoolTestCase):

    layer = zeit.cds.testing.FTP_LAYER

    def setUp(self):
        super().setUp()
        self.remote_root = self.layer.server.root

    def make_target(self):
        return ftp_target(self.layer.server)


class FileTargetStoriesTest(TargetStories, SpoolTestCase):

    def setUp(self):
        super().setUp()
        self.remote_root = tempfile.mkdtemp(prefix='cds-share-')
        self.addCleanup(zeit.cds.testing.remove_tree, self.remote_root)

    def make_target(self):
        return FileTarget(directory=self.remote_root)


class FileTargetTest(unittest.TestCase):

    def test_class_is_a_target_factory(self):
        verifyObject(IRemoteTargetFactory, FileTarget)
