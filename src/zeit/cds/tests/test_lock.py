"""The CDS lock protocol against a real FTP server."""
import dataclasses
import datetime
import os
import subprocess
import sys
import time

import zeit.cds.testing
from zeit.cds.interfaces import RemoteLocked
from zeit.cds.run.lock import LockOwner
from zeit.cds.run.lock import RemoteLock
from zeit.cds.run.notes import ServerNotes
from zeit.cds.spool import FileStoreSpool
from zeit.cds.targets.ftp import FTPTarget
from zeit.cds.tests.test_components import SpoolTestCase
from zeit.cds.tests.test_components import ftp_target


def dead_pid():
    """The pid of a process that has ended."""
    process = subprocess.Popen([sys.executable, '-c', 'pass'])
    process.wait()
    return process.pid


class LockOwnerTest(SpoolTestCase):

    def test_content_names_tool_host_pid_spool_time(self):
        owner = LockOwner.this_process(self.store_dir)
        content = owner.dumps().decode('utf-8')
        self.assertIn('tool: zeit.cds\n', content)
        self.assertIn(f'pid: {os.getpid()}\n', content)
        self.assertIn(f'spool: {self.store_dir}\n', content)
        self.assertIn('host: ', content)
        self.assertIn('time: ', content)
        self.assertEqual(owner, LockOwner.parse(owner.dumps()))

    def test_unparsable_content_names_nobody(self):
        for content in [b'', b'partner reading\n', b'\xff\xfe',
                        b'host: a\npid: x\nspool: s\ntime: t\ntool: t\n']:
            with self.subTest(content=content):
                self.assertIsNone(LockOwner.parse(content))

    def test_control_characters_in_content_are_not_believed(self):
        content = LockOwner.this_process(self.store_dir).dumps().replace(
            b'tool: zeit.cds', b'tool: zeit.cds\x1b[2J')
        self.assertIsNone(LockOwner.parse(content))

    def test_lock_of_a_dead_process_of_ours_is_left_behind(self):
        owner = LockOwner.this_process(self.store_dir)
        dead = LockOwner(host=owner.host, pid=dead_pid(), spool=owner.spool,
                         time=owner.time)
        self.assertTrue(dead.left_behind_by_us(self.store_dir))

    def test_lock_of_a_live_process_is_not_left_behind(self):
        owner = LockOwner.this_process(self.store_dir)
        self.assertFalse(owner.left_behind_by_us(self.store_dir))

    def test_lock_for_another_spool_or_host_is_not_ours(self):
        owner = LockOwner.this_process(self.store_dir)
        pid = dead_pid()
        other_spool = LockOwner(host=owner.host, pid=pid, spool='/elsewhere',
                                time=owner.time)
        other_host = LockOwner(host='elsewhere', pid=pid, spool=owner.spool,
                               time=owner.time)
        self.assertFalse(other_spool.left_behind_by_us(self.store_dir))
        self.assertFalse(other_host.left_behind_by_us(self.store_dir))


class RemoteLockTest(SpoolTestCase):

    layer = zeit.cds.testing.FTP_LAYER

    def setUp(self):
        super().setUp()
        self.target = ftp_target(self.layer.server)
        self.target.connect()
        self.addCleanup(self.target.close)
        self.log = zeit.cds.testing.LogCapture()
        self.addCleanup(self.log.uninstall)

    def lock(self, name='write', **kw):
        return RemoteLock(self.target, name, FileStoreSpool(self.store), **kw)

    def check_clock(self):
        """A run of this spool that gets the lock, and so checks the
        server's clock."""
        lock = self.lock()
        lock.acquire()
        lock.release()

    def remote(self, name):
        return os.path.join(self.layer.server.root, name)

    def put_remote(self, name, data):
        with open(self.remote(name), 'wb') as f:
            f.write(data)

    def test_acquire_writes_owner_and_release_removes_it(self):
        lock = self.lock()
        lock.acquire()
        with open(self.remote('write'), 'rb') as f:
            self.assertEqual(lock.owner, LockOwner.parse(f.read()))
        lock.release()
        self.assertFalse(os.path.exists(self.remote('write')))

    def test_either_lock_file_makes_a_run_back_off_untouched(self):
        for present in ['read', 'write']:
            for wanted in ['read', 'write']:
                with self.subTest(present=present, wanted=wanted):
                    self.put_remote(present, b'partner\n')
                    lock = self.lock(wanted)
                    with self.assertRaises(RemoteLocked) as raised:
                        lock.acquire()
                    self.assertIn(repr(present), str(raised.exception))
                    self.assertEqual(75, raised.exception.exit_code)
                    self.assertEqual([present],
                                     os.listdir(self.layer.server.root))
                    with open(self.remote(present), 'rb') as f:
                        self.assertEqual(b'partner\n', f.read())
                    os.remove(self.remote(present))

    def test_lock_of_a_running_process_of_ours_is_respected(self):
        owner = LockOwner.this_process(self.store_dir)
        running = dataclasses.replace(owner, pid=os.getppid())
        self.put_remote('write', running.dumps())
        with self.assertRaises(RemoteLocked) as raised:
            self.lock().acquire()
        self.assertIn(f'pid {os.getppid()}', str(raised.exception))
        self.assertEqual(running, LockOwner.parse(self.target.read('write')))

    def test_taking_a_lock_again_in_the_same_process_is_harmless(self):
        lock = self.lock()
        lock.acquire()
        lock.acquire()
        self.assertEqual(['write'], self.target.names())
        self.assertEqual('', self.log.getvalue())

    def age_remote(self, name, seconds):
        then = time.time() - seconds
        os.utime(self.remote(name), (then, then))

    def test_old_lock_is_broken_only_when_asked(self):
        self.check_clock()
        self.put_remote('read', b'partner reading\n')
        self.age_remote('read', 700)
        with self.assertRaises(RemoteLocked):
            self.lock().acquire()
        lock = self.lock(break_older_than=600)
        lock.acquire()
        self.assertEqual(['write'], self.target.names())
        # A second or two younger, at most: the server's times are whole
        # seconds, and our own store took a moment.
        self.assertRegex(
            self.log.getvalue(),
            r'^Breaking lock file read, (69\d|70\d) seconds old '
            r'\(held by another party\)\n$')

    def test_old_lock_is_kept_while_the_clock_is_unchecked(self):
        self.put_remote('read', b'partner reading\n')
        self.age_remote('read', 700)
        lock = self.lock(break_older_than=600)
        self.assertIsNone(lock.age('read'))
        with self.assertRaises(RemoteLocked) as raised:
            lock.acquire()
        self.assertEqual(75, raised.exception.exit_code)
        self.assertEqual(['read'], self.target.names())
        self.assertEqual(
            "Not breaking lock file read (held by another party): its age "
            "is unknown, as no run of this spool has checked the server's "
            "clock yet (a run that gets the lock does); remove it by hand "
            "if its holder is gone\n", self.log.getvalue())

    def test_age_by_the_checked_clock(self):
        self.check_clock()
        self.put_remote('read', b'partner reading\n')
        self.age_remote('read', 700)
        age = self.lock().age('read')
        self.assertLessEqual(690, age)
        self.assertLess(age, 800)

    def test_young_lock_is_not_broken(self):
        self.put_remote('read', b'partner reading\n')
        self.age_remote('read', 300)
        with self.assertRaises(RemoteLocked):
            self.lock(break_older_than=600).acquire()
        self.assertEqual(['read'], self.target.names())

    def test_lock_left_behind_by_killed_run_is_taken_over(self):
        owner = LockOwner.this_process(self.store_dir)
        stale = LockOwner(host=owner.host, pid=dead_pid(), spool=owner.spool,
                          time=owner.time)
        self.put_remote('write', stale.dumps())
        lock = self.lock()
        lock.acquire()
        with open(self.remote('write'), 'rb') as f:
            self.assertEqual(lock.owner, LockOwner.parse(f.read()))
        self.assertIn(
            f'Taking over lock file write left behind by a killed run '
            f'(zeit.cds on host {owner.host}, pid {stale.pid}',
            self.log.getvalue())


class ServerNotesTest(SpoolTestCase):

    def setUp(self):
        super().setUp()
        self.spool = FileStoreSpool(self.store)
        self.target = FTPTarget(host='cds.example', user='u', password='p',
                                directory='/in')

    def test_kept_per_server_and_read_back(self):
        notes = ServerNotes(self.spool, self.target)
        notes.locks['write'] = b'tool: zeit.cds\n\xc3\xbc'
        now = time.time()
        notes.clock.learn(now, now, datetime.datetime.fromtimestamp(
            int(now) - 3600, datetime.timezone.utc))
        notes.save()
        again = ServerNotes(self.spool, self.target)
        self.assertEqual(notes.locks, again.locks)
        self.assertEqual(notes.clock, again.clock)
        other = FTPTarget(host='cds.example', user='u', password='p',
                          directory='/out')
        self.assertEqual({}, ServerNotes(self.spool, other).locks)

    def notes_from(self, saved):
        self.spool.remember(
            'host cds.example, port 21, user u, directory /in', saved)
        return ServerNotes(self.spool, self.target)

    def test_unreadable_notes_are_ignored_with_a_warning(self):
        for saved in [b'{', b'[]', b'\xff']:
            with self.subTest(saved=saved), \
                    zeit.cds.testing.LogCapture() as log:
                notes = self.notes_from(saved)
                self.assertEqual({}, notes.locks)
                self.assertIsNotNone(notes.clock.doubt)
                self.assertEqual(
                    [f'Ignoring unreadable notes on {notes.key} in spool '
                     f'{self.store_dir}'], log.warnings())

    def test_notes_of_the_wrong_kind_count_for_nothing(self):
        notes = self.notes_from(b'{"locks": {"write": 3}, "clock": "x"}')
        self.assertEqual({}, notes.locks)
        self.assertIsNotNone(notes.clock.doubt)
