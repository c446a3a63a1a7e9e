"""An embedded SFTP server (asyncssh's) rooted at a folder, with one user
and password: for local development, the quick start and the narrative
doctest ``sftp.txt``. CDS partners run their own production servers; the
tests of the SFTP target run against OpenSSH's sshd.

It serves SFTP only (no shell, no forwarding), offers
``posix-rename@openssh.com`` and ``fsync@openssh.com`` as OpenSSH does,
and runs on the event loop of ``zeit.cds.targets.background``.
"""
import hmac

import asyncssh

from zeit.cds.targets import background


class _Login(asyncssh.SSHServer):
    """Takes the one user with the one password, nothing else."""

    def __init__(self, user, password):
        self._user = user
        self._password = password

    def begin_auth(self, username):
        return True  # Every user must authenticate.

    def password_auth_supported(self):
        return True

    def validate_password(self, username, password):
        return (hmac.compare_digest(username, self._user)
                and hmac.compare_digest(password, self._password))


class EmbeddedSFTPServer:
    """An SFTP server for the folder ``root``; ``port`` 0 lets the OS pick
    a free one, ``port`` tells which once started. ``host_key`` is an
    asyncssh private key; a new ed25519 key when None.
    """

    # What serves a session's requests: a subclass may refuse some.
    serving = asyncssh.SFTPServer

    def __init__(self, root, user, password, *, host='127.0.0.1', port=0,
                 host_key=None):
        self.root = root
        self.host = host
        self.port = port
        self._user = user
        self._password = password
        self.host_key = host_key or asyncssh.generate_private_key(
            'ssh-ed25519')
        self._listener = None

    @property
    def fingerprint(self):
        """The SHA256 fingerprint of the host key, as ssh shows it."""
        return self.host_key.get_fingerprint()

    @property
    def known_hosts_line(self):
        """The line that makes a client trust this server."""
        public = self.host_key.export_public_key().decode('ascii').strip()
        return f'[{self.host}]:{self.port} {public}'

    def start(self):
        def sftp(channel):
            # Confined to the root folder: it is "/" for the client.
            return self.serving(channel, chroot=self.root)
        self._listener = background.call(asyncssh.listen(
            self.host, self.port, server_host_keys=[self.host_key],
            server_factory=lambda: _Login(self._user, self._password),
            sftp_factory=sftp, allow_scp=False, agent_forwarding=False,
            x11_forwarding=False, allow_pty=False, config=None))
        self.port = self._listener.get_port()
        return self

    def stop(self):
        listener, self._listener = self._listener, None
        if listener is not None:
            async def closed():
                listener.close()
                await listener.wait_closed()
            background.call(closed())

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
