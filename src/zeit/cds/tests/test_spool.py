"""What a spool keeps for later runs (ISpool.remember)."""
import os

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
