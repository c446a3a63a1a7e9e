"""The long-running run (``--watch``): a watcher for systemd.

It holds the spool for its whole life (so cron runs on the same spool
back off) and keeps its connection open between bursts, listing the
directory after ``keepalive`` idle seconds so the server does not close
it as idle (a listing, not NOOP: some servers, ProFTPD's
TimeoutNoTransfer, count only data transfers) and connecting again when
it is gone. The other connections of a burst (``--connections``) are
kept for the next burst, and closed when unused for ``keepalive``
seconds, or at trouble. Each burst is a run of the exporter or importer
(``ITransfer.burst``) with every guarantee of a run: it takes the CDS
lock, transfers, and gives the lock back at once, so the partner can
work in between.

An export bursts as soon as files arrive in ``new`` (inotify, see
``arrivals``), and scans ``new`` in full every ``interval`` seconds as a
safety net, trying again the files that failed. An import lists the
CDS every ``interval`` seconds, and bursts when it offers files.

Transient trouble is told once per change (``trouble``) and waited out,
however long it lasts; only a SettingsError ends the watch by raising.
A stop (``stop``, or SIGTERM/SIGINT through ``shutdown``) lets the
burst in flight finish its batch, gives the lock back, and returns.
"""
import contextlib
import logging
import math
import os
import time

import zope.event

from zeit.cds.events import IFileEvent
from zeit.cds.importer import candidates
from zeit.cds.interfaces import CDSError
from zeit.cds.interfaces import ConnectionLost
from zeit.cds.interfaces import IExporter
from zeit.cds.interfaces import Interrupted
from zeit.cds.interfaces import LocalFileError
from zeit.cds.interfaces import SettingsError
from zeit.cds.names import is_plain_file_name
from zeit.cds.run import shutdown
from zeit.cds.watch.arrivals import Arrivals
from zeit.cds.watch.pause import Pause
from zeit.cds.run.report import Summary
from zeit.cds.run.scope import connected
from zeit.cds.watch.systemd import Notifier
from zeit.cds.watch.trouble import Trouble

log = logging.getLogger(__name__)

# Seconds between two full scans of new (export) or listings (import).
INTERVALS = {'export': 60, 'import': 10}
KEEPALIVE = 60


class Watch:
    """Watches for the ``transfer`` (an IExporter or IImporter).

    ``verdict(error)`` says how trouble is told, as (level, text);
    ``told(code, summary, reason, started, duration)``, when given, hears
    of every burst and check (exit code as a run would have it: 0, 1 or
    75) for the status and metrics files. ``backoff`` is the first and
    the longest wait after trouble, in seconds.
    """

    def __init__(self, transfer, *, verdict, interval=None,
                 keepalive=KEEPALIVE, notifier=None, told=None,
                 backoff=()):
        self.transfer = transfer
        self.spool = transfer.spool
        self.target = transfer.target
        self.side = (ExportSide if IExporter.providedBy(transfer)
                     else ImportSide)(self.spool)
        self.interval = interval or INTERVALS[self.side.direction]
        self.keepalive = keepalive
        self.notifier = notifier or Notifier({})
        self.told = told
        self.trouble = Trouble(verdict, *backoff)
        self.pause = Pause()
        # Names that arrived and wait for a burst.
        self.pending = set()
        self._connection = None
        self._stop = False
        self._full_due = True
        # The first burst comes at once, whatever there is: as a run, it
        # finishes what a killed watcher left, its lock included.
        self._first = True
        self._next_full = self._next_keepalive = 0

    def stop(self):
        """Ask the watch to stop (from any thread)."""
        self._stop = True
        self.pause.wake()

    @property
    def stopping(self):
        return self._stop or shutdown.requested()

    def serve(self):
        """Watch until stopped. Raises SettingsError (and what no watch
        expects, a bug); everything else is waited out."""
        with contextlib.ExitStack() as stack:
            stack.callback(self.pause.close)
            stack.enter_context(shutdown.waking(self.pause.wakeup_fd))
            if not self._hold_spool(stack):
                return
            log.info('Accessed filestore %s', self.spool.path)
            self.side.open(stack)
            stack.callback(self._disconnect)
            stack.enter_context(_feeding(self.notifier))
            log.info('Watching for files to %s (%s)', self.side.direction,
                     self.side.describe(self.interval, self.keepalive))
            self.notifier.ready()
            self.notifier.status('Watching')
            try:
                while not self.stopping:
                    self._turn()
            finally:
                self.notifier.stopping()
        log.info('Stopped watching')

    def _hold_spool(self, stack):
        while not self.stopping:
            try:
                stack.enter_context(self.spool.locked())
            except CDSError as e:
                self._wait_out(e)
                continue
            self._going_on()
            return True
        return False

    def _turn(self):
        self.notifier.alive()
        if self._connection is None and not self._connect():
            return
        self._take()
        now = time.monotonic()
        rested = self._rest(now)
        if now >= self._next_full:
            self._full_due = True
            self._next_full = now + self.interval
        if self._full_due:
            self._full()
        elif self.pending:
            self._arrived()
        elif now >= self._next_keepalive:
            self._keep_alive()
        else:
            self._idle(min(self._next_full, self._next_keepalive, rested)
                       - now)

    def _rest(self, now):
        """Close the connections beside ours that bursts left unused for
        ``keepalive`` seconds: they served bursts in quick succession and
        are not kept alive; when the next of the others is due."""
        left = self.transfer.rest(self.keepalive)
        return now + left if left is not None else math.inf

    def _connect(self):
        connection = contextlib.ExitStack()
        try:
            connection.enter_context(connected(
                self.target, self.side.directory_label,
                announce=self.trouble.state is None))
        except SettingsError:
            raise
        except CDSError as e:
            self._failed(e, time.time(), time.monotonic())
            return False
        self._connection = connection
        self._used()
        self._going_on()
        return True

    def _disconnect(self):
        self.transfer.rest()
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _used(self):
        """The connection was used just now: no keepalive due before
        another ``keepalive`` seconds."""
        self._next_keepalive = time.monotonic() + self.keepalive

    def _take(self):
        """Take in the names that arrived, without waiting."""
        names, missed = self.side.take()
        self.pending |= names
        if missed:
            self._full_due = True

    def _full(self):
        """A full scan: burst when there is anything, as a run would."""
        started, clock = time.time(), time.monotonic()
        try:
            worth = self.side.worth_a_burst(self.target) or self._first
        except SettingsError:
            raise
        except CDSError as e:
            self._failed(e, started, clock)
            return
        if self.side.lists:
            self._used()
        if not worth:
            self._full_due = False
            self._going_on()
            self._tell(0, Summary(), None, started, clock)
        elif self._burst(None):
            self._full_due = False

    def _arrived(self):
        try:
            due = self.side.due(self.pending)
        except LocalFileError:
            # new/ cannot be listed right now: the full scan tells why.
            self._full_due = True
            return
        if not due:
            # Gone already, with the burst that was running when they
            # arrived, or taken away by somebody else.
            self.pending.clear()
            return
        self._burst(self._due)

    def _due(self):
        """What is due, once the burst holds the lock: what arrived
        meanwhile goes with it."""
        self._take()
        return self.side.due(self.pending)

    def _burst(self, only):
        """One run; whether it went through."""
        started, clock = time.time(), time.monotonic()
        try:
            summary = self.transfer.burst(only)
        except Interrupted:
            return False  # Asked to stop: the lock is released.
        except SettingsError:
            raise
        except CDSError as e:
            self._failed(e, started, clock, self.transfer.summary)
            return False
        self._used()
        self.pending.clear()
        self._first = False
        self._going_on()
        log.info('%s %s', self.side.verb, summary)
        if summary.failures:
            self._tell(1, summary, f'{summary.failures} failed, '
                       f'{summary.files} transferred', started, clock)
        else:
            self._tell(0, summary, None, started, clock)
        return True

    def _keep_alive(self):
        try:
            self.target.names()
        except CDSError as e:
            # Most often the server closed an idle connection: connect
            # again at once (trouble only if that fails).
            log.info('The connection is gone (%s); connecting again', e)
            self._disconnect()
            return
        self._used()
        self._going_on()
        self._tell(0, Summary(), None, time.time(), time.monotonic())

    def _failed(self, error, started, clock, summary=None):
        """Tell of ``error``, which ended an attempt (that got as far as
        ``summary``), and wait it out."""
        # The connections beside ours are not kept through trouble.
        self.transfer.rest()
        if isinstance(error, ConnectionLost):
            self._disconnect()
        self._tell(error.exit_code, summary or Summary(), str(error),
                   started, clock)
        self._wait_out(error)

    def _going_on(self):
        if self.trouble.over():
            self.notifier.status('Watching')

    def _wait_out(self, error):
        delay = self.trouble.hit(error)
        if self.trouble.attempts == 1:
            self.notifier.status(f'Waiting: {error}')
        deadline = time.monotonic() + delay
        while not self.stopping and time.monotonic() < deadline:
            self._idle(deadline - time.monotonic())
            self._take()

    def _idle(self, seconds):
        """Wait up to ``seconds`` for arrivals or a stop, waking in time
        to feed the watchdog."""
        if self.notifier.watchdog_interval is not None:
            seconds = min(seconds, self.notifier.watchdog_interval / 2)
        self.pause.wait(max(0, seconds), self.side.sources)
        self.notifier.alive()

    def _tell(self, code, summary, reason, started, clock):
        if self.told is not None:
            self.told(code, summary, reason, started,
                      time.monotonic() - clock)


@contextlib.contextmanager
def _feeding(notifier):
    """Within the block every file a burst is done with feeds the
    watchdog: a long burst makes progress too."""

    def subscriber(event):
        if IFileEvent.providedBy(event):
            notifier.alive()

    zope.event.subscribers.append(subscriber)
    try:
        yield
    finally:
        zope.event.subscribers.remove(subscriber)


class ExportSide:
    """What an export watches: the spool's ``new``, through inotify."""

    direction = 'export'
    verb = 'Exported'
    directory_label = 'upload_dir'
    # Its full scan is local; only the keepalive uses the connection.
    lists = False

    def __init__(self, spool):
        self.spool = spool
        self.arrivals = None
        self.sources = ()

    def describe(self, interval, keepalive):
        return (f'inotify on {os.path.join(self.spool.path, "new")}, a full '
                f'scan every {interval} s, keepalive after {keepalive} s')

    def open(self, stack):
        self.arrivals = Arrivals(os.path.join(self.spool.path, 'new'))
        stack.callback(self.arrivals.close)
        self.sources = (self.arrivals,)

    def take(self):
        if self.arrivals is None:
            # Not watching yet (waiting for the spool): the first full
            # scan finds what arrives meanwhile.
            return set(), False
        return self.arrivals.take()

    def due(self, names):
        """Of ``names``, those still waiting."""
        return {name for name in self.spool.waiting() if name in names}

    def worth_a_burst(self, target):
        # Watching again where new went away and is back.
        self.arrivals.arm()
        return bool(self.spool.waiting() or self.spool.strays())


class ImportSide:
    """What an import watches: the CDS directory, listed every interval
    (the CDS cannot tell)."""

    direction = 'import'
    verb = 'Imported'
    directory_label = 'download_dir'
    # Its full scan is a listing: a keepalive too.
    lists = True
    sources = ()

    def __init__(self, spool):
        self.spool = spool
        # Names offered at the last listing: a name that cannot be
        # imported bursts once, to be reported, not at every listing.
        self._offered = set()

    def describe(self, interval, keepalive):
        return f'listing the CDS every {interval} s'

    def open(self, stack):
        pass

    def take(self):
        return set(), False

    def worth_a_burst(self, target):
        offered = set(candidates(target.names()))
        new, self._offered = offered - self._offered, offered
        return any(is_plain_file_name(name) for name in offered) or bool(new)
