"""The watcher (``--watch``) against real FTP servers: files arriving
while a burst runs, a partner's lock, a server that goes away, a watcher
killed and started again, signals, cron beside it, systemd.

Tests wait for what they expect to happen (events, log lines, files),
never for time to pass; every wait is bounded, so a test can fail but
never hang.
"""
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading

import pyftpdlib.handlers
import zope.event

import zeit.cds.testing
from zeit.cds import names
from zeit.cds.events import IFileExported
from zeit.cds.events import IFileFailed
from zeit.cds.events import IFileImported
from zeit.cds.exporter import Exporter
from zeit.cds.importer import Importer
from zeit.cds.watch.systemd import Notifier
from zeit.cds.watch.watcher import Watch
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests.handlers import pausing
from zeit.cds.tests import realservers
from zeit.cds.tests.test_components import SpoolTestCase
from zeit.cds.tests.test_components import ftp_target
from zeit.cds.tests.test_interop import RealServerTestCase

# The longest any wait of a test may take, in seconds.
TIMEOUT = 30


def drop(store_dir, name, data=b'x'):
    """Put a file into the spool as zeit.cms does: written in tmp, moved
    to new."""
    path = os.path.join(store_dir, 'tmp', name)
    with open(path, 'wb') as f:
        f.write(data)
    os.rename(path, os.path.join(store_dir, 'new', name))


class Seen:
    """Collects what ``zope.event`` tells of files, for tests to wait
    on: the names of the events providing ``interface``."""

    def __init__(self, testcase, interface):
        self.interface = interface
        self.names = []
        self._changed = threading.Condition()
        zope.event.subscribers.append(self)
        testcase.addCleanup(zope.event.subscribers.remove, self)

    def __call__(self, event):
        if self.interface.providedBy(event):
            with self._changed:
                self.names.append(event.name)
                self._changed.notify_all()

    def wait_for(self, *names):
        with self._changed:
            if not self._changed.wait_for(
                    lambda: set(names) <= set(self.names), TIMEOUT):
                raise AssertionError(
                    f'not all of {names} seen; seen: {self.names}')


class Lines(logging.Handler):
    """The log lines (level and message) while a test runs, for it to
    wait on."""

    def __init__(self, testcase):
        super().__init__(logging.DEBUG)
        self.lines = []
        self._changed = threading.Condition()
        root = logging.getLogger()
        old_level = root.level
        root.setLevel(logging.DEBUG)
        root.addHandler(self)
        testcase.addCleanup(root.setLevel, old_level)
        testcase.addCleanup(root.removeHandler, self)

    def emit(self, record):
        with self._changed:
            self.lines.append((record.levelno, record.getMessage()))
            self._changed.notify_all()

    def matching(self, pattern, level=logging.DEBUG):
        return [message for levelno, message in self.lines
                if levelno >= level and re.search(pattern, message)]

    def wait_for(self, pattern, count=1, level=logging.DEBUG):
        with self._changed:
            if not self._changed.wait_for(
                    lambda: len(self.matching(pattern, level)) >= count,
                    TIMEOUT):
                raise AssertionError(
                    f'no {count} lines {pattern!r}; lines: {self.lines}')


class WatchTestCase(SpoolTestCase):
    """A watcher in a thread of the test, on a server of the test's own."""

    handler = pyftpdlib.handlers.FTPHandler

    def setUp(self):
        super().setUp()
        self.lines = Lines(self)
        self.server = zeit.cds.testing.server_for(self, self.handler)
        self.told = []

    def make_target(self):
        return ftp_target(self.server)

    def watch(self, transfer_class=Exporter, connections=1, **options):
        """Start a watcher; it is stopped when the test ends."""
        transfer = transfer_class(FileStoreSpool(self.store),
                                  self.make_target())
        transfer.connections = connections
        transfer.reconnect_delays = (0, 0, 0)
        options.setdefault('backoff', (0.01, 0.05))
        options.setdefault('told', lambda *outcome: self.told.append(outcome))
        watch = Watch(
            transfer, verdict=lambda error: (logging.ERROR, str(error)),
            **options)
        thread = threading.Thread(target=watch.serve, name='watcher')
        thread.start()

        def stop():
            watch.stop()
            thread.join(TIMEOUT)
            self.assertFalse(thread.is_alive())
        self.addCleanup(stop)
        self.lines.wait_for('^Watching for files')
        return watch

    def bursts_done(self, count=1):
        """Wait until ``count`` bursts are over, their lock released."""
        self.lines.wait_for('^(Ex|Im)ported [0-9]+ files', count)

    def remote_files(self):
        return sorted(os.listdir(self.server.root))


class WatchExportTest(WatchTestCase):

    def test_exports_each_file_as_it_lands_and_releases_the_lock(self):
        exported = Seen(self, IFileExported)
        self.watch()
        drop(self.store_dir, 'a.xml', b'A')
        exported.wait_for('a.xml')
        drop(self.store_dir, 'b.xml', b'B')
        exported.wait_for('b.xml')
        self.lines.wait_for('^Exported 1 files', count=2)
        self.assertEqual(['a.xml', 'b.xml'], self.remote_files())
        self.assertEqual(['a.xml', 'b.xml'], self.spool_files('cur'))
        self.assertEqual([], self.spool_files('new'))
        # One lock per burst, given back after each.
        self.assertEqual(2, len(self.lines.matching(
            '^Lock file successfully removed$')))
        self.assertEqual(['Connecting to CDS FTP server'], [
            line[:28] for line in self.lines.matching('^Connecting')])

    def test_files_waiting_at_the_start_go_with_the_first_burst(self):
        zeit.cds.testing.make_spool(self.store_dir, {'a.xml': b'A',
                                                     'b.xml': b'B'})
        exported = Seen(self, IFileExported)
        self.watch()
        exported.wait_for('a.xml', 'b.xml')
        self.bursts_done()
        self.assertEqual(['a.xml', 'b.xml'], self.remote_files())

    def test_a_file_that_fails_waits_for_the_full_scan(self):
        # Not a burst after every arrival: one ERROR, not one per burst.
        failed, exported = Seen(self, IFileFailed), Seen(self, IFileExported)
        self.watch()
        drop(self.store_dir, 'bad\rname.xml')
        failed.wait_for('bad\rname.xml')
        drop(self.store_dir, 'a.xml')
        exported.wait_for('a.xml')
        drop(self.store_dir, 'b.xml')
        exported.wait_for('b.xml')
        self.assertEqual(['bad\rname.xml'], failed.names)
        self.assertEqual(['bad\rname.xml'], self.spool_files('new'))

    def test_status_told_after_every_burst(self):
        exported = Seen(self, IFileExported)
        self.watch()
        drop(self.store_dir, 'a.xml', b'AAA')
        exported.wait_for('a.xml')
        self.lines.wait_for('^Exported 1 files')
        code, summary, reason, started, duration = [
            outcome for outcome in self.told if outcome[1].files][0]
        self.assertEqual((0, 1, 3, None), (code, summary.files,
                                           summary.bytes, reason))



class KeepaliveTest(WatchTestCase):

    def setUp(self):
        self.listed = threading.Semaphore(0)
        self.logins = []
        self.handler = type('Counting', (CountingHandler,), {
            'listed': self.listed, 'logins': self.logins})
        super().setUp()

    def test_keeps_the_connection_alive_with_a_listing(self):
        self.watch(keepalive=0.01)
        # Listings by the keepalive, all on the one connection.
        for _ in range(3):
            self.assertTrue(self.listed.acquire(timeout=TIMEOUT))
        self.assertEqual(['test'], self.logins)


class IdleTimeoutTest(WatchTestCase):
    """The server closes connections idle for a fifth of a second."""

    handler = type('Impatient', (pyftpdlib.handlers.FTPHandler,),
                   {'timeout': 0.2})

    def test_the_server_closing_an_idle_connection_is_no_trouble(self):
        exported = Seen(self, IFileExported)
        self.watch(keepalive=0.5)
        self.lines.wait_for('^The connection is gone')
        self.lines.wait_for('^Connecting to CDS', count=2)
        drop(self.store_dir, 'a.xml')
        exported.wait_for('a.xml')
        self.assertEqual([], self.lines.matching('', logging.ERROR))


class KeptConnectionsTest(WatchTestCase):
    """A burst's connections beside the watch's own are kept for the next
    burst, and closed when the keepalive is due."""

    def setUp(self):
        self.listed = threading.Semaphore(0)
        self.quitted = threading.Semaphore(0)
        self.logins, self.quits = [], []
        self.handler = type('Counting', (CountingHandler,), {
            'listed': self.listed, 'logins': self.logins,
            'quits': self.quits, 'quitted': self.quitted})
        super().setUp()

    def test_the_next_burst_uses_them_without_logging_in(self):
        transfer = Exporter(FileStoreSpool(self.store),
                            ftp_target(self.server))
        transfer.connections = 3
        with transfer.spool.locked():
            transfer.target.connect()
            try:
                for burst in (['a.xml', 'b.xml', 'c.xml'],
                              ['d.xml', 'e.xml', 'f.xml']):
                    for name in burst:
                        drop(self.store_dir, name)
                    self.assertEqual(3, transfer.burst().files)
                    # Three batches: the own connection and two more.
                    self.assertEqual(3, len(self.logins))
                self.assertEqual([], self.quits)
                transfer.rest()
                self.assertEqual(2, len(self.quits))
            finally:
                transfer.target.close()
        self.assertEqual(['a.xml', 'b.xml', 'c.xml', 'd.xml', 'e.xml',
                          'f.xml'], self.remote_files())

    def test_a_run_closes_them(self):
        transfer = Exporter(FileStoreSpool(self.store),
                            ftp_target(self.server))
        transfer.connections = 3
        for name in ('a.xml', 'b.xml', 'c.xml'):
            drop(self.store_dir, name)
        self.assertEqual(3, transfer.run().files)
        self.assertEqual((3, 3), (len(self.logins), len(self.quits)))

    def test_the_watch_closes_them_when_the_keepalive_is_due(self):
        for name in ('a.xml', 'b.xml', 'c.xml'):
            drop(self.store_dir, name)
        self.watch(connections=3, keepalive=0.01)
        # The first burst takes the files waiting; then, idle, the watch
        # keeps only its own connection alive.
        self.assertTrue(self.listed.acquire(timeout=TIMEOUT))
        self.assertEqual((3, 2), (len(self.logins), len(self.quits)))
        self.assertEqual(['a.xml', 'b.xml', 'c.xml'], self.remote_files())

    def test_an_import_watch_closes_them_unused_for_the_keepalive(self):
        # Its listings every interval keep its own connection alive, and
        # never let the keepalive come due.
        for name in ('a.xml', 'b.xml', 'c.xml'):
            with open(os.path.join(self.server.root, name), 'wb') as f:
                f.write(b'x')
        self.watch(Importer, connections=3, interval=0.01, keepalive=0.2)
        for _ in range(2):
            self.assertTrue(self.quitted.acquire(timeout=TIMEOUT))
        self.assertEqual(3, len(self.logins))
        self.assertEqual(['a.xml', 'b.xml', 'c.xml'], self.spool_files('new'))
        # The watch goes on listing on its own connection.
        self.assertTrue(self.listed.acquire(timeout=TIMEOUT))
        self.assertEqual(3, len(self.logins))


class ProFTPDKeepaliveTest(RealServerTestCase):
    """Against ProFTPD that ends a session after two seconds without a
    data transfer (TimeoutNoTransfer), however many other commands come."""

    layer = realservers.IMPATIENT_PROFTPD_LAYER
    make_target = RealServerTestCase.target
    watch = WatchTestCase.watch

    def setUp(self):
        super().setUp()
        self.lines = Lines(self)
        self.told = []
        self.outcomes = queue.Queue()

    def test_the_keepalive_listing_keeps_the_session(self):
        exported = Seen(self, IFileExported)
        self.watch(keepalive=0.5, told=lambda *outcome:
                   self.outcomes.put(outcome))
        # The first burst, then keepalives for more than twice the
        # server's patience.
        for _ in range(10):
            self.outcomes.get(timeout=TIMEOUT)
        drop(self.store_dir, 'a.xml')
        exported.wait_for('a.xml')
        self.assertEqual(1, len(self.lines.matching('^Connecting to CDS')))
        self.assertEqual([], self.lines.matching('^The connection is gone'))

    def test_a_session_left_alone_longer_ends(self):
        # What the keepalive is for: without one in time, the server has
        # ended the session, and the watch connects again.
        self.watch(keepalive=3)
        self.lines.wait_for('^The connection is gone')
        self.lines.wait_for('^Connecting to CDS', count=2)


class CountingHandler(pyftpdlib.handlers.FTPHandler):
    """Releases the semaphore ``listed`` at every MLSD, and notes every
    login in ``logins`` and every QUIT in ``quits`` (and releases the
    semaphore ``quitted``)."""

    listed = logins = quits = quitted = None

    def on_login(self, username):
        self.logins.append(username)

    def ftp_QUIT(self, line):
        if self.quits is not None:
            self.quits.append(self.username)
        if self.quitted is not None:
            self.quitted.release()
        return super().ftp_QUIT(line)

    def ftp_MLSD(self, path):
        self.listed.release()
        return super().ftp_MLSD(path)


class PausingWatchTest(WatchTestCase):
    """The server holds the upload of b.xml until the test lets it go."""

    def setUp(self):
        self.handler = pausing(self)
        self.paused, self.go = self.handler.paused, self.handler.go
        super().setUp()

    def test_files_dropped_while_a_burst_runs_are_picked_up(self):
        exported = Seen(self, IFileExported)
        self.watch()
        drop(self.store_dir, 'b.xml', b'B')
        self.assertTrue(self.paused.wait(TIMEOUT))
        for name in ('c.xml', 'd.xml', 'e.xml'):
            drop(self.store_dir, name, name.encode())
        self.go.set()
        exported.wait_for('b.xml', 'c.xml', 'd.xml', 'e.xml')
        self.bursts_done(2)
        self.assertEqual(['b.xml', 'c.xml', 'd.xml', 'e.xml'],
                         self.remote_files())
        self.assertEqual(['b.xml', 'c.xml', 'd.xml', 'e.xml'],
                         sorted(exported.names))
        for name in ('c.xml', 'd.xml', 'e.xml'):
            with open(os.path.join(self.server.root, name), 'rb') as f:
                self.assertEqual(name.encode(), f.read())


class LockedWatchTest(WatchTestCase):

    def test_the_partners_read_lock_makes_it_wait_and_then_deliver(self):
        lock = os.path.join(self.server.root, names.READ_LOCK)
        with open(lock, 'wb') as f:
            f.write(b'the partner is reading\n')
        exported = Seen(self, IFileExported)
        self.watch()
        drop(self.store_dir, 'a.xml')
        # Told once, however often it tries.
        self.lines.wait_for('is locked.*trying again$', level=logging.ERROR)
        self.lines.wait_for('is locked.*trying again$', count=3)
        self.assertEqual([], exported.names)
        self.assertEqual([names.READ_LOCK], self.remote_files())
        os.remove(lock)
        exported.wait_for('a.xml')
        self.bursts_done()
        self.assertEqual(['a.xml'], self.remote_files())
        self.assertEqual(1, len(self.lines.matching(
            'is locked', logging.ERROR)))
        self.lines.wait_for('^Going on after [0-9]+ failed attempts')
        self.assertIn((75, ), [outcome[:1] for outcome in self.told])


class RestartWatchTest(WatchTestCase):

    def test_a_server_restart_mid_watch_converges(self):
        exported = Seen(self, IFileExported)
        self.watch()
        drop(self.store_dir, 'a.xml')
        exported.wait_for('a.xml')
        self.lines.wait_for('^Exported 1 files')
        self.server.stop()
        drop(self.store_dir, 'b.xml')
        drop(self.store_dir, 'c.xml')
        self.lines.wait_for('trying again$', level=logging.ERROR)
        self.lines.wait_for('trying again$', count=3)
        server = zeit.cds.testing.FTPServerThread(
            self.server.root, port=self.server.port).start()
        self.addCleanup(server.stop)
        exported.wait_for('b.xml', 'c.xml')
        self.bursts_done(2)
        self.assertEqual(['a.xml', 'b.xml', 'c.xml'], self.remote_files())
        self.assertEqual(['a.xml', 'b.xml', 'c.xml'],
                         self.spool_files('cur'))
        self.assertEqual(1, len(self.lines.matching('', logging.ERROR)))

    def test_a_server_away_at_the_start_is_waited_for(self):
        self.server.stop()
        exported = Seen(self, IFileExported)
        drop(self.store_dir, 'a.xml')
        self.watch()
        self.lines.wait_for('^Cannot connect.*trying again$',
                            level=logging.ERROR)
        server = zeit.cds.testing.FTPServerThread(
            self.server.root, port=self.server.port).start()
        self.addCleanup(server.stop)
        exported.wait_for('a.xml')
        # Over, its lock released, before the server stops: else the
        # watcher's stop waits for a burst that lost its server.
        self.bursts_done()


class WatchImportTest(WatchTestCase):

    def test_picks_up_files_offered_later(self):
        imported = Seen(self, IFileImported)
        self.watch(Importer, interval=0.01)
        with open(os.path.join(self.server.root, 'a.xml'), 'wb') as f:
            f.write(b'A')
        imported.wait_for('a.xml')
        with open(os.path.join(self.server.root, 'b.xml'), 'wb') as f:
            f.write(b'B')
        imported.wait_for('b.xml')
        self.bursts_done(2)
        self.assertEqual([], self.remote_files())
        self.assertEqual(['a.xml', 'b.xml'], self.spool_files('new'))
        self.assertEqual(['a.xml', 'b.xml'], imported.names)
        self.assertEqual(2, len(self.lines.matching(
            '^Lock file successfully removed$')))


class BurstTest(WatchTestCase):
    """ITransfer.burst on its own: the caller holds spool and connection."""

    def burst(self, transfer_class, only):
        transfer = transfer_class(FileStoreSpool(self.store),
                                  ftp_target(self.server))
        with transfer.spool.locked():
            transfer.target.connect()
            try:
                summary = transfer.burst(only)
            finally:
                transfer.target.close()
        self.assertEqual([], self.lines.matching('^Connecting'))
        return summary

    def test_export_only_the_names_given(self):
        zeit.cds.testing.make_spool(self.store_dir, {
            'a.xml': b'A', 'b.xml': b'B', 'c.xml': b'C'})
        os.mkdir(os.path.join(self.store_dir, 'new', 'folder'))
        summary = self.burst(Exporter, {'a.xml', 'c.xml', 'gone.xml'})
        self.assertEqual((2, 0), (summary.files, summary.failures))
        self.assertEqual(['a.xml', 'c.xml'], self.remote_files())
        self.assertEqual(['b.xml', 'folder'], self.spool_files('new'))

    def test_what_arrives_while_the_lock_is_taken_goes_along(self):
        # The names are asked for once the lock is held; a file that
        # arrives just before must not be left out (nor its event lost).
        def arrived():
            drop(self.store_dir, 'late.xml')
            return {'late.xml'}
        self.assertEqual(1, self.burst(Exporter, arrived).files)
        self.assertEqual(['late.xml'], self.remote_files())

    def test_import_only_the_names_given(self):
        for name in ('a.xml', 'b.xml'):
            with open(os.path.join(self.server.root, name), 'wb') as f:
                f.write(b'A')
        summary = self.burst(Importer, {'b.xml'})
        self.assertEqual(1, summary.files)
        self.assertEqual(['a.xml'], self.remote_files())
        self.assertEqual(['b.xml'], self.spool_files('new'))


class NotifierTest(SpoolTestCase):
    """The sd_notify protocol, against a datagram socket as systemd's."""

    def listen(self, abstract=False):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        if abstract:
            name = f'@zeit.cds-test-{os.getpid()}-{id(self)}'
            sock.bind('\0' + name[1:])
        else:
            name = os.path.join(self.store_dir, 'notify')
            sock.bind(name)
        sock.settimeout(TIMEOUT)
        return sock, name

    def messages(self, sock, until):
        found = []
        while until not in found:
            found.append(sock.recv(4096).decode())
        return found

    def test_ready_and_watchdog_to_the_socket_named(self):
        sock, name = self.listen()
        notifier = Notifier({'NOTIFY_SOCKET': name,
                             'WATCHDOG_USEC': '20000000'})
        self.assertEqual(10, notifier.watchdog_interval)
        notifier.ready()
        self.assertEqual(['READY=1', 'WATCHDOG=1'],
                         self.messages(sock, 'WATCHDOG=1'))
        # Fed at most a few times per period.
        notifier.alive()
        notifier.stopping()
        self.assertEqual(['STOPPING=1'], self.messages(sock, 'STOPPING=1'))

    def test_abstract_socket(self):
        sock, name = self.listen(abstract=True)
        notifier = Notifier({'NOTIFY_SOCKET': name})
        notifier.ready()
        notifier.stopping()
        self.assertEqual(['READY=1'], self.messages(sock, 'READY=1'))

    def test_a_watchdog_for_another_process_is_not_fed(self):
        notifier = Notifier({'NOTIFY_SOCKET': '/nonexistent',
                             'WATCHDOG_USEC': '1000000',
                             'WATCHDOG_PID': '1'})
        self.assertIsNone(notifier.watchdog_interval)

    def test_without_systemd_nothing_is_sent(self):
        notifier = Notifier({})
        notifier.ready()
        notifier.status('Watching')
        notifier.stopping()
        self.assertIsNone(notifier.address)


class ChildWatch:
    """``cds-export --watch`` (or import) in a child process, its log
    lines read along."""

    def __init__(self, testcase, server, store_dir, *options,
                 direction='export', env=None):
        self.process = subprocess.Popen(
            [sys.executable, '-c',
             f'from zeit.cds.cli import {direction}_main; '
             f'{direction}_main()',
             '--spool', store_dir, '--host', server.host,
             '--port', str(server.port), '--user', 'test',
             '--connections', '1', '--watch', *options],
            env=zeit.cds.testing.child_environment(
                dict({'CDS_PASSWORD': 'testpw'}, **(env or {}))),
            stderr=subprocess.PIPE, text=True)
        self.lines = []
        self._queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        testcase.addCleanup(self.close)

    def _read(self):
        for line in self.process.stderr:
            self._queue.put(line.rstrip('\n'))
        self._queue.put(None)

    def wait_for(self, pattern, count=1):
        """Read on until ``count`` lines matched ``pattern``."""
        def found():
            return len([line for line in self.lines
                        if re.search(pattern, line)])
        while found() < count:
            try:
                line = self._queue.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError(
                    f'no line {pattern!r}; lines: {self.lines}') from None
            if line is None:
                raise AssertionError(
                    f'ended before a line {pattern!r}; lines: {self.lines}')
            self.lines.append(line)

    def end(self):
        """Wait for the child's end; its exit code."""
        self.process.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        while (line := self._queue.get_nowait()) is not None:
            self.lines.append(line)
        return self.process.returncode

    def close(self):
        self.process.kill()
        self.process.wait(TIMEOUT)
        self.process.stderr.close()


class ChildWatchTest(SpoolTestCase):

    def setUp(self):
        super().setUp()
        handler = pausing(self)
        self.paused, self.go = handler.paused, handler.go
        self.server = zeit.cds.testing.server_for(self, handler)

    def test_sigterm_finishes_the_file_releases_the_lock_exit_0(self):
        self.stop_while_uploading(signal.SIGTERM)

    def test_sigint_likewise(self):
        self.stop_while_uploading(signal.SIGINT)

    def stop_while_uploading(self, signum):
        child = ChildWatch(self, self.server, self.store_dir)
        child.wait_for('^Watching for files')
        drop(self.store_dir, 'b.xml', b'B')
        self.assertTrue(self.paused.wait(TIMEOUT))
        child.process.send_signal(signum)
        self.go.set()
        self.assertEqual(0, child.end())
        self.assertEqual([
            'Uploaded file b.xml',
            "Moved file b.xml from 'new' to 'cur'",
            'Removing lock file',
            'Lock file successfully removed',
            'Exported 1 files',
            'Disconnected from CDS FTP server',
            'Stopped watching'],
            [line.split(',')[0] for line in child.lines[-7:]])
        self.assertNotIn('Traceback', '\n'.join(child.lines))
        self.assertEqual(['b.xml'], sorted(os.listdir(self.server.root)))
        self.assertEqual(['b.xml'], self.spool_files('cur'))

    def test_a_cron_run_on_a_watched_spool_backs_off(self):
        self.go.set()
        child = ChildWatch(self, self.server, self.store_dir)
        child.wait_for('^Watching for files')
        result = zeit.cds.testing.run_script(
            'cds-export', '--spool', self.store_dir, '--host',
            self.server.host, '--port', str(self.server.port), '--user',
            'test', env={'CDS_PASSWORD': 'testpw'})
        self.assertEqual(75, result.returncode, result.stderr)
        self.assertIn('is busy', result.stderr)
        child.process.send_signal(signal.SIGTERM)
        self.assertEqual(0, child.end())

    def test_a_watch_started_on_a_busy_spool_waits_for_it(self):
        self.go.set()
        store = zeit.cds.testing.make_spool(self.store_dir, {'a.xml': b'A'})
        with FileStoreSpool(store).locked():
            child = ChildWatch(self, self.server, self.store_dir)
            child.wait_for('is busy')
        child.wait_for('^Watching for files')
        # What waited meanwhile goes with the first full scan.
        child.wait_for('^Exported 1 files')
        child.process.send_signal(signal.SIGTERM)
        self.assertEqual(0, child.end())
        self.assertNotIn('Traceback', '\n'.join(child.lines))

    def test_tells_systemd_it_is_ready_and_stopping(self):
        self.go.set()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        address = os.path.join(self.store_dir, 'notify')
        sock.bind(address)
        sock.settimeout(TIMEOUT)
        child = ChildWatch(self, self.server, self.store_dir, env={
            'NOTIFY_SOCKET': address, 'WATCHDOG_USEC': '60000000'})
        messages = []
        while 'WATCHDOG=1' not in messages:
            messages.append(sock.recv(4096).decode())
        self.assertEqual('READY=1', messages[0])
        child.process.send_signal(signal.SIGTERM)
        self.assertEqual(0, child.end())
        while 'STOPPING=1' not in messages:
            messages.append(sock.recv(4096).decode())

    def test_configuration_errors_end_it_with_2(self):
        for options in (['--dry-run'], ['--interval', '0'],
                        ['--keepalive', 'soon']):
            child = ChildWatch(self, self.server, self.store_dir, *options)
            self.assertEqual(2, child.end(), options)
            self.assertEqual(1, len(child.lines), child.lines)
            self.assertTrue(child.lines[0].startswith(
                'cds-export: error: '), child.lines)


class KilledWatchTest(SpoolTestCase):
    """A watcher killed with SIGKILL at points of its bursts, and started
    again: every file arrives exactly once."""

    FILES = [f'f{i:02}.xml' for i in range(12)]

    def setUp(self):
        super().setUp()
        root = tempfile.mkdtemp(prefix='cds-ftp-')
        self.addCleanup(zeit.cds.testing.remove_tree, root)
        self.server = zeit.cds.testing.RecordingServerThread(root).start()
        self.addCleanup(self.server.stop)

    def test_killed_and_restarted_delivers_every_file_exactly_once(self):
        points = ['^Lock file successfully created', '^Uploaded file',
                  "^Moved file", '^Removing lock file']
        dropped = []
        for point in points:
            child = ChildWatch(self, self.server, self.store_dir)
            child.wait_for('^Watching for files')
            for name in self.FILES[len(dropped):len(dropped) + 3]:
                drop(self.store_dir, name, name.encode())
                dropped.append(name)
            child.wait_for(point)
            child.process.kill()
            child.end()
        # The last one delivers what is left, and takes the killed run's
        # lock over.
        left = [name for name in dropped
                if name not in self.spool_files('cur')]
        child = ChildWatch(self, self.server, self.store_dir)
        # Its first burst comes at once, and takes the lock over.
        child.wait_for('^Exported [0-9]+ files')
        for name in left:
            child.wait_for(f"^Moved file {name} from 'new' to 'cur'")
        child.process.send_signal(signal.SIGTERM)
        self.assertEqual(0, child.end())
        self.assertEqual(dropped, sorted(os.listdir(self.server.root)))
        for name in dropped:
            with open(os.path.join(self.server.root, name), 'rb') as f:
                self.assertEqual(name.encode(), f.read())
        # Renamed to its final name once each: never delivered twice.
        renames = [cmd for cmd, tls in self.server.commands if cmd == 'RNTO']
        self.assertEqual(len(dropped), len(renames))
        self.assertEqual(dropped, self.spool_files('cur'))
        self.assertEqual([], self.spool_files('new'))
