"""What every run does around its transfers: its lock's scope, its report
and its reconnect policy (``scope``, ``report``, ``reconnect``), put
together for the exporter and the importer."""
from zeit.cds.interfaces import IConnectionSettings
from zeit.cds.run import shutdown
from zeit.cds.run.lock import RemoteLock
from zeit.cds.run.parallel import Twins
from zeit.cds.run.reconnect import RECONNECT_DELAYS
from zeit.cds.run.reconnect import ReconnectPolicy
from zeit.cds.run.report import Report
from zeit.cds.run.scope import lock_scope


class Transfer:
    """What exporter and importer share: their spool and target, and the
    settings of their runs."""

    break_lock_older_than = None
    reconnect_delays = RECONNECT_DELAYS
    # How many connections transfer at once; one keeps the files, and the
    # log lines, in their order.
    connections = IConnectionSettings['connections'].default
    # The summary of the latest run, filled in as it goes.
    summary = None
    # The CDS lock file of the direction, and what the log calls its
    # remote directory; set by exporter and importer.
    lock_name = None
    directory_label = None

    def __init__(self, spool, target):
        self.spool = spool
        self.target = target
        # The connections beside the target's own, kept between bursts.
        self.twins = Twins()

    def run(self):
        with Run(self) as run:
            self._work(run)
        return run.summary

    def burst(self, only=None):
        with Run(self, held=True) as run:
            self._work(run, only)
        return run.summary

    def rest(self, idle=0):
        return self.twins.close(idle)

    def plan(self):
        with Run(self, dry_run=True):
            return self._planned()

    def _work(self, run, only=None):
        """Transfer within ``run``: what there is, or of ``only`` (names)
        what is still there."""
        raise NotImplementedError

    def _planned(self):
        """The names a run would transfer now, and those it would refuse
        (see ITransfer.plan); connected."""
        raise NotImplementedError


class Run:
    """One run against the CDS, as a context manager.

    Inside the block the spool is held, the target is connected and the
    CDS lock file ``lock_name`` is ours. ``attempt`` runs the pieces of
    work that need the connection and survives a dropped connection; the
    report's verbs count and announce what the run does.

    A dry run only checks the spool's lock and, connected, the CDS locks
    (raising SpoolBusy or RemoteLocked as the run would): it holds no
    lock, writes nothing and announces nothing. A run within a watch
    finds the spool ``held`` and the target connected by the watcher, and
    only takes the lock.
    """

    def __init__(self, transfer, *, dry_run=False, held=False):
        self.transfer = transfer
        self.spool = transfer.spool
        self.target = transfer.target
        self.twins = transfer.twins
        self.lock = RemoteLock(
            self.target, transfer.lock_name, self.spool,
            break_older_than=transfer.break_lock_older_than)
        self.reconnect = ReconnectPolicy(transfer.reconnect_delays)
        self.report = Report(transfer)
        if not dry_run:
            # Kept where the caller finds it when the run raises too.
            transfer.summary = self.report.summary
        self.directory_label = transfer.directory_label
        self.dry_run = dry_run
        self.held = held
        self._scope = None

    @property
    def summary(self):
        return self.report.summary

    def __enter__(self):
        self._scope = lock_scope(
            self.spool, self.lock, self.reconnect, self.directory_label,
            dry_run=self.dry_run, held=self.held)
        self._scope.__enter__()
        return self

    def __exit__(self, *exc_info):
        self._scope.__exit__(*exc_info)
        if exc_info[0] is None and not self.dry_run:
            self.report.finish()

    def attempt(self, work, *args, target=None):
        """Call ``work(*args)``; when the connection of ``target`` (the
        run's own by default) drops, reconnect, take the lock again if
        that connection holds it, and call it once more, a bounded number
        of times. Raises ConnectionLost when the server stays away, and
        Interrupted, before starting, when a signal asked to stop."""
        shutdown.check()
        return self.reconnect.attempt(work, *args,
                                      target=target or self.target)

    # The report's verbs, on the run (see Report).

    def start(self, planned):
        self.report.start(planned)

    def succeeded(self, event):
        self.report.succeeded(event)

    def failed(self, name, error):
        self.report.failed(name, error)

    def receive(self, event):
        self.report.receive(event)

    def handing_over(self, hand_over):
        return self.report.handing_over(hand_over)
