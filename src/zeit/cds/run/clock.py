"""How far a CDS server's clock is from ours, so that the age of somebody
else's lock file can be judged.

RFC 3659 has MDTM answer in UTC, but servers may answer in their local
time, or run wrong: read as UTC, a fresh lock on a server west of UTC
looks hours old. So the offset is learned from a file the run stored
itself (its own lock), against our clock before and after the store.

A server may tell times one way in one reply and another way in another
(MDTM in its local time, MLST in UTC, say): the clock notes
which way (``source``) it learned the offset, and a time told another
way is not judged by it.
"""
import dataclasses
import datetime
import time

# An offset that moved by more than this between two runs (summer time,
# a clock set by hand) is not trusted until a later run confirms it.
MAX_MOVE = 300


@dataclasses.dataclass
class ServerClock:
    """The server's clock as it reports it, minus ours: between ``low``
    and ``high`` seconds; unknown while ``low`` is None.

    ``learned`` is our time (POSIX seconds) of the last learning;
    ``moved``, when not None, the seconds the offset had moved by then;
    ``source`` how the server told the time: the name of the remote
    target's method that gave it ('present' or 'modified', which is
    what every clock learned before there was a choice came from).
    """

    low: float = None
    high: float = None
    learned: float = None
    moved: float = None
    source: str = 'modified'

    @classmethod
    def from_dict(cls, data):
        """The clock kept as ``to_dict`` made it; an unknown one for
        anything else."""
        try:
            clock = cls(**data)
        except TypeError:
            return cls()
        valid = all(value is None or isinstance(value, (int, float))
                    for value in (clock.low, clock.high, clock.learned,
                                  clock.moved))
        if (not valid or (clock.low is None) != (clock.high is None)
                or not isinstance(clock.source, str)):
            return cls()
        return clock

    def to_dict(self):
        return dataclasses.asdict(self)

    def learn(self, before, after, stamp, source='modified'):
        """Learn the offset from a file stored between our times
        ``before`` and ``after`` (POSIX seconds), whose modification
        time the server reports as ``stamp`` (an aware datetime), told
        by the way ``source``.

        Returns the seconds the offset moved by since it was learned
        last (the same way), when that is more than MAX_MOVE; else None.
        """
        # The server truncates its time to whole seconds.
        reported = stamp.timestamp()
        low, high = reported - after, reported + 1 - before
        moved = None
        if self.low is not None and source == self.source:
            # How far apart the old and the new range are.
            moved = max(low - self.high, self.low - high)
            if moved <= MAX_MOVE:
                moved = None
        self.low, self.high, self.learned, self.moved, self.source = (
            low, high, time.time(), moved, source)
        return moved

    @property
    def doubt(self):
        """Why ages by this clock are not to be trusted; None when they
        are."""
        if self.low is None:
            return ("no run of this spool has checked the server's clock "
                    "yet (a run that gets the lock does)")
        if self.moved is not None:
            learned = datetime.datetime.fromtimestamp(
                self.learned, datetime.timezone.utc)
            return (f"the server's clock was found {self.moved:.0f} seconds "
                    f"off its earlier offset at {learned:%Y-%m-%d %H:%M:%S} "
                    "UTC (the next run that gets the lock checks it again)")
        return None

    def age(self, stamp):
        """How many seconds ago, at least, the server's time was
        ``stamp`` (as it reports it, an aware datetime); only when
        ``doubt`` is None."""
        # Latest true time ``stamp`` can stand for: its second ends, and
        # the offset is as small as it can be.
        return time.time() - (stamp.timestamp() + 1 - self.low)
