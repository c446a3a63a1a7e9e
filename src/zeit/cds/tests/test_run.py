"""The parts of a run on their own, as a watch run or another kind of
target would use them: the reconnect policy, the report, the lock's
scope; against real servers that drop or refuse connections."""
import os
import queue
import signal
import threading

import zope.event

import zeit.cds.testing
from zeit.cds import names
from zeit.cds.events import FileExported
from zeit.cds.events import IFileExported
from zeit.cds.events import IFileFailed
from zeit.cds.events import IRunFinished
from zeit.cds.events import IRunStarted
from zeit.cds.interfaces import ConnectionLost
from zeit.cds.interfaces import NoAnswer
from zeit.cds.interfaces import SpoolBusy
from zeit.cds.interfaces import TransferError
from zeit.cds.run.lock import RemoteLock
from zeit.cds.run import shutdown
from zeit.cds.run.reconnect import ReconnectPolicy
from zeit.cds.run.report import Report
from zeit.cds.run.scope import lock_scope
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests.handlers import DropOnBHandler
from zeit.cds.tests.handlers import GoneHandler
from zeit.cds.tests.handlers import stalling
from zeit.cds.tests.test_components import SpoolTestCase
from zeit.cds.tests.test_components import ftp_target


class AwayForAWhileHandler(GoneHandler):
    """Hangs up at the upload of b.xml, then refuses the next two
    connections, then serves again."""

    away_for = 2


def dropped_once(target):
    """Work that loses its connection the first time (storing b.xml, at
    which the test servers hang up) and then stores a.xml."""
    calls = []

    def work():
        calls.append(None)
        target.create('b.xml' if len(calls) == 1 else 'a.xml', b'A')
        return len(calls)
    return work


class RunPartTestCase(SpoolTestCase):

    layer = zeit.cds.testing.FTP_LAYER

    def setUp(self):
        super().setUp()
        self.log = zeit.cds.testing.LogCapture()
        self.addCleanup(self.log.uninstall)

    def connected(self, server, **options):
        target = ftp_target(server, **options)
        target.connect()
        self.addCleanup(target.close)
        return target


class ReconnectPolicyTest(RunPartTestCase):

    def test_work_that_lost_its_connection_runs_again_on_a_new_one(self):
        server = zeit.cds.testing.server_for(self, DropOnBHandler)
        target = self.connected(server)
        policy = ReconnectPolicy((0, 0, 0))
        self.assertEqual(
            2, policy.attempt(dropped_once(target), target=target))
        self.assertEqual(['a.xml'], os.listdir(server.root))
        self.assertRegex(self.log.getvalue(),
                         r'^Cannot store file b.xml: .*; '
                         r'reconnecting in 0 seconds\n$')
        self.assertFalse(policy.gave_up_on(target))

    def test_a_stop_asked_for_ends_the_reconnecting(self):
        # Waits for a server that may not come back could outlast the
        # time systemd gives a stop; the next run takes over.
        server = zeit.cds.testing.server_for(self, DropOnBHandler)
        target = self.connected(server)
        policy = ReconnectPolicy((0, 0, 0))
        with shutdown.graceful(redeliver=False):
            signal.raise_signal(signal.SIGTERM)
            with self.assertRaises(ConnectionLost) as raised:
                policy.attempt(dropped_once(target), target=target)
        self.assertRegex(str(raised.exception),
                         r'^Cannot store file b.xml: .*; not reconnecting: '
                         r'stopping$')
        self.assertNotIn('a.xml', os.listdir(server.root))
        self.assertTrue(policy.gave_up_on(target))
        self.assertNotIn('reconnecting in', self.log.getvalue())

    def test_gives_up_after_its_delays(self):
        server = zeit.cds.testing.server_for(self, GoneHandler)
        target = self.connected(server)
        policy = ReconnectPolicy((0, 0))
        with self.assertRaises(ConnectionLost) as raised:
            policy.attempt(dropped_once(target), target=target)
        self.assertRegex(str(raised.exception),
                         r'^Cannot connect to CDS FTP server at 127.0.0.1 '
                         r'port \d+: 421 .*; gave up after 2 attempts to '
                         r'reconnect$')
        lines = self.log.getvalue().splitlines()
        self.assertEqual(2, len(lines))
        self.assertRegex(lines[0], r'^Cannot store file b.xml: ')
        self.assertRegex(lines[1], r'^Cannot connect to CDS FTP server ')
        self.assertTrue(policy.gave_up_on(target))
        self.assertFalse(policy.gave_up_on(target.another()))

    def test_other_errors_are_not_retried(self):
        target = self.connected(self.layer.server)
        policy = ReconnectPolicy((0, 0, 0))
        with self.assertRaises(TransferError):
            policy.attempt(target.read, 'missing', target=target)
        self.assertEqual('', self.log.getvalue())

    def test_a_reconnect_that_gets_no_answer_ends_the_attempts(self):
        # A server that hangs at the upload of b.xml: the reconnect gets
        # no greeting. It is silent, not restarting: no more attempts.
        server = zeit.cds.testing.server_for(
            self, stalling('STOR', for_good=True))
        target = self.connected(server, timeout=0.5)
        policy = ReconnectPolicy((0, 0, 0))
        with self.assertRaises(NoAnswer) as raised:
            policy.attempt(dropped_once(target), target=target)
        self.assertRegex(str(raised.exception),
                         r'^No answer from the CDS FTP server within 0.5 s '
                         r'while connecting to 127.0.0.1 port \d+; gave up '
                         r'waiting for the server$')
        self.assertRegex(self.log.getvalue(),
                         r'^No answer from the CDS FTP server within 0.5 s '
                         r'while storing b.xml; reconnecting in 0 seconds\n$')
        self.assertTrue(policy.gave_up_on(target))
        self.assertTrue(policy.server_silent)

    def test_work_that_gets_no_answer_twice_ends_the_attempts(self):
        # Stuck at every upload of b.xml, answering all else.
        server = zeit.cds.testing.server_for(self, stalling('STOR'))
        target = self.connected(server, timeout=0.5)
        policy = ReconnectPolicy((0, 0, 0))
        calls = []

        def work():
            calls.append(None)
            target.create('b.xml', b'B')

        with self.assertRaises(NoAnswer) as raised:
            policy.attempt(work, target=target)
        self.assertEqual(
            'No answer from the CDS FTP server within 0.5 s while storing '
            'b.xml; gave up waiting for the server', str(raised.exception))
        self.assertEqual(2, len(calls))
        self.assertEqual(1, self.log.getvalue().count('reconnecting in'))
        # Given up on the server: no more work starts, on no connection.
        other = target.another()
        with self.assertRaises(NoAnswer):
            policy.attempt(calls.append, None, target=other)
        self.assertEqual(2, len(calls))

    def test_no_answer_and_no_attempts_left_is_silence_too(self):
        server = zeit.cds.testing.server_for(self, stalling('STOR'))
        target = self.connected(server, timeout=0.5)
        policy = ReconnectPolicy(())
        with self.assertRaises(NoAnswer):
            policy.attempt(target.create, 'b.xml', b'B', target=target)
        # So the lock's scope does not wait for the server again.
        self.assertTrue(policy.server_silent)

    def test_a_reconnect_restores_what_the_connection_held(self):
        server = zeit.cds.testing.server_for(self, DropOnBHandler)
        target = self.connected(server)
        policy = ReconnectPolicy((0, 0, 0))
        restored = []
        with policy.restoring(target, lambda: restored.append(
                target.names())):
            policy.attempt(dropped_once(target), target=target)
        # Restored on the new connection, before the work ran again.
        self.assertEqual([[]], restored)
        policy.attempt(dropped_once(target), target=target)
        self.assertEqual(1, len(restored))


class ReportTest(SpoolTestCase):

    def setUp(self):
        super().setUp()
        self.events = []
        zope.event.subscribers.append(self.follow)
        self.addCleanup(zope.event.subscribers.remove, self.follow)
        self.log = zeit.cds.testing.LogCapture()
        self.addCleanup(self.log.uninstall)
        self.transfer = object()
        self.report = Report(self.transfer)

    def follow(self, event):
        self.events.append((event, threading.current_thread()))

    def test_counts_and_announces_the_run_and_each_file(self):
        report = self.report
        report.start(['a.xml', 'b.xml'])
        report.succeeded(FileExported(self.transfer, 'a.xml', size=3))
        report.failed('b.xml', TransferError('Cannot upload file b.xml: no'))
        report.finish()
        started, exported, failed, finished = [e for e, t in self.events]
        self.assertTrue(IRunStarted.providedBy(started))
        self.assertEqual(['a.xml', 'b.xml'], started.planned)
        self.assertTrue(IFileExported.providedBy(exported))
        self.assertTrue(IFileFailed.providedBy(failed))
        self.assertEqual('b.xml', failed.name)
        self.assertIs(self.transfer, failed.transfer)
        self.assertTrue(IRunFinished.providedBy(finished))
        self.assertIs(report.summary, finished.summary)
        self.assertEqual((1, 3, 1), (report.summary.files,
                                     report.summary.bytes,
                                     report.summary.failures))
        self.assertGreaterEqual(report.summary.seconds, 0)
        self.assertEqual('Cannot upload file b.xml: no\n',
                         self.log.getvalue())

    def test_events_of_other_threads_are_handed_to_the_reports_thread(self):
        report = self.report
        outbox = queue.SimpleQueue()

        def work():
            report.succeeded(FileExported(self.transfer, 'a.xml', size=3))
            report.failed('b.xml', TransferError('Cannot upload b.xml'))

        with report.handing_over(outbox.put):
            worker = threading.Thread(target=work)
            worker.start()
            worker.join()
            # Nothing counted or announced in the worker's thread.
            self.assertEqual([], self.events)
            self.assertEqual(0, report.summary.files)
            report.receive(outbox.get_nowait())
            report.receive(outbox.get_nowait())
        self.assertTrue(outbox.empty())
        self.assertEqual([threading.current_thread()] * 2,
                         [t for e, t in self.events])
        self.assertEqual((1, 3, 1), (report.summary.files,
                                     report.summary.bytes,
                                     report.summary.failures))

    def test_events_of_the_reports_thread_are_not_handed_over(self):
        outbox = queue.SimpleQueue()
        with self.report.handing_over(outbox.put):
            self.report.succeeded(
                FileExported(self.transfer, 'a.xml', size=3))
        self.assertTrue(outbox.empty())
        self.assertEqual(1, self.report.summary.files)


class LockScopeTest(RunPartTestCase):

    def scope(self, server, policy=None, dry_run=False, **options):
        self.target = ftp_target(server, **options)
        self.spool = FileStoreSpool(self.store)
        self.lock = RemoteLock(self.target, names.WRITE_LOCK, self.spool)
        return lock_scope(self.spool, self.lock,
                          policy or ReconnectPolicy((0, 0, 0)),
                          'upload_dir', dry_run=dry_run)

    def assertLocked(self, server, locked=True):
        self.assertEqual(
            locked, names.WRITE_LOCK in os.listdir(server.root))

    def test_spool_and_lock_are_held_within(self):
        server = self.layer.server
        with self.scope(server):
            self.assertLocked(server)
            with self.assertRaises(SpoolBusy):
                with self.spool.locked():
                    pass
        self.assertLocked(server, False)
        with self.spool.locked():
            pass
        self.assertEqual(
            [f'Connecting to CDS FTP server (host 127.0.0.1, port '
             f'{server.port}, user test, upload_dir /)',
             f'Accessed filestore {self.store_dir}',
             'Creating lock file',
             'Lock file successfully created',
             'Removing lock file',
             'Lock file successfully removed',
             'Disconnected from CDS FTP server'],
            self.log.getvalue().splitlines())

    def test_dry_run_only_connects(self):
        server = self.layer.server
        with self.scope(server, dry_run=True):
            self.assertLocked(server, False)
            with self.spool.locked():
                pass
        self.assertEqual(3, len(self.log.getvalue().splitlines()))

    def test_lock_is_released_when_the_block_fails(self):
        server = self.layer.server
        with self.assertRaises(TransferError):
            with self.scope(server):
                self.target.read('missing')
        self.assertLocked(server, False)

    def test_lock_is_taken_again_after_a_reconnect(self):
        server = zeit.cds.testing.server_for(self, DropOnBHandler)
        policy = ReconnectPolicy((0, 0, 0))
        with self.scope(server, policy):
            # Gone while the connection was away (as a partner's cleanup
            # might do): the reconnect takes it again.
            os.remove(os.path.join(server.root, names.WRITE_LOCK))
            policy.attempt(dropped_once(self.target), target=self.target)
            self.assertLocked(server)
        self.assertLocked(server, False)

    def test_lock_is_released_once_more_after_the_reconnects_failed(self):
        server = zeit.cds.testing.server_for(self, AwayForAWhileHandler)
        policy = ReconnectPolicy((0, 0))
        with self.assertRaises(ConnectionLost):
            with self.scope(server, policy):
                policy.attempt(dropped_once(self.target), target=self.target)
        # Away for both attempts, back for the lock's removal.
        self.assertTrue(policy.gave_up_on(self.target))
        self.assertLocked(server, False)
        self.assertEqual(
            ['Removing lock file', 'Lock file successfully removed',
             'Disconnected from CDS FTP server'],
            self.log.getvalue().splitlines()[-3:])

    def test_lock_left_at_once_when_the_server_stopped_answering(self):
        server = zeit.cds.testing.server_for(
            self, stalling('STOR', for_good=True))
        policy = ReconnectPolicy((0, 0))
        with self.assertRaises(NoAnswer):
            with self.scope(server, policy, timeout=0.5):
                policy.attempt(dropped_once(self.target), target=self.target)
        self.assertLocked(server)
        self.assertRegex(
            self.log.getvalue(),
            r'\nNot removing the lock file: the CDS FTP server stopped '
            r'answering; the next run of ours takes it over\n'
            r'Disconnected from CDS FTP server\n$')

    def test_lock_left_to_the_next_run_when_the_server_stays_away(self):
        server = zeit.cds.testing.server_for(self, GoneHandler)
        policy = ReconnectPolicy((0,))
        with self.assertRaises(ConnectionLost):
            with self.scope(server, policy):
                policy.attempt(dropped_once(self.target), target=self.target)
        self.assertLocked(server)
        self.assertRegex(
            self.log.getvalue(),
            r'\nCould not remove the lock file \(Cannot connect to CDS FTP '
            r'server at .*\); the next run of ours takes it over\n'
            r'Disconnected from CDS FTP server\n$')
