"""A tiny inetd for the interop tests, for servers that have no port of
their own and serve one connection on their standard input and output,
as GNU inetutils' ftpd does.

Usage: python -m zeit.cds.tests.inetd [--shells FILE] COMMAND [ARG...]

It listens on 127.0.0.1 and a port the OS picks, prints that port on a
line of its own once it listens, and starts COMMAND for each connection,
with the connection as standard input and output (standard error is its
own). It reaps every COMMAND that ends. At SIGTERM it accepts no more
connections and ends once every COMMAND it started has ended: the tests
stop it through its process group, which holds those too.

With ``--shells FILE``, FILE is bind-mounted over /etc/shells first, for
an ftpd that admits only accounts whose shell is listed there. That is
done only in a mount namespace of its own (``unshare --mount``), so that
nothing outside changes.
"""
import os
import signal
import socket
import subprocess
import sys

HOST = '127.0.0.1'
SHELLS = '/etc/shells'


def serve(listener, command):
    signal.signal(signal.SIGCHLD, reap)
    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            connection, _ = listener.accept()
            with connection:
                fd = connection.fileno()
                os.posix_spawn(
                    command[0], command, os.environ, file_actions=[
                        (os.POSIX_SPAWN_DUP2, fd, 0),
                        (os.POSIX_SPAWN_DUP2, fd, 1)])
    except SystemExit:
        listener.close()
    # Every child ends before the inetd does, also one started just as
    # SIGTERM came.
    while True:
        try:
            os.wait()
        except ChildProcessError:
            return


def reap(signum, frame):
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return


def stop(signum, frame):
    raise SystemExit(0)


def own_mount_namespace():
    """Whether the inetd has a mount namespace other than its parent's."""
    return (os.readlink('/proc/self/ns/mnt')
            != os.readlink(f'/proc/{os.getppid()}/ns/mnt'))


def main(args):
    if args[:1] == ['--shells']:
        if not own_mount_namespace():
            sys.exit('inetd: --shells only in a mount namespace of its own '
                     '(unshare --mount)')
        subprocess.run(['mount', '--bind', args[1], SHELLS], check=True)
        args = args[2:]
    listener = socket.create_server((HOST, 0))
    print(listener.getsockname()[1], flush=True)
    serve(listener, args)


if __name__ == '__main__':
    main(sys.argv[1:])
