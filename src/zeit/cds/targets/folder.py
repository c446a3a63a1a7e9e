"""A remote target that is a folder: a local disk or a CDS share mounted
over NFS. The delivery protocol and the CDS lock protocol work on it as on
FTP; it creates lock files exclusively (O_EXCL)."""
import datetime
import os
import shutil
import stat

import zope.interface

from zeit.cds.interfaces import IRemoteTarget
from zeit.cds.interfaces import IRemoteTargetFactory
from zeit.cds.interfaces import NoSuchFile
from zeit.cds.interfaces import RemoteDirectoryError
from zeit.cds.interfaces import RemoteExists
from zeit.cds.interfaces import TransferError
from zeit.cds.oserrors import reported_as

CHUNK_SIZE = 1024 * 1024


@zope.interface.implementer(IRemoteTarget)
@zope.interface.provider(IRemoteTargetFactory)
class FileTarget:
    """The folder ``directory``; host, port, user, password and timeout
    are not used and may be None."""

    # A mounted share is as fast as a disk; nothing to count.
    progress = None

    # See IRemoteTargetFactory: no options of its own, no server to log
    # in to.
    options = None
    login = False

    def __init__(self, *, directory, host=None, port=None, user=None,
                 password=None, timeout=None):
        self.directory = directory

    @property
    def description(self):
        return f'folder {self.directory}'

    def __repr__(self):
        return f'<FileTarget {self.directory}>'

    def another(self):
        return type(self)(directory=self.directory)

    def _path(self, name):
        return os.path.join(self.directory, name)

    def _open(self, name, mode):
        """The file ``name`` opened in ``mode`` ('rb', 'wb'); a link in the
        share is not followed, whoever put it there."""
        flags = {'rb': os.O_RDONLY,
                 'wb': os.O_WRONLY | os.O_CREAT | os.O_TRUNC}[mode]
        return os.fdopen(
            os.open(self._path(name), flags | os.O_NOFOLLOW, 0o644), mode)

    def connect(self):
        if not os.path.isdir(self.directory):
            raise RemoteDirectoryError(
                f'Cannot enter directory {self.directory}: not a directory')

    def names(self):
        with reported_as(RemoteDirectoryError,
                         f'Cannot list directory {self.directory}'):
            with os.scandir(self.directory) as entries:
                return sorted(entry.name for entry in entries
                              if entry.is_file(follow_symlinks=False))

    def present(self, names):
        found = {}
        with reported_as(RemoteDirectoryError,
                         f'Cannot look for files in {self.directory}'):
            for name in names:
                try:
                    info = os.lstat(self._path(name))
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(info.st_mode):
                    found[name] = datetime.datetime.fromtimestamp(
                        info.st_mtime, datetime.timezone.utc)
        return found

    def store(self, name, fileobj):
        with reported_as(TransferError, f'Cannot store file {name}'):
            with self._open(name, 'wb') as f:
                shutil.copyfileobj(fileobj, f, CHUNK_SIZE)
                f.flush()
                # On a share, the size check must see what the server has.
                os.fsync(f.fileno())

    def sizes(self, names):
        return {name: self._size(name) for name in names}

    def _size(self, name):
        try:
            return os.path.getsize(self._path(name))
        except FileNotFoundError as e:
            return NoSuchFile(f'No file {name}: {e.strerror}', e.strerror)
        except OSError as e:
            return TransferError(
                f'Cannot get the size of {name}: {e.strerror}', e.strerror)

    def identities(self, names):
        return {name: self._identity(name) for name in names}

    def _identity(self, name):
        try:
            info = os.stat(self._path(name))
        except OSError:
            return None
        return f'size {info.st_size} modified {info.st_mtime_ns}'.encode()

    def rename_all(self, pairs):
        return {old: self._each(f'Cannot rename {old} to {new}', os.rename,
                                self._path(old), self._path(new))
                for old, new in pairs}

    def remove_all(self, names):
        return {name: self._each(f'Cannot remove file {name}', os.remove,
                                 self._path(name))
                for name in names}

    def _each(self, message, operation, *paths):
        """None when ``operation(*paths)`` worked, else its TransferError
        (NoSuchFile where there is no such file)."""
        try:
            operation(*paths)
        except FileNotFoundError as e:
            return NoSuchFile(f'{message}: {e.strerror}', e.strerror)
        except OSError as e:
            reason = e.strerror or str(e)
            return TransferError(f'{message}: {reason}', reason)
        return None

    def download(self, name, fileobj):
        with reported_as(TransferError, f'Cannot download file {name}'):
            with self._open(name, 'rb') as f:
                shutil.copyfileobj(f, fileobj, CHUNK_SIZE)
                return f.tell()

    def read(self, name):
        with reported_as(TransferError, f'Cannot read file {name}'):
            with self._open(name, 'rb') as f:
                return f.read()

    def create(self, name, data):
        with reported_as(TransferError, f'Cannot create file {name}'):
            try:
                fd = os.open(self._path(name),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError as e:
                raise RemoteExists(f'Cannot create file {name}: it exists',
                                   'it exists') from e
            with os.fdopen(fd, 'wb') as f:
                f.write(data)

    def modified(self, name):
        with reported_as(TransferError, f'Cannot get the time of {name}'):
            stamp = os.stat(self._path(name)).st_mtime
        return datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc)

    def close(self):
        pass
