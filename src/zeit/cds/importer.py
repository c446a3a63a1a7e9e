"""The import run: from the CDS to the spool's ``new``, exactly once.

Every file goes the same way: downloaded into ``tmp``, fsynced, noted in
the spool's journal, moved to ``new``, removed from the CDS, and only then
taken out of the journal. A run killed anywhere on that way leaves either
a file that is still on the CDS and not journalled (the next run simply
imports it), or a journal entry: the file is delivered, and the next run
only removes it from the CDS, without downloading it again.
"""
import functools
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
from zeit.cds.run.parallel import batches
from zeit.cds.run.parallel import run_batches
from zeit.cds.run.transfer import Transfer

log = logging.getLogger(__name__)


@zope.component.adapter(ISpool, IRemoteTarget)
@zope.interface.implementer(IImporter)
class Importer(Transfer):

    lock_name = names.READ_LOCK
    directory_label = 'download_dir'

    def _work(self, run, only=None):
        only = only() if callable(only) else only
        offered = run.attempt(self.target.names)
        delivered = self._finish_interrupted(run, offered)
        offered = [name for name in candidates(offered)
                   if name not in delivered
                   and (only is None or name in only)]
        run.start([name for name in offered
                   if names.is_plain_file_name(name)])
        # Delivered in this run, not yet removed from the CDS: an
        # attempt after a reconnect only removes these.
        pending = set()
        run_batches(
            run, functools.partial(self._import, run, pending=pending),
            batches(offered, self.connections), self.connections)

    def _planned(self):
        offered = candidates(self.target.names())
        refused = {name: _refusal(name) for name in offered
                   if not names.is_plain_file_name(name)}
        return [name for name in offered if name not in refused], refused

    def _finish_interrupted(self, run, offered):
        """Remove what earlier runs delivered but left on the CDS; returns
        the names they delivered."""
        delivered = self.spool.received()
        # Their removal went through; only the entries were left.
        self.spool.forget([name for name in delivered if name not in offered])
        left = [name for name in delivered if name in offered]
        now = run.attempt(self.target.identities, left) if left else {}
        # A file that is not the one delivered is new: imported anew (its
        # copy in new is replaced), and only then removed.
        changed = [name for name in left
                   if None not in (delivered[name], now[name])
                   and delivered[name] != now[name]]
        for name in changed:
            log.warning('File %s on the CDS is not the one an interrupted '
                        'run delivered; importing it anew', names.shown(name))
        self.spool.forget(changed)
        left = [name for name in left if name not in changed]
        for name in left:
            log.warning('File %s was delivered by an interrupted run; '
                        'not downloading it again', names.shown(name))
        if left:
            run.attempt(self._remove, run, self.target, left, set(left))
        return set(delivered) - set(changed)

    def _import(self, run, target, batch, pending):
        todo = [name for name in batch if name not in pending]
        # Noted with each delivery: what tells it from a newer file of
        # the same name, should the run be cut off before the removal.
        identities = target.identities(
            [name for name in todo if names.is_plain_file_name(name)])
        received = []
        try:
            for name in todo:
                received.append((name, self._receive(run, target, name)))
        finally:
            # What arrived is delivered, even when the connection broke
            # on a later file of the batch.
            self._deliver(run, [(name, size, identities.get(name))
                                for name, size in received
                                if size is not None], pending)
        self._remove(run, target, [name for name in batch if name in pending],
                     pending)

    def _receive(self, run, target, name):
        """Download ``name`` into the spool's tmp; its size, or None."""
        if not names.is_plain_file_name(name):
            run.failed(name, _refusal(name))
            return None
        try:
            with self.spool.receiving(name) as f:
                return target.download(name, f)
        except (LocalFileError, TransferError) as e:
            # One bad file does not hold up the others; it stays remote.
            run.failed(name, e)
            return None

    def _deliver(self, run, received, pending):
        try:
            # (A site's spool of 0.1 returns nothing.)
            replaced = self.spool.deliver(
                {name: identity for name, size, identity in received}) or ()
        except LocalFileError as e:
            # Those the journal noted are finished by the next run; the
            # others stay on the CDS.
            for name, size, identity in received:
                run.failed(name, e)
            return
        for name, size, identity in received:
            pending.add(name)
            log.info('Downloaded file %s', names.shown(name))
            if name in replaced:
                # The newer version wins; the older one was never taken.
                log.warning("File %s in 'new' was not taken yet; the newer "
                            'one from the CDS replaces it',
                            names.shown(name))
            log.info("Moved file %s from 'tmp' to 'new'",
                     names.shown(name))
            run.succeeded(FileImported(self, name, size=size))

    def _remove(self, run, target, delivered, pending):
        results = target.remove_all(delivered)
        removed = []
        for name in delivered:
            if results[name] is None:
                log.info('Removed file %s from CDS FTP server',
                         names.shown(name))
                removed.append(name)
            else:
                # Delivered all the same: the journal keeps it from being
                # downloaded again, and the next run tries the removal
                # again.
                run.failed(name, results[name])
        self.spool.forget(removed)
        pending.difference_update(removed)


def _refusal(name):
    """The error of a ``name`` from the CDS that is not a plain file name
    (see names.is_plain_file_name)."""
    return RemoteNameError(f'Refusing to import {name!r}: not a plain file '
                           'name')


def candidates(offered):
    """The names worth a look: neither the directory's own entries nor
    lock files nor uploads in progress."""
    return [name for name in offered
            if name not in names.DOT_ENTRIES and not names.is_reserved(name)]
