"""The export run: from the spool's ``new`` to the CDS."""
import logging
import time

import zope.component
import zope.interface

from zeit.cds import names
from zeit.cds.interfaces import IExporter
from zeit.cds.interfaces import IRemoteTarget
from zeit.cds.interfaces import ISpool
from zeit.cds.interfaces import LocalFileError
from zeit.cds.interfaces import TransferError
from zeit.cds.summary import Summary
from zeit.cds.transfer import RECONNECT_DELAYS
from zeit.cds.transfer import Run

log = logging.getLogger(__name__)


@zope.component.adapter(ISpool, IRemoteTarget)
@zope.interface.implementer(IExporter)
class Exporter:

    def __init__(self, spool, target):
        self.spool = spool
        self.target = target

    break_lock_older_than = None
    reconnect_delays = RECONNECT_DELAYS

    def run(self):
        summary = Summary()
        started = time.monotonic()
        with Run(self.spool, self.target, names.WRITE_LOCK, 'upload_dir',
                 reconnect_delays=self.reconnect_delays,
                 break_lock_older_than=self.break_lock_older_than) as run:
            for name in self.spool.waiting():
                run.attempt(self._export, name, summary)
        summary.seconds = time.monotonic() - started
        return summary

    def _export(self, name, summary):
        try:
            with self.spool.open(name) as f:
                size = self.target.upload(name, f)
        except (LocalFileError, TransferError) as e:
            # One bad file does not hold up the others; it stays in new.
            log.error('%s', e)
            summary.failures += 1
            return
        log.info('Uploaded file %s', name)
        self.spool.mark_exported(name)
        log.info("Moved file %s from 'new' to 'cur'", name)
        summary.files += 1
        summary.bytes += size

