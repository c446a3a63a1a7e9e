"""The reconnect policy: a piece of work that lost its connection is
tried again on a new one, after a pause, a bounded number of times.

One policy serves all connections of a run (it remembers those it gave
up on); a long-running process may keep one across its runs.
"""
import contextlib
import logging
import time

from zeit.cds.interfaces import ConnectError
from zeit.cds.interfaces import ConnectionLost

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

    def attempt(self, work, *args, target):
        """Call ``work(*args)``; when it raises ConnectionLost, reconnect
        ``target`` and call it once more, as long as delays are left.
        Raises ConnectionLost when the server stays away."""
        delays = iter(self.delays)
        while True:
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

    def _reconnect(self, target, reason, delays):
        target.close()
        for delay in delays:
            log.warning('%s; reconnecting in %s seconds', reason, delay)
            time.sleep(delay)
            try:
                target.connect()
                if target in self._restore:
                    self._restore[target]()
                return
            except (ConnectError, ConnectionLost) as e:
                target.close()
                reason = e
        self._given_up.add(target)
        raise ConnectionLost(
            f'{reason}; gave up after {len(self.delays)} '
            'attempts to reconnect')
