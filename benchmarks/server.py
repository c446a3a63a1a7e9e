"""The FTP server of the benchmarks, run in a process of its own.

It is pyftpdlib's stock server on 127.0.0.1 and a port the operating
system picks. Run as a separate process, its CPU time does not share a
GIL with the client being measured.

Usage (bench.py starts it; the password comes from $CDS_BENCH_PASSWORD)::

    python server.py --root DIR --user NAME [--delay-ms 5]

- It prints ``port N`` on stdout once it listens.
- ``--delay-ms`` holds back every reply for that long, on the server's
  side and without blocking the other connections: a WAN round trip.
  Replies of one connection keep their order; a closing connection
  first sends what is held back.
- It counts its replies. Each line ``count`` written to its stdin is
  answered with ``count N SECONDS`` on stdout: the replies so far and
  the CPU time the server has used.
- With ``--arrivals FILE`` it appends a line ``SECONDS NAME`` to FILE
  the moment a file becomes visible, complete, under its final name: at
  the rename onto it (zeit.cds) or at the end of a direct upload (lftp),
  SECONDS from the wall clock (``time.time()``). Lock files and
  zeit.cds's temporary names are left out.
- It stops at the end of its stdin (``stop`` or a closed pipe), and on
  SIGTERM or SIGINT, without a traceback.
"""
import argparse
import collections
import logging
import os
import signal
import sys
import threading
import time

import pyftpdlib.authorizers
import pyftpdlib.handlers
import pyftpdlib.servers

# Every permission, as in zeit.cds.testing: the server never stands in
# the way of a client being measured.
PERMISSIONS = 'elradfmwMT'


class CountingHandler(pyftpdlib.handlers.FTPHandler):
    """pyftpdlib's handler, counting its replies and, when ``delay`` is
    set (seconds), holding each one back that long."""

    replies = 0
    delay = 0.0

    def respond(self, resp, logfun=None):
        type(self).replies += 1
        if logfun is None:
            super().respond(resp)
        else:
            super().respond(resp, logfun)

    def push(self, data):
        if not self.delay:
            super().push(data)
            return
        held = self.__dict__.setdefault('_held', collections.deque())
        held.append((time.monotonic() + self.delay, data))
        if len(held) == 1:
            self.call_later(self.delay, self._release_held)

    def _release_held(self):
        held = self._held
        now = time.monotonic()
        while held and held[0][0] <= now:
            super().push(held.popleft()[1])
        if held:
            self.call_later(held[0][0] - now, self._release_held)
        elif self.__dict__.pop('_close_when_released', False):
            super().close_when_done()

    def close_when_done(self):
        if self.__dict__.get('_held'):
            self._close_when_released = True
        else:
            super().close_when_done()


# Never "arrived": the CDS lock files and zeit.cds's temporary names.
NOT_ARRIVALS = ('write', 'read')
PARTIAL_PREFIX = '.cds-partial.'


class ArrivalHandler(CountingHandler):
    """Also writes a line to the file ``arrivals`` for every file that
    becomes visible under its final name."""

    arrivals = None

    def _arrived(self, path):
        name = os.path.basename(path)
        if name in NOT_ARRIVALS or name.startswith(PARTIAL_PREFIX):
            return
        self.arrivals.write(f'{time.time():.6f} {name}\n')
        self.arrivals.flush()

    def ftp_RNTO(self, path):
        renamed = super().ftp_RNTO(path)
        if renamed is not None:
            self._arrived(renamed[1])
        return renamed

    def on_file_received(self, file):
        self._arrived(file)


def report_on_request(handler, stdin, stdout):
    """Answer ``count`` lines from the harness; stop at ``stop`` or EOF."""
    for line in stdin:
        if line.strip() == 'count':
            stdout.write(f'count {handler.replies} {time.process_time()}\n')
            stdout.flush()
        elif line.strip() == 'stop':
            break
    # Nothing to save: the harness verifies what the clients left on disk.
    os._exit(0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root', required=True)
    parser.add_argument('--user', required=True)
    parser.add_argument('--delay-ms', type=float, default=0.0)
    parser.add_argument('--arrivals', metavar='FILE')
    args = parser.parse_args(argv)
    password = os.environ['CDS_BENCH_PASSWORD']

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Warnings and errors only, on stderr: pyftpdlib would log every
    # session and every transfer otherwise, at the cost of its own CPU.
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger('pyftpdlib').setLevel(logging.WARNING)

    authorizer = pyftpdlib.authorizers.DummyAuthorizer()
    authorizer.add_user(args.user, password, args.root, perm=PERMISSIONS)
    handler = type('BenchHandler', (
        ArrivalHandler if args.arrivals else CountingHandler,), {
        'authorizer': authorizer,
        'delay': args.delay_ms / 1000.0,
        'arrivals': args.arrivals and open(args.arrivals, 'a'),
    })
    server = pyftpdlib.servers.FTPServer(('127.0.0.1', 0), handler)
    print(f'port {server.address[1]}', flush=True)
    threading.Thread(target=report_on_request,
                     args=(handler, sys.stdin, sys.stdout),
                     daemon=True).start()
    # Blocking, without a timeout: the IO loop then wakes exactly when
    # the next held-back reply is due.
    server.serve_forever(handle_exit=False)


if __name__ == '__main__':
    main()
