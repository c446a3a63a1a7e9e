"""A progress bar on the terminal for long runs, driven by the run's
events; cron, which has no terminal, never sees one."""
import contextlib

import tqdm
import tqdm.contrib.logging
import zope.event

from zeit.cds.events import IFileEvent
from zeit.cds.events import IRunStarted

# Fewer files than this finish before a bar would tell anything.
LONG_RUN = 100


@contextlib.contextmanager
def bar_on_terminal(stream):
    """Show a bar on ``stream`` for a long run, if it is a terminal."""
    if not stream.isatty():
        yield
        return
    bars = []

    def follow(event):
        if IRunStarted.providedBy(event) and len(event.planned) >= LONG_RUN:
            bars.append(tqdm.tqdm(total=len(event.planned), unit='file',
                                  file=stream, leave=False))
        elif IFileEvent.providedBy(event) and bars:
            bars[-1].update()

    zope.event.subscribers.append(follow)
    try:
        # Log lines go above the bar instead of through it.
        with tqdm.contrib.logging.logging_redirect_tqdm():
            yield
    finally:
        zope.event.subscribers.remove(follow)
        for bar in bars:
            bar.close()
