"""Telling systemd how a watcher is (``Type=notify``, ``WatchdogSec=``).

The sd_notify protocol: datagrams of ``KEY=value`` lines to the unix
socket named by NOTIFY_SOCKET (a leading ``@`` is the abstract
namespace). systemd documents it as a stable interface that services may
speak themselves; it is a few lines, so no library is needed for it (the
one on PyPI, sdnotify, has seen no release since 2017).

Without NOTIFY_SOCKET (not under systemd) every call does nothing.
"""
import logging
import os
import socket
import time

log = logging.getLogger(__name__)


class Notifier:
    """Notifications to the service manager named by ``environ``."""

    def __init__(self, environ=os.environ):
        address = environ.get('NOTIFY_SOCKET') or None
        if address and address.startswith('@'):
            address = '\0' + address[1:]
        self.address = address
        # Only a watchdog meant for this process (WATCHDOG_PID, where
        # set) is fed; half its period between two feeds at most, as
        # systemd advises.
        usec = environ.get('WATCHDOG_USEC', '')
        pid = environ.get('WATCHDOG_PID', str(os.getpid()))
        self.watchdog_interval = (
            int(usec) / 2e6 if usec.isdigit() and int(usec) > 0
            and pid == str(os.getpid()) else None)
        self._fed = None
        self._socket = None

    def _send(self, message):
        if self.address is None:
            return
        if self._socket is None:
            self._socket = socket.socket(
                socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            # Never blocking: a manager that does not read (its queue
            # full) must not stop the service.
            self._socket.sendto(message.encode('utf-8'),
                                socket.MSG_DONTWAIT, self.address)
        except OSError as e:
            # systemd gone, restarting or busy: the service goes on.
            log.debug('Cannot notify systemd: %s', e)

    def ready(self):
        """The watcher is set up and watching."""
        self._send('READY=1')
        self.alive()

    def status(self, text):
        """What ``systemctl status`` shows as the service's state."""
        self._send(f'STATUS={text}')

    def alive(self):
        """The watcher made progress: feed the watchdog, where there is
        one and it is due (at most a few times per period)."""
        if self.watchdog_interval is None:
            return
        now = time.monotonic()
        if self._fed is None or now - self._fed >= self.watchdog_interval / 4:
            self._fed = now
            self._send('WATCHDOG=1')

    def stopping(self):
        """The watcher is stopping."""
        self._send('STOPPING=1')
        if self._socket is not None:
            self._socket.close()
            self._socket = None
