"""A real OpenSSH sshd for the SFTP tests, run like the FTP servers of
realservers.py: on 127.0.0.1 and a free port, as root, for the length of
one test layer, stopped through the PID that was started.

The binary comes from the folder named by ``$CDS_FTP_SERVERS``, into which
``.ci/ftp-servers.sh`` unpacks Debian's openssh-server, or else from the
system. The server gets its own ``sshd_config``, a new ed25519 host key, and
a ``known_hosts`` file naming it for clients. Logins map to the test
account ``cds-ftp-test``, by its password (set for the layer's length, as
for vsftpd) or by a client key of the layer's own, and get nothing but
``internal-sftp``. Without PAM, sshd checks the password itself.

Two variants serve the fault stories: one whose SFTP server denies the
OpenSSH extensions (``-P``), one whose root folder is a small file system
of its own (a tmpfs), where a large upload finds the disk full.

sshd separates privileges through a system account ``sshd`` and the empty
folder ``/run/sshd``, both fixed when it was built; they are created on
first use, as Debian's package would, and left in place.
"""
import os
import signal
import subprocess
import tempfile

import asyncssh

from zeit.cds.tests.realservers import RealFTPServer
from zeit.cds.tests.realservers import RealServerLayer
from zeit.cds.tests.realservers import SystemLogin
from zeit.cds.tests.realservers import ensure_account
from zeit.cds.tests.realservers import write_file

PRIVILEGE_SEPARATION = '/run/sshd'


def make_key(path):
    """A new ed25519 key in OpenSSH's format at ``path`` (private, 0600)
    and ``path``.pub; the key."""
    key = asyncssh.generate_private_key('ssh-ed25519')
    write_file(path, key.export_private_key().decode('ascii'))
    write_file(path + '.pub', key.export_public_key().decode('ascii'),
               mode=0o644)
    return key


class OpenSSH(SystemLogin, RealFTPServer):
    """OpenSSH's sshd serving SFTP only; the sessions see the whole file
    system (no chroot) and enter the root folder by its full path."""

    name = 'OpenSSH'
    binary = 'usr/sbin/sshd'
    greeting = b'SSH-'

    # What serves the sessions: sshd's own SFTP server, with its options.
    sftp_server = 'internal-sftp'

    # The client side: a key the server takes, and the known hosts.
    client_key = None
    known_hosts = None
    host_key = None

    def configure(self, uid, gid):
        self.log_in_as_account()
        ensure_account('sshd', home=PRIVILEGE_SEPARATION,
                       comment='sshd privilege separation')
        os.makedirs(PRIVILEGE_SEPARATION, mode=0o755, exist_ok=True)
        self.host_key = make_key(self.own_file('host_key'))
        self.client_key = self.own_file('client_key')
        make_key(self.client_key)
        self.known_hosts = write_file(
            self.own_file('known_hosts'),
            f'[{self.host}]:{self.port} '
            + self.host_key.export_public_key().decode('ascii'),
            mode=0o644)
        config = write_file(self.own_file('sshd_config'), f"""\
ListenAddress {self.host}:{self.port}
HostKey {self.own_file('host_key')}
PidFile {self.own_file('sshd.pid')}
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile {self.client_key}.pub
# The key files live below /tmp, which any user may write to.
StrictModes no
PermitRootLogin no
AllowUsers {self.user}
Subsystem sftp {self.sftp_server}
ForceCommand {self.sftp_server}
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTTY no
PrintMotd no
UseDNS no
MaxStartups 100
LogLevel VERBOSE
""")
        return [self.executable, '-D', '-e', '-f', config]

    def sessions(self):
        """The PIDs of the processes sshd runs for the sessions now open:
        its descendants (each session has a privileged monitor and the
        user's process below it)."""
        children = {}
        for entry in os.listdir('/proc'):
            if not entry.isdigit():
                continue
            try:
                with open(f'/proc/{entry}/stat') as f:
                    # pid (comm) state ppid ...; comm may hold spaces.
                    parent = int(f.read().rpartition(')')[2].split()[1])
            except OSError:
                continue  # Ended meanwhile.
            children.setdefault(parent, []).append(int(entry))
        found = []
        todo = list(children.get(self._process.pid, []))
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def drop_sessions(self):
        """Kill every open session, as a broken network would end it."""
        for pid in self.sessions():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def halt(self):
        """End every open session and sshd itself: the server is gone
        (``stop`` and ``start`` bring up a new one)."""
        self.drop_sessions()
        self._process.terminate()
        self._process.wait()


class OpenSSHWithoutExtensions(OpenSSH):
    """sshd whose SFTP server denies the OpenSSH extensions that a target
    uses where a server offers them (``-P``): it leaves them out of its
    greeting, as a server without them would."""

    name = 'OpenSSH-without-extensions'
    sftp_server = 'internal-sftp -P fsync,posix-rename'


class OpenSSHOnSmallDisk(OpenSSH):
    """sshd whose root folder is a file system of its own with little
    room (a tmpfs, mounted while it runs): an upload larger than what is
    left is refused part way, as on a full disk or at a quota."""

    name = 'OpenSSH-on-a-small-disk'
    disk_size = 64 * 1024
    _mounted = False

    def unavailable(self):
        reason = super().unavailable()
        if reason is None:
            # A mount in a namespace of its own, which ends with it.
            with tempfile.TemporaryDirectory() as folder:
                result = subprocess.run(
                    ['unshare', '--mount', '--propagation', 'private', '--',
                     'mount', '-t', 'tmpfs', 'cds-probe', folder],
                    capture_output=True, text=True)
            if result.returncode:
                reason = (f'{self.name} needs to mount a tmpfs: '
                          f'{result.stderr.strip()}')
        return reason

    def configure(self, uid, gid):
        subprocess.run(
            ['mount', '-t', 'tmpfs', '-o',
             f'size={self.disk_size},uid={uid},gid={gid},mode=0755',
             'cds-small-disk', self.root], check=True, capture_output=True)
        self._mounted = True
        return super().configure(uid, gid)

    def _stop(self):
        if self._mounted:
            # Lazily: the server's sessions may still be ending.
            subprocess.run(['umount', '--lazy', self.root], check=True,
                           capture_output=True)
            self._mounted = False
        super()._stop()


SSHD_LAYER = RealServerLayer(OpenSSH)
SSHD_WITHOUT_EXTENSIONS_LAYER = RealServerLayer(OpenSSHWithoutExtensions)
SSHD_ON_SMALL_DISK_LAYER = RealServerLayer(OpenSSHOnSmallDisk)
