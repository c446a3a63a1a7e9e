"""What every run does around its transfers: hold the spool, connect, hold
the CDS lock, and reconnect when the connection drops; with log lines."""
import contextlib
import logging
import threading
import time

import zope.event

from zeit.cds.events import FileFailed
from zeit.cds.events import IFileFailed
from zeit.cds.events import RunFinished
from zeit.cds.events import RunStarted
from zeit.cds.interfaces import CDSError
from zeit.cds.interfaces import ConnectError
from zeit.cds.interfaces import ConnectionLost
from zeit.cds.run import shutdown
from zeit.cds.run.lock import RemoteLock
from zeit.cds.run.summary import Summary

log = logging.getLogger(__name__)

# Seconds to wait before each attempt to reconnect; then the run gives up.
RECONNECT_DELAYS = (1, 4, 15)


class Transfer:
    """What exporter and importer share: their spool and target, and the
    settings of their runs."""

    break_lock_older_than = None
    reconnect_delays = RECONNECT_DELAYS
    # How many connections transfer at once; one keeps the files, and the
    # log lines, in their order.
    connections = 4

    def __init__(self, spool, target):
        self.spool = spool
        self.target = target


class Run:
    """One run against the CDS, as a context manager.

    Inside the block the spool is held, the target is connected and the
    CDS lock file ``lock_name`` is ours. ``attempt`` runs the pieces of
    work that need the connection and survives a dropped connection.

    A dry run only connects: it holds no lock and writes nothing.
    """

    def __init__(self, transfer, lock_name, directory_label, *,
                 dry_run=False):
        self.transfer = transfer
        self.spool = spool = transfer.spool
        self.target = target = transfer.target
        self.directory_label = directory_label
        self.reconnect_delays = transfer.reconnect_delays
        self.lock = RemoteLock(
            target, lock_name, spool,
            break_older_than=transfer.break_lock_older_than)
        self.dry_run = dry_run
        self.summary = Summary()
        self._started = time.monotonic()
        self._stack = None
        self._thread = threading.current_thread()
        # Targets whose connection could not be brought back.
        self._given_up = set()
        self._hand_over = None

    def __enter__(self):
        with contextlib.ExitStack() as stack:
            if not self.dry_run:
                stack.enter_context(self.spool.locked())
            stack.enter_context(self._connected())
            log.info('Accessed filestore %s', self.spool.path)
            if not self.dry_run:
                stack.enter_context(self._locked())
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc_info):
        self._stack.__exit__(*exc_info)
        self.summary.seconds = time.monotonic() - self._started
        if exc_info[0] is None and not self.dry_run:
            zope.event.notify(RunFinished(self.transfer, self.summary))

    def start(self, planned):
        """Announce the names the run is about to transfer."""
        zope.event.notify(RunStarted(self.transfer, planned))

    def succeeded(self, event):
        """Count a transferred file and announce ``event``."""
        self._send(event)

    def failed(self, name, error):
        """Count and report a file that failed on its own; the run goes
        on, the file stays where it was."""
        log.error('%s', error)
        self._send(FileFailed(self.transfer, name, error=error))

    def _send(self, event):
        if threading.current_thread() is self._thread:
            self.receive(event)
        else:
            self._hand_over(event)

    def receive(self, event):
        """Count ``event`` and notify subscribers; in the run's thread."""
        if IFileFailed.providedBy(event):
            self.summary.failures += 1
        else:
            self.summary.files += 1
            self.summary.bytes += event.size
        zope.event.notify(event)

    @contextlib.contextmanager
    def handing_over(self, hand_over):
        """Within the block, events sent from other threads go to
        ``hand_over``, for the run's thread to ``receive``."""
        self._hand_over = hand_over
        try:
            yield
        finally:
            self._hand_over = None

    @contextlib.contextmanager
    def _connected(self):
        log.info('Connecting to CDS FTP server (%s, %s %s)',
                 self.target.description, self.directory_label,
                 self.target.directory)
        self.target.connect()
        try:
            yield
        finally:
            self.target.close()
            log.info('Disconnected from CDS FTP server')

    @contextlib.contextmanager
    def _locked(self):
        log.info('Creating lock file')
        try:
            self.lock.acquire()
        except ConnectionLost as e:
            # Reconnecting takes the lock again; it takes over what the
            # broken store left.
            self._reconnect(self.target, e, iter(self.reconnect_delays))
        log.info('Lock file successfully created')
        try:
            yield
        except ConnectionLost:
            self._release_after_loss()
            raise
        except BaseException:
            self._release()
            raise
        self._release()

    def _release(self):
        log.info('Removing lock file')
        self._attempt(self.lock.release, target=self.target)
        log.info('Lock file successfully removed')

    def _release_after_loss(self):
        """Remove the lock once more, without waiting, when a connection
        could not be brought back; it may have been another one, or only
        some commands the server cannot stand."""
        try:
            if self.target in self._given_up:
                self.target.connect()
            log.info('Removing lock file')
            self.lock.release()
        except CDSError as e:
            log.warning('Could not remove the lock file (%s); the next run '
                        'of ours takes it over', e)
        else:
            log.info('Lock file successfully removed')

    def attempt(self, work, *args, target=None):
        """Call ``work(*args)``; when the connection of ``target`` (the
        run's own by default) drops, reconnect, take the lock again if
        that connection holds it, and call it once more, a bounded number
        of times. Raises ConnectionLost when the server stays away, and
        Interrupted, before starting, when a signal asked to stop."""
        shutdown.check()
        return self._attempt(work, *args, target=target or self.target)

    def _attempt(self, work, *args, target):
        delays = iter(self.reconnect_delays)
        while True:
            try:
                return work(*args)
            except ConnectionLost as e:
                self._reconnect(target, e, delays)

    def _reconnect(self, target, reason, delays):
        target.close()
        for delay in delays:
            log.warning('%s; reconnecting in %s seconds', reason, delay)
            time.sleep(delay)
            try:
                target.connect()
                if target is self.target:
                    self.lock.acquire()
                return
            except (ConnectError, ConnectionLost) as e:
                target.close()
                reason = e
        self._given_up.add(target)
        raise ConnectionLost(
            f'{reason}; gave up after {len(self.reconnect_delays)} '
            'attempts to reconnect')
