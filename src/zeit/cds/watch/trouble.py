"""A watcher's transient trouble (server gone, lock held, login refused,
spool busy): told once per change of state, not at every attempt, and
waited out with a bounded exponential back-off."""
import logging
import time

from zeit.cds.interfaces import ConnectError
from zeit.cds.interfaces import ConnectionLost
from zeit.cds.interfaces import NoAnswer

log = logging.getLogger(__name__)

# Seconds before the first attempt after trouble; doubled for each
# further one, up to MOST.
FIRST = 1.0
MOST = 60.0


# A server that drops the connection and then refuses new ones, or stops
# answering, is away all the same: one state. (Not a TLS or host key
# error: they tell something else.)
AWAY = (ConnectError, ConnectionLost, NoAnswer)


def kind(error):
    """The state of trouble ``error`` is in: errors of one kind are one
    state (a partner's lock held by one process and then by another is
    one time of waiting)."""
    return 'away' if type(error) in AWAY else type(error).__name__


class Trouble:
    """The trouble a watcher is in, if any. ``verdict(error)`` says at
    which level and in which words an error is told, as (level, text);
    a state is the level and the ``kind`` of the error."""

    def __init__(self, verdict, first=FIRST, most=MOST):
        self.verdict = verdict
        self.first = first
        self.most = most
        self.state = None
        self.attempts = 0
        self._since = None

    def hit(self, error):
        """Another attempt failed with ``error``; returns the seconds to
        wait before the next."""
        level, text = self.verdict(error)
        if (level, kind(error)) != self.state:
            log.log(level, '%s; trying again', text)
            self.state = (level, kind(error))
        else:
            log.debug('%s; trying again', text)
        if self._since is None:
            self._since = time.monotonic()
        self.attempts += 1
        return min(self.most, self.first * 2 ** (self.attempts - 1))

    def over(self):
        """An attempt went through: the trouble, if any, is over; whether
        there was any."""
        if self.state is None:
            return False
        log.info('Going on after %d failed attempts in %d seconds',
                 self.attempts, time.monotonic() - self._since)
        self.state, self.attempts, self._since = None, 0, None
        return True
