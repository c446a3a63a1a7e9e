"""The default remote target: a directory on an FTP server, via ftplib.

ftplib's errors are translated into zeit.cds's exception family here and
nowhere else (see ``FTPTarget._translated``). Every wait for the server
(its greeting, each reply, each data connection) ends after the target's
``timeout``; a wait that ran out is a NoAnswer that says what the client
was doing.
"""
import contextlib
import copy
import datetime
import ftplib
import io
import itertools

import zope.interface

from zeit.cds import names
from zeit.cds.interfaces import AuthenticationError
from zeit.cds.interfaces import ConnectError
from zeit.cds.interfaces import ConnectionLost
from zeit.cds.interfaces import IRemoteTarget
from zeit.cds.interfaces import IRemoteTargetFactory
from zeit.cds.interfaces import LocalFileError
from zeit.cds.interfaces import NoAnswer
from zeit.cds.interfaces import NoSuchFile
from zeit.cds.interfaces import RemoteDirectoryError
from zeit.cds.interfaces import RemoteError
from zeit.cds.interfaces import TransferError
from zeit.cds.oserrors import reported_as
from zeit.cds.targets.session import Habits
from zeit.cds.targets.session import Session
from zeit.cds.targets.session import reply_code

CHUNK_SIZE = 256 * 1024
# Measured against pyftpdlib (benchmarks/): 64 KiB writes outrun both
# larger ones and socket.sendfile, whose bursts the server takes slower.
# Measured again (issue 17, 256 MiB, medians of 5): 0.43 s against 0.48 s
# with sendfile to pyftpdlib, 0.35 s against 0.44 s to vsftpd; sendfile
# would save the client 0.08 s of CPU, not the wait.
SEND_SIZE = 64 * 1024


# Replies to a command the server does not know or take.
_UNKNOWN_COMMAND = ('500', '501', '502', '504')


def _printable(text):
    # Server replies are untrusted: keep them on one clean line.
    return ''.join(c if c.isprintable() else ' ' for c in str(text)).strip()


class _DataConnectionBroken(Exception):
    """The data connection failed while the control connection lived on."""


def no_answer(session, doing):
    """The NoAnswer for a wait of ``session`` that ran out while ``doing``
    (such as "storing a.xml"). Its server is silent from now on: no
    session with it waits for a good-bye any more (``Habits.silent``)."""
    session.habits.silent = True
    reason = (f'no answer from the CDS FTP server within '
              f'{session.timeout:g} s while {doing}')
    return NoAnswer('N' + reason[1:], reason)


def _facts(line):
    """(name, facts) of an MLSD or MLST ``line`` (RFC 3659); the facts a
    dict with lower-case keys."""
    facts, _, name = line.partition(' ')
    return name, {key.lower(): value for key, _, value in
                  (fact.partition('=') for fact in facts.split(';'))}


def _mlsd_files(lines):
    """(name, facts) for the plain files in MLSD ``lines``."""
    for name, facts in map(_facts, lines):
        if facts.get('type', '').lower() == 'file':
            yield name, facts


def _mlst_files(wanted, replies):
    """The plain files among ``wanted`` and their times, by the replies
    to MLST (RFC 3659): 550 where there is no such file. None when the
    server does not know MLST; other refusals raise."""
    found = {}
    for name, reply in zip(wanted, replies):
        if isinstance(reply, ftplib.Error):
            code = reply_code(reply)
            if code in _UNKNOWN_COMMAND:
                return None
            if code != '550':
                raise reply
            continue
        # "250-...", " facts; pathname", "250 End". Where the facts cannot
        # be read, the file is taken to be there: a lock file missed would
        # let two parties in.
        lines = reply.splitlines()[1:-1]
        _, facts = _facts(lines[0].lstrip(' ') if lines else '')
        if facts.get('type', 'file').lower() != 'file':
            continue  # A folder, as a listing would leave it out.
        try:
            found[name] = _stamp(facts.get('modify', ''))
        except ValueError:
            found[name] = None
    return found


def _ensure_host_name(host, message):
    """Raise ConnectError, told as ``message``, when ``host`` is not a name
    that can be looked up (the lookup would fail with a UnicodeError)."""
    if not names.is_host_name(host):
        reason = 'not a name or address that can be looked up'
        raise ConnectError(f'{message}: {reason}', reason)


def _stamp(text):
    """The aware datetime of a time as MDTM and MLSx give it (RFC 3659:
    YYYYMMDDHHMMSS[.sss], in UTC); ValueError for anything else."""
    stamp = datetime.datetime.strptime(text[:14], '%Y%m%d%H%M%S')
    return stamp.replace(tzinfo=datetime.timezone.utc)


def _identity(size, modified):
    """A file's identity from its size and its modification time (as MLSD
    and MDTM give it, YYYYMMDDHHMMSS[.sss]), or None without either."""
    if size is None and modified is None:
        return None
    return f'size {size} modified {(modified or "")[:14]}'.encode()


def _value(reply):
    """What a reply such as "213 1234" says, or None for a refusal."""
    if isinstance(reply, ftplib.Error):
        return None
    return _printable(reply[4:]) or None


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


    # See IRemoteTargetFactory: no options of its own; a server to log in to.
    options = None
    login = True

    def __init__(self, *, host, port=21, user, password, directory='/',
                 timeout=60):
        self.host = host
        self.port = port
        self.user = user
        self._password = password
        self.directory = directory
        self.timeout = timeout
        self._ftp = None
        # Shared with every twin (``another``): learned once per run.
        self._habits = Habits()
        # The identities of the files of the last MLSD listing.
        self._listed = {}
        # The names of the last NLST listing that SIZE found to be files.
        self._files = frozenset()
        self.progress = None
        # Names this connection in debug lines; its twins count on.
        self.label = '1'
        self._labels = itertools.count(2)

    @property
    def description(self):
        return f'host {self.host}, port {self.port}, user {self.user}'

    def __repr__(self):
        return f'<FTPTarget {self.description}, directory {self.directory}>'

    def another(self):
        twin = copy.copy(self)
        twin._ftp = None
        twin.label = str(next(self._labels))
        return twin

    def _new_session(self):
        """The ftplib object for one session; FTPS returns its own."""
        return Session(timeout=self.timeout, encoding='utf-8')

    @contextlib.contextmanager
    def _translated(self, refused, message, doing, broken=ConnectionLost):
        """Raise ``refused`` when the server answers with an error reply,
        ``broken`` when the connection itself fails, and NoAnswer when a
        wait for the server ran out while ``doing`` (see ``no_answer``)."""
        try:
            yield
        except (ftplib.error_perm, ftplib.error_temp,
                _DataConnectionBroken) as e:
            reason = _printable(e)
            raise refused(f'{message}: {reason}', reason) from e
        except (ftplib.error_reply, ftplib.error_proto) as e:
            reason = f'unexpected reply {_printable(e)}'
            raise RemoteError(f'{message}: {reason}', reason) from e
        except TimeoutError as e:
            raise no_answer(self._ftp, doing) from e
        except (EOFError, OSError, ftplib.Error) as e:
            # ftplib.Error itself: a reply longer than ftplib reads, whose
            # rest puts the session out of step.
            reason = _printable(e) or 'connection closed by the server'
            raise broken(f'{message}: {reason}', reason) from e

    def connect(self):
        message = (f'Cannot connect to CDS FTP server at {self.host} port '
                   f'{self.port}')
        _ensure_host_name(self.host, message)
        self._ftp = self._new_session()
        self._ftp.habits = self._habits
        self._ftp.label = self.label
        try:
            with self._translated(
                    ConnectError, message,
                    f'connecting to {self.host} port {self.port}',
                    broken=ConnectError):
                self._ftp.connect(self.host, self.port)
            self._log_in()
        except BaseException:
            self.close()
            raise

    def _log_in(self):
        with self._translated(
                AuthenticationError,
                f'CDS FTP server refused login for user {self.user}',
                f'logging in as {self.user}'):
            self._ftp.login(self.user, self._password)
        with self._translated(
                RemoteDirectoryError,
                f'Cannot enter directory {self.directory} on CDS FTP server',
                f'entering directory {self.directory}'):
            self._ftp.cwd(self.directory)
        with self._translated(RemoteError,
                              'CDS FTP server refused binary mode',
                              'setting binary mode'):
            # Once per session; SIZE needs it and transfers keep it. The
            # features tell how to list, once per run.
            commands = ['TYPE I'] + (
                ['FEAT'] if self._habits.mlsd is None else [])
            binary, *features = self._ftp.pipeline(commands)
            if isinstance(binary, ftplib.Error):
                raise binary
        if features:
            self._learn(features[0])

    def _learn(self, features):
        """Learn from the reply to FEAT (RFC 2389) whether the server
        lists with MLSD; where it has no FEAT, the first listing tells."""
        if isinstance(features, ftplib.Error):
            return
        self._habits.mlsd = any(
            line.split()[:1] == ['MLST']
            for line in features.upper().splitlines()[1:])

    def names(self):
        with self._translated(RemoteError, 'Cannot list directory '
                              f'{self.directory} on CDS FTP server',
                              f'listing {self.directory}'):
            if self._habits.mlsd is not False:
                try:
                    files = dict(_mlsd_files(self._listing('MLSD')))
                    # Kept for identities(): MLSD tells them for free.
                    self._listed.clear()
                    self._listed.update(
                        (name, _identity(facts.get('size'),
                                         facts.get('modify')))
                        for name, facts in files.items())
                    return sorted(files)
                except ftplib.error_perm as e:
                    if reply_code(e) not in _UNKNOWN_COMMAND:
                        raise
                    # An older server; NLST from then on.
                    self._habits.mlsd = False
            return sorted(self._plain_files(
                [name for name in self._nlst()
                 if name not in names.DOT_ENTRIES]))

    def present(self, wanted):
        if self._habits.mlsd and self._habits.mlst:
            with self._translated(RemoteError, 'Cannot look for files in '
                                  f'{self.directory} on CDS FTP server',
                                  'looking for files'):
                replies = self._ftp.pipeline(
                    ['MLST ' + name for name in wanted])
                found = _mlst_files(wanted, replies)
            if found is not None:
                return found
            # MLSD without MLST: the listing tells, from then on.
            self._habits.mlst = False
        return names.listed_among(wanted, self.names())

    def _plain_files(self, listed):
        """NLST's ``listed`` without the names SIZE refuses with 550: NLST
        lists folders too, and SIZE tells no folder's size (nor the size
        of a file removed since). Names that are no plain file names are
        not asked for; they stay, for the importer to refuse. Nor are the
        files of the last listing: a run lists twice for its lock, and a
        watcher again and again."""
        sizes = self.sizes([name for name in listed
                            if name not in self._files
                            and names.is_plain_file_name(name)])
        self._files = frozenset(
            name for name in listed if name in self._files
            or isinstance(sizes.get(name), int))
        return [name for name in listed
                if not isinstance(sizes.get(name), NoSuchFile)]

    def _nlst(self):
        """The names NLST gives, in the first form the server takes: some
        refuse NLST without an argument."""
        forms = ([self._habits.nlst] if self._habits.nlst else
                 ['NLST', 'NLST .', 'NLST ' + self.directory])
        for form in forms:
            try:
                lines = self._listing(form)
            except ftplib.error_perm as e:
                if reply_code(e) in ('500', '501') and form != forms[-1]:
                    continue
                raise
            self._habits.nlst = form
            if form == 'NLST':
                return lines
            # As "NLST DIR" lists "DIR/name" on some servers.
            prefix = form[len('NLST '):].rstrip('/') + '/'
            return [line[len(prefix):] if line.startswith(prefix) else line
                    for line in lines]

    def _listing(self, command):
        """The lines of the listing ``command``; a 450 or 550 reply is an
        empty listing where the directory shows no entries in a LIST."""
        try:
            return self._lines(command)
        except ftplib.Error as e:
            # Such as inetutils' "550 No files found" for an empty
            # directory: a fact about that server, checked, not parsed.
            if reply_code(e) in ('450', '550') and self._shows_nothing():
                return []
            raise

    def _shows_nothing(self):
        """Whether a LIST of the directory works and shows no entries."""
        try:
            lines = self._lines('LIST')
        except ftplib.Error:
            return False
        return not any(line and not line.startswith('total ')
                       for line in lines)

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
            except TimeoutError:
                # The server stopped taking or sending data: waiting for
                # its reply would only cost another timeout.
                raise
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

    def store(self, name, fileobj):
        with self._translated(TransferError, f'Cannot store file {name}',
                              f'storing {names.shown(name)}'):
            self._store(name, fileobj)

    def _store(self, name, fileobj):
        with self._transfer('STOR ' + name) as data:
            while chunk := fileobj.read(SEND_SIZE):
                data.sendall(chunk)
                self._count(len(chunk))

    def sizes(self, names):
        if not self._habits.size:
            return dict.fromkeys(names)
        with self._translated(TransferError, 'Cannot get the sizes of files',
                              'asking for the sizes of files'):
            replies = self._ftp.pipeline(['SIZE ' + name for name in names])
        if replies and all(isinstance(reply, ftplib.error_perm)
                           and reply_code(reply) in _UNKNOWN_COMMAND
                           for reply in replies):
            # A server without SIZE: the transfer's own reply is the check.
            self._habits.size = False
            return dict.fromkeys(names)
        return {name: self._size(name, reply)
                for name, reply in zip(names, replies)}

    def _size(self, name, reply):
        if isinstance(reply, ftplib.error_perm) and reply_code(reply) == '550':
            return NoSuchFile(f'No file {name}: {_printable(reply)}',
                              _printable(reply))
        if isinstance(reply, ftplib.Error):
            return TransferError(
                f'Cannot get the size of {name}: {_printable(reply)}',
                _printable(reply))
        try:
            return int(reply.split()[1])
        except (IndexError, ValueError):
            reason = f'unexpected reply {_printable(reply)}'
            return TransferError(
                f'Cannot get the size of {name}: {reason}', reason)

    def identities(self, names):
        known = {name: self._listed.get(name) for name in names}
        ask = [name for name in names if known[name] is None]
        if ask:
            with self._translated(TransferError, 'Cannot tell files apart',
                                  'asking for the sizes and times of files'):
                replies = self._ftp.units(
                    [['SIZE ' + name, 'MDTM ' + name] for name in ask])
            for name, (size, modified) in zip(ask, replies):
                known[name] = _identity(_value(size), _value(modified))
        return known

    def rename_all(self, pairs):
        with self._translated(TransferError, 'Cannot rename files',
                              'renaming files'):
            replies = self._ftp.units([['RNFR ' + old, 'RNTO ' + new]
                                       for old, new in pairs])
        results = {}
        for (old, new), (rnfr, rnto) in zip(pairs, replies):
            refusal = next((reply for reply in (rnfr, rnto)
                            if isinstance(reply, ftplib.Error)), None)
            # RNFR's 550: there is no such file (renamed already).
            missing = refusal is rnfr and reply_code(rnfr) == '550'
            error = NoSuchFile if missing else TransferError
            results[old] = None if refusal is None else error(
                f'Cannot rename {old} to {new}: {_printable(refusal)}',
                _printable(refusal))
        return results

    def download(self, name, fileobj):
        with self._translated(TransferError, f'Cannot download file {name}',
                              f'downloading {names.shown(name)}'):
            return self._retrieve('RETR ' + name, fileobj)

    def read(self, name):
        buffer = io.BytesIO()
        self.download(name, buffer)
        return buffer.getvalue()

    def modified(self, name):
        with self._translated(TransferError,
                              f'Cannot get the time of {name}',
                              f'asking for the time of {names.shown(name)}'):
            reply = self._ftp.sendcmd('MDTM ' + name)
        # RFC 3659: "213 YYYYMMDDHHMMSS[.sss]", always in UTC.
        try:
            return _stamp(reply.split()[1])
        except (IndexError, ValueError) as e:
            reason = f'unexpected reply {_printable(reply)}'
            raise RemoteError(
                f'Cannot get the time of {names.shown(name)}: {reason}',
                reason) from e

    def create(self, name, data):
        self.store(name, io.BytesIO(data))

    def remove_all(self, names):
        with self._translated(TransferError, 'Cannot remove files',
                              'removing files'):
            replies = self._ftp.pipeline(['DELE ' + name for name in names])
        return {name: TransferError(
                    f'Cannot remove file {name}: {_printable(reply)}',
                    _printable(reply))
                if isinstance(reply, ftplib.Error) else None
                for name, reply in zip(names, replies)}

    def close(self):
        ftp, self._ftp = self._ftp, None
        if ftp is None:
            return
        try:
            # A server that stopped answering would let QUIT wait in vain.
            if ftp.sock is not None and not self._habits.silent:
                ftp.quit()
        except (ftplib.Error, EOFError, OSError):
            pass  # The session is gone already; nothing is left to tidy.
        finally:
            ftp.close()
