"""A progress bar on the terminal for long runs, driven by the run's
events and its targets' byte counts; cron, which has no terminal, never
sees one."""
import contextlib

import zope.event

from zeit.cds.events import IFileEvent
from zeit.cds.events import IRunStarted

# From this many files on a run counts its files; a run of fewer, bigger
# ones counts its bytes, once it has taken longer than DELAY seconds.
LONG_RUN = 100
DELAY = 2


@contextlib.contextmanager
def bar_on_terminal(stream, transfer, delay=DELAY, every=0.1):
    """Show a bar on ``stream`` for a long run of ``transfer``, if the
    stream is a terminal; it is redrawn ``every`` so many seconds."""
    if not stream.isatty():
        yield
        return
    # Imported here: tqdm costs a run without a terminal a tenth of a
    # second of start-up for nothing.
    import tqdm
    import tqdm.contrib.logging

    class Bar(tqdm.tqdm):
        # No watchdog thread of tqdm's: a bar here lives as long as its run.
        monitor_interval = 0

    bars = []

    def follow(event):
        if IRunStarted.providedBy(event):
            if len(event.planned) >= LONG_RUN:
                bars.append(Bar(total=len(event.planned), unit='file',
                                file=stream, leave=False, mininterval=every))
            else:
                bars.append(Bar(unit='B', unit_scale=True, delay=delay,
                                file=stream, leave=False, mininterval=every))
                # Every connection's target is made from this one.
                transfer.target.progress = bars[-1].update
        elif IFileEvent.providedBy(event) and bars and \
                bars[-1].unit == 'file':
            bars[-1].update()

    zope.event.subscribers.append(follow)
    try:
        # Log lines go above the bar instead of through it.
        with tqdm.contrib.logging.logging_redirect_tqdm():
            yield
    finally:
        zope.event.subscribers.remove(follow)
        transfer.target.progress = None
        for bar in bars:
            bar.close()
