"""The default remote target: a directory on an FTP server, via ftplib.

ftplib's errors are translated into zeit.cds's exception family here and
nowhere else (see ``_translated``).
"""
import contextlib
import copy
import datetime
import ftplib
import io
import os

import zope.interface

from zeit.cds import names
from zeit.cds.interfaces import AuthenticationError
from zeit.cds.interfaces import ConnectError
from zeit.cds.interfaces import ConnectionLost
from zeit.cds.interfaces import IRemoteTarget
from zeit.cds.interfaces import IRemoteTargetFactory
from zeit.cds.interfaces import LocalFileError
from zeit.cds.interfaces import RemoteDirectoryError
from zeit.cds.interfaces import RemoteError
from zeit.cds.interfaces import TransferError
from zeit.cds.oserrors import reported_as
from zeit.cds.targets.session import Session

CHUNK_SIZE = 256 * 1024
# Measured against pyftpdlib (benchmarks/): 64 KiB writes outrun both
# larger ones and socket.sendfile, whose bursts the server takes slower.
SEND_SIZE = 64 * 1024


def _printable(text):
    # Server replies are untrusted: keep them on one clean line.
    return ''.join(c if c.isprintable() else ' ' for c in str(text)).strip()


class _DataConnectionBroken(Exception):
    """The data connection failed while the control connection lived on."""


@contextlib.contextmanager
def _translated(refused, message, broken=ConnectionLost):
    """Raise ``refused`` when the server answers with an error reply, and
    ``broken`` when the connection itself fails."""
    try:
        yield
    except (ftplib.error_perm, ftplib.error_temp,
            _DataConnectionBroken) as e:
        raise refused(f'{message}: {_printable(e)}') from e
    except (ftplib.error_reply, ftplib.error_proto) as e:
        raise RemoteError(
            f'{message}: unexpected reply {_printable(e)}') from e
    except (EOFError, OSError) as e:
        reason = _printable(e) or 'connection closed by the server'
        raise broken(f'{message}: {reason}') from e


def _mlsd_files(lines):
    """The names of the plain files in MLSD ``lines`` (RFC 3659)."""
    for line in lines:
        facts, _, name = line.partition(' ')
        types = [fact.partition('=')[2].lower()
                 for fact in facts.split(';')
                 if fact.partition('=')[0].lower() == 'type']
        if types == ['file']:
            yield name


@zope.interface.implementer(IRemoteTarget)
@zope.interface.provider(IRemoteTargetFactory)
class FTPTarget:
    """A directory on an FTP server.

    Keyword-only options:
    - ``host``, ``port``: where the server listens.
    - ``user``, ``password``: the login; the password is never shown.
    - ``directory``: the CDS directory on the server.
    - ``timeout``: seconds to wait for any answer, so a run never hangs.
    """

    def __init__(self, *, host, port=21, user, password, directory='/',
                 timeout=60):
        self.host = host
        self.port = port
        self.user = user
        self._password = password
        self.directory = directory
        self.timeout = timeout
        self._ftp = None
        self._use_mlsd = True
        self.progress = None

    @property
    def description(self):
        return f'host {self.host}, port {self.port}, user {self.user}'

    def __repr__(self):
        return f'<FTPTarget {self.description}, directory {self.directory}>'

    def another(self):
        twin = copy.copy(self)
        twin._ftp = None
        return twin

    def _new_session(self):
        """The ftplib object for one session; FTPS returns its own."""
        return Session(timeout=self.timeout, encoding='utf-8')

    def connect(self):
        self._ftp = self._new_session()
        try:
            with _translated(
                    ConnectError, f'Cannot connect to CDS FTP server at '
                    f'{self.host} port {self.port}', broken=ConnectError):
                self._ftp.connect(self.host, self.port)
            self._log_in()
        except BaseException:
            self.close()
            raise

    def _log_in(self):
        with _translated(
                AuthenticationError,
                f'CDS FTP server refused login for user {self.user}'):
            self._ftp.login(self.user, self._password)
        with _translated(
                RemoteDirectoryError,
                f'Cannot enter directory {self.directory} on CDS FTP server'):
            self._ftp.cwd(self.directory)
        with _translated(RemoteError, 'CDS FTP server refused binary mode'):
            # Once per session; SIZE needs it and transfers keep it.
            self._ftp.voidcmd('TYPE I')

    def names(self):
        with _translated(RemoteError, 'Cannot list directory '
                         f'{self.directory} on CDS FTP server'):
            if self._use_mlsd:
                try:
                    return sorted(_mlsd_files(self._lines('MLSD')))
                except ftplib.error_perm:
                    # Older servers lack MLSD; plain NLST then on.
                    self._use_mlsd = False
            return sorted(name for name in self._lines('NLST')
                          if name not in ('.', '..'))

    def _lines(self, command):
        # ftplib's own listing helpers switch the session to ASCII mode,
        # which would cost a TYPE I before every transfer after them.
        buffer = io.BytesIO()
        self._retrieve(command, buffer)
        # Servers send names as the bytes they have on disk; lines are
        # split on CR/LF only, not on the other breaks str knows. Bytes
        # that are not UTF-8 survive as surrogates, for the importer to
        # refuse, instead of failing the whole listing.
        return [line.decode(self._ftp.encoding, 'surrogateescape')
                for line in buffer.getvalue().splitlines()]

    def _retrieve(self, command, fileobj):
        size = 0
        with self._transfer(command) as data:
            while chunk := data.recv(CHUNK_SIZE):
                with reported_as(LocalFileError, f'Cannot write {command}'):
                    fileobj.write(chunk)
                size += len(chunk)
                self._count(len(chunk))
        return size

    def _count(self, size):
        if self.progress is not None:
            self.progress(size)

    @contextlib.contextmanager
    def _transfer(self, command):
        """The data connection for ``command``, and its final reply.

        When only the data connection fails, the server's reply (usually
        426) tells whether the session is still usable.
        """
        broken = None
        with self._ftp.transfercmd(command) as data:
            try:
                yield data
            except OSError as e:
                broken = e
            except BaseException:
                data.close()
                # Read the transfer's reply, so the session stays in step.
                with contextlib.suppress(ftplib.Error, EOFError, OSError):
                    self._ftp.voidresp()
                raise
        self._ftp.voidresp()
        if broken is not None:
            raise _DataConnectionBroken(
                f'data connection broke: {_printable(broken)}')

    def upload_all(self, files, before_publish=None):
        results = {}
        stored = []
        for name, open_file in files:
            try:
                with _translated(TransferError, f'Cannot upload file {name}'):
                    with open_file() as f:
                        stored.append((name, self._store_partial(name, f)))
            except (LocalFileError, TransferError) as e:
                results[name] = e
        with _translated(TransferError, 'Cannot upload files'):
            complete = self._complete(stored, results)
            if complete and before_publish is not None:
                before_publish([name for name, size in complete])
            self._publish(complete, results)
        return results

    def _store_partial(self, name, fileobj):
        partial = names.partial_name(name)
        try:
            self._store(partial, fileobj)
        except (ftplib.Error, _DataConnectionBroken):
            # Whatever arrived must not block the next attempt (some
            # servers never overwrite a file).
            self._discard(partial)
            raise
        return os.fstat(fileobj.fileno()).st_size

    def _complete(self, stored, results):
        """The stored uploads that have all their bytes on the server, as
        (name, size); one round trip for all."""
        replies = self._ftp.pipeline([
            'SIZE ' + names.partial_name(name) for name, size in stored])
        complete = []
        for (name, expected), reply in zip(stored, replies):
            actual = (None if isinstance(reply, ftplib.Error)
                      else int(reply.split()[1]))
            if actual == expected:
                complete.append((name, expected))
                continue
            self._discard(names.partial_name(name))
            results[name] = TransferError(
                f'Cannot upload file {name}: ' + (
                    _printable(reply) if actual is None else
                    f'the server has {actual} of {expected} bytes'))
        return complete

    def _publish(self, complete, results):
        """Rename the complete uploads to their final names; one round
        trip for all."""
        replies = iter(self._ftp.pipeline([
            command for name, size in complete
            for command in ('RNFR ' + names.partial_name(name),
                            'RNTO ' + name)]))
        for (name, size), rnfr, rnto in zip(complete, replies, replies):
            refusal = next((reply for reply in (rnfr, rnto)
                            if isinstance(reply, ftplib.Error)), None)
            if refusal is None:
                results[name] = size
                continue
            # A server that never replaces a file (ProFTPD without
            # AllowOverwrite) would refuse the next run's upload of the
            # partial name as well.
            self._discard(names.partial_name(name))
            results[name] = TransferError(
                f'Cannot upload file {name}: {_printable(refusal)}')

    def finish_upload(self, name, size):
        partial = names.partial_name(name)
        results = {}
        with _translated(TransferError, f'Cannot finish uploading {name}'):
            try:
                actual = self._ftp.size(partial)
            except ftplib.error_perm as e:
                if not str(e).startswith('550'):
                    raise
                return False  # No such file: it was renamed already.
            if actual != size:
                self._discard(partial)
                raise TransferError(
                    f'Cannot finish uploading {name}: the server has '
                    f'{actual} of {size} bytes')
            self._publish([(name, size)], results)
        if isinstance(results[name], TransferError):
            raise results[name]
        return True

    def _discard(self, name):
        # Tidying up after a refusal: the refusal is what gets reported.
        with contextlib.suppress(ftplib.error_perm, ftplib.error_temp):
            self._ftp.delete(name)

    def _store(self, name, fileobj):
        with self._transfer('STOR ' + name) as data:
            while chunk := fileobj.read(SEND_SIZE):
                data.sendall(chunk)
                self._count(len(chunk))

    def download(self, name, fileobj):
        with _translated(TransferError, f'Cannot download file {name}'):
            return self._retrieve('RETR ' + name, fileobj)

    def read(self, name):
        buffer = io.BytesIO()
        self.download(name, buffer)
        return buffer.getvalue()

    def modified(self, name):
        with _translated(TransferError, f'Cannot get the time of {name}'):
            reply = self._ftp.sendcmd('MDTM ' + name)
        # RFC 3659: "213 YYYYMMDDHHMMSS[.sss]", always in UTC.
        try:
            stamp = datetime.datetime.strptime(
                reply.split()[1][:14], '%Y%m%d%H%M%S')
        except (IndexError, ValueError) as e:
            raise RemoteError(
                f'Cannot get the time of {name}: unexpected reply '
                f'{_printable(reply)}') from e
        return stamp.replace(tzinfo=datetime.timezone.utc)

    def write(self, name, data):
        with _translated(TransferError, f'Cannot store file {name}'):
            self._store(name, io.BytesIO(data))

    def remove(self, name):
        with _translated(TransferError, f'Cannot remove file {name}'):
            self._ftp.delete(name)

    def remove_all(self, names):
        with _translated(TransferError, 'Cannot remove files'):
            replies = self._ftp.pipeline(['DELE ' + name for name in names])
        return {name: TransferError(
                    f'Cannot remove file {name}: {_printable(reply)}')
                if isinstance(reply, ftplib.Error) else None
                for name, reply in zip(names, replies)}

    def close(self):
        ftp, self._ftp = self._ftp, None
        if ftp is None:
            return
        try:
            if ftp.sock is not None:
                ftp.quit()
        except (ftplib.Error, EOFError, OSError):
            pass  # The session is gone already; nothing is left to tidy.
        finally:
            ftp.close()
