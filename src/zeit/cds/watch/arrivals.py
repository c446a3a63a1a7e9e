"""Files arriving in a spool's ``new``, as the kernel tells (inotify).

Through inotify_simple: a thin ctypes wrapper of the three system calls,
with a descriptor of its own that a watcher polls beside its other waits.
(watchdog, the larger choice, runs a thread of its own per observer and
hides the queue overflow this module has to know of.)

A file counts as arrived when it is moved into ``new`` (zeit.cms writes
into ``tmp`` and moves) or when a writer closes it there; not when it is
created, since it may still be written to. When the kernel's queue
overflowed, or the watch ended because ``new`` went away, names may have
been missed: ``take`` says so, and the watcher scans ``new`` in full
(it does so now and then anyway, as a safety net).
"""
import logging

import inotify_simple

from zeit.cds.interfaces import SettingsError

log = logging.getLogger(__name__)

flags = inotify_simple.flags

ARRIVED = flags.MOVED_TO | flags.CLOSE_WRITE
# The watch is gone: new was removed, moved away, or unmounted.
GONE = flags.IGNORED | flags.DELETE_SELF | flags.MOVE_SELF | flags.UNMOUNT


class Arrivals:
    """The names arriving in the folder ``path`` (a spool's ``new``)."""

    def __init__(self, path):
        self.path = path
        try:
            self._inotify = inotify_simple.INotify(nonblocking=True)
        except OSError as e:
            # Such as EMFILE: fs.inotify.max_user_instances used up.
            raise SettingsError(
                f'Cannot watch {path}: inotify: {e.strerror or e}') from e
        self._watch = None
        self.arm()

    def fileno(self):
        return self._inotify.fileno()

    def arm(self):
        """Watch the folder, where not watching; whether it is watched.
        (A folder that went away may be back: a full scan arms again.)"""
        if self._watch is None:
            try:
                self._watch = self._inotify.add_watch(
                    self.path, ARRIVED | GONE | flags.ONLYDIR)
            except OSError as e:
                log.debug('Cannot watch %s: %s', self.path, e)
        return self._watch is not None

    def take(self):
        """The names that arrived since the last call (a set), and
        whether some may have been missed; does not wait."""
        names, missed = set(), False
        for event in self._inotify.read(timeout=0):
            if event.mask & flags.Q_OVERFLOW:
                missed = True
            elif event.mask & GONE:
                self._watch, missed = None, True
            elif event.mask & ARRIVED and not event.mask & flags.ISDIR:
                names.add(event.name)
        return names, missed

    def close(self):
        self._inotify.close()

