"""What a run tells: events for its start, each file and its end, a
summary counted as it goes, and an ERROR line per failed file.

Subscribers (such as zeit.cms's, bound to their thread) are always
called in the thread that made the report; events sent from other
threads are handed over to it.
"""
import contextlib
import dataclasses
import logging
import threading
import time

import zope.event
import zope.interface

from zeit.cds.events import FileFailed
from zeit.cds.events import IFileFailed
from zeit.cds.events import RunFinished
from zeit.cds.events import RunStarted
from zeit.cds.interfaces import ISummary

log = logging.getLogger(__name__)


@zope.interface.implementer(ISummary)
@dataclasses.dataclass
class Summary:
    """What one run did; its report fills it in as it goes."""

    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failures: int = 0

    def __str__(self):
        return (f'{self.files} files, {self.bytes} bytes, '
                f'{self.seconds:.2f} seconds, {self.failures} failures')


class Report:
    """The report of one run of ``transfer`` (an exporter or importer),
    made in the run's thread; its time counts from here."""

    def __init__(self, transfer):
        self.transfer = transfer
        self.summary = Summary()
        self._started = time.monotonic()
        self._thread = threading.current_thread()
        self._hand_over = None

    def start(self, planned):
        """Announce the names the run is about to transfer."""
        zope.event.notify(RunStarted(self.transfer, planned))

    def succeeded(self, event):
        """Count a transferred file and announce ``event``."""
        self._send(event)

    def failed(self, name, error):
        """Count and report a file that failed on its own; the run goes
        on, the file stays where it was."""
        log.error('%s', error)
        self._send(FileFailed(self.transfer, name, error=error))

    def _send(self, event):
        if threading.current_thread() is self._thread:
            self.receive(event)
        else:
            self._hand_over(event)

    def receive(self, event):
        """Count ``event`` and notify subscribers; in the run's thread."""
        if IFileFailed.providedBy(event):
            self.summary.failures += 1
        else:
            self.summary.files += 1
            self.summary.bytes += event.size
        zope.event.notify(event)

    @contextlib.contextmanager
    def handing_over(self, hand_over):
        """Within the block, events sent from other threads go to
        ``hand_over``, for the run's thread to ``receive``."""
        self._hand_over = hand_over
        try:
            yield
        finally:
            self._hand_over = None

    def finish(self):
        """Take the run's time into the summary and announce its end."""
        self.summary.seconds = time.monotonic() - self._started
        zope.event.notify(RunFinished(self.transfer, self.summary))
