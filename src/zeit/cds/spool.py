"""The default spool: a gocept.filestore folder."""
import contextlib
import os

import gocept.filestore.interfaces
import zc.lockfile
import zope.component
import zope.interface

from zeit.cds.interfaces import ISpool
from zeit.cds.interfaces import LocalFileError
from zeit.cds.interfaces import SpoolBusy

# Beside tmp/new/cur, where gocept.filestore never looks.
LOCK_FILE = 'cds.lock'


@zope.component.adapter(gocept.filestore.interfaces.IFileStore)
@zope.interface.implementer(ISpool)
class FileStoreSpool:

    def __init__(self, store):
        self.store = store

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
            raise SpoolBusy(
                f'Spool {self.path} is busy: another run holds {path}'
            ) from e
        except OSError as e:
            raise LocalFileError(
                f'Cannot lock spool {self.path}: {e.strerror}') from e
        try:
            yield
        finally:
            lock.close()

    def waiting(self):
        try:
            return sorted(os.listdir(self._path('new')))
        except OSError as e:
            raise LocalFileError(
                f'Cannot list spool {self.path}: {e.strerror}') from e

    def open(self, name):
        try:
            return open(self._path('new', name), 'rb')
        except OSError as e:
            raise LocalFileError(
                f'Cannot read file {name}: {e.strerror}') from e

    def mark_exported(self, name):
        try:
            self.store.move(name, 'new', 'cur')
        except OSError as e:
            raise LocalFileError(
                f"Cannot move file {name} from 'new' to 'cur': "
                f'{e.strerror}') from e

    @contextlib.contextmanager
    def receiving(self, name):
        path = self._path('tmp', name)
        try:
            f = open(path, 'wb')
        except OSError as e:
            raise LocalFileError(
                f'Cannot create file {name} in tmp: {e.strerror}') from e
        try:
            with f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            self.store.move(name, 'tmp', 'new')
            _fsync_directory(self._path('new'))
        except OSError as e:
            _remove_quietly(path)
            raise LocalFileError(
                f'Cannot receive file {name}: {e.strerror}') from e
        except BaseException:
            _remove_quietly(path)
            raise


def _remove_quietly(path):
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _fsync_directory(path):
    # A rename is durable only once the directory itself is on disk.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
