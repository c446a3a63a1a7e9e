"""SFTP: a directory on an SSH server (OpenSSH's ``internal-sftp`` or
``sftp-server``), through asyncssh.

The server's host key must be in a known_hosts file; an unknown or
changed key ends the connect before the user name, a password or a key
is sent (HostKeyError, naming the host and the key's fingerprint). There
is no trust on first use.

What SFTP offers beyond FTP:
- ``create`` opens with O_CREAT|O_EXCL: a lock file is created
  exclusively.
- ``rename_all`` uses ``posix-rename@openssh.com``: atomic, and it
  replaces the final name. A server without it, or that denies it, gets
  the plain SFTP rename, which never replaces a file: publishing a name
  that exists fails for that file, which stays waiting, and no content
  is lost or shown partial.
- ``store`` ends with ``fsync@openssh.com`` where the server offers it
  and does not deny it, so the size check sees what is on the server's
  disk. Any other refusal of it fails the file.
- ``names`` lists with attributes: size and time come with the names.

Its factory is ``zeit.cds.targets.sftpfactory.make_sftp_target``, which
imports this module only for a run over SFTP. asyncssh runs on an event
loop; each primitive waits for its coroutine there
(``zeit.cds.targets.background``), and sends a batch's requests at once
instead of one after another: ``store_all`` (``IBatchStore``) opens,
writes and closes a batch's files together, with a bounded number of
bytes on their way (``_InFlight``). asyncssh's errors are translated into
zeit.cds's exception family in ``_translated`` and nowhere else.
"""
import asyncio
import collections
import contextlib
import copy
import datetime
import io
import logging
import os
import posixpath
import threading

import asyncssh
import zope.interface

from zeit.cds import connection
from zeit.cds.interfaces import AuthenticationError
from zeit.cds.interfaces import ConnectError
from zeit.cds.interfaces import ConnectionLost
from zeit.cds.interfaces import HostKeyError
from zeit.cds.interfaces import IBatchStore
from zeit.cds.interfaces import LocalFileError
from zeit.cds.interfaces import NoAnswer
from zeit.cds.interfaces import NoSuchFile
from zeit.cds.interfaces import RemoteDirectoryError
from zeit.cds.interfaces import RemoteError
from zeit.cds.interfaces import RemoteExists
from zeit.cds.interfaces import SettingsError
from zeit.cds.interfaces import TransferError
from zeit.cds.oserrors import reported_as
from zeit.cds.targets import background
from zeit.cds.targets.ftp import _ensure_host_name
from zeit.cds.targets.ftp import _printable

# asyncssh sends a large write or read as parallel requests by itself;
# a second such chunk on its way keeps the channel busy between them
# (benchmarks/sftp.py: 256 KiB x 8 and 512 KiB x 4 were no faster, and
# held more memory).
CHUNK_SIZE = 1024 * 1024
CHUNKS_AHEAD = 2
# AES-GCM first: with AES-NI, twice as fast here as asyncssh's first
# choice ChaCha20-Poly1305 (measured: 256 MiB in 1.7 s instead of 3.5 s);
# then asyncssh's defaults, for servers without it.
ENCRYPTION = '^aes128-gcm@openssh.com,aes256-gcm@openssh.com'
DEFAULT_KNOWN_HOSTS = '~/.ssh/known_hosts'
PASSPHRASE_VARIABLE = 'CDS_PASSPHRASE'

# asyncssh tells every step of a connection at INFO; a run's lines are the
# same for every protocol (see CONTRACT), its errors come as CDSErrors.
logging.getLogger('asyncssh').setLevel(logging.WARNING)
log = logging.getLogger(__name__)


def _reason(error):
    return _printable(getattr(error, 'reason', None) or error) or (
        'connection closed by the server')


class _HostKeyWitness(asyncssh.SSHClient):
    """Notes the host key a server offered that known_hosts does not
    trust, for the error message."""

    offered = None

    def validate_host_public_key(self, host, addr, port, key):
        self.offered = key
        return False


def _identity(attrs):
    return f'size {attrs.size} modified {attrs.mtime}'.encode()


@zope.interface.implementer(IBatchStore)
class SFTPTarget:
    """A directory on an SFTP server.

    Keyword-only options:
    - ``host``, ``port``: where the server listens.
    - ``user``; ``password`` (None to log in with a key only) and/or
      ``key_file``, a private key in OpenSSH's or PEM format, with its
      ``passphrase`` where it is encrypted: given, or read from
      ``passphrase_file``, or else from the environment variable
      CDS_PASSPHRASE. Neither secret is ever shown.
    - ``directory``: the CDS directory on the server.
    - ``timeout``: seconds to wait for any answer, so a run never hangs.
    - ``known_hosts``: the file of trusted host keys (OpenSSH's format);
      ``~/.ssh/known_hosts`` by default. Read anew by every connect.

    Raises SettingsError at once when the key cannot be used.
    """

    creates_exclusively = True

    def __init__(self, *, host, port=22, user, password=None, directory='/',
                 timeout=60, key_file=None, passphrase=None,
                 passphrase_file=None, known_hosts=None):
        self.host = host
        self.port = port
        self.user = user
        self._password = password
        self.directory = directory
        self.timeout = timeout
        self.key_file = key_file
        if key_file is not None and passphrase is None:
            passphrase = _passphrase(passphrase_file)
        self._keys = None if key_file is None else [
            _private_key(key_file, passphrase)]
        self.known_hosts = os.path.expanduser(
            known_hosts or DEFAULT_KNOWN_HOSTS)
        self.progress = None
        self._connection = None
        self._sftp = None
        # Whether the server left a wait unanswered (see _translated).
        self._silent = False
        # What the server lacks, learned once per run (shared by twins,
        # which learn it from their own threads).
        self._lacks = set()
        self._learning = threading.Lock()
        # The identities of the files of the last listing.
        self._listed = {}

    @property
    def description(self):
        return f'host {self.host}, port {self.port}, user {self.user}, SFTP'

    def __repr__(self):
        return f'<SFTPTarget {self.description}, directory {self.directory}>'

    def another(self):
        twin = copy.copy(self)
        twin._connection = twin._sftp = None
        twin._silent = False
        twin._listed = {}
        return twin

    def _path(self, name):
        # Bytes: names that are not UTF-8 go over the wire as they are.
        return os.fsencode(posixpath.join(self.directory, name))

    def _call(self, coroutine):
        return background.call(coroutine, self.timeout)

    @contextlib.contextmanager
    def _translated(self, refused, message, broken=ConnectionLost):
        """Raise ``refused`` when the server refuses a request (NoSuchFile
        where there is no such file), ``broken`` when the session fails,
        and NoAnswer when the server does not answer in time."""
        try:
            yield
        except asyncssh.SFTPNoSuchFile as e:
            error = NoSuchFile if issubclass(NoSuchFile, refused) else refused
            raise error(f'{message}: {_reason(e)}', _reason(e)) from e
        except (asyncssh.SFTPConnectionLost,
                asyncssh.SFTPNoConnection) as e:
            raise broken(f'{message}: {_reason(e)}', _reason(e)) from e
        except asyncssh.SFTPError as e:
            raise refused(f'{message}: {_reason(e)}', _reason(e)) from e
        except TimeoutError as e:
            # Before OSError, of which it is one. The server is silent:
            # the session is closed without waiting for it.
            self._silent = True
            reason = f'no answer within {self.timeout:g} s'
            raise NoAnswer(f'{message}: {reason}', reason) from e
        except (asyncssh.Error, OSError, EOFError) as e:
            # asyncssh's disconnects and channel failures, socket errors.
            raise broken(f'{message}: {_reason(e)}', _reason(e)) from e

    def connect(self):
        message = (f'Cannot connect to CDS SFTP server at {self.host} port '
                   f'{self.port}')
        _ensure_host_name(self.host, message)
        trusted = _known_hosts(self.known_hosts)
        witness = _HostKeyWitness()
        try:
            with self._translated(
                    ConnectError, message, broken=ConnectError):
                try:
                    self._connection = self._call(asyncssh.connect(
                        self.host, self.port, username=self.user,
                        password=self._password, client_keys=self._keys,
                        known_hosts=trusted, client_factory=lambda: witness,
                        # Nothing but these settings: no agent, no
                        # ~/.ssh/config, no keys found lying around.
                        agent_path=None, config=None,
                        encryption_algs=ENCRYPTION,
                        connect_timeout=self.timeout,
                        login_timeout=self.timeout))
                except asyncssh.HostKeyNotVerifiable as e:
                    raise self._untrusted(witness.offered, trusted) from e
                except asyncssh.PermissionDenied as e:
                    raise AuthenticationError(
                        f'CDS SFTP server refused login for user '
                        f'{self.user}: {_reason(e)}', _reason(e)) from e
            with self._translated(RemoteError, 'CDS SFTP server refused SFTP'):
                self._sftp = self._call(
                    self._connection.start_sftp_client())
            self._enter()
        except BaseException:
            self.close()
            raise

    def _untrusted(self, key, trusted):
        """The HostKeyError for the host ``key`` that ``trusted`` (the
        known hosts) does not hold."""
        shown = ('unknown key' if key is None else
                 f'{key.get_algorithm()} key {key.get_fingerprint()}')
        known = asyncssh.match_known_hosts(
            trusted, self.host, self.host, self.port)[0]
        why = (f'does not match the key in {self.known_hosts} (changed, '
               'or somebody is in between)' if known else
               f'is not in {self.known_hosts}')
        return HostKeyError(
            f'Host key of CDS SFTP server at {self.host} port {self.port} '
            f'not trusted: {shown} {why}', why)

    def _enter(self):
        with self._translated(RemoteDirectoryError, f'Cannot enter directory '
                         f'{self.directory} on CDS SFTP server'):
            attrs = self._call(self._sftp.stat(self._path('')))
        if attrs.type != asyncssh.FILEXFER_TYPE_DIRECTORY:
            raise RemoteDirectoryError(
                f'Cannot enter directory {self.directory} on CDS SFTP '
                'server: not a directory', 'not a directory')

    def names(self):
        with self._translated(RemoteError, 'Cannot list directory '
                         f'{self.directory} on CDS SFTP server'):
            entries = self._call(self._sftp.readdir(self._path('')))
        files = {os.fsdecode(entry.filename): entry.attrs
                 for entry in entries
                 if entry.attrs.type == asyncssh.FILEXFER_TYPE_REGULAR}
        # Kept for identities(): the listing tells them for free.
        self._listed = {name: _identity(attrs)
                        for name, attrs in files.items()}
        return sorted(files)

    def present(self, names):
        found = {}
        # Not following links, as the listing does not.
        for name, attrs in self._stats(names, 'Cannot look for',
                                       follow_links=False).items():
            if isinstance(attrs, NoSuchFile):
                continue
            if isinstance(attrs, TransferError):
                raise attrs
            if attrs.type == asyncssh.FILEXFER_TYPE_REGULAR:
                found[name] = None if attrs.mtime is None else (
                    datetime.datetime.fromtimestamp(
                        attrs.mtime, datetime.timezone.utc))
        return found

    def _count(self, size):
        if self.progress is not None:
            self.progress(size)

    def store(self, name, fileobj):
        with self._translated(TransferError, f'Cannot store file {name}'):
            # No limit for the whole: the timeout holds for each request.
            background.call(self._write(name, fileobj, _InFlight()))

    def store_all(self, files):
        # The files' requests share the channel, and the memory of one.
        in_flight = _InFlight()
        return self._batch('Cannot store file', {
            name: self._write(name, fileobj, in_flight)
            for name, fileobj in files}, timeout=None)

    async def _answer(self, request):
        """The answer to ``request`` (awaitable), given up after
        ``timeout`` seconds."""
        # A deadline rather than wait_for: no task of its own per request.
        async with asyncio.timeout(self.timeout):
            return await request

    async def _write(self, name, fileobj, in_flight):
        remote = await self._answer(self._sftp.open(self._path(name), 'wb'))
        try:
            await self._send(name, fileobj, remote, in_flight)
            # Flushed to disk and closed in one round trip: the server
            # takes the requests in turn.
            await asyncio.gather(self._fsync(remote),
                                 self._answer(remote.close()))
        finally:
            # After a failure; harmless when closed.
            with contextlib.suppress(asyncssh.Error, OSError):
                await self._answer(remote.close())

    async def _send(self, name, fileobj, remote, in_flight):
        """Write the content of ``fileobj`` into ``remote``, chunk by
        chunk, as many on their way as ``in_flight`` admits."""
        writes = collections.deque()
        offset = 0
        try:
            while True:
                await in_flight.room()
                # A refused chunk ends the file early.
                while writes and writes[0].done():
                    writes.popleft().result()
                with reported_as(LocalFileError, f'Cannot read {name}'):
                    chunk = fileobj.read(CHUNK_SIZE)
                if not chunk:
                    break
                writes.append(in_flight.carry(
                    len(chunk), self._answer(remote.write(chunk, offset))))
                offset += len(chunk)
                self._count(len(chunk))
            await asyncio.gather(*writes)
        except BaseException:
            for write in writes:
                write.cancel()
            raise

    async def _fsync(self, remote):
        if 'fsync' in self._lacks:
            return
        try:
            await self._answer(remote.fsync())
        except (asyncssh.SFTPOpUnsupported, asyncssh.SFTPPermissionDenied):
            # Not offered, or offered and denied all the same: a server's
            # rule, as the file is open for writing. The size check still
            # sees what the server has written. Any other refusal (a full
            # disk, an I/O error) fails the file.
            self._learn('fsync', 'The CDS SFTP server does not flush files '
                        'to its disk (fsync@openssh.com); the size check '
                        'stands for it')

    def _learn(self, lack, told=None):
        """Note that the server lacks ``lack``; the first to learn it
        tells ``told``, if given, once for the run."""
        with self._learning:
            if lack in self._lacks:
                return
            self._lacks.add(lack)
        if told:
            log.info(told)

    def _stats(self, names, message, follow_links=True):
        """For each of ``names`` its SFTPAttrs, or the error that kept
        them; a stat (or lstat) request for each, all sent at once."""
        request = self._sftp.stat if follow_links else self._sftp.lstat

        async def stats():
            return await asyncio.gather(
                *(request(self._path(name)) for name in names),
                return_exceptions=True)
        with self._translated(TransferError, message):
            found = self._call(stats())
        return {name: self._outcome(f'{message} {name}', result)
                for name, result in zip(names, found)}

    def _outcome(self, message, result):
        """``result``, or its TransferError when it is a refusal (or the
        LocalFileError it is); a broken session raises."""
        if not isinstance(result, BaseException):
            return result
        try:
            with self._translated(TransferError, message):
                raise result
        except (TransferError, LocalFileError) as e:
            return e

    def sizes(self, names):
        return {name: found if isinstance(found, TransferError) else
                found.size
                for name, found in self._stats(
                    names, 'Cannot get the size of').items()}

    def identities(self, names):
        known = {name: self._listed.get(name) for name in names}
        ask = [name for name in names if known[name] is None]
        if ask:
            for name, found in self._stats(
                    ask, 'Cannot tell apart').items():
                known[name] = (None if isinstance(found, TransferError)
                               else _identity(found))
        return known

    def _batch(self, message, requests, timeout=True):
        """Send the ``requests`` (a dict of key to coroutine) at once; a
        dict of key to None or the error that kept it (a TransferError,
        or the LocalFileError of a file that could not be read). With
        ``timeout=None``, no limit for the whole: the coroutines limit
        their requests."""
        async def batch():
            return await asyncio.gather(*requests.values(),
                                        return_exceptions=True)
        with self._translated(TransferError, message):
            results = (background.call(batch()) if timeout is None else
                       self._call(batch()))
        return {key: None if result is None else
                self._outcome(f'{message} {key}', result)
                for key, result in zip(requests, results)}

    def rename_all(self, pairs):
        # The plain SFTP rename never replaces a file (see above).
        if 'posix-rename' in self._lacks:
            return self._renamed(pairs, self._sftp.rename)
        try:
            results = self._renamed(pairs, self._sftp.posix_rename)
        except _Unsupported:
            self._learn('posix-rename')
            return self._renamed(pairs, self._sftp.rename)
        denied = [(old, new) for old, new in pairs
                  if _caused_by(results[old], asyncssh.SFTPPermissionDenied)]
        if denied:
            # The server's rule, or the folder's permissions: the plain
            # rename tells which.
            again = self._renamed(denied, self._sftp.rename)
            if any(result is None for result in again.values()):
                self._learn('posix-rename', 'The CDS SFTP server denies '
                            'posix-rename@openssh.com; renaming without it')
            results.update(again)
        return results

    def _renamed(self, pairs, rename):
        results = {}
        requests = {old: rename(self._path(old), self._path(new))
                    for old, new in pairs}
        for old, result in self._batch('Cannot rename', requests).items():
            if _caused_by(result, asyncssh.SFTPOpUnsupported):
                raise _Unsupported()
            results[old] = result
        return results

    def remove_all(self, names):
        return self._batch('Cannot remove file', {
            name: self._sftp.remove(self._path(name)) for name in names})

    def download(self, name, fileobj):
        with self._translated(TransferError, f'Cannot download file {name}'):
            return background.call(self._read(name, fileobj))

    async def _read(self, name, fileobj):
        size = 0
        async with await self._answer(
                self._sftp.open(self._path(name), 'rb')) as remote:
            while chunk := await self._answer(remote.read(CHUNK_SIZE)):
                with reported_as(LocalFileError, f'Cannot write {name}'):
                    fileobj.write(chunk)
                size += len(chunk)
                self._count(len(chunk))
        return size

    def read(self, name):
        buffer = io.BytesIO()
        self.download(name, buffer)
        return buffer.getvalue()

    def create(self, name, data):
        message = f'Cannot create file {name}'
        try:
            with self._translated(TransferError, message):
                remote = self._call(self._sftp.open(self._path(name), 'xb'))
        except NoSuchFile:
            raise
        except TransferError as e:
            # SFTP version 3 has no status for "it exists": look.
            if self._exists(name):
                raise RemoteExists(f'{message}: it exists',
                                   'it exists') from e
            raise
        with self._translated(TransferError, message):
            self._call(self._fill(name, remote, data))

    async def _fill(self, name, remote, data):
        try:
            async with remote:
                await remote.write(data)
                await self._fsync(remote)
        except asyncssh.SFTPError:
            # The file is ours, created just now: no half lock is left.
            with contextlib.suppress(asyncssh.Error):
                await self._sftp.remove(self._path(name))
            raise

    def _exists(self, name):
        found = self._stats([name], 'Cannot look for')[name]
        return not isinstance(found, TransferError)

    def modified(self, name):
        found = self._stats([name], 'Cannot get the time of')[name]
        if isinstance(found, TransferError):
            raise found
        return datetime.datetime.fromtimestamp(
            found.mtime, datetime.timezone.utc)

    def close(self):
        connection, self._connection = self._connection, None
        silent, self._silent = self._silent, False
        self._sftp = None
        if connection is None:
            return
        async def closed():
            # On the loop, as everything that touches the connection.
            if silent:
                connection.abort()  # No good-bye to a silent server.
                return
            connection.close()
            await connection.wait_closed()
        try:
            self._call(closed())
        except (asyncssh.Error, OSError):
            pass  # The session is gone already; nothing is left to tidy.


class _InFlight:
    """The bytes of the writes on their way on one channel, and the room
    for one more chunk: what the data of a transfer costs in memory,
    however many files share the channel."""

    def __init__(self, limit=CHUNK_SIZE * CHUNKS_AHEAD):
        self.limit = limit
        self.size = 0
        self._freed = asyncio.Event()

    async def room(self):
        """Wait until one more chunk fits."""
        while self.size + CHUNK_SIZE > self.limit:
            self._freed.clear()
            await self._freed.wait()

    def carry(self, size, write):
        """The write (awaitable) of ``size`` bytes, as a task that counts
        them until it ends."""
        self.size += size
        task = asyncio.ensure_future(write)
        task.add_done_callback(lambda task: self._free(size))
        return task

    def _free(self, size):
        self.size -= size
        self._freed.set()


class _Unsupported(Exception):
    """The server does not know a request of a batch."""


def _caused_by(result, error):
    """Whether ``result`` of a batch is a refusal told by the server as
    ``error`` (an asyncssh.SFTPError class)."""
    return (isinstance(result, TransferError)
            and isinstance(result.__cause__, error))


def _known_hosts(path):
    """The trusted host keys in the known_hosts file ``path``; none where
    there is no such file."""
    try:
        return asyncssh.read_known_hosts(path)
    except FileNotFoundError:
        return asyncssh.import_known_hosts('')
    except (OSError, ValueError) as e:
        # Not asyncssh's ValueError text: it quotes the line it could not
        # read, which may be a secret (a password file named by mistake).
        reason = (_printable(e.strerror or e) if isinstance(e, OSError)
                  else 'not in the known_hosts format')
        raise SettingsError(
            f'Cannot read known_hosts file {path}: {reason}', reason) from e


def _passphrase(path):
    """The passphrase in the file ``path``, else in CDS_PASSPHRASE; None
    without either (the key may not need one)."""
    if path is None:
        return os.environ.get(PASSPHRASE_VARIABLE)
    return connection.read_secret(path, 'passphrase')


def _private_key(path, passphrase):
    try:
        return asyncssh.read_private_key(path, passphrase)
    except asyncssh.KeyEncryptionError as e:
        raise SettingsError(
            f'Cannot use key file {path}: wrong passphrase or none given',
            'wrong passphrase') from e
    except (OSError, ValueError) as e:
        reason = _printable(getattr(e, 'strerror', None) or e)
        raise SettingsError(
            f'Cannot use key file {path}: {reason}', reason) from e
