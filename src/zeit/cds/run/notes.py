"""What runs learn about a CDS server, kept in the spool for later runs."""
import json
import logging

from zeit.cds.run.clock import ServerClock

log = logging.getLogger(__name__)


class ServerNotes:
    """The notes on one target (server, user and directory): its
    ``clock``, and in ``locks`` the content (bytes) of each lock file a
    run of this spool may have left there, by name."""

    def __init__(self, spool, target):
        self.spool = spool
        self.key = f'{target.description}, directory {target.directory}'
        self._saved = spool.remembered(self.key)
        data = self._parse(self._saved)
        self.clock = ServerClock.from_dict(data.get('clock', {}))
        locks = data.get('locks')
        self.locks = {
            name: content.encode('utf-8', 'surrogateescape')
            for name, content in (
                locks.items() if isinstance(locks, dict) else ())
            if isinstance(content, str)}

    def _parse(self, saved):
        if saved is None:
            return {}
        try:
            data = json.loads(saved)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            # Only a hand could have done this. Starting afresh is safe:
            # without notes a run backs off rather than break a lock.
            log.warning('Ignoring unreadable notes on %s in spool %s',
                        self.key, self.spool.path)
            return {}
        return data

    def save(self, durable=True):
        """Keep the notes in the spool, when they changed; ``durable``
        as ISpool.remember."""
        data = json.dumps({
            'server': self.key,
            'clock': self.clock.to_dict(),
            'locks': {name: content.decode('utf-8', 'surrogateescape')
                      for name, content in self.locks.items()},
        }, indent=1, sort_keys=True).encode('ascii')
        if data != self._saved:
            self.spool.remember(self.key, data, durable)
            self._saved = data
