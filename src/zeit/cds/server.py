"""cds-server: an embedded CDS-compatible FTP server (pyftpdlib) rooted
at a folder, with one user: for local development, staging and the quick
start. CDS partners run their own production servers."""
import os
import signal
import sys
import threading

import pyftpdlib.authorizers
import pyftpdlib.handlers
import pyftpdlib.ioloop
import pyftpdlib.servers

from zeit.cds import config
from zeit.cds.cli import ArgumentParser
from zeit.cds.interfaces import ConfigurationError

# Every permission, including MFMT and SITE CHMOD, so the server never
# stands in the way of a client.
ALL_PERMISSIONS = 'elradfmwMT'


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
        handler = type(handler.__name__, (handler,),
                       dict(handler_options, authorizer=authorizer))
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


def parser():
    p = ArgumentParser(
        prog='cds-server',
        description='Serve a folder as a CDS FTP server, with one user. '
        'The password comes from --password-file or the environment '
        f'variable {config.PASSWORD_VARIABLE}.')
    p.add_argument('--root', required=True, help='the folder to serve')
    p.add_argument('--host', default='127.0.0.1',
                   help='the address to listen on (default 127.0.0.1)')
    p.add_argument('--port', default='2121',
                   help='the port (default 2121; 0 picks a free one)')
    p.add_argument('--user', required=True, help='the one user')
    p.add_argument('--password-file', help='a file holding the password')
    return p


def port_number(value):
    if value == '0':
        return 0
    return config.KEYS['port'](value)


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        if not os.path.isdir(args.root):
            raise ConfigurationError(f'Root {args.root} is not a directory')
        password = config.read_password(args.password_file)
        server = EmbeddedServer(args.root, args.user, password,
                                host=args.host, port=port_number(args.port))
    except ConfigurationError as e:
        sys.exit(f'cds-server: error: {e}')
    except OSError as e:
        sys.exit(f'cds-server: error: cannot listen on {args.host} port '
                 f'{args.port}: {e.strerror}')
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *ignored: stop.set())
    with server:
        print(f'Serving {args.root} at ftp://{server.host}:{server.port}/ '
              f'for user {args.user}; stop with Ctrl-C', flush=True)
        stop.wait()
    print('Stopped', flush=True)
