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
from zeit.cds.interfaces import IImporter
from zeit.cds.interfaces import IRemoteTarget
from zeit.cds.interfaces import ISpool
from zeit.cds.interfaces import LocalFileError
from zeit.cds.interfaces import TransferError
from zeit.cds.transfer import running

log = logging.getLogger(__name__)


@zope.component.adapter(ISpool, IRemoteTarget)
@zope.interface.implementer(IImporter)
class Importer:

    def __init__(self, spool, target):
        self.spool = spool
        self.target = target

    def run(self):
        with running(self.spool, self.target, 'download_dir',
                     names.READ_LOCK) as summary:
            offered = self.target.names()
            delivered = self._finish_interrupted(offered, summary)
            for name in offered:
                if name not in delivered:
                    self._import(name, summary)
        return summary

    def _finish_interrupted(self, offered, summary):
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
            self._remove(name, summary)
        return set(delivered)

    def _import(self, name, summary):
        if name in names.DOT_ENTRIES or names.is_reserved(name):
            return
        if not names.is_plain_file_name(name):
            log.error('Refusing to import %r: not a plain file name', name)
            summary.failures += 1
            return
        try:
            with self.spool.receiving(name) as f:
                size = self.target.download(name, f)
                log.info('Downloaded file %s', name)
        except (LocalFileError, TransferError) as e:
            # One bad file does not hold up the others; it stays remote.
            log.error('%s', e)
            summary.failures += 1
            return
        log.info("Moved file %s from 'tmp' to 'new'", name)
        summary.files += 1
        summary.bytes += size
        self._remove(name, summary)

    def _remove(self, name, summary):
        try:
            self.target.remove(name)
        except TransferError as e:
            # Delivered all the same: the journal keeps it from being
            # downloaded again, and the next run tries the removal again.
            log.error('%s', e)
            summary.failures += 1
            return
        log.info('Removed file %s from CDS FTP server', name)
        self.spool.forget(name)
