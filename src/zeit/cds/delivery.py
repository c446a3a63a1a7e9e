"""The delivery protocol, written once for every kind of remote target.

A file is stored under a temporary name (``names.partial_name``), its size
on the target checked against the local file, announced to the caller
(``before_publish``, where the export journals it), and only then renamed
to its final name, so that the final name never shows partial content.
Whatever a refusal leaves under the temporary name is removed, since some
servers never overwrite a file. An interrupted run's complete upload is
finished by ``finish_upload`` instead of being uploaded a second time.

The targets supply the primitives (``store``, ``sizes``, ``rename_all``,
``remove_all``), each a batch where their protocol can batch: an FTP
target sends a batch's SIZE or RNFR/RNTO commands in one round trip. A
target that can store a batch at once too (``IBatchStore``, such as
SFTP) gets the batch's files together.
"""
import contextlib
import os

from zeit.cds import names
from zeit.cds.interfaces import IBatchStore
from zeit.cds.interfaces import LocalFileError
from zeit.cds.interfaces import NoSuchFile
from zeit.cds.interfaces import RemoteError
from zeit.cds.interfaces import TransferError


@contextlib.contextmanager
def _told_as(message):
    """Raise a RemoteError of the block again, as ``message`` and its
    reason: the file's story, not the primitive's."""
    try:
        yield
    except RemoteError as e:
        raise _told(e, message) from e


def _told(error, message):
    """A RemoteError ``error`` told as ``message`` and its reason; any
    other error (None included) as it is."""
    if not isinstance(error, RemoteError):
        return error
    told = type(error)(f'{message}: {error.reason}', error.reason)
    told.__cause__ = error
    return told


def upload_all(target, files, before_publish=None, refused=None):
    """Store each file of ``files`` on ``target``, atomically.

    ``files`` are (name, open) pairs, where ``open()`` opens the local file
    for reading in binary mode. ``before_publish``, when given, is called
    with the names that are complete on the target, before they get their
    final names; ``refused``, when given, with those of them that did not
    get it, before their temporary files are removed (so that a session
    that breaks during the removal cannot leave them taken for renamed).
    Returns a dict: for each name its size in bytes, or the CDSError
    (TransferError, LocalFileError) that kept it from arriving. Raises
    ConnectionLost when the session breaks.
    """
    results = {}
    stored = _stored(target, files, results)
    complete = _verified(target, stored, results)
    if complete and before_publish is not None:
        before_publish([name for name, size in complete])
    _publish(target, complete, results, refused)
    return results


def refusal(name):
    """The TransferError that keeps the local file ``name`` from going to
    any CDS, or None."""
    if not names.is_transferable(name):
        return TransferError(
            f'Refusing to export {names.shown(name)}: a line break or NUL '
            'in a name cannot be sent')
    if names.is_reserved(name):
        # Under its own name it would be taken for a lock, or replace
        # ours, or be taken for an upload in progress and never imported.
        return TransferError(
            f'Refusing to export {names.shown(name)}: the name of a CDS '
            'lock file or temporary upload')
    return None


def _stored(target, files, results):
    """Store each of ``files`` under its temporary name, all at once where
    the target can; (name, size) for each one stored. The errors of the
    others go into ``results``, and what they left on the target is
    removed."""
    sizes = {}
    with contextlib.ExitStack() as stack:
        opened = {}
        for name, open_file in files:
            refused = refusal(name)
            if refused is not None:
                results[name] = refused
                continue
            try:
                f = opened[name] = stack.enter_context(open_file())
            except LocalFileError as e:
                results[name] = e
                continue
            sizes[name] = os.fstat(f.fileno()).st_size
        refusals = _store_all(target, opened)
    for name, refused in refusals.items():
        if refused is not None:
            results[name] = refused
            del sizes[name]
    _discard(target, [names.partial_name(name)
                      for name, refused in refusals.items()
                      if refused is not None])
    return list(sizes.items())


def _store_all(target, opened):
    """Store each open file of ``opened`` (a dict of name to file) under
    its temporary name: a dict of name to None or the error that kept it,
    told as the file's story."""
    told = {name: f'Cannot upload file {names.shown(name)}'
            for name in opened}
    if IBatchStore.providedBy(target):
        with _told_as('Cannot upload files'):
            refusals = target.store_all(
                [(names.partial_name(name), f) for name, f in opened.items()])
        return {name: _told(refusals[names.partial_name(name)], told[name])
                for name in opened}
    refusals = {}
    for name, f in opened.items():
        try:
            with _told_as(told[name]):
                target.store(names.partial_name(name), f)
        except (LocalFileError, TransferError) as e:
            refusals[name] = e
        else:
            refusals[name] = None
    return refusals


def _verified(target, stored, results):
    """The stored uploads that have all their bytes on the target, as
    (name, size); the others are discarded and their errors noted."""
    if not stored:
        return []
    with _told_as('Cannot upload files'):
        found = target.sizes([names.partial_name(name)
                              for name, size in stored])
    complete = []
    refused = []
    for name, expected in stored:
        actual = found[names.partial_name(name)]
        if actual is None or actual == expected:
            complete.append((name, expected))
            continue
        refused.append(names.partial_name(name))
        results[name] = TransferError(
            f'Cannot upload file {names.shown(name)}: ' + (
                actual.reason if isinstance(actual, TransferError) else
                f'the server has {actual} of {expected} bytes'))
    _discard(target, refused)
    return complete


def _publish(target, complete, results, refused_names=None):
    """Rename the complete uploads to their final names; tell
    ``refused_names`` (see upload_all) those that did not get theirs."""
    if not complete:
        return
    with _told_as('Cannot upload files'):
        refusals = target.rename_all(
            [(names.partial_name(name), name) for name, size in complete])
    refused = []
    for name, size in complete:
        refusal = refusals[names.partial_name(name)]
        if refusal is None:
            results[name] = size
            continue
        # Of the same kind: NoSuchFile tells finish_upload that an earlier
        # attempt renamed it already.
        results[name] = _told(
            refusal, f'Cannot upload file {names.shown(name)}')
        if not isinstance(refusal, NoSuchFile):
            refused.append(name)
    if refused and refused_names is not None:
        refused_names(refused)
    # A server that never replaces a file (ProFTPD without AllowOverwrite)
    # would refuse the next run's upload of the temporary name as well.
    _discard(target, [names.partial_name(name) for name in refused])


def finish_upload(target, name, size, refused=None):
    """Give a complete upload of ``name`` that an interrupted run left
    under its temporary name its final name.

    Returns False when there is no such upload: it was renamed already.
    Raises TransferError when the temporary file does not have ``size``
    bytes (it is removed then), or cannot be renamed; ``refused`` (see
    upload_all) hears of it first.
    """
    partial = names.partial_name(name)
    message = f'Cannot finish uploading {names.shown(name)}'
    with _told_as(message):
        actual = target.sizes([partial])[partial]
        if isinstance(actual, NoSuchFile):
            return False
        if isinstance(actual, TransferError):
            raise actual
    if actual is not None and actual != size:
        if refused is not None:
            refused([name])
        _discard(target, [partial])
        raise TransferError(
            f'{message}: the server has {actual} of {size} bytes')
    results = {}
    _publish(target, [(name, size)], results, refused)
    if isinstance(results[name], NoSuchFile):
        # Where sizes cannot tell (no SIZE), the rename does: renamed
        # already.
        return False
    if isinstance(results[name], TransferError):
        raise results[name]
    return True


def _discard(target, partials):
    # Tidying up after a refusal: the refusal is what gets reported, not
    # whether the tidying worked.
    if partials:
        target.remove_all(partials)
