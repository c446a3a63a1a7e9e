"""What a spool keeps for later runs: its memory (ISpool.remember) and
its export journal (ISpool.publishing)."""
import os

import zeit.cds.testing
from zeit.cds.interfaces import LocalFileError
from zeit.cds.spool import MEMORY
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests.test_components import SpoolTestCase


class MemoryTest(SpoolTestCase):

    def setUp(self):
        super().setUp()
        self.spool = FileStoreSpool(self.store)

    def test_nothing_is_remembered_at_first(self):
        self.assertIsNone(self.spool.remembered('host a, directory /'))
        self.assertNotIn(MEMORY, os.listdir(self.store_dir))

    def test_bytes_are_kept_by_key(self):
        self.spool.remember('host a, directory /', b'one')
        self.spool.remember('host b, directory /', b'two', durable=False)
        self.spool.remember('host a, directory /', b'three', durable=False)
        again = FileStoreSpool(self.store)
        self.assertEqual(b'three', again.remembered('host a, directory /'))
        self.assertEqual(b'two', again.remembered('host b, directory /'))

    def test_any_key_makes_one_plain_file_and_no_temporary_is_left(self):
        for key in ['../../etc/passwd', 'a/b', '', 'ü' * 300, 'x\0y']:
            self.spool.remember(key, key.encode('utf-8'))
            self.assertEqual(key.encode('utf-8'), self.spool.remembered(key))
        files = os.listdir(os.path.join(self.store_dir, MEMORY))
        self.assertEqual(5, len(files))
        self.assertFalse([name for name in files if name.startswith('.')])

    def test_unusable_folder_is_a_local_error(self):
        with open(os.path.join(self.store_dir, MEMORY), 'w'):
            pass
        with self.assertRaises(LocalFileError) as raised:
            self.spool.remember('key', b'data')
        self.assertIn(f'Cannot keep what this run learned in spool '
                      f'{self.store_dir}', str(raised.exception))
        with self.assertRaises(LocalFileError):
            self.spool.remembered('key')


class ExportJournalTest(SpoolTestCase):

    def setUp(self):
        super().setUp()
        zeit.cds.testing.make_spool(
            self.store_dir, {'a.xml': b'A', 'b.xml': b'B', 'c.xml': b'C'})
        self.spool = FileStoreSpool(self.store)

    def test_noted_until_exported_or_unpublished(self):
        self.spool.publishing('a.xml')
        self.spool.publishing('b.xml')
        self.assertEqual(['a.xml', 'b.xml'], self.spool.published())
        self.assertTrue(self.spool.mark_exported('a.xml'))
        self.spool.unpublished('b.xml')
        self.assertEqual([], self.spool.published())
        self.assertEqual(['a.xml'], self.spool_files('cur'))
        self.assertEqual(['b.xml', 'c.xml'], self.spool_files('new'))

    def test_a_file_changed_since_its_note_is_to_be_uploaded_anew(self):
        self.spool.publishing('a.xml')
        self.spool.publishing('b.xml')
        with open(os.path.join(self.store_dir, 'new', 'b.xml'), 'wb') as f:
            f.write(b'a newer version')
        self.assertEqual(['a.xml'], self.spool.published())
