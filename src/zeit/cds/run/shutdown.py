"""Stopping a run cleanly on SIGTERM and SIGINT.

A signal only asks the run to stop before its next file, so that no
transfer is cut in the middle and the CDS lock is released. Once the run
has ended, the signal is delivered again to whoever would have received
it, so a process that would have ended still ends the same way; a
watcher (``zeit.cds.watch.watcher``), for which a stop is the normal end,
asks for that not to happen, and to be woken from its waits.
"""
import contextlib
import signal
import threading

from zeit.cds.interfaces import Interrupted

SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Handlers that mean "the process ends": only those are ours to replace.
_DEFAULTS = (signal.SIG_DFL, signal.default_int_handler)

_received = []


def check():
    """Raise Interrupted when a stop was asked for."""
    if _received:
        name = signal.Signals(_received[0]).name
        raise Interrupted(f'Stopped by {name}', signum=_received[0])


def requested():
    """Whether a stop was asked for."""
    return bool(_received)


def _ask_to_stop(signum, frame):
    _received.append(signum)


@contextlib.contextmanager
def waking(fd):
    """Within the block, a signal also writes a byte to ``fd`` (the
    non-blocking write end of a pipe that a watcher's waits poll).

    Python's own, C-level handler writes it (``signal.set_wakeup_fd``):
    the handler above runs only between two steps of Python code, too
    late for a signal that comes just before a wait begins, which would
    then last its full time. Only the main thread gets signals; in any
    other nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)


@contextlib.contextmanager
def graceful(redeliver=True):
    """Within the block, SIGTERM and SIGINT ask the run to stop. Without
    ``redeliver`` a signal received is done with when the block ends: the
    process goes on, or ends as it chooses."""
    if threading.current_thread() is not threading.main_thread():
        # Only the main thread may handle signals.
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    for signum, handler in previous.items():
        if handler in _DEFAULTS:
            signal.signal(signum, _ask_to_stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        received, _received[:] = _received[:], []
        for signum in received[:1] if redeliver else ():
            signal.raise_signal(signum)
