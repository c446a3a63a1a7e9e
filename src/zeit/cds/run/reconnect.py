"""The reconnect policy: a piece of work that lost its connection is
tried again on a new one, after a pause, a bounded number of times.

A server that stops answering is waited for once more, not more: work
that a wait ran out on (NoAnswer) gets one reconnect; a reconnect that
gets no answer, or a second wait that runs out in the run, ends the
attempts, and no work starts after that on any connection. So a run
waits for a silent server at most twice its timeout plus one pause (one
more timeout where other connections were waiting at the same time).

One policy serves all connections of a run (it remembers those it gave
up on, and whether the server fell silent); a long-running process takes
a new one for each run.
"""
import contextlib
import logging
import time

from zeit.cds.interfaces import AuthenticationError
from zeit.cds.interfaces import ConnectError
from zeit.cds.interfaces import ConnectionLost
from zeit.cds.interfaces import NoAnswer
from zeit.cds.interfaces import RemoteDirectoryError
from zeit.cds.run import shutdown

log = logging.getLogger(__name__)

# Seconds to wait before each attempt to reconnect; then the run gives up.
RECONNECT_DELAYS = (1, 4, 15)


class ReconnectPolicy:
    """Reconnects a target whose connection dropped, waiting ``delays``
    (seconds, one per attempt; zeros in tests) before the attempts."""

    def __init__(self, delays=RECONNECT_DELAYS):
        self.delays = tuple(delays)
        # Targets whose connection could not be brought back.
        self._given_up = set()
        # What a reconnect of a target must set up again, such as a lock.
        self._restore = {}
        # Whether a wait for the server ran out once in this run; and the
        # message the policy gave up on the silent server with.
        self._waited_in_vain = False
        self._silenced = None

    def attempt(self, work, *args, target):
        """Call ``work(*args)``; when it raises ConnectionLost, reconnect
        ``target`` and call it once more, as long as delays are left.
        Raises ConnectionLost when the server stays away, or stopped
        answering (then at once, before ``work``, for every later call)."""
        delays = iter(self.delays)
        while True:
            if self._silenced is not None:
                raise NoAnswer(self._silenced)
            try:
                return work(*args)
            except ConnectionLost as e:
                self._reconnect(target, e, delays)

    @contextlib.contextmanager
    def restoring(self, target, restore):
        """Within the block, every reconnect of ``target`` calls
        ``restore()`` once connected (the CDS lock takes itself again);
        its ConnectError or ConnectionLost counts as a failed attempt."""
        self._restore[target] = restore
        try:
            yield
        finally:
            del self._restore[target]

    def gave_up_on(self, target):
        """Whether the connection of ``target`` could not be brought back."""
        return target in self._given_up

    @property
    def server_silent(self):
        """Whether the policy gave up because the server stopped
        answering: nothing should wait for it any more in this run."""
        return self._silenced is not None

    def _reconnect(self, target, reason, delays):
        target.close()
        if shutdown.requested():
            self._stop_reconnecting(target, reason)
        if isinstance(reason, NoAnswer):
            if self._waited_in_vain:
                self._give_up_on_silence(target, reason)
            self._waited_in_vain = True
        for delay in delays:
            log.warning('%s; reconnecting in %s seconds', reason, delay)
            time.sleep(delay)
            if shutdown.requested():
                self._stop_reconnecting(target, reason)
            try:
                _connect_again(target)
                if target in self._restore:
                    self._restore[target]()
                return
            except (ConnectError, ConnectionLost) as e:
                target.close()
                reason = e
                if isinstance(e, NoAnswer):
                    break  # Silent, not restarting: waiting would not help.
        if isinstance(reason, NoAnswer):
            self._give_up_on_silence(target, reason)
        self._given_up.add(target)
        raise ConnectionLost(
            f'{reason}; gave up after {len(self.delays)} '
            'attempts to reconnect')

    def _stop_reconnecting(self, target, reason):
        # Asked to stop (SIGTERM, SIGINT): no more waits for a server that
        # may not come back, which could outlast the stop's time limit;
        # the next run takes over what is left, the lock included.
        self._given_up.add(target)
        if isinstance(reason, NoAnswer):
            self._silenced = f'{reason}; stopping'
            raise NoAnswer(self._silenced) from reason
        raise ConnectionLost(f'{reason}; not reconnecting: stopping',
                             reason.reason) from reason

    def _give_up_on_silence(self, target, reason):
        self._given_up.add(target)
        self._silenced = f'{reason}; gave up waiting for the server'
        raise NoAnswer(self._silenced) from reason


def _connect_again(target):
    """Connect ``target`` again. A server that refuses the login or the
    directory now (a full server's "421 Too many connections", a password
    changed meanwhile) fails the attempt, as one that is away does."""
    try:
        target.connect()
    except (AuthenticationError, RemoteDirectoryError) as e:
        raise ConnectionLost(str(e), e.reason) from e
