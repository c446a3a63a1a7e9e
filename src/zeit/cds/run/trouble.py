"""A watcher's transient trouble (server gone, lock held, login refused,
spool busy): told once per change of state, not at every attempt, and
waited out with a bounded exponential back-off."""
import logging
import time

log = logging.getLogger(__name__)

# Seconds before the first attempt after trouble; doubled for each
# further one, up to MOST.
FIRST = 1.0
MOST = 60.0


class Trouble:
    """The trouble a watcher is in, if any. ``verdict(error)`` says at
    which level and in which words an error is told, as (level, text);
    two errors told alike are one state."""

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
        if (level, text) != self.state:
            log.log(level, '%s; trying again', text)
            self.state = (level, text)
        else:
            log.debug('%s; trying again', text)
        if self._since is None:
            self._since = time.monotonic()
        self.attempts += 1
        return min(self.most, self.first * 2 ** (self.attempts - 1))

    def over(self):
        """An attempt went through: the trouble, if any, is over."""
        if self.state is None:
            return
        log.info('Going on after %d failed attempts in %d seconds',
                 self.attempts, time.monotonic() - self._since)
        self.state, self.attempts, self._since = None, 0, None

    @property
    def text(self):
        """The words of the current trouble; None when there is none."""
        return None if self.state is None else self.state[1]
