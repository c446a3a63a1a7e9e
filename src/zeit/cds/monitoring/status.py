"""The outcome of a run, and the status file that tells it.

The status file (``--status-file``) is a small JSON document, replaced
atomically after every run, so that a reader sees the old document or the
new one, never a part. Its format is versioned: ``version`` grows when a
field changes its meaning or goes; new fields may come without.
"""
import dataclasses
import datetime
import json
import logging

from zeit.cds.durable import write_atomically

log = logging.getLogger(__name__)

VERSION = 1

# The exit code of a back-off: the CDS or the spool is busy (zeit.cds.cli
# uses it too).
BACK_OFF = 75

RESULTS = ('ok', 'failed', 'backed-off')

# Status and metrics files are read by the monitoring, as another user.
READABLE = 0o644


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How one run of ``direction`` ('export' or 'import') on the
    ``connection`` (a config section, ZCML connection or host) ended.

    ``started`` and ``ended`` are seconds since the epoch, ``duration``
    seconds measured by a monotonic clock; ``reason`` is the one line
    that tells why a run did not end well (None when it did); ``backlog``
    is the spool's Backlog after the run (None when it could not be
    counted)."""

    direction: str
    connection: str
    started: float
    ended: float
    duration: float
    exit_code: int
    reason: str | None
    files: int
    bytes: int
    failures: int
    backlog: object

    @property
    def result(self):
        if self.exit_code == 0:
            return 'ok'
        if self.exit_code == BACK_OFF:
            return 'backed-off'
        return 'failed'

    def document(self, last_success=None):
        """The status file's document; ``last_success``, the ISO time the
        last successful run ended, is this run's time when it succeeded."""
        return {
            'version': VERSION,
            'direction': self.direction,
            'connection': self.connection,
            'started': iso(self.started),
            'ended': iso(self.ended),
            'result': self.result,
            'reason': self.reason,
            'exit_code': self.exit_code,
            'files': self.files,
            'bytes': self.bytes,
            'failures': self.failures,
            'backlog': self.backlog and self.backlog.document(),
            'last_success': (iso(self.ended) if self.result == 'ok'
                             else last_success),
        }


def iso(timestamp):
    """``timestamp`` (seconds since the epoch) in ISO 8601, UTC."""
    return datetime.datetime.fromtimestamp(
        timestamp, datetime.timezone.utc).isoformat(timespec='seconds')


def write(path, outcome):
    """Replace the status file ``path`` by the document of ``outcome``,
    durably (on disk when this returns), carrying the time of the last
    success over from the file it replaces. Raises OSError."""
    try:
        last_success = read(path).get('last_success')
    except FileNotFoundError:
        last_success = None
    except (OSError, ValueError) as e:
        log.warning('Cannot read the previous status file %s (%s); the '
                    'time of the last success is lost', path, e)
        last_success = None
    text = json.dumps(outcome.document(last_success), indent=2) + '\n'
    write_atomically(path, text.encode('utf-8'), durable=True,
                     mode=READABLE)


def read(path):
    """The document of the status file ``path``. Raises OSError, and
    ValueError when it is not a status document of a version we know."""
    with open(path, encoding='utf-8') as f:
        document = json.load(f)
    if not isinstance(document, dict):
        raise ValueError('not a status document')
    if document.get('version') != VERSION:
        raise ValueError(
            f'status format version {document.get("version")!r}, '
            f'not {VERSION}')
    return document


def parse_time(text):
    """Seconds since the epoch of the ISO 8601 ``text`` the status file
    holds. Raises ValueError, also for a value that is no text (a file
    edited by hand)."""
    if not isinstance(text, str):
        raise ValueError(f'not a time: {text!r}')
    return datetime.datetime.fromisoformat(text).timestamp()
