"""The export run: from the spool's ``new`` to the CDS, once.

Every file goes the same way: uploaded under a temporary name, its size
checked, noted in the spool's export journal, renamed to its final name,
moved to ``cur``, which clears the note. A run killed on that way leaves
the file in ``new``; with a note, the next run only finishes the rename
(or sees it done) instead of uploading the file a second time.
"""
import functools
import logging
import os

import zope.component
import zope.interface

from zeit.cds import delivery
from zeit.cds import names
from zeit.cds.events import FileExported
from zeit.cds.interfaces import CDSError
from zeit.cds.interfaces import IExporter
from zeit.cds.interfaces import IRemoteTarget
from zeit.cds.interfaces import ISpool
from zeit.cds.interfaces import LocalFileError
from zeit.cds.interfaces import NotARegularFile
from zeit.cds.interfaces import TransferError
from zeit.cds.run.parallel import batches
from zeit.cds.run.parallel import run_batches
from zeit.cds.run.transfer import Transfer

log = logging.getLogger(__name__)


@zope.component.adapter(ISpool, IRemoteTarget)
@zope.interface.implementer(IExporter)
class Exporter(Transfer):

    lock_name = names.WRITE_LOCK
    directory_label = 'upload_dir'

    def _work(self, run, only=None):
        # Asked before new is listed: whatever it names is listed too.
        only = only() if callable(only) else only
        waiting = self.spool.waiting()
        if only is not None:
            # A watcher's burst: the files that arrived (also while the
            # lock was being taken), not those that failed before (they
            # wait for its next full scan).
            waiting = [name for name in waiting if name in only]
        run.start(waiting)
        for name in self.spool.strays() if only is None else ():
            run.failed(name, NotARegularFile(names.shown(name)))
        # Names noted as about to be renamed, across attempts.
        noted = set(self.spool.published())
        # Before the finishing, which takes the finished out of noted.
        fresh = [name for name in waiting if name not in noted]
        for name in sorted(noted):
            run.attempt(self._finish, run, self.target, name, noted)
        run_batches(
            run, functools.partial(self._export, run, noted=noted),
            batches(fresh, self.connections), self.connections)

    def _planned(self):
        waiting = self.spool.waiting()
        refused = {name: error for name in waiting
                   if (error := delivery.refusal(name)) is not None}
        refused.update({name: NotARegularFile(names.shown(name))
                        for name in self.spool.strays()})
        return [name for name in waiting if name not in refused], refused

    def _export(self, run, target, batch, noted):
        # An attempt before this one may have got some of the batch as far
        # as their renaming; those must not be uploaded a second time.
        finishing = [name for name in batch if name in noted]
        # Before the finishing, which takes the finished out of noted.
        batch = [name for name in batch if name not in noted]
        for name in finishing:
            self._finish(run, target, name, noted)

        def note(publishing):
            for name in publishing:
                self.spool.publishing(name)
                noted.add(name)

        results = delivery.upload_all(
            target, [(name, functools.partial(self.spool.open, name))
             for name in batch], before_publish=note,
            refused=functools.partial(self._unpublished, noted=noted))
        for name in batch:
            result = results[name]
            if isinstance(result, CDSError):
                if name in noted:
                    # The file is not on the CDS, and the next run must
                    # upload it again.
                    self._unpublished([name], noted)
                run.failed(name, result)
                continue
            log.info('Uploaded file %s', names.shown(name))
            self._exported(run, name, result, noted)

    def _finish(self, run, target, name, noted):
        """An interrupted run (or attempt) had ``name`` complete on the
        server; it may have renamed it already. Never upload it twice."""
        try:
            with self.spool.open(name) as f:
                size = os.fstat(f.fileno()).st_size
            renamed_now = delivery.finish_upload(
                target, name, size,
                refused=functools.partial(self._unpublished, noted=noted))
        except TransferError as e:
            # The temporary upload is not what it was; start afresh.
            log.warning('%s; uploading it again', e)
            self._unpublished([name], noted)
            self._export(run, target, [name], noted)
            return
        except LocalFileError as e:
            run.failed(name, e)
            return
        if renamed_now:
            log.warning('Finished uploading file %s for an interrupted run',
                        names.shown(name))
        else:
            log.warning('File %s was uploaded by an interrupted run; not '
                        'uploading it again', names.shown(name))
        self._exported(run, name, size, noted)

    def _unpublished(self, refused, noted):
        """Take ``refused`` out of the export journal: not renamed, they
        are to be uploaded again (and never taken for renamed)."""
        for name in refused:
            self.spool.unpublished(name)
            noted.discard(name)

    def _exported(self, run, name, size, noted):
        moved = self.spool.mark_exported(name)
        noted.discard(name)
        if moved:
            log.info("Moved file %s from 'new' to 'cur'", names.shown(name))
        else:
            log.warning("File %s was replaced in 'new' during its upload; "
                        'the new version goes with the next run',
                        names.shown(name))
        run.succeeded(FileExported(self, name, size=size))
