"""Lock ages by a server clock a run has checked: a server that reports
local time (or runs wrong) never gets a partner's fresh lock broken."""
import datetime
import json
import os
import time
import unittest

import zeit.cds.testing
from zeit.cds import names
from zeit.cds.exporter import Exporter
from zeit.cds.interfaces import RemoteLocked
from zeit.cds.run.clock import MAX_MOVE
from zeit.cds.run.clock import ServerClock
from zeit.cds.run.lock import RemoteLock
from zeit.cds.spool import MEMORY
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests.handlers import LocalTimeHandler
from zeit.cds.tests.test_cli import CommandLineTestCase
from zeit.cds.tests.test_components import ExportTestCase
from zeit.cds.tests.test_components import ftp_target

FIVE_HOURS = 5 * 3600
UNKNOWN = ("Not breaking lock file write (held by another party): its age "
           "is unknown, as no run of this spool has checked the server's "
           "clock yet (a run that gets the lock does); remove it by hand if "
           "its holder is gone")


def reported(seconds):
    """What a server reports for the POSIX time ``seconds``: whole
    seconds, read as UTC."""
    return datetime.datetime.fromtimestamp(int(seconds),
                                           datetime.timezone.utc)


class ServerClockTest(unittest.TestCase):

    def learned(self, offset, store_seconds=0.4):
        """A clock that saw a file stored now on a server ``offset``
        seconds off."""
        clock = ServerClock()
        before = time.time()
        after = before + store_seconds
        clock.learn(before, after, reported(before + store_seconds / 2
                                            + offset))
        return clock

    def test_offset_lies_within_the_bounds(self):
        for offset in [0, -FIVE_HOURS, 3 * 3600 + 0.7, -0.2]:
            with self.subTest(offset=offset):
                clock = self.learned(offset)
                self.assertLessEqual(clock.low, offset)
                self.assertLessEqual(offset, clock.high)
                # The store's duration and the server's whole seconds.
                self.assertLessEqual(clock.high - clock.low, 1.4 + 1e-6)

    def test_age_is_never_more_than_the_true_age(self):
        for offset in [0, -FIVE_HOURS, 7200.5]:
            with self.subTest(offset=offset):
                clock = self.learned(offset)
                written = time.time() - 1000
                age = clock.age(reported(written + offset))
                true_age = time.time() - written
                self.assertLessEqual(age, true_age)
                self.assertLess(true_age - age, 3)

    def test_unknown_until_learned(self):
        clock = ServerClock()
        self.assertIn('no run of this spool has checked', clock.doubt)
        self.assertIsNone(self.learned(-FIVE_HOURS).doubt)

    def test_offset_that_moved_is_in_doubt_until_confirmed(self):
        clock = self.learned(0)
        now = time.time()
        self.assertIsNone(clock.learn(now, now, reported(now + MAX_MOVE - 5)))
        self.assertIsNone(clock.doubt)
        moved = clock.learn(now, now, reported(now + 3600))
        self.assertAlmostEqual(3600 - MAX_MOVE, moved, delta=10)
        self.assertRegex(clock.doubt, r"^the server's clock was found 3\d\d\d "
                         r"seconds off its earlier offset at \d{4}-")
        self.assertIsNone(clock.learn(now, now, reported(now + 3600)))
        self.assertIsNone(clock.doubt)

    def test_kept_and_read_back(self):
        clock = self.learned(-FIVE_HOURS)
        self.assertEqual(clock, ServerClock.from_dict(
            json.loads(json.dumps(clock.to_dict()))))

    def test_anything_else_read_back_is_unknown(self):
        for data in [{}, {'low': 'x', 'high': 1}, {'bogus': 1}, [], 'x',
                     {'low': [1], 'high': None}, {'low': 1}]:
            with self.subTest(data=data):
                self.assertIsNotNone(ServerClock.from_dict(data).doubt)


class LocalTimeTestCase(ExportTestCase):
    """A server five hours west of UTC that reports its local time, and
    an export that may break locks older than an hour."""

    def setUp(self):
        super().setUp()
        self.handler = type('LocalTime', (LocalTimeHandler,), {})
        self.server = zeit.cds.testing.server_for(self, self.handler)
        self.lock_path = os.path.join(self.server.root, names.WRITE_LOCK)

    def export(self, break_lock_older_than=3600):
        exporter = Exporter(FileStoreSpool(self.store),
                            ftp_target(self.server))
        exporter.break_lock_older_than = break_lock_older_than
        return exporter.run()

    def waiting(self, name):
        zeit.cds.testing.make_spool(self.store_dir, {name: b'data'})

    def good_run(self):
        """A run that gets the lock, and so checks the server's clock."""
        self.waiting('more.xml')
        self.export()
        self.assertEqual([], self.spool_files('new'))
        self.log.clear()

    def partner_locks(self, seconds_ago=0):
        with open(self.lock_path, 'wb') as f:
            f.write(b'partner writing\n')
        then = time.time() - seconds_ago
        os.utime(self.lock_path, (then, then))

    def age(self):
        target = ftp_target(self.server)
        target.connect()
        self.addCleanup(target.close)
        return RemoteLock(target, names.WRITE_LOCK,
                          FileStoreSpool(self.store)).age(names.WRITE_LOCK)

    def assertKept(self):
        self.waiting('a.xml')
        with self.assertRaises(RemoteLocked) as raised:
            self.export()
        self.assertEqual(75, raised.exception.exit_code)
        with open(self.lock_path, 'rb') as f:
            self.assertEqual(b'partner writing\n', f.read())
        self.assertIn('a.xml', self.spool_files('new'))


class LocalTimeServerTest(LocalTimeTestCase):

    def test_server_reports_times_five_hours_behind(self):
        self.partner_locks()
        target = ftp_target(self.server)
        target.connect()
        self.addCleanup(target.close)
        looks = time.time() - target.modified(names.WRITE_LOCK).timestamp()
        self.assertGreater(looks, FIVE_HOURS - 60)

    def test_fresh_partner_lock_is_kept_on_a_fresh_spool(self):
        self.partner_locks()
        self.assertKept()
        self.assertEqual([UNKNOWN], self.log.warnings())

    def test_fresh_partner_lock_is_kept_after_a_good_run(self):
        self.good_run()
        self.partner_locks()
        self.assertKept()
        self.assertEqual([], self.log.warnings())
        self.assertLess(self.age(), 60)

    def test_really_old_lock_is_broken_once_the_clock_is_checked(self):
        self.good_run()
        self.partner_locks(seconds_ago=7200)
        self.waiting('a.xml')
        self.assertEqual(1, self.export().files)
        self.assertEqual([], self.spool_files('new'))
        warning, = self.log.warnings()
        self.assertRegex(warning, r'^Breaking lock file write, 7[12]\d\d '
                         r'seconds old \(held by another party\)$')

    def test_clock_that_moved_is_doubted_until_a_run_confirms_it(self):
        self.handler.clock_shift = 0
        self.good_run()
        self.handler.clock_shift = -FIVE_HOURS
        self.waiting('more.xml')
        self.export()
        self.assertRegex(
            '\n'.join(self.log.warnings()),
            r'^The clock of the CDS server moved by 17\d\d\d seconds '
            r'against ours since the last run; lock ages are not trusted '
            r'until the next run confirms it$')
        self.log.clear()
        self.partner_locks(seconds_ago=7200)
        self.assertKept()
        self.assertRegex('\n'.join(self.log.warnings()),
                         r"^Not breaking lock file write \(held by another "
                         r"party\): its age is unknown, as the server's "
                         r"clock was found 17\d\d\d seconds off its earlier "
                         r"offset at .* UTC \(the next run that gets the "
                         r"lock checks it again\); remove it by hand if its "
                         r"holder is gone$")
        os.remove(self.lock_path)
        self.good_run()
        self.partner_locks(seconds_ago=7200)
        self.waiting('a.xml')
        self.assertEqual(1, self.export().files)
        self.assertFalse(os.path.exists(self.lock_path))

    def test_the_notes_name_the_server_and_its_offset(self):
        self.good_run()
        kept, = os.listdir(os.path.join(self.store_dir, MEMORY))
        with open(os.path.join(self.store_dir, MEMORY, kept)) as f:
            notes = json.load(f)
        self.assertEqual(
            f'host 127.0.0.1, port {self.server.port}, user test, '
            'directory /', notes['server'])
        self.assertEqual({}, notes['locks'])
        clock = notes['clock']
        self.assertLessEqual(clock['low'], -FIVE_HOURS)
        self.assertLessEqual(-FIVE_HOURS, clock['high'])


class MixedTimesServerTest(LocalTimeTestCase):
    """A server whose MDTM tells its local time, five hours east of UTC,
    and whose MLST tells UTC: by a clock learned from MDTM, an MLST time
    looks five hours older than it is."""

    def setUp(self):
        super().setUp()
        self.handler.clock_shift = FIVE_HOURS
        self.handler.shift_facts = False

    def test_a_clock_learned_by_mdtm_judges_mdtm_times_only(self):
        # As the notes of a spool from before the lock asked MLST: this
        # run learns the clock from MDTM.
        exporter = Exporter(FileStoreSpool(self.store),
                            ftp_target(self.server))
        exporter.target._habits.mlst = False
        self.waiting('more.xml')
        exporter.run()
        self.partner_locks()
        self.assertKept()
        self.assertEqual([], self.log.warnings())
        # A run that gets the lock learns it anew, from MLST.
        os.remove(self.lock_path)
        self.good_run()
        self.partner_locks()
        self.assertKept()
        self.partner_locks(seconds_ago=7200)
        self.waiting('a.xml')
        self.assertEqual(1, self.export().files)
        self.assertRegex('\n'.join(self.log.warnings()),
                         r'^Breaking lock file write, 7[12]\d\d seconds old')


class ClockAcrossProcessesTest(CommandLineTestCase):
    """The offset a run learned is kept in the spool for the runs of other
    processes."""

    def setUp(self):
        super().setUp()
        self.server = zeit.cds.testing.server_for(self, LocalTimeHandler)
        self.lock_path = os.path.join(self.server.root, names.WRITE_LOCK)

    def partner_locks(self, seconds_ago):
        with open(self.lock_path, 'w') as f:
            f.write('partner writing\n')
        then = time.time() - seconds_ago
        os.utime(self.lock_path, (then, then))

    def test_offset_learned_by_one_run_judges_the_locks_of_the_next(self):
        breaking = self.options(**{'break-lock-older-than': '3600'})
        self.partner_locks(seconds_ago=0)
        result = self.cds(*breaking)
        self.assertExit(75, result)
        self.assertIn("WARNING: Not breaking lock file write (held by "
                      "another party): its age is unknown", result.stderr)
        os.remove(self.lock_path)
        # An import of nothing, on the same server and spool, checks the
        # clock with its own lock.
        self.assertExit(0, self.cds(*self.options(), script='cds-import'))
        self.partner_locks(seconds_ago=0)
        result = self.cds(*breaking)
        self.assertExit(75, result)
        self.assertNotIn('Not breaking', result.stderr)
        self.assertTrue(os.path.exists(self.lock_path))
        self.partner_locks(seconds_ago=7200)
        result = self.cds(*breaking)
        self.assertExit(0, result)
        self.assertIn('WARNING: Breaking lock file write, 7', result.stderr)
        self.assertFalse(os.path.exists(self.lock_path))
