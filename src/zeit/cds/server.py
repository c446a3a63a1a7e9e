"""cds-server: an embedded CDS-compatible FTP server (pyftpdlib) rooted
at a folder, with one user: for local development, staging and the quick
start; with ``--protocol sftp`` an SFTP server (``zeit.cds.sftpserver``).
CDS partners run their own production servers."""
import collections
import contextlib
import datetime
import os
import signal
import ssl
import sys
import tempfile
import threading

import asyncssh
import pyftpdlib.authorizers
import pyftpdlib.filesystems
import pyftpdlib.handlers
import pyftpdlib.ioloop
import pyftpdlib.servers
import trustme

from zeit.cds import connection
from zeit.cds import values
from zeit.cds.cli import ArgumentParser
from zeit.cds.interfaces import IConnectionSettings
from zeit.cds.interfaces import SettingsError
from zeit.cds.oserrors import reported_as
from zeit.cds.sftpserver import EmbeddedSFTPServer
from zeit.cds.targets.ftps import ssl_reason

# Every permission, including MFMT and SITE CHMOD, so the server never
# stands in the way of a client.
ALL_PERMISSIONS = 'elradfmwMT'
PROTOCOLS = ('ftp', 'ftps', 'sftp')
FTP_PORT = '2121'
SFTP_PORT = '2222'


class LineSafeFilesystem(pyftpdlib.filesystems.AbstractedFS):
    """pyftpdlib's file system view, with every name listed on one line:
    a line break in a name (CR or LF) is listed as NUL, which no file
    system name holds, as BSD's ftpd does with LF. Else such a name comes
    out as two names that are not there, and a client stumbles over them
    on every run; so it sees the odd name whole (zeit.cds refuses it
    alone)."""

    def __init__(self, root, cmd_channel):
        super().__init__(root, cmd_channel)
        # The real path of each path listed otherwise: the listings look
        # each name up again, as listed.
        self._listed_as = {}

    def listdir(self, path):
        listed = []
        self._listed_as.clear()
        for name in super().listdir(path):
            shown = name.replace('\r', '\0').replace('\n', '\0')
            if shown != name:
                self._listed_as[os.path.join(path, shown)] = os.path.join(
                    path, name)
            listed.append(shown)
        return listed

    def _real(self, path):
        return self._listed_as.get(path, path)

    def stat(self, path):
        return super().stat(self._real(path))

    def lstat(self, path):
        return super().lstat(self._real(path))


class EmbeddedServer:
    """A pyftpdlib server in a thread of its own.

    ``port`` 0 lets the OS pick a free one; ``port`` tells which after
    construction. ``handler`` may be any subclass of pyftpdlib's
    FTPHandler; ``handler_options`` set its class attributes.
    """

    def __init__(self, root, user, password, *, host='127.0.0.1', port=0,
                 handler=pyftpdlib.handlers.FTPHandler, **handler_options):
        authorizer = pyftpdlib.authorizers.DummyAuthorizer()
        authorizer.add_user(user, password, root, perm=ALL_PERMISSIONS)
        # A subclass per server, so that the caller's class stays as it was.
        # Names that are not UTF-8 are kept as the bytes they are, in
        # commands and in listings, as the file system keeps them.
        defaults = {'unicode_errors': 'surrogateescape'}
        if handler.abstracted_fs is pyftpdlib.filesystems.AbstractedFS:
            # Not where a handler brings a view of its own.
            defaults['abstracted_fs'] = LineSafeFilesystem
        handler = type(handler.__name__, (handler,), dict(
            defaults, **handler_options, authorizer=authorizer))
        self.root = root
        self._server = pyftpdlib.servers.FTPServer(
            (host, port), handler, ioloop=pyftpdlib.ioloop.IOLoop())
        self.host, self.port = self._server.address[:2]
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, name=f'ftp-server-{self.port}', daemon=True)

    def _serve(self):
        while not self._stopping.is_set():
            # One round of the IO loop; the timeout only bounds how long
            # a stop request waits to be noticed.
            self._server.ioloop.loop(timeout=0.05, blocking=False)
        self._server.close_all()

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        self._thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


Certificate = collections.namedtuple(
    'Certificate', ['certfile', 'keyfile', 'ca_file'])


def make_certificate(folder, hosts=('localhost', '127.0.0.1', '::1'),
                     days=365, key_type=trustme.KeyType.ECDSA):
    """Write a new private key and certificate for a TLS server (such as
    ``cds-server --tls`` without ``--certfile``) into ``folder``.

    The certificate is issued for the names and IP addresses in ``hosts``
    by a private CA made for the purpose (by trustme); its key is thrown
    away, so it can sign nothing else. Clients trust the CA through the CA
    file written beside (``ca_file`` of FTPSTarget). Files: ``cert.pem``,
    ``key.pem`` (readable by the owner only, unencrypted, so the server
    starts unattended) and ``ca.pem``; existing ones are replaced. The
    certificate is valid for ``days``; its key is a ``key_type`` (a
    trustme.KeyType).

    Returns a Certificate with the three paths.
    """
    now = datetime.datetime.now(datetime.timezone.utc)
    ca = trustme.CA(organization_name='zeit.cds')
    leaf = ca.issue_cert(
        *hosts, common_name=hosts[0], organization_name='zeit.cds',
        key_type=key_type,
        # An hour's grace for clocks that are a little behind.
        not_before=now - datetime.timedelta(hours=1),
        not_after=now + datetime.timedelta(days=days))
    result = certificate_files(folder)
    _write(result.certfile, leaf.cert_chain_pems[0].bytes(), 0o644)
    _write(result.keyfile, leaf.private_key_pem.bytes(), 0o600)
    _write(result.ca_file, ca.cert_pem.bytes(), 0o644)
    return result


def _write(path, data, mode):
    """Replace the file ``path`` by one with ``data`` and ``mode``; no
    moment shows it partly written or with other permissions."""
    fd, partial = tempfile.mkstemp(
        dir=os.path.dirname(path), prefix='.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        raise


def parser():
    p = ArgumentParser(
        prog='cds-server',
        description='Serve a folder as a CDS FTP (or SFTP) server, with '
        'one user. '
        'The password comes from --password-file or the environment '
        f'variable {connection.PASSWORD_VARIABLE}.')
    p.add_argument('--root', required=True, help='the folder to serve')
    p.add_argument('--host', default='127.0.0.1',
                   help='the address to listen on (default 127.0.0.1)')
    p.add_argument('--port',
                   help='the port (default 2121, 2222 for sftp; 0 picks a '
                   'free one)')
    p.add_argument('--user', required=True, help='the one user')
    p.add_argument('--password-file', help='a file holding the password')
    p.add_argument('--tls', action='store_true',
                   help='insist on explicit TLS (FTPS) for logins and data')
    p.add_argument('--certfile', help='the certificate (PEM) for --tls')
    p.add_argument('--keyfile', help='its private key (PEM)')
    p.add_argument('--tls-dir', metavar='DIR',
                   help='for --tls without --certfile: the folder for '
                   'the certificate, its key and the CA file for clients, '
                   'made there once, kept and used by later starts (by '
                   'default they are made in a temporary folder, removed '
                   'when the server stops)')
    p.add_argument('--protocol', choices=PROTOCOLS,
                   help='ftp (the default), ftps (as --tls) or sftp')
    p.add_argument('--host-key',
                   help='the host key (a private key file) for sftp; a new '
                   'one for every start when not given')
    return p


def protocol_of(args):
    if args.tls and args.protocol not in (None, 'ftps'):
        raise SettingsError(f'--tls does not go with --protocol '
                            f'{args.protocol}')
    protocol = 'ftps' if args.tls else args.protocol or 'ftp'
    if args.host_key and protocol != 'sftp':
        raise SettingsError('--host-key needs --protocol sftp')
    if protocol == 'sftp' and (args.certfile or args.keyfile
                               or args.tls_dir):
        raise SettingsError('--certfile, --keyfile and --tls-dir need --tls')
    return protocol


def sftp_server(args, password, port):
    """The EmbeddedSFTPServer that ``args`` ask for, on ``port``, not
    started."""
    host_key = None
    if args.host_key:
        try:
            host_key = asyncssh.read_private_key(args.host_key)
        except (OSError, ValueError) as e:
            raise SettingsError(
                f'Cannot use host key {args.host_key}: '
                f'{getattr(e, "strerror", None) or e}') from e
    return EmbeddedSFTPServer(
        args.root, args.user, password, host=args.host,
        port=port, host_key=host_key)


def tls_options(args, scratch):
    """The handler options for --tls; without --certfile a certificate is
    made, with its CA file beside it, in --tls-dir or else in a new
    folder in the context manager ``scratch`` (removed on exit)."""
    if not args.tls:
        if args.certfile or args.keyfile or args.tls_dir:
            raise SettingsError('--certfile, --keyfile and --tls-dir '
                                'need --tls')
        return {}
    if bool(args.certfile) != bool(args.keyfile):
        raise SettingsError('--certfile and --keyfile go together')
    if args.certfile and args.tls_dir:
        raise SettingsError('--tls-dir is where a certificate is made: '
                            'not with --certfile')
    certfile, keyfile = args.certfile, args.keyfile
    if certfile is None:
        made = _certificate_in(args.tls_dir or scratch.enter_context(
            tempfile.TemporaryDirectory(prefix='cds-server-tls-')), args.host)
        certfile, keyfile = made.certfile, made.keyfile
        print(f'TLS certificate in {os.path.dirname(made.certfile)}; '
              f'clients trust it with --ca-file {made.ca_file}', flush=True)
    _check_certificate(certfile, keyfile)
    return dict(handler=pyftpdlib.handlers.TLS_FTPHandler,
                certfile=certfile, keyfile=keyfile,
                tls_control_required=True, tls_data_required=True)


def certificate_files(folder):
    """The Certificate that ``make_certificate`` writes into ``folder``."""
    return Certificate(*(os.path.join(folder, name) for name in
                         ['cert.pem', 'key.pem', 'ca.pem']))


def _certificate_in(folder, host):
    """The Certificate in ``folder``: the one made there before, which
    clients may trust already, else a new one for ``host``."""
    kept = certificate_files(folder)
    if all(os.path.exists(path) for path in kept):
        return kept
    with reported_as(SettingsError, f'Cannot make a certificate in {folder}'):
        os.makedirs(folder, exist_ok=True)
        return make_certificate(folder, hosts=tuple(dict.fromkeys(
            (host, 'localhost', '127.0.0.1', '::1'))))


def _check_certificate(certfile, keyfile):
    """Load the pair as the server will, so that a bad one is a usage
    error now, not a traceback at the first login."""
    for option, path in (('--certfile', certfile), ('--keyfile', keyfile)):
        if not os.access(path, os.R_OK):
            raise SettingsError(f'Cannot read {option} {path}')
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(
            certfile, keyfile)
    except OSError as e:  # ssl.SSLError too
        raise SettingsError(
            f'Cannot use --certfile {certfile} with --keyfile {keyfile} '
            f'(a PEM certificate and its key): {ssl_reason(e)}') from None


def port_number(value):
    if value == '0':
        return 0
    return values.converted(IConnectionSettings['port'], value, 'port')


def main(argv=None):
    args = parser().parse_args(argv)
    with contextlib.ExitStack() as scratch:
        try:
            server = _server(args, scratch)
        except SettingsError as e:
            print(f'cds-server: error: {e}', file=sys.stderr)
            sys.exit(e.exit_code)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *ignored: stop.set())
        protocol = protocol_of(args)
        print(f'Serving {args.root} at {protocol}://{server.host}:'
              f'{server.port}/ for user {args.user}; stop with Ctrl-C',
              flush=True)
        if protocol == 'sftp':
            print(f'Host key {server.fingerprint}; clients trust it with '
                  f'this line in their known_hosts file:\n'
                  f'{server.known_hosts_line}', flush=True)
        stop.wait()
    print('Stopped', flush=True)


def _server(args, scratch):
    """The embedded server the arguments ask for, started, and stopped
    when ``scratch`` closes; SettingsError when they do not make sense or
    the port cannot be had."""
    protocol = protocol_of(args)
    if not os.path.isdir(args.root):
        raise SettingsError(f'Root {args.root} is not a directory')
    password = connection.read_password(args.password_file)
    port = args.port or (SFTP_PORT if protocol == 'sftp' else FTP_PORT)
    try:
        if protocol == 'sftp':
            server = sftp_server(args, password, port_number(port))
        else:
            server = EmbeddedServer(args.root, args.user, password,
                                    host=args.host, port=port_number(port),
                                    **tls_options(args, scratch))
        return scratch.enter_context(server)
    except OSError as e:
        # pyftpdlib raises some without an errno: its text is the reason.
        raise SettingsError(
            f'Cannot listen on {args.host} port {port}: '
            f'{e.strerror or e}') from None
