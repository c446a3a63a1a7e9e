"""The default remote target: a directory on an FTP server, via ftplib.

ftplib's errors are translated into zeit.cds's exception family here and
nowhere else (see ``_translated``).
"""
import contextlib
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

CHUNK_SIZE = 256 * 1024


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

    @property
    def description(self):
        return f'host {self.host}, port {self.port}, user {self.user}'

    def __repr__(self):
        return f'<FTPTarget {self.description}, directory {self.directory}>'

    def _new_session(self):
        """The ftplib object for one session; FTPS returns its own."""
        return ftplib.FTP(timeout=self.timeout, encoding='utf-8')

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
                try:
                    fileobj.write(chunk)
                except OSError as e:
                    raise LocalFileError(
                        f'Cannot write {command}: {e.strerror}') from e
                size += len(chunk)
        return size

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

    def upload(self, name, fileobj, before_publish=None):
        partial = names.partial_name(name)
        expected = os.fstat(fileobj.fileno()).st_size
        with _translated(TransferError, f'Cannot upload file {name}'):
            try:
                self._store(partial, fileobj)
            except (ftplib.Error, _DataConnectionBroken):
                # Whatever arrived must not block the next attempt (some
                # servers never overwrite a file).
                self._discard(partial)
                raise
            self._check_size(name, expected)
            if before_publish is not None:
                before_publish()
            self._rename(partial, name)
        return expected

    def finish_upload(self, name, size):
        with _translated(TransferError, f'Cannot finish uploading {name}'):
            try:
                self._check_size(name, size)
            except ftplib.error_perm as e:
                if not str(e).startswith('550'):
                    raise
                return False  # No such file: it was renamed already.
            self._rename(names.partial_name(name), name)
        return True

    def _check_size(self, name, expected):
        """Whether the temporary upload of ``name`` has all its bytes;
        removes it when not."""
        partial = names.partial_name(name)
        actual = self._ftp.size(partial)
        if actual != expected:
            self._ftp.delete(partial)
            raise TransferError(
                f'Cannot upload file {name}: the server has {actual} '
                f'of {expected} bytes')

    def _rename(self, partial, name):
        try:
            self._ftp.rename(partial, name)
        except ftplib.error_perm:
            # A server that never replaces a file (ProFTPD without
            # AllowOverwrite) would refuse the next run's upload of the
            # partial name as well.
            self._discard(partial)
            raise

    def _discard(self, name):
        # Tidying up after a refusal: the refusal is what gets reported.
        with contextlib.suppress(ftplib.error_perm, ftplib.error_temp):
            self._ftp.delete(name)

    def _store(self, name, fileobj):
        with self._transfer('STOR ' + name) as data:
            data.sendfile(fileobj)

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
