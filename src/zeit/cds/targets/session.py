"""ftplib's FTP session with fewer round trips.

Over a long distance every reply the client waits for costs a round
trip. Where the protocol allows, commands are sent together and their
replies read afterwards (pipelining, RFC 959 section 4.2): a transfer's
PASV and STOR or RETR, and the SIZE or RNFR/RNTO commands of a batch.

Not every server reads ahead: some answer a command that arrived before
the reply to the one before it with 425, 426, 450, 500 or 503 (Twisted's
FTP server refuses a STOR sent with its PASV: the data connection is not
open yet). Such a command is sent again in lock step, and so is every
command after it to that server (``Habits.pipelining``).
"""
import dataclasses
import ftplib
import logging
import socket

from zeit.cds import names

log = logging.getLogger(__name__)

# Replies to a command that a server may give only because it arrived
# before the reply to the one before it.
_TOO_EARLY = ('425', '426', '450', '500', '503')


@dataclasses.dataclass
class Habits:
    """What one FTP server was found to do: learned once, and shared by
    every connection to it, reconnects included."""

    # Whether it takes commands sent ahead of their predecessor's reply.
    pipelining: bool = True
    # Whether it lists with MLSD (None: not known yet).
    mlsd: bool = None
    # Whether it answers MLST for one name, where it has MLSD.
    mlst: bool = True
    # Whether it tells sizes (SIZE).
    size: bool = True
    # The form of NLST it takes (None: not known yet).
    nlst: str = None
    # Whether it left a wait unanswered: no session waits for its
    # good-bye (QUIT) any more.
    silent: bool = False


def reply_code(reply):
    """The three digits of a reply, or of the ftplib error that holds it."""
    return str(reply)[:3]


def _too_early(reply):
    return isinstance(reply, ftplib.Error) and reply_code(reply) in _TOO_EARLY


def _errors(replies):
    return sum(isinstance(reply, ftplib.Error) for reply in replies)


def _masked(command):
    """``command`` as a debug line shows it: without a password."""
    verb, sep, argument = command.partition(' ')
    if verb.upper() in ('PASS', 'ACCT') and sep:
        return f'{verb} ****'
    return command


class Session(ftplib.FTP):

    habits = None  # the target gives each session its server's Habits
    # Names the connection in debug lines; the target numbers its own.
    label = '1'
    # Whether the commands and replies are logged (at DEBUG, with -v);
    # decided once per session, so that a normal run pays nothing.
    _wire = False

    def _show(self, arrow, line):
        # Names from the server are untrusted: escaped where odd.
        log.debug('FTP %s%s %s', self.label, arrow, names.shown(line))

    def send_all(self, commands):
        """Send ``commands`` in one write, as one would type them."""
        for command in commands:
            # As ftplib.FTP.putline: a line break would start a command
            # the caller never meant.
            if '\r' in command or '\n' in command:
                raise ftplib.error_perm(
                    f'501 a line break in {command.split()[0]} refused')
        if self._wire:
            for command in commands:
                self._show('>', _masked(command))
        self.sock.sendall(''.join(
            f'{command}\r\n' for command in commands).encode(
                self.encoding, 'surrogateescape'))

    def putline(self, line):
        """ftplib's, for a name that is not UTF-8 too: its bytes go as they
        are (they arrive as surrogates, as Python lists such names)."""
        self.send_all([line])

    def getline(self):
        """ftplib's, with bytes that are not UTF-8 kept as surrogates: a
        reply (the greeting too) is untrusted, and no reason to crash."""
        if self.file.errors != 'surrogateescape':
            # A reader ftplib made, unread still: after the connect, or
            # after AUTH TLS.
            self.file = self.sock.makefile(
                'r', encoding=self.encoding, errors='surrogateescape')
        line = super().getline()
        if self._wire:
            self._show('<', line)
        return line

    def connect(self, *args, **kw):
        self._wire = log.isEnabledFor(logging.DEBUG)
        greeting = super().connect(*args, **kw)
        # Asked once: every passive data connection goes to this address.
        self._peer = self.sock.getpeername()
        return greeting

    def pipeline(self, commands):
        """Send ``commands`` at once and read their replies in order.

        Returns each reply, or the ftplib error the server answered it
        with; a broken connection raises.
        """
        return [reply for unit in self.units([[c] for c in commands])
                for reply in unit]

    def units(self, units):
        """Send the commands of ``units`` (lists of commands that belong
        together, such as RNFR and RNTO) and read their replies.

        Returns a list of replies per unit: each reply, or the ftplib
        error the server answered it with; a broken connection raises.
        A unit whose command may have come too early for the server is
        done again in lock step; so is every unit after it, from then on.
        """
        if not self.habits.pipelining:
            return [self._in_step(unit) for unit in units]
        self.send_all([command for unit in units for command in unit])
        replies = [[self._reply() for command in unit] for unit in units]
        # The first command came after a reply; its refusal is real, and
        # so is the same refusal of the others.
        real = {reply_code(reply) for reply in replies[0]
                if isinstance(reply, ftplib.Error)} if replies else set()
        for i, unit in enumerate(units[1:], 1):
            if any(_too_early(reply) and reply_code(reply) not in real
                   for reply in replies[i]):
                again = self._in_step(unit)
                if _errors(again) < _errors(replies[i]):
                    self._to_lock_step(replies[i])
                replies[i] = again
        return replies

    def _reply(self):
        try:
            return self.getresp()
        except (ftplib.error_perm, ftplib.error_temp) as e:
            return e

    def _in_step(self, unit):
        replies = []
        for command in unit:
            if replies and isinstance(replies[-1], ftplib.Error):
                # Such as an RNTO after a refused RNFR: it would fail.
                replies.append(replies[-1])
                continue
            self.send_all([command])
            replies.append(self._reply())
        return replies

    def _to_lock_step(self, replies):
        if self.habits.pipelining:
            self.habits.pipelining = False
            log.debug('CDS FTP server %s refused commands sent ahead (%s); '
                     'one command at a time from now on', self.host,
                     ' '.join(str(reply) for reply in replies))

    def ntransfercmd(self, cmd, rest=None):
        """ftplib's, with PASV (or EPSV) and ``cmd`` sent together where
        the server takes it."""
        if (rest is not None or not self.passiveserver
                or not self.habits.pipelining):
            return super().ntransfercmd(cmd, rest)
        passive = 'EPSV' if self.af == socket.AF_INET6 else 'PASV'
        self.send_all([passive, cmd])
        try:
            reply = self.getresp()
        except ftplib.Error as e:
            # ``cmd`` is refused too, for want of a data connection, or
            # never answered (ProFTPD after "425 PASV: Address already in
            # use"): the reply to a NOOP tells when the session is in step.
            self._in_step_again()
            if reply_code(e) != '425':
                raise
            # A passive port the server could not open is no habit of it:
            # one more try, in lock step.
            return super().ntransfercmd(cmd, rest)
        if passive == 'EPSV':
            host, port = ftplib.parse229(reply, self._peer)
        else:
            host, port = ftplib.parse227(reply)
        if not self.trust_server_pasv_ipv4_address:
            # As ftplib: the address a server names is not to be trusted.
            host = self._peer[0]
        try:
            conn = self._connected(host, port)
        except TimeoutError:
            raise  # Its reply would take as long.
        except OSError:
            # The server may have refused ``cmd`` already, and closed the
            # port: its reply tells.
            reply = self._reply()
            if not _too_early(reply):
                raise
            return self._again_in_step(cmd, reply)
        try:
            reply = self.getresp()
            if reply[0] == '2':
                reply = self.getresp()
            if reply[0] != '1':
                raise ftplib.error_reply(reply)
        except ftplib.Error as e:
            conn.close()
            if not _too_early(e):
                raise
            return self._again_in_step(cmd, e)
        except BaseException:
            conn.close()
            raise
        size = ftplib.parse150(reply) if reply[:3] == '150' else None
        return conn, size

    def _connected(self, host, port):
        """A data connection to ``host``, an address as the session's own
        peer has (see above), and ``port``. Unlike socket.create_connection
        it looks up no name, which cost as much as the connect itself."""
        conn = socket.socket(self.af, socket.SOCK_STREAM)
        try:
            conn.settimeout(self.timeout)
            if self.source_address is not None:
                conn.bind(self.source_address)
            conn.connect((host, port))
        except BaseException:
            conn.close()
            raise
        return conn

    def _again_in_step(self, cmd, refusal):
        """Send ``cmd`` again after its data connection is open; when the
        server takes it so, it gets no more commands ahead of time. (A
        second refusal is a real one, raised.)"""
        result = super().ntransfercmd(cmd)
        self._to_lock_step([refusal])
        return result

    def _in_step_again(self):
        """Read up to the reply to a NOOP sent now, skipping whatever the
        server still answers before it (no transfer command answers 200)."""
        self.send_all(['NOOP'])
        for _ in range(3):
            if reply_code(self._reply()) == '200':
                return
        raise ftplib.error_proto('no reply to NOOP')
