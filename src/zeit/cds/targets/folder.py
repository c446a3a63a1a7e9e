"""A remote target that is a folder: a local disk or a CDS share mounted
over NFS. It follows the same rules as FTP: uploads appear under their
final name only when complete, and the CDS lock files are honoured by the
same protocol code."""
import contextlib
import datetime
import os
import shutil

import zope.interface

from zeit.cds import names
from zeit.cds.interfaces import IRemoteTarget
from zeit.cds.interfaces import IRemoteTargetFactory
from zeit.cds.interfaces import LocalFileError
from zeit.cds.interfaces import RemoteDirectoryError
from zeit.cds.interfaces import TransferError
from zeit.cds.oserrors import reported_as

CHUNK_SIZE = 1024 * 1024


@zope.interface.implementer(IRemoteTarget)
@zope.interface.provider(IRemoteTargetFactory)
class FileTarget:
    """The folder ``directory``; host, port, user and password are not
    used and may be None."""

    # A mounted share is as fast as a disk; nothing to count.
    progress = None

    def __init__(self, *, directory, host=None, port=None, user=None,
                 password=None):
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

    def upload_all(self, files, before_publish=None):
        results = {}
        complete = []
        for name, open_file in files:
            try:
                with open_file() as f:
                    complete.append((name, self._store_partial(name, f)))
            except (LocalFileError, TransferError) as e:
                results[name] = e
        if complete and before_publish is not None:
            before_publish([name for name, size in complete])
        for name, size in complete:
            try:
                with reported_as(TransferError, f'Cannot upload file {name}'):
                    os.rename(self._path(names.partial_name(name)),
                              self._path(name))
            except TransferError as e:
                self._discard(name)
                results[name] = e
            else:
                results[name] = size
        return results

    def _store_partial(self, name, fileobj):
        partial = self._path(names.partial_name(name))
        expected = os.fstat(fileobj.fileno()).st_size
        try:
            with reported_as(TransferError, f'Cannot upload file {name}'):
                with open(partial, 'wb') as f:
                    shutil.copyfileobj(fileobj, f, CHUNK_SIZE)
                    f.flush()
                    os.fsync(f.fileno())
                self._check_size(name, expected)
        except TransferError:
            self._discard(name)
            raise
        return expected

    def _discard(self, name):
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._path(names.partial_name(name)))

    def finish_upload(self, name, size):
        with reported_as(TransferError, f'Cannot finish uploading {name}'):
            try:
                self._check_size(name, size)
            except FileNotFoundError:
                return False  # It was renamed already.
            os.rename(self._path(names.partial_name(name)), self._path(name))
        return True

    def _check_size(self, name, expected):
        actual = os.path.getsize(self._path(names.partial_name(name)))
        if actual != expected:
            self._discard(name)
            raise TransferError(
                f'Cannot upload file {name}: the folder has {actual} '
                f'of {expected} bytes')

    def download(self, name, fileobj):
        with reported_as(TransferError, f'Cannot download file {name}'):
            with open(self._path(name), 'rb') as f:
                shutil.copyfileobj(f, fileobj, CHUNK_SIZE)
                return f.tell()

    def read(self, name):
        with reported_as(TransferError, f'Cannot read file {name}'):
            with open(self._path(name), 'rb') as f:
                return f.read()

    def modified(self, name):
        with reported_as(TransferError, f'Cannot get the time of {name}'):
            stamp = os.stat(self._path(name)).st_mtime
        return datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc)

    def write(self, name, data):
        with reported_as(TransferError, f'Cannot store file {name}'):
            with open(self._path(name), 'wb') as f:
                f.write(data)

    def remove(self, name):
        with reported_as(TransferError, f'Cannot remove file {name}'):
            os.remove(self._path(name))

    def remove_all(self, names):
        results = {}
        for name in names:
            try:
                self.remove(name)
            except TransferError as e:
                results[name] = e
            else:
                results[name] = None
        return results

    def close(self):
        pass
