"""The import run: from the CDS to the spool's ``new``, exactly once.

Every file goes the same way: downloaded into ``tmp``, fsynced, noted in
the spool's journal, moved to ``new``, removed from the CDS, and only then
taken out of the journal. A run killed anywhere on that way leaves either
a file that is still on the CDS and not journalled (the next run simply
imports it), or a journal entry: the file is delivered, and the next run
only removes it from the CDS, without downloading it again.
"""
import logging

import zope.component
import zope.interface

from zeit.cds import names
from zeit.cds.events import FileImported
from zeit.cds.interfaces import IImporter
from zeit.cds.interfaces import IRemoteTarget
from zeit.cds.interfaces import ISpool
from zeit.cds.interfaces import LocalFileError
from zeit.cds.interfaces import RemoteNameError
from zeit.cds.interfaces import TransferError
from zeit.cds.transfer import Run
from zeit.cds.transfer import Transfer

log = logging.getLogger(__name__)


@zope.component.adapter(ISpool, IRemoteTarget)
@zope.interface.implementer(IImporter)
class Importer(Transfer):

    def run(self):
        with Run(self, names.READ_LOCK, 'download_dir') as run:
            offered = run.attempt(self.target.names)
            delivered = self._finish_interrupted(run, offered)
            offered = [name for name in _candidates(offered)
                       if name not in delivered]
            run.start([name for name in offered
                       if names.is_plain_file_name(name)])
            for name in offered:
                # Two steps, so that a reconnect in the second does not
                # download a delivered file again.
                if run.attempt(self._download, run, name):
                    run.attempt(self._remove, run, name)
        return run.summary

    def plan(self):
        with Run(self, names.READ_LOCK, 'download_dir', dry_run=True):
            return [name for name in _candidates(self.target.names())
                    if names.is_plain_file_name(name)]

    def _finish_interrupted(self, run, offered):
        """Remove what earlier runs delivered but left on the CDS; returns
        the names they delivered."""
        delivered = self.spool.received()
        for name in delivered:
            if name not in offered:
                # Its removal went through; only the entry was left.
                self.spool.forget(name)
                continue
            log.warning('File %s was delivered by an interrupted run; '
                        'not downloading it again', name)
            run.attempt(self._remove, run, name)
        return set(delivered)

    def _download(self, run, name):
        """Receive ``name`` into the spool; whether it was delivered."""
        if not names.is_plain_file_name(name):
            run.failed(name, RemoteNameError(
                f'Refusing to import {name!r}: not a plain file name'))
            return False
        try:
            with self.spool.receiving(name) as f:
                size = self.target.download(name, f)
                log.info('Downloaded file %s', name)
        except (LocalFileError, TransferError) as e:
            # One bad file does not hold up the others; it stays remote.
            run.failed(name, e)
            return False
        log.info("Moved file %s from 'tmp' to 'new'", name)
        run.succeeded(FileImported(self, name, size=size))
        return True

    def _remove(self, run, name):
        try:
            self.target.remove(name)
        except TransferError as e:
            # Delivered all the same: the journal keeps it from being
            # downloaded again, and the next run tries the removal again.
            run.failed(name, e)
            return
        log.info('Removed file %s from CDS FTP server', name)
        self.spool.forget(name)


def _candidates(offered):
    """The names worth a look: neither the directory's own entries nor
    lock files nor uploads in progress."""
    return [name for name in offered
            if name not in names.DOT_ENTRIES and not names.is_reserved(name)]
