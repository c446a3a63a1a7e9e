"""What waits in a spool's ``new``: for export the files not yet sent, for
import the files zeit.cms has not yet taken.

Plain ``os`` only: cds-check reads it and starts fast.
"""
import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class Backlog:
    """How many entries wait in ``new``, and the age in seconds of the
    oldest (None when none waits)."""

    files: int
    oldest_seconds: float | None

    def document(self):
        return {'files': self.files, 'oldest_seconds': (
            None if self.oldest_seconds is None
            else round(self.oldest_seconds, 3))}


def backlog(spool, now):
    """The Backlog of the spool folder ``spool`` at the time ``now``
    (seconds since the epoch). Every entry of ``new`` counts, also one that
    is not a regular file: it waits as much. The age is by modification
    time, the time the file was written (a move into ``new`` keeps it).
    Raises OSError when ``new`` cannot be read."""
    times = []
    with os.scandir(os.path.join(spool, 'new')) as entries:
        for entry in entries:
            try:
                times.append(entry.stat(follow_symlinks=False).st_mtime)
            except FileNotFoundError:
                continue  # taken away while we looked
    if not times:
        return Backlog(0, None)
    # A clock set back must not make an age negative.
    return Backlog(len(times), max(0.0, now - min(times)))
