"""The export run: from the spool's ``new`` to the CDS, once.

Every file goes the same way: uploaded under a temporary name, its size
checked, noted in the spool's export journal, renamed to its final name,
moved to ``cur``, which clears the note. A run killed on that way leaves
the file in ``new``; with a note, the next run only finishes the rename
(or sees it done) instead of uploading the file a second time.
"""
import logging
import os

import zope.component
import zope.interface

from zeit.cds import names
from zeit.cds.events import FileExported
from zeit.cds.interfaces import IExporter
from zeit.cds.interfaces import IRemoteTarget
from zeit.cds.interfaces import ISpool
from zeit.cds.interfaces import LocalFileError
from zeit.cds.interfaces import TransferError
from zeit.cds.transfer import Run
from zeit.cds.transfer import Transfer

log = logging.getLogger(__name__)


@zope.component.adapter(ISpool, IRemoteTarget)
@zope.interface.implementer(IExporter)
class Exporter(Transfer):

    def run(self):
        with Run(self, names.WRITE_LOCK, 'upload_dir') as run:
            waiting = self.spool.waiting()
            interrupted = set(self.spool.published())
            run.start(waiting)
            for name in waiting:
                if name in interrupted:
                    run.attempt(self._finish, run, name)
                else:
                    run.attempt(self._export, run, name)
        return run.summary

    def plan(self):
        with Run(self, names.WRITE_LOCK, 'upload_dir', dry_run=True):
            return self.spool.waiting()

    def _export(self, run, name):
        noted = []

        def note():
            self.spool.publishing(name)
            noted.append(name)

        try:
            with self.spool.open(name) as f:
                size = self.target.upload(name, f, before_publish=note)
        except (LocalFileError, TransferError) as e:
            if noted:
                # The server refused the rename: the file is not on the
                # CDS, and the next run must upload it again.
                self.spool.unpublished(name)
            run.failed(name, e)
            return
        log.info('Uploaded file %s', name)
        self._exported(run, name, size)

    def _finish(self, run, name):
        """An interrupted run had ``name`` complete on the server; it may
        have renamed it already. Never upload it twice."""
        try:
            with self.spool.open(name) as f:
                size = os.fstat(f.fileno()).st_size
            renamed_now = self.target.finish_upload(name, size)
        except TransferError as e:
            # The temporary upload is not what it was; start afresh.
            log.warning('%s; uploading it again', e)
            self.spool.unpublished(name)
            self._export(run, name)
            return
        except LocalFileError as e:
            run.failed(name, e)
            return
        if renamed_now:
            log.warning('Finished uploading file %s for an interrupted run',
                        name)
        else:
            log.warning('File %s was uploaded by an interrupted run; not '
                        'uploading it again', name)
        self._exported(run, name, size)

    def _exported(self, run, name, size):
        self.spool.mark_exported(name)
        log.info("Moved file %s from 'new' to 'cur'", name)
        run.succeeded(FileExported(self, name, size=size))
