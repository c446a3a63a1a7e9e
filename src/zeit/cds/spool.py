"""The default spool: a gocept.filestore folder."""
import contextlib
import ctypes
import errno
import fcntl
import hashlib
import logging
import os
import stat
import threading

import gocept.filestore.filestore
import gocept.filestore.interfaces
import zc.lockfile
import zope.component
import zope.interface

from zeit.cds import names
from zeit.cds.durable import fsync
from zeit.cds.durable import fsync_directory
from zeit.cds.durable import remove_quietly
from zeit.cds.durable import write_atomically
from zeit.cds.interfaces import ISpool
from zeit.cds.interfaces import LocalFileError
from zeit.cds.interfaces import NotARegularFile
from zeit.cds.interfaces import SpoolBusy
from zeit.cds.oserrors import reported_as

# Beside tmp/new/cur, where gocept.filestore never looks.
LOCK_FILE = 'cds.lock'

log = logging.getLogger(__name__)

# The journals, beside tmp, new and cur; gocept.filestore leaves
# everything but those three alone.
JOURNAL = 'cds-journal'
EXPORT_JOURNAL = 'cds-export-journal.log'
# The export journal of zeit.cds 0.1, a file per name: read, and emptied.
EXPORT_JOURNAL_FOLDER = 'cds-export-journal'
# What runs keep for later runs (see ISpool.remember), one file per key.
MEMORY = 'cds-memory'


def make_spool(path, files):
    """A prepared gocept.filestore in ``path`` with ``files`` (a dict of
    name to bytes) waiting in ``new``."""
    store = gocept.filestore.filestore.FileStore(path)
    store.prepare()
    for name, data in files.items():
        with store.create(name, 'wb') as f:
            f.write(data)
        store.move(name, 'tmp', 'new')
    return store


@zope.component.adapter(gocept.filestore.interfaces.IFileStore)
@zope.interface.implementer(ISpool)
class FileStoreSpool:

    def __init__(self, store):
        self.store = store
        self._journal = Journal(os.path.join(store.path, JOURNAL))
        self._publishing = NoteLog(
            os.path.join(store.path, EXPORT_JOURNAL),
            Journal(os.path.join(store.path, EXPORT_JOURNAL_FOLDER),
                    durable=False))
        # The identity of each file as open() found it: zeit.cms may put a
        # newer version under its name while it is being uploaded.
        self._opened = {}

    @property
    def path(self):
        return self.store.path

    def _path(self, section, name=''):
        return os.path.join(self.store.path, section, name)

    @contextlib.contextmanager
    def locked(self):
        path = os.path.join(self.path, LOCK_FILE)
        try:
            lock = zc.lockfile.LockFile(path, content_template='{pid}')
        except zc.lockfile.LockError as e:
            raise self._busy(path) from e
        except OSError as e:
            raise LocalFileError(
                f'Cannot lock spool {self.path}: {e.strerror or e}') from e
        try:
            yield
        finally:
            lock.close()

    def check_free(self):
        path = os.path.join(self.path, LOCK_FILE)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return  # Never held.
        except OSError as e:
            raise LocalFileError(
                f'Cannot lock spool {self.path}: {e.strerror or e}') from e
        try:
            # The lock zc.lockfile takes (flock), only tried: shared, and
            # given up with the descriptor. (A run that tries for the spool
            # in that very instant backs off, as from any other run.)
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise self._busy(path) from None
        finally:
            os.close(fd)

    def _busy(self, path):
        return SpoolBusy(
            f'Spool {self.path} is busy: another run holds {path}')

    def waiting(self):
        return [name for name, regular in self._new() if regular]

    def strays(self):
        return [name for name, regular in self._new() if not regular]

    def _new(self):
        """(name, whether it is a regular file) for each entry of new,
        sorted; links are not followed."""
        with reported_as(LocalFileError, f'Cannot list spool {self.path}'):
            with os.scandir(self._path('new')) as entries:
                return sorted((entry.name,
                               entry.is_file(follow_symlinks=False))
                              for entry in entries)

    def open(self, name):
        shown = names.shown(name)
        with reported_as(LocalFileError, f'Cannot read file {shown}'):
            try:
                # Neither a link nor a FIFO (whose open would wait for a
                # writer) may stand in for the file listed.
                fd = os.open(self._path('new', name),
                             os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError as e:
                if e.errno != errno.ELOOP:
                    raise
                fd = None
            info = None if fd is None else os.fstat(fd)
            if info is None or not stat.S_ISREG(info.st_mode):
                if fd is not None:
                    os.close(fd)
                raise NotARegularFile(shown)
            self._opened[name] = _identity(info)
            # Unbuffered: the transfer reads in large chunks anyway, and a
            # buffer would cost a terminal check, a seek and one more read
            # per file.
            return os.fdopen(fd, 'rb', buffering=0)

    def publishing(self, name):
        with reported_as(LocalFileError, 'Cannot journal the export of '
                         f'file {names.shown(name)}'):
            self._publishing.note(name, self._opened.get(name)
                                  or self._identity('new', name))

    def _identity(self, section, name):
        return _identity(os.stat(self._path(section, name)))

    def published(self):
        with reported_as(LocalFileError, 'Cannot read or tidy the export '
                         f'journal of spool {self.path}'):
            return self._publishing.keep(self._unchanged)

    def _unchanged(self, name, identity):
        """Whether the file ``name`` in new has ``identity``."""
        try:
            return identity == self._identity('new', name)
        except FileNotFoundError:
            return False  # moved to cur already

    def unpublished(self, name):
        with reported_as(LocalFileError, 'Cannot clear the export journal '
                         f'entry of file {names.shown(name)}'):
            self._publishing.drop(name)

    def mark_exported(self, name):
        opened = self._opened.pop(name, None)
        with reported_as(LocalFileError, f'Cannot move file '
                         f"{names.shown(name)} from 'new' to 'cur'"):
            self.store.move(name, 'new', 'cur')
            exported = (opened is None
                        or self._identity('cur', name) == opened)
            if not exported:
                # Moved is a newer version, put into new during the upload
                # of the one opened: back it goes, for the next run, unless
                # an even newer one is there by now (then that one goes).
                cur, new = self._path('cur', name), self._path('new', name)
                with contextlib.suppress(FileExistsError):
                    os.link(cur, new)
                os.remove(cur)
        try:
            self._publishing.settled(name)
        except OSError as e:
            # The file is where it belongs; only a file put back into new
            # unchanged would be taken for delivered.
            log.warning('Cannot clear the export journal entry of file %s '
                        '(%s); the next run does', names.shown(name),
                        e.strerror or e)
        return exported

    @contextlib.contextmanager
    def receiving(self, name):
        path = self._path('tmp', name)
        with reported_as(LocalFileError,
                         f'Cannot create file {names.shown(name)} in tmp'):
            f = open(path, 'wb')
        try:
            with reported_as(LocalFileError,
                             f'Cannot receive file {names.shown(name)}'):
                with f:
                    yield f
        except BaseException:
            remove_quietly(path)
            raise

    def deliver(self, received):
        if not received:
            return []
        replaced = []
        with reported_as(LocalFileError, 'Cannot deliver files to new'):
            _sync_files([self._path('tmp', name) for name in received])
            # From their entries on the files count as delivered, see
            # received(); one sync of the journal for all of them.
            self._journal.note_all(
                {name: identity or b'' for name, identity in received.items()})
            for name in received:
                if os.path.lexists(self._path('new', name)):
                    replaced.append(name)
                self.store.move(name, 'tmp', 'new')
            fsync_directory(self._path('new'))
        return replaced

    def received(self):
        with reported_as(LocalFileError, 'Cannot finish the deliveries '
                         f'journalled in spool {self.path}'):
            journalled = {name: self._journal.read(name) or None
                          for name in self._journal.names()}
            for name in journalled:
                if os.path.exists(self._path('tmp', name)):
                    self.store.move(name, 'tmp', 'new')
                    fsync_directory(self._path('new'))
                    log.warning("Finished moving file %s from 'tmp' to "
                                "'new' for an interrupted run",
                                names.shown(name))
        return journalled

    def forget(self, names):
        with reported_as(LocalFileError,
                         'Cannot clear journal entries of delivered files'):
            self._journal.forget_all(names)

    def _memory(self, key):
        # Keys are any text; a digest makes a safe file name of each.
        digest = hashlib.sha256(key.encode('utf-8', 'surrogateescape'))
        return os.path.join(self.path, MEMORY, digest.hexdigest())

    def remembered(self, key):
        with reported_as(LocalFileError, 'Cannot read what earlier runs '
                         f'kept in spool {self.path}'):
            try:
                with open(self._memory(key), 'rb') as f:
                    return f.read()
            except FileNotFoundError:
                return None

    def remember(self, key, data, durable=True):
        with reported_as(LocalFileError, 'Cannot keep what this run '
                         f'learned in spool {self.path}'):
            write_atomically(self._memory(key), data, durable)


class Journal:
    """A folder with one file per journalled name, holding a few bytes
    about it.

    A durable journal has every change on disk (fsynced) before a method
    returns; any journal's changes survive the process being killed.
    """

    def __init__(self, path, durable=True):
        self.path = path
        self.durable = durable
        # Whether the folder is known to be there: it is made once, and
        # no run removes it.
        self._made = False

    def _sync(self, folder):
        if self.durable:
            fsync_directory(folder)

    def names(self):
        """The journalled names, sorted."""
        try:
            return sorted(os.listdir(self.path))
        except FileNotFoundError:
            return []

    def _write(self, name, data):
        """The entry ``name`` with ``data`` (not synced: see note_all)."""
        fd = os.open(os.path.join(self.path, name),
                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def _make(self):
        if self._made or os.path.isdir(self.path):
            self._made = True
            return
        try:
            os.mkdir(self.path)
        except FileExistsError:
            pass  # made by another connection's thread just now
        else:
            self._sync(os.path.dirname(self.path))
        self._made = True

    def read(self, name):
        """The data journalled with ``name``."""
        with open(os.path.join(self.path, name), 'rb') as f:
            return f.read()

    def note_all(self, entries):
        """Journal each name of the dict ``entries`` with its few bytes of
        data; one sync for all."""
        if not entries:
            return
        self._make()
        for name, data in entries.items():
            self._write(name, data)
        # Only the entries themselves wait for the disk, not their data: a
        # power cut may leave an entry empty, and an empty entry counts as
        # "not known" (a delivery told apart by its name alone), never as
        # another file's. A second sync per batch would cost more.
        self._sync(self.path)

    def forget_all(self, names):
        """Remove ``names`` from the journal; one sync for all."""
        removed = False
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(self.path, name))
                removed = True
        if removed:
            self._sync(self.path)


class NoteLog:
    """The export journal: a note per name that is complete on the CDS
    under its temporary name and about to get its final one, as a line
    appended to one file, ``identity TAB name``; a line ``- TAB name``
    clears the note.

    A line costs one write, where a file per note cost the spool's file
    system a create and a remove for every file exported. A note counts
    only while its file is in ``new`` unchanged (see ``keep``); the log
    is removed once no note of it is open.

    Lines are written whole or not at all (a short write on a full disk
    is taken back), so a killed process leaves them whole. Nothing waits
    for the disk but the clearing of a note whose temporary upload is
    about to be removed (``drop``, a refusal), which would otherwise be
    taken for renamed. A power cut may lose other lines: a note costs a
    second upload of its file; a clearing by ``settled``, only where the
    very file is put back into ``new`` right after, that it is taken for
    delivered.

    Names of exported files hold no line break and no NUL (see
    delivery.refusal), so a line holds one note. The journal of 0.1, a
    folder with a file per name (``legacy``, a Journal), is read as notes
    that came first, and emptied.
    """

    def __init__(self, path, legacy):
        self.path = path
        self._legacy = legacy
        # The name of a tidied log on its way, before some letters.
        self._temporary = '.' + os.path.basename(path) + '.'
        # The names with a note that counts; all of them once ``keep``
        # has read the log.
        self._open = set()
        self._read = False
        self._lock = threading.Lock()

    def note(self, name, identity):
        with self._lock:
            self._append(identity, name)
            self._open.add(name)

    def drop(self, name):
        """Clear the note of ``name``, on disk before this returns."""
        with self._lock:
            self._append(b'-', name, durable=True)
            self._open.discard(name)

    def settled(self, name):
        """``name`` is exported: its note is cleared, and once no note is
        open, the log goes."""
        with self._lock:
            self._open.discard(name)
            if self._read and not self._open:
                remove_quietly(self.path)
            else:
                # A file put back into new unchanged must not find it.
                self._append(b'-', name)

    def _append(self, tag, name, durable=False):
        line = _line(tag, name)
        # Opened for each line: a spool object may be dropped at any time
        # (zeit.cms makes one per run), and leaves no descriptor open.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                     0o644)
        try:
            # Only this process appends (the spool is held), and its
            # threads take turns: the line starts where the file ends.
            start = os.lseek(fd, 0, os.SEEK_END)
            if os.write(fd, line) != len(line):
                # A full disk: no part line may join the next one.
                os.ftruncate(fd, start)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)

    def keep(self, counts):
        """The noted names for which ``counts(name, identity)`` holds,
        sorted; the log keeps only their notes."""
        with self._lock:
            legacy = self._legacy.names()
            try:
                with open(self.path, 'rb') as f:
                    logged = f.read()
            except FileNotFoundError:
                logged = b''
            notes = _notes({name: self._legacy.read(name)
                            for name in legacy}, logged)
            kept = {name: identity for name, identity in notes.items()
                    if counts(name, identity)}
            tidy = b''.join(_line(identity, name)
                            for name, identity in sorted(kept.items()))
            if not kept:
                remove_quietly(self.path)
            elif tidy != logged or legacy:
                # Also a line cut short at the end goes, before another
                # is appended to it. The notes of 0.1, removed next, are
                # on disk here first.
                write_atomically(self.path, tidy, durable=bool(legacy),
                                 mode=0o644, prefix=self._temporary)
            # What a tidying killed on its way left.
            folder = os.path.dirname(self.path)
            for name in os.listdir(folder):
                if name.startswith(self._temporary):
                    remove_quietly(os.path.join(folder, name))
            self._legacy.forget_all(legacy)
            self._open = set(kept)
            self._read = True
        return sorted(kept)


def _line(tag, name):
    """A line of the export journal: a note's identity, or ``-``."""
    return tag + b'\t' + os.fsencode(name) + b'\n'


def _notes(notes, logged):
    """The notes that count, by name: ``notes`` (of the legacy folder),
    changed by the log's lines (bytes ``logged``) one by one."""
    lines = logged.split(b'\n')
    # The last is empty, or cut short by a power cut: not a note.
    for line in lines[:-1]:
        tag, tab, name = line.partition(b'\t')
        if not tab:
            continue
        if tag == b'-':
            notes.pop(os.fsdecode(name), None)
        else:
            notes[os.fsdecode(name)] = tag
    return notes


def _identity(info):
    """What tells a file (``info``, its stat) from a newer one of the same
    name: inode, size and modification time."""
    return f'{info.st_ino} {info.st_size} {info.st_mtime_ns}'.encode()


def _sync_files(paths):
    """Have the files ``paths`` (in one folder) on disk."""
    fd = os.open(os.path.dirname(paths[0]), os.O_RDONLY | os.O_DIRECTORY)
    try:
        # One syncfs(2) for the whole file system costs less than an
        # fsync(2) per file; where there is none, fsync each.
        if _syncfs is not None and _syncfs(fd) == 0:
            return
    finally:
        os.close(fd)
    for path in paths:
        fsync(path)


def _find_syncfs():
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (AttributeError, OSError):
        return None


_syncfs = _find_syncfs()
