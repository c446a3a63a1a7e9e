"""What a spool keeps for later runs: its memory (ISpool.remember) and
its export journal (ISpool.publishing); and its hold (ISpool.locked)."""
import os
import subprocess
import sys
import threading

import hypothesis
import hypothesis.strategies as st

import zeit.cds.testing
from zeit.cds.interfaces import LocalFileError
from zeit.cds.interfaces import SpoolBusy
from zeit.cds.spool import EXPORT_JOURNAL
from zeit.cds.spool import EXPORT_JOURNAL_FOLDER
from zeit.cds.spool import LOCK_FILE
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


class HoldTest(SpoolTestCase):

    def test_checking_is_free_while_nobody_holds_it_and_writes_nothing(self):
        spool = FileStoreSpool(self.store)
        spool.check_free()
        self.assertNotIn(LOCK_FILE, os.listdir(self.store_dir))
        with spool.locked():
            pass
        with open(os.path.join(self.store_dir, LOCK_FILE), 'rb') as f:
            before = f.read()
        spool.check_free()
        with open(os.path.join(self.store_dir, LOCK_FILE), 'rb') as f:
            self.assertEqual(before, f.read())
        # The check holds nothing: a run gets the spool after it.
        with spool.locked():
            pass

    def test_busy_while_another_run_holds_it(self):
        with FileStoreSpool(self.store).locked():
            with self.assertRaises(SpoolBusy) as raised:
                FileStoreSpool(self.store).check_free()
        self.assertEqual(
            f'Spool {self.store_dir} is busy: another run holds '
            f'{os.path.join(self.store_dir, LOCK_FILE)}',
            str(raised.exception))
        FileStoreSpool(self.store).check_free()


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

    def test_notes_outlive_the_process(self):
        self.spool.publishing('a.xml')
        self.spool.publishing('b.xml')
        self.spool.unpublished('b.xml')
        self.spool.publishing('b.xml')
        self.spool.publishing('c.xml')
        self.spool.unpublished('c.xml')
        # The process killed, another one reads the spool.
        self.assertEqual(['a.xml', 'b.xml'],
                         FileStoreSpool(self.store).published())

    def test_one_file_for_all_notes_gone_once_their_files_left_new(self):
        self.assertEqual([], self.spool.published())
        for name in ['a.xml', 'b.xml', 'c.xml']:
            self.spool.publishing(name)
        self.assertIn(EXPORT_JOURNAL, os.listdir(self.store_dir))
        self.assertNotIn(EXPORT_JOURNAL_FOLDER, os.listdir(self.store_dir))
        self.spool.mark_exported('a.xml')
        self.spool.unpublished('b.xml')
        self.assertIn(EXPORT_JOURNAL, os.listdir(self.store_dir))
        self.spool.mark_exported('c.xml')
        self.assertNotIn(EXPORT_JOURNAL, os.listdir(self.store_dir))

    def test_notes_read_before_stay_until_their_files_left_new(self):
        self.spool.publishing('a.xml')
        spool = FileStoreSpool(self.store)
        self.assertEqual(['a.xml'], spool.published())
        spool.publishing('b.xml')
        spool.mark_exported('b.xml')
        self.assertEqual(['a.xml'], FileStoreSpool(self.store).published())

    def test_notes_not_read_yet_stay_as_well(self):
        # As for a caller of ISpool that exports without asking first.
        self.spool.publishing('a.xml')
        spool = FileStoreSpool(self.store)
        spool.mark_exported('b.xml')
        self.assertEqual(['a.xml'], FileStoreSpool(self.store).published())

    def test_the_notes_of_zeit_cds_0_1_are_read_and_cleared(self):
        # 0.1 kept a file per name, holding the identity of the file.
        folder = os.path.join(self.store_dir, EXPORT_JOURNAL_FOLDER)
        os.mkdir(folder)
        info = os.stat(os.path.join(self.store_dir, 'new', 'a.xml'))
        for name, identity in [
                ('a.xml', f'{info.st_ino} {info.st_size} {info.st_mtime_ns}'),
                ('b.xml', '1 1 1')]:
            with open(os.path.join(folder, name), 'w') as f:
                f.write(identity)
        self.assertEqual(['a.xml'], self.spool.published())
        self.assertEqual([], os.listdir(folder))
        self.assertEqual(['a.xml'], FileStoreSpool(self.store).published())

    def test_a_line_cut_short_is_no_note(self):
        self.spool.publishing('a.xml')
        self.spool.publishing('b.xml')
        path = os.path.join(self.store_dir, EXPORT_JOURNAL)
        with open(path, 'rb+') as f:
            f.truncate(os.path.getsize(path) - 1)
        spool = FileStoreSpool(self.store)
        self.assertEqual(['a.xml'], spool.published())
        # What is left of the line does not spoil the next one.
        spool.publishing('c.xml')
        self.assertEqual(['a.xml', 'c.xml'],
                         FileStoreSpool(self.store).published())

    def test_what_a_killed_tidying_left_goes(self):
        self.spool.publishing('a.xml')
        self.spool.unpublished('a.xml')
        self.spool.publishing('b.xml')
        left = os.path.join(self.store_dir, f'.{EXPORT_JOURNAL}.x1y2z3')
        with open(left, 'wb') as f:
            f.write(b'part of a log')
        other = os.path.join(self.store_dir, '.tmp-status')
        with open(other, 'wb'):
            pass
        self.assertEqual(['b.xml'], FileStoreSpool(self.store).published())
        self.assertFalse(os.path.exists(left))
        # Another writer's is not ours to remove.
        self.assertTrue(os.path.exists(other))

    def test_a_file_put_back_unchanged_is_no_longer_noted(self):
        # As an operator sends it again: mv cur/a.xml new/.
        self.assertEqual([], self.spool.published())
        self.spool.publishing('a.xml')
        self.spool.publishing('b.xml')
        self.spool.mark_exported('a.xml')
        os.rename(os.path.join(self.store_dir, 'cur', 'a.xml'),
                  os.path.join(self.store_dir, 'new', 'a.xml'))
        self.assertEqual(['b.xml'], FileStoreSpool(self.store).published())

    def test_no_descriptor_is_left_open(self):
        self.spool.publishing('a.xml')
        self.spool.unpublished('a.xml')
        self.spool.publishing('b.xml')
        path = os.path.join(self.store_dir, EXPORT_JOURNAL)
        open_files = []
        for fd in os.listdir('/proc/self/fd'):
            try:
                open_files.append(os.readlink(f'/proc/self/fd/{fd}'))
            except FileNotFoundError:
                pass  # the descriptor of the listing itself
        self.assertNotIn(os.path.realpath(path), open_files)

    def test_a_note_that_cannot_be_cleared_after_the_move_is_told(self):
        # The newer version, put into new meanwhile, goes back all the
        # same.
        self.assertEqual([], self.spool.published())
        self.spool.open('a.xml').close()
        self.spool.publishing('a.xml')
        self.spool.publishing('b.xml')
        path = os.path.join(self.store_dir, EXPORT_JOURNAL)
        os.remove(path)
        os.mkdir(path)
        with open(os.path.join(self.store_dir, 'new', 'a.xml'), 'wb') as f:
            f.write(b'a newer version')
        with zeit.cds.testing.LogCapture() as log:
            self.assertFalse(self.spool.mark_exported('a.xml'))
        self.assertIn('Cannot clear the export journal entry of file a.xml',
                      log.getvalue())
        with open(os.path.join(self.store_dir, 'new', 'a.xml'), 'rb') as f:
            self.assertEqual(b'a newer version', f.read())
        self.assertEqual([], self.spool_files('cur'))

    def test_notes_of_many_threads_at_once_are_all_kept(self):
        many = [f'{i:04}.xml' for i in range(800)]
        zeit.cds.testing.make_spool(self.store_dir, dict.fromkeys(many, b''))
        threads = [threading.Thread(target=lambda part=many[i::8]: [
            self.spool.publishing(name) for name in part]) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(many, FileStoreSpool(self.store).published())

    def test_a_journal_that_cannot_be_written_is_a_local_error(self):
        os.mkdir(os.path.join(self.store_dir, EXPORT_JOURNAL))
        with self.assertRaises(LocalFileError) as raised:
            self.spool.publishing('a.xml')
        self.assertEqual('Cannot journal the export of file a.xml: '
                         'Is a directory', str(raised.exception))

    def test_a_full_disk_leaves_no_part_of_a_line(self):
        # A file size limit stands in for the full disk: the second
        # line fits only in part.
        self.spool.publishing('a.xml')
        path = os.path.join(self.store_dir, EXPORT_JOURNAL)
        size = os.path.getsize(path)
        result = subprocess.run([sys.executable, '-c', f"""
import resource, signal
import gocept.filestore.filestore
from zeit.cds.interfaces import LocalFileError
from zeit.cds.interfaces import SpoolBusy
from zeit.cds.spool import FileStoreSpool
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({size + 5}, {size + 5}))
spool = FileStoreSpool(gocept.filestore.filestore.FileStore({
            self.store_dir!r}))
try:
    spool.unpublished('a.xml')
except LocalFileError as e:
    print(e)
"""], env=zeit.cds.testing.child_environment(), capture_output=True,
            text=True, timeout=60)
        self.assertEqual('Cannot clear the export journal entry of file '
                         'a.xml: No space left on device\n', result.stdout,
                         result.stderr)
        self.assertEqual(size, os.path.getsize(path))
        self.assertEqual(['a.xml'], FileStoreSpool(self.store).published())


# Names a spool's new may hold that a line of the journal must survive.
NAMES = st.sampled_from([
    'a.xml', '-', '- b', 'c\td', '\t', 'ü', os.fsdecode(b'\xff\xfe'),
    'e\r', ' ', 'f' * 200])


class ExportJournalPropertyTest(SpoolTestCase):

    @hypothesis.settings(max_examples=300, deadline=None, database=None)
    # Sent again unchanged after its export, also by a process that did
    # not read the journal first.
    @hypothesis.example(['a.xml'], [('arrive', 0), ('publish', 0),
                                    ('export', 0), ('requeue', 0),
                                    ('read', 0)])
    @hypothesis.given(
        st.lists(NAMES, min_size=1, max_size=3, unique=True),
        st.lists(st.tuples(
            st.sampled_from(['arrive', 'publish', 'drop', 'export',
                             'requeue', 'change', 'restart', 'read']),
            st.integers(0, 2)), max_size=40))
    def test_published_are_the_notes_of_unchanged_files(self, names, steps):
        """Whatever happens in which order (a restart is a process
        killed and another one taking the spool over), published() tells
        the names whose file in new is the one noted, and no other."""
        store_dir = self.fresh_store_dir()
        store = zeit.cds.testing.make_spool(store_dir, {})
        spool = FileStoreSpool(store)
        noted = {}  # name: the identity of the file noted
        waiting = {}  # name: the identity of the file in new
        exported = {}  # name: the identity of the file in cur

        def write(name, size):
            path = os.path.join(store_dir, 'new', name)
            with open(path, 'wb') as f:
                f.write(b'x' * size)
            info = os.stat(path)
            waiting[name] = (info.st_ino, info.st_size, info.st_mtime_ns)

        for step, index in steps:
            name = names[index % len(names)]
            if step == 'arrive' and name not in waiting | exported:
                write(name, 1)
            elif step == 'change' and name in waiting:
                write(name, waiting[name][1] + 1)
            elif step == 'publish' and name in waiting:
                spool.publishing(name)
                noted[name] = waiting[name]
            elif step == 'drop' and name in noted:
                spool.unpublished(name)
                del noted[name]
            elif step == 'export' and name in waiting:
                spool.mark_exported(name)
                noted.pop(name, None)
                exported[name] = waiting.pop(name)
            elif step == 'requeue' and name in exported:
                # Sent again: put back into new as it was.
                os.rename(os.path.join(store_dir, 'cur', name),
                          os.path.join(store_dir, 'new', name))
                waiting[name] = exported.pop(name)
            elif step == 'restart':
                spool = FileStoreSpool(store)
            elif step == 'read':
                expected = sorted(name for name, identity in noted.items()
                                  if waiting.get(name) == identity)
                self.assertEqual(expected, spool.published())
                noted = {name: noted[name] for name in expected}
        self.assertEqual(
            sorted(name for name, identity in noted.items()
                   if waiting.get(name) == identity),
            FileStoreSpool(store).published())

    def fresh_store_dir(self):
        path = os.path.join(self.store_dir,
                            f'case-{len(os.listdir(self.store_dir))}')
        os.mkdir(path)
        return path
