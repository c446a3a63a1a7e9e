"""FTPS: the FTP target with explicit TLS (RFC 4217), certificates verified.

The session asks for TLS (``AUTH TLS``) right after the server's greeting,
before the user name and password are sent, and protects every data
connection (``PBSZ 0``, ``PROT P``). There is no fall-back to plain FTP: a
server that refuses TLS, or whose certificate is not trusted or not issued
for the host name, ends the connect with one TLSError; nothing else has
been sent by then. TLS failures of the connect are translated here, in
``_tls_translated``; later ones, like every socket error, in
``zeit.cds.targets.ftp``.

Data connections resume the control connection's TLS session, as servers
such as vsftpd with ``require_ssl_reuse=YES`` demand (ftplib does not do
it by itself). With TLS 1.2 the session exists when the handshake ends.
With TLS 1.3 the server sends its session tickets after the handshake, and
the client takes them in only while it reads from the control connection;
the login reads several replies there, so the tickets have arrived before
the first data connection opens, and every data connection resumes.

Each data connection that ended normally is closed with a TLS
close_notify, so the server can tell a complete upload from a cut one.
Data connections send without delay (TCP_NODELAY): Nagle's algorithm
would hold that close_notify back until the server acknowledged the
data, which it delays by up to 40 ms while it waits for more; ProFTPD and
Pure-FTPd then took that much longer for every single upload.
"""
import contextlib
import ftplib
import logging
import socket
import ssl

import zope.interface

from zeit.cds.interfaces import IFTPSOptions
from zeit.cds.interfaces import IRemoteTargetFactory
from zeit.cds.interfaces import SettingsError
from zeit.cds.interfaces import TLSError
from zeit.cds.targets.ftp import FTPTarget
from zeit.cds.targets.ftp import _printable
from zeit.cds.targets.ftp import no_answer
from zeit.cds.targets.session import Session

log = logging.getLogger(__name__)


def _ssl_reason(error):
    """What went wrong with TLS, in words, without OpenSSL's source line."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return error.verify_message
    if getattr(error, 'reason', None):
        return error.reason.replace('_', ' ').lower()
    return _printable(error.strerror or error)


@contextlib.contextmanager
def _tls_translated(session, refusal, doing):
    """Raise TLSError when the TLS handshake of ``session`` (an FTP_TLS)
    fails, or the server refuses a TLS command (then the message names the
    ``refusal``); NoAnswer when it does not answer while ``doing``."""
    host = session.host
    try:
        yield
    except ssl.SSLCertVerificationError as e:
        raise TLSError(f'TLS certificate of host {host} not trusted: '
                       f'{_ssl_reason(e)}') from e
    except ssl.SSLError as e:
        raise TLSError(f'TLS handshake with host {host} failed: '
                       f'{_ssl_reason(e)}') from e
    except TimeoutError as e:
        raise no_answer(session, doing) from e
    except ftplib.Error as e:
        raise TLSError(f'CDS FTP server at {host} port {session.port} '
                       f'{refusal}: {_printable(e)}') from e


class _TLSSocket(ssl.SSLSocket):
    """A TLS socket that ends with a close_notify when its ``with`` block
    ends normally; the remote target uses one for each data connection.

    Without it a server cannot tell a complete upload from a cut one; and
    with TLS 1.3 the session ticket the server sends on a data connection
    would still be unread at the close, which TCP answers with a reset
    instead of an orderly end: pyftpdlib then loses the end of most
    uploads (the size check would refuse them, but they would fail).
    """

    def __exit__(self, exc_type, exc_value, traceback):
        if exc_type is None:
            # Best effort: the server's reply to the transfer and the size
            # check decide whether it worked, not the good-bye.
            with contextlib.suppress(OSError, ValueError):
                self.unwrap()
        super().__exit__(exc_type, exc_value, traceback)


class _TLSSession(ftplib.FTP_TLS, Session):
    """ftplib's FTP_TLS, with TLS made obligatory for everything.

    ``connect`` secures the control connection at once; ``login`` then
    finds it secured (FTP_TLS.login would secure it itself otherwise, so
    the password is never sent in the clear) and protects the data
    connections; every data connection is TLS and resumes the control
    connection's session.
    """

    def connect(self, *args, **kw):
        welcome = super().connect(*args, **kw)
        self.auth()
        return welcome

    def auth(self):
        with _tls_translated(self, 'refused TLS (AUTH TLS)',
                             'securing the connection (AUTH TLS)'):
            try:
                reply = super().auth()
            except OSError:
                # A handshake that failed half-way leaves the connection
                # good for nothing, not even for a QUIT.
                self.close()
                raise
        return reply

    def login(self, user='', passwd='', acct=''):
        response = super().login(user, passwd, acct, secure=True)
        self.prot_p()
        return response

    def prot_p(self):
        with _tls_translated(
                self, 'refused to protect data connections (PROT P)',
                'protecting data connections (PROT P)'):
            return super().prot_p()

    def ntransfercmd(self, cmd, rest=None):
        # FTP_TLS.ntransfercmd would wrap the data connection only after
        # PROT P, and without the control connection's session. Here no
        # data connection is ever in the clear.
        conn, size = Session.ntransfercmd(self, cmd, rest)
        try:
            # TLS sends whole records; see the module's doc string.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = self.context.wrap_socket(
                conn, server_hostname=self.host, session=self.sock.session)
        except BaseException:
            conn.close()
            raise
        return conn, size


def tls_context(*, ca_file=None, verify=True):
    """The client's TLS context: TLS 1.2 or newer, the server's certificate
    and host name verified against ``ca_file`` or the system's trust store,
    unless ``verify`` is False.

    Raises SettingsError when ``ca_file`` cannot be used.
    """
    if ca_file is not None and not verify:
        raise SettingsError(
            f'CA file {ca_file} given, but certificate verification is off')
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except OSError as e:  # ssl.SSLError too
        raise SettingsError(
            f'Cannot use CA file {ca_file}: {_ssl_reason(e)}') from e
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.sslsocket_class = _TLSSocket
    return context


@zope.interface.provider(IRemoteTargetFactory)
class FTPSTarget(FTPTarget):
    """A directory on an FTP server, reached with explicit TLS (FTPS).

    Keyword-only options, besides FTPTarget's (``host``, ``port``,
    ``user``, ``password``, ``directory``, ``timeout``):
    - ``ca_file``: a PEM file with the certificates of the CAs to trust,
      instead of the system's trust store (the default, None).
    - ``verify``: whether the server's certificate and host name are
      checked (the default, True). False is the "insecure skip verify"
      choice, for test servers only: the connection is still encrypted,
      but anybody in between can pose as the server and learn the
      password. Every connect then logs a WARNING.

    Raises SettingsError at once when ``ca_file`` cannot be used.
    """

    # Settable in ZCML, config files and on the command line, for ftps only.
    options = IFTPSOptions

    def __init__(self, *, ca_file=None, verify=True, **options):
        super().__init__(**options)
        self.ca_file = ca_file
        self.verify = verify
        self._context = tls_context(ca_file=ca_file, verify=verify)

    @property
    def description(self):
        tls = 'TLS' if self.verify else 'TLS without certificate check'
        return f'{super().description}, {tls}'

    def __repr__(self):
        return f'<FTPSTarget {self.description}, directory {self.directory}>'

    def _new_session(self):
        return _TLSSession(
            context=self._context, timeout=self.timeout, encoding='utf-8')

    def connect(self):
        if not self.verify:
            log.warning(
                'TLS certificate verification is OFF for host %s: the '
                'connection is encrypted, but the server is not '
                'authenticated (insecure skip verify)', self.host)
        super().connect()
