"""Real FTP servers for the interoperability tests: vsftpd, ProFTPD,
Pure-FTPd, GNU inetutils' ftpd and Twisted's FTP server, each run on
127.0.0.1 for the length of one test layer.

The binaries come from the folder named by ``$CDS_FTP_SERVERS``, into
which ``.ci/ftp-servers.sh`` unpacks Debian's packages (they conflict with
one another, so they are not installed), or else from the system; Twisted
comes with the test environment. Each server gets a configuration of its
own in a temporary folder, a fresh root folder, a login with a random
password, and a control port and passive ports that were free on
127.0.0.1 (or that the OS picked, where the server tells its port). It
runs in the foreground as a child of the test process, in a process group
of its own, and is stopped through the PID that was started.

The Debian servers must be started as root, since each session switches
to the user who logged in. All logins map to one dedicated system
account, ``cds-ftp-test``, which owns the root folders. It is created on
first use (``useradd --system``: home ``/``, no login shell) and left in
place for the next run. vsftpd and inetutils' ftpd know only system
accounts: they log in as this one, whose password is set to a new random
one when the server starts and locked again when it stops. vsftpd checks
it through PAM (its service name has no file in /etc/pam.d, so Debian's
``other`` service, pam_unix, applies), inetutils' ftpd against
/etc/shadow. ProFTPD (AuthUserFile) and Pure-FTPd (PureDB) have a virtual
user of their own that runs as the account. Twisted's server runs as the
test process's user and keeps its one user in memory.

With ``tls=True`` a server insists on explicit TLS (FTPS) for the login
and for every data connection, with an RSA certificate for 127.0.0.1 and
localhost from a CA made for it (``certificate.ca_file`` is the CA file
for clients); vsftpd and ProFTPD also insist that data connections resume
the control connection's TLS session.
"""
import fcntl
import glob
import importlib.util
import os
import pwd
import random
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import trustme
import zope.component.testlayer

import zeit.cds
import zeit.cds.server
import zeit.cds.testing

ENVIRONMENT = 'CDS_FTP_SERVERS'
ACCOUNT = 'cds-ftp-test'
ACCOUNT_LOCK = os.path.join(tempfile.gettempdir(), f'{ACCOUNT}.lock')
VIRTUAL_USER = 'cds'
HOST = '127.0.0.1'
# Each server's passive range. A run's parallel connections need many
# more ports than there are connections: the ports of finished data
# connections linger a while. With four ports, vsftpd answers a PASV with
# "500 OOPS: vsf_sysutil_bind" at times and ends the session.
PASSIVE_PORTS = 64
START_SECONDS = 10
# Starts with new ports, should another process take a server's port
# between the check that it is free and the server's bind.
START_ATTEMPTS = 3
STOP_SECONDS = 10


class PortTaken(RuntimeError):
    """A server could not bind its port: somebody else has it now."""


def free_port_range(count):
    """``count`` consecutive ports that are free on 127.0.0.1 now.

    They are drawn at random below the OS's range of ephemeral ports. In
    that range, every outgoing connection on the machine may take a port
    that was just found free; and on a busy machine, the client sides of
    many short loopback connections linger there in TIME_WAIT, so free
    runs are rare.
    """
    with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
        ephemeral = int(f.read().split()[0])
    rng = random.Random()
    for _ in range(200):
        first = rng.randrange(10000, ephemeral - count)
        ports = range(first, first + count)
        if _all_free(ports):
            return ports
    raise RuntimeError(f'Found no {count} consecutive free ports on {HOST}')


def _probe():
    # Bound as the servers bind theirs, with SO_REUSEADDR, so that a port
    # whose last connection (a server's own, say) waits in TIME_WAIT can
    # count as free.
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return probe


def _all_free(ports):
    sockets = []
    try:
        for port in ports:
            sockets.append(_probe())
            sockets[-1].bind((HOST, port))
    except OSError:
        return False
    finally:
        for s in sockets:
            s.close()
    return True


def ensure_account(name=ACCOUNT, home='/',
                   comment='zeit.cds FTP interop tests'):
    """The uid and gid of the system account ``name``, which is created
    if missing (no login shell) and left in place.

    The test account's home is ``/``, where vsftpd's sessions start before
    they enter ``local_root``.
    """
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        result = subprocess.run(
            ['useradd', '--system', '--user-group', '--no-create-home',
             '--home-dir', home, '--shell', '/usr/sbin/nologin',
             '--comment', comment, name],
            capture_output=True, text=True)
        # Exit status 9: another test run created it meanwhile.
        if result.returncode not in (0, 9):
            raise RuntimeError(
                f'useradd {name} failed: {result.stderr.strip()}')
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def crypted(password):
    """``password`` hashed for crypt(3), as ProFTPD and Pure-FTPd check it.

    SHA-512 crypt: Pure-FTPd's own pure-pw would take seconds per hash and
    per login.
    """
    return subprocess.run(
        ['openssl', 'passwd', '-6', '-stdin'], input=password, text=True,
        check=True, capture_output=True).stdout.strip()


def write_file(path, text, mode=0o600):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode),
              'w', encoding='utf-8') as f:
        f.write(text)
    return path


class RealFTPServer:
    """One server process with its configuration, root folder and login.

    Subclasses name their binary and write their configuration in
    ``configure``, which returns the command line.
    """

    name = None
    binary = None
    # How the server's first line starts once it serves.
    greeting = b'220'
    # Whether the server lists folders with MLSD (RFC 3659).
    has_mlsd = True
    # Whether its listings show names that start with a dot.
    lists_dot_files = True
    # Whether its TLS data connections must resume the control
    # connection's TLS session.
    requires_tls_session_reuse = False
    # Whether it keeps a name's UTF-8 bytes as they came and lists them so.
    utf8_names = True
    # Whether its sessions run as the system account (they switch to it,
    # so the server must be started as root).
    system_account = True
    # Whether it binds a port the OS picks and prints it on a line of its
    # own once it listens, rather than being given free ports.
    reports_port = False

    def __init__(self, installation=None, tls=False):
        self.installation = (
            installation or os.environ.get(ENVIRONMENT) or '/')
        self.tls = tls
        # With TLS: the server's zeit.cds.server.Certificate.
        self.certificate = None
        self.host = HOST
        self.port = None
        self.passive_ports = None
        # The root folder as the server's sessions see it.
        self.directory = '/'
        self.user = VIRTUAL_USER
        self.password = None
        self.root = None
        self.folder = None
        self._process = None

    def __repr__(self):
        tls = ' with TLS' if self.tls else ''
        return f'<{self.name}{tls} on {self.host} port {self.port}>'

    @property
    def executable(self):
        return os.path.join(self.installation, self.binary)

    def unavailable(self):
        """Why the server cannot run here, or None when it can."""
        if not os.access(self.executable, os.X_OK):
            return (f'{self.name} not found at {self.executable}: unpack '
                    f'the servers with `bash .ci/ftp-servers.sh DEST` and '
                    f'set {ENVIRONMENT}=DEST')
        if self.system_account and os.geteuid() != 0:
            return (f'{self.name} must be started as root: its sessions '
                    f'switch to the user who logs in')
        if self.tls:
            return self.tls_unavailable()
        return None

    def tls_unavailable(self):
        """Why the server cannot speak TLS here, or None when it can."""
        with open(self.executable, 'rb') as f:
            # The binary calls OpenSSL only when it was built with TLS.
            if b'SSL_CTX_new' not in f.read():
                return (f'{self.name} at {self.executable} was built '
                        f'without TLS')
        return None

    def start(self):
        try:
            for attempts_left in reversed(range(START_ATTEMPTS)):
                try:
                    self._start()
                    return self
                except PortTaken:
                    if not attempts_left:
                        raise
                    self._stop()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        self.folder = tempfile.mkdtemp(prefix=f'cds-{self.name}-')
        # The servers' session processes only pass through.
        os.chmod(self.folder, 0o711)
        self.root = os.path.join(self.folder, 'root')
        os.mkdir(self.root)
        uid = gid = None
        if self.system_account:
            uid, gid = ensure_account()
            os.chown(self.root, uid, gid)
        self.password = secrets.token_urlsafe(16)
        if self.tls:
            # Read by the server as root, before its sessions start. RSA,
            # as most servers out there use: vsftpd's Debian default
            # ``ssl_ciphers`` (ECDHE-RSA-AES256-GCM-SHA384) admits a TLS
            # 1.2 client only with an RSA certificate.
            self.certificate = zeit.cds.server.make_certificate(
                self.folder, hosts=(self.host, 'localhost'),
                key_type=trustme.KeyType.RSA)
        if not self.reports_port:
            ports = free_port_range(1 + PASSIVE_PORTS)
            self.port = ports[0]
            self.passive_ports = ports[1], ports[-1]
        command = self.configure(uid, gid)
        with open(self.log_path, 'wb') as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if self.reports_port else log,
                stderr=log, cwd=self.folder, env=self.environment(),
                start_new_session=True)
        if self.reports_port:
            self.port = self._reported_port()
        self._wait_until_ready()

    @property
    def log_path(self):
        return self.own_file('server.log')

    def environment(self):
        # With Python's path, for the servers that run Python modules.
        env = zeit.cds.testing.child_environment()
        libraries = glob.glob(
            os.path.join(self.installation, 'usr/lib/*-linux-gnu'))
        if self.installation != '/' and libraries:
            env['LD_LIBRARY_PATH'] = os.pathsep.join(
                libraries + [env.get('LD_LIBRARY_PATH', '')]).rstrip(':')
        return env

    def own_file(self, name):
        """A file of the server's own, beside its root folder."""
        return os.path.join(self.folder, name)

    def configure(self, uid, gid):
        """Write the configuration; return the command line."""
        raise NotImplementedError

    def put(self, name, data):
        """Place the file ``name`` in the root folder, as if uploaded."""
        path = os.path.join(self.root, name)
        with open(path, 'wb') as f:
            f.write(data)
        if self.system_account:
            os.chown(path, *ensure_account())

    def contents(self):
        """The files in the root folder: a dict of name to bytes."""
        return zeit.cds.testing.folder_contents(self.root)

    def _reported_port(self):
        """The port the server prints once it listens."""
        output = self._process.stdout
        with selectors.DefaultSelector() as selector:
            selector.register(output, selectors.EVENT_READ)
            line = output.readline() if selector.select(START_SECONDS) else b''
        # It prints nothing more.
        output.close()
        if not line.strip().isdigit():
            raise RuntimeError(
                f'{self.name} reported no port within {START_SECONDS} s: '
                f'{line!r} {self._log_tail()}')
        return int(line)

    def _wait_until_ready(self):
        deadline = time.monotonic() + START_SECONDS
        while not self._answers():
            if self._process.poll() is not None:
                if not _all_free([self.port]):
                    raise PortTaken(
                        f'{self.name} could not bind port {self.port}')
                raise RuntimeError(
                    f'{self.name} exited with status '
                    f'{self._process.returncode}: {self._log_tail()}')
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f'{self.name} did not answer on {self.host} port '
                    f'{self.port} within {START_SECONDS} s: '
                    f'{self._log_tail()}')
            # Wait for the process rather than the clock: an early exit
            # ends the wait at once.
            try:
                self._process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass

    def _answers(self):
        try:
            with socket.create_connection(
                    (self.host, self.port), timeout=1) as s:
                return s.makefile('rb').readline().startswith(
                    self.greeting)
        except OSError:
            return False

    def _log_tail(self):
        with open(self.log_path, 'rb') as f:
            text = f.read()[-2000:].decode('utf-8', 'replace').strip()
        return text or '(no output)'

    def stop(self):
        self._stop()

    def _stop(self):
        """Stop the process; remove the configuration and root folder."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            # The group holds the server and its session processes; its id
            # is the PID that was started.
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


class SystemLogin:
    """Mixin for a server that knows only system accounts: its sessions
    log in as the test account, without chroot; they start in ``/`` and
    enter the root folder by its full path.

    ``log_in_as_account`` gives the account the server's password. The
    server holds an exclusive lock on ``ACCOUNT_LOCK`` from before that
    until it has locked the account again, so that two servers (or two
    test runs on one machine) take turns instead of changing the password
    under each other.
    """

    _lock = None
    _password_set = False

    def start(self):
        self._lock = open(ACCOUNT_LOCK, 'a')
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        return super().start()

    def stop(self):
        super().stop()
        if self._password_set:
            subprocess.run(['usermod', '--lock', ACCOUNT],
                           check=True, capture_output=True)
            self._password_set = False
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()

    def log_in_as_account(self):
        self.user = ACCOUNT
        self.directory = self.root
        subprocess.run(['chpasswd'], input=f'{ACCOUNT}:{self.password}\n',
                       text=True, check=True, capture_output=True)
        self._password_set = True


class Vsftpd(SystemLogin, RealFTPServer):
    """vsftpd with the system account (see SystemLogin)."""

    name = 'vsftpd'
    binary = 'usr/sbin/vsftpd'
    has_mlsd = False
    lists_dot_files = False
    requires_tls_session_reuse = True

    def configure(self, uid, gid):
        self.log_in_as_account()
        empty = self.own_file('empty')
        os.mkdir(empty, 0o755)
        config = write_file(self.own_file('vsftpd.conf'), f"""\
listen=YES
listen_ipv6=NO
background=NO
listen_address={self.host}
listen_port={self.port}
pasv_enable=YES
pasv_address={self.host}
pasv_min_port={self.passive_ports[0]}
pasv_max_port={self.passive_ports[1]}
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
local_root={self.root}
chroot_local_user=NO
secure_chroot_dir={empty}
pam_service_name=zeit-cds-tests
tcp_wrappers=NO
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
xferlog_enable=NO
vsftpd_log_file={self.own_file('vsftpd.log')}
""" + (self.tls_configuration() if self.tls else ''))
        return [self.executable, config]

    def tls_configuration(self):
        return f"""\
ssl_enable=YES
rsa_cert_file={self.certificate.certfile}
rsa_private_key_file={self.certificate.keyfile}
force_local_logins_ssl=YES
force_local_data_ssl=YES
require_ssl_reuse=YES
"""


class ProFTPD(RealFTPServer):
    """ProFTPD as Debian configures it: files may be replaced.

    Its daemon pauses for 200 ms whenever a session's process has ended
    (strace shows the sleep right after it reaps the child), and accepts
    no connection meanwhile; that pause is most of the time each test
    against ProFTPD takes.
    """

    name = 'ProFTPD'
    binary = 'usr/sbin/proftpd'
    allow_overwrite = True
    # Lines for proftpd.conf beyond the common ones.
    more_configuration = ''
    # mod_tls insists on it unless told otherwise (NoSessionReuseRequired).
    requires_tls_session_reuse = True

    @property
    def modules(self):
        return os.path.join(self.installation, 'usr/lib/proftpd')

    def tls_unavailable(self):
        if not os.path.exists(os.path.join(self.modules, 'mod_tls.so')):
            return (f'ProFTPD\'s TLS module mod_tls.so not found in '
                    f'{self.modules}: .ci/ftp-servers.sh unpacks it from '
                    f'Debian\'s proftpd-mod-crypto')
        return None

    def configure(self, uid, gid):
        users = write_file(
            self.own_file('passwd'),
            f'{self.user}:{crypted(self.password)}:{uid}:{gid}::{self.root}:'
            f'/bin/false\n')
        groups = write_file(self.own_file('group'), f'{ACCOUNT}:x:{gid}:\n')
        config = write_file(self.own_file('proftpd.conf'), f"""\
ServerType standalone
ServerName "zeit.cds tests"
DefaultServer on
DefaultAddress {self.host}
SocketBindTight on
UseIPv6 off
Port {self.port}
PassivePorts {self.passive_ports[0]} {self.passive_ports[1]}
User {ACCOUNT}
Group {ACCOUNT}
PidFile {self.own_file('proftpd.pid')}
ScoreboardFile {self.own_file('proftpd.scoreboard')}
SystemLog {self.own_file('proftpd.log')}
TransferLog NONE
WtmpLog off
UseLastlog off
UseReverseDNS off
DelayEngine off
AuthPAM off
ControlsEngine off
AuthOrder mod_auth_file.c mod_auth_unix.c
AuthUserFile {users}
AuthGroupFile {groups}
RequireValidShell off
UseFtpUsers off
DefaultRoot ~
Umask 022
AllowOverwrite {'on' if self.allow_overwrite else 'off'}
""" + self.more_configuration + (
            self.tls_configuration() if self.tls else ''))
        return [self.executable, '--nodaemon', '--config', config]

    def tls_configuration(self):
        return f"""\
ModulePath {self.modules}
LoadModule mod_tls.c
TLSEngine on
TLSRequired on
TLSProtocol TLSv1.2 TLSv1.3
TLSRSACertificateFile {self.certificate.certfile}
TLSRSACertificateKeyFile {self.certificate.keyfile}
TLSLog {self.own_file('tls.log')}
"""


class ProFTPDWithoutOverwrite(ProFTPD):
    """ProFTPD with its own default: no file is ever replaced."""

    allow_overwrite = False


class ImpatientProFTPD(ProFTPD):
    """ProFTPD that ends a session after two seconds without a data
    transfer (TimeoutNoTransfer): commands without one, such as NOOP, do
    not keep it alive, and a listing does."""

    more_configuration = 'TimeoutNoTransfer 2\n'


class PureFTPd(RealFTPServer):

    name = 'Pure-FTPd'
    binary = 'usr/sbin/pure-ftpd'

    def configure(self, uid, gid):
        # pure-pw's own format: name, hash, uid, gid, gecos, home and 12
        # empty limits; "/./" marks the home as the chroot.
        users = write_file(
            self.own_file('pureftpd.passwd'),
            f'{self.user}:{crypted(self.password)}:{uid}:{gid}::'
            f'{self.root}/./' + ':' * 12 + '\n')
        database = self.own_file('pureftpd.pdb')
        subprocess.run(
            [os.path.join(self.installation, 'usr/bin/pure-pw'), 'mkdb',
             database, '-f', users],
            check=True, capture_output=True, env=self.environment())
        return [
            self.executable,
            '--bind', f'{self.host},{self.port}',
            '--ipv4only',
            '--passiveportrange', '{}:{}'.format(*self.passive_ports),
            '--forcepassiveip', self.host,
            '--login', f'puredb:{database}',
            '--noanonymous',
            '--chrooteveryone',
            '--dontresolve',
            '--minuid', '1',
            '--syslogfacility', 'none',
            '--pidfile', self.own_file('pure-ftpd.pid'),
        ] + ([
            # 3: TLS for the login and for every data connection.
            '--tls', '3',
            '--certfile', '{0.certfile},{0.keyfile}'.format(
                self.certificate),
        ] if self.tls else [])


class InetutilsFTPd(SystemLogin, RealFTPServer):
    """GNU inetutils' ftpd with the system account (see SystemLogin).

    It has no port option and serves one connection on its standard input
    and output: zeit.cds.tests.inetd starts one for each connection.
    Without ``--auth pam`` it checks the password against /etc/shadow
    itself (its PAM login is broken: it asks PAM for the password before
    the client sent it, and Linux-PAM's pam_unix gives up). It admits only
    accounts whose shell /etc/shells lists, which the account's
    /usr/sbin/nologin is not; so the inetd runs in a mount namespace of
    its own, where /etc/shells is a file that lists it, and nothing
    changes outside.
    """

    name = 'inetutils-ftpd'
    binary = 'usr/sbin/ftpd'
    has_mlsd = False
    reports_port = True

    def unavailable(self):
        reason = super().unavailable()
        if reason is None:
            result = subprocess.run(
                self.mount_namespace + ['true'], capture_output=True,
                text=True)
            if result.returncode:
                reason = (f'{self.name} needs a mount namespace of its own: '
                          f'{result.stderr.strip()}')
        return reason

    @property
    def mount_namespace(self):
        return ['unshare', '--mount', '--propagation', 'private', '--']

    def configure(self, uid, gid):
        self.log_in_as_account()
        shells = write_file(self.own_file('shells'),
                            pwd.getpwnam(ACCOUNT).pw_shell + '\n')
        return self.mount_namespace + [
            sys.executable, '-m', 'zeit.cds.tests.inetd', '--shells', shells,
            self.executable, '--umask', '022']


class TwistedFTPd(RealFTPServer):
    """Twisted's FTP server (zeit.cds.tests.twistedftp), with the test
    environment's Twisted; it runs as the test process's user.

    It decodes the names in commands as Latin-1 but lists names as UTF-8,
    so a name that the client sends as UTF-8 is stored as the UTF-8 of its
    bytes read as Latin-1, and listed so.
    """

    name = 'Twisted'
    has_mlsd = False
    utf8_names = False
    system_account = False
    reports_port = True

    def unavailable(self):
        try:
            found = importlib.util.find_spec('twisted.protocols.ftp')
        except ImportError as e:
            return f'{self.name}: {e}'
        return None if found else f'{self.name}: twisted is not installed'

    def configure(self, uid, gid):
        password_file = write_file(self.own_file('password'), self.password)
        return [sys.executable, '-m', 'zeit.cds.tests.twistedftp',
                self.root, self.user, password_file]


class RealServerLayer(zope.component.testlayer.LayerBase):
    """Runs one real server for all tests of the layer; every test starts
    with an empty root folder.

    When the server cannot run here, ``unavailable`` says why and no
    server is started.
    """

    def __init__(self, server_class, tls=False):
        super().__init__(zeit.cds, '{}{}Layer'.format(
            server_class.__name__, 'TLS' if tls else ''))
        self.server_class = server_class
        self.tls = tls
        self.server = None
        self.unavailable = None

    def setUp(self):
        server = self.server_class(tls=self.tls)
        self.unavailable = server.unavailable()
        if self.unavailable is None:
            self.server = server.start()

    def tearDown(self):
        if self.server is not None:
            self.server.stop()
            self.server = None

    def testSetUp(self):
        if self.server is not None:
            zeit.cds.testing.empty_folder(self.server.root)


VSFTPD_LAYER = RealServerLayer(Vsftpd)
PROFTPD_LAYER = RealServerLayer(ProFTPD)
PUREFTPD_LAYER = RealServerLayer(PureFTPd)
INETUTILS_LAYER = RealServerLayer(InetutilsFTPd)
TWISTED_LAYER = RealServerLayer(TwistedFTPd)
PROFTPD_WITHOUT_OVERWRITE_LAYER = RealServerLayer(ProFTPDWithoutOverwrite)
IMPATIENT_PROFTPD_LAYER = RealServerLayer(ImpatientProFTPD)
VSFTPD_TLS_LAYER = RealServerLayer(Vsftpd, tls=True)
PROFTPD_TLS_LAYER = RealServerLayer(ProFTPD, tls=True)
PUREFTPD_TLS_LAYER = RealServerLayer(PureFTPd, tls=True)
