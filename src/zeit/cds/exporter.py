"""The export run: from the spool's ``new`` to the CDS."""
import logging

import zope.component
import zope.interface

from zeit.cds import names
from zeit.cds.events import FileExported
from zeit.cds.interfaces import IExporter
from zeit.cds.interfaces import IRemoteTarget
from zeit.cds.interfaces import ISpool
from zeit.cds.interfaces import LocalFileError
from zeit.cds.interfaces import TransferError
from zeit.cds.transfer import RECONNECT_DELAYS
from zeit.cds.transfer import Run

log = logging.getLogger(__name__)


@zope.component.adapter(ISpool, IRemoteTarget)
@zope.interface.implementer(IExporter)
class Exporter:

    break_lock_older_than = None
    reconnect_delays = RECONNECT_DELAYS

    def __init__(self, spool, target):
        self.spool = spool
        self.target = target

    def run(self):
        with Run(self, names.WRITE_LOCK, 'upload_dir') as run:
            waiting = self.spool.waiting()
            run.start(waiting)
            for name in waiting:
                run.attempt(self._export, run, name)
        return run.summary

    def plan(self):
        with Run(self, names.WRITE_LOCK, 'upload_dir', dry_run=True):
            return self.spool.waiting()

    def _export(self, run, name):
        try:
            with self.spool.open(name) as f:
                size = self.target.upload(name, f)
        except (LocalFileError, TransferError) as e:
            run.failed(name, e)
            return
        log.info('Uploaded file %s', name)
        self.spool.mark_exported(name)
        log.info("Moved file %s from 'new' to 'cur'", name)
        run.succeeded(FileExported(self, name, size=size))
