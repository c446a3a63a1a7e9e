"""A CDS in memory, for the tests of an application that exports or
imports (``testing.zcml`` registers it): no server, no folder, nothing
left behind.

``MemoryCDS`` is the IRemoteTargetFactory; its targets share its
directories, so what one run exports the next one can import, within the
process. A registration makes a new one, so a test layer that loads the
ZCML afresh starts with an empty CDS.
"""
import collections
import datetime
import itertools
import threading

import zope.interface

from zeit.cds.interfaces import ConnectionLost
from zeit.cds.interfaces import IRemoteTarget
from zeit.cds.interfaces import IRemoteTargetFactory
from zeit.cds.interfaces import NoSuchFile
from zeit.cds.interfaces import RemoteExists

CHUNK_SIZE = 64 * 1024

# A file in memory; ``serial`` tells it from any file stored before.
_File = collections.namedtuple('_File', ['data', 'modified', 'serial'])


@zope.interface.implementer(IRemoteTargetFactory)
class MemoryCDS:
    """Directories of files in memory; ``files(directory)`` shows one."""

    # See IRemoteTargetFactory: no options of its own, no server to log
    # in to.
    options = None
    login = False

    def __init__(self):
        self._directories = {}
        # Several connections of a run work at once.
        self._lock = threading.Lock()
        self._serials = itertools.count()

    def _file(self, data):
        """A new _File of ``data``; under the lock."""
        return _File(data, datetime.datetime.now(datetime.timezone.utc),
                     next(self._serials))

    def __call__(self, *, directory='/', **ignored):
        # Host, user, password and timeout have nothing to do here.
        return MemoryTarget(self, directory)

    def files(self, directory='/'):
        """A copy of the files in ``directory``: a dict of name to bytes."""
        with self._lock:
            return {name: file.data for name, file
                    in self._directories.get(directory, {}).items()}

    def clear(self):
        """Forget every directory and file."""
        with self._lock:
            self._directories.clear()


@zope.interface.implementer(IRemoteTarget)
class MemoryTarget:
    """One directory of a MemoryCDS."""

    progress = None

    def __init__(self, cds, directory):
        self._cds = cds
        self.directory = directory
        self._files = None

    description = 'memory'

    def __repr__(self):
        return f'<MemoryTarget {self.directory}>'

    def another(self):
        return type(self)(self._cds, self.directory)

    def connect(self):
        with self._cds._lock:
            self._files = self._cds._directories.setdefault(
                self.directory, {})

    def close(self):
        self._files = None

    def _session(self):
        if self._files is None:
            raise ConnectionLost('Not connected to the memory CDS')
        return self._files

    def names(self):
        with self._cds._lock:
            return sorted(self._session())

    def present(self, names):
        with self._cds._lock:
            files = self._session()
            return {name: files[name].modified for name in names
                    if name in files}

    def store(self, name, fileobj):
        chunks = []
        while chunk := fileobj.read(CHUNK_SIZE):
            chunks.append(chunk)
            if self.progress is not None:
                self.progress(len(chunk))
        data = b''.join(chunks)
        with self._cds._lock:
            self._session()[name] = self._cds._file(data)

    def _get(self, name):
        with self._cds._lock:
            try:
                return self._session()[name]
            except KeyError:
                raise NoSuchFile(f'No file {name}', 'no such file') from None

    def sizes(self, names):
        return {name: self._each(lambda name: len(self._get(name).data), name)
                for name in names}

    def identities(self, names):
        found = {}
        for name in names:
            try:
                file = self._get(name)
            except NoSuchFile:
                found[name] = None
            else:
                found[name] = f'serial {file.serial}'.encode()
        return found

    def rename_all(self, pairs):
        return {old: self._each(self._rename, old, new) for old, new in pairs}

    def _rename(self, old, new):
        with self._cds._lock:
            files = self._session()
            if old not in files:
                raise NoSuchFile(f'No file {old}', 'no such file')
            files[new] = files.pop(old)

    def remove_all(self, names):
        return {name: self._each(self._remove, name) for name in names}

    def _remove(self, name):
        with self._cds._lock:
            if self._session().pop(name, None) is None:
                raise NoSuchFile(f'No file {name}', 'no such file')

    def _each(self, operation, *args):
        """What ``operation(*args)`` returns, or its NoSuchFile."""
        try:
            return operation(*args)
        except NoSuchFile as e:
            return e

    def download(self, name, fileobj):
        data = self.read(name)
        fileobj.write(data)
        return len(data)

    def read(self, name):
        return self._get(name).data

    def create(self, name, data):
        with self._cds._lock:
            files = self._session()
            if name in files:
                raise RemoteExists(f'Cannot create file {name}: it exists',
                                   'it exists')
            files[name] = self._cds._file(data)

    def modified(self, name):
        return self._get(name).modified
