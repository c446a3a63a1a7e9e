"""Kill a run of zeit.cds at chosen points, to look at what it leaves.

A crash test runs the Python call under test (``main.import_``,
``main.export``, ...) in a child process. The child logs every step, one
line each, to its stdout; the parent reads along and kills the child with
SIGKILL right after the line a ``KillPoint`` names. Lines from elsewhere,
such as a test server in the parent that holds a transfer up, are fed in
with ``ChildRun.note`` and can be kill points too.

Run as ``python -m zeit.cds.tests.crash``, this module is the child: it
reads the call as JSON from stdin (so that no password shows in argv).

Every wait is bounded, so a crash test can fail but never hang.
"""
import collections
import dataclasses
import importlib
import json
import logging
import os
import queue
import re
import subprocess
import sys
import threading

import zeit.cds.testing
from zeit.cds.tests.test_components import SpoolTestCase

# The longest any wait of the harness may take, in seconds.
TIMEOUT = 15


@dataclasses.dataclass(frozen=True)
class Call:
    """The function the child calls, by dotted name, with arguments that
    JSON can carry."""

    function: str
    args: tuple = ()

    def dumps(self):
        return json.dumps({'function': self.function, 'args': self.args})


@dataclasses.dataclass(frozen=True)
class KillPoint:
    """Kill the child right after the ``nth`` line that matches the
    regular expression ``pattern`` (searched, not matched)."""

    pattern: str
    nth: int = 1


@dataclasses.dataclass
class Outcome:
    """How a child run ended."""

    killed: bool
    returncode: int
    lines: list

    @property
    def errors(self):
        return [line for line in self.lines if line.startswith('ERROR ')]

    def __str__(self):
        return '\n'.join(
            [f'child {"killed" if self.killed else "exited"} '
             f'({self.returncode}); its lines:'] + self.lines)


class ChildRun:
    """One run of ``call`` in a child process, killed at ``kill_point``
    (or let run to its end when that is None)."""

    def __init__(self, call, kill_point=None, timeout=TIMEOUT):
        self.call = call
        self.kill_point = kill_point
        self.timeout = timeout
        self._lines = queue.Queue()

    def note(self, line):
        """Take ``line`` as if the child had logged it; any thread."""
        self._lines.put(line)

    def run(self):
        """Run the child; returns its Outcome."""
        process = subprocess.Popen(
            [sys.executable, '-m', __name__],
            env=zeit.cds.testing.child_environment(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        reader = threading.Thread(
            target=self._read, args=(process.stdout,), daemon=True)
        reader.start()
        try:
            process.stdin.write(self.call.dumps().encode('utf-8'))
            process.stdin.close()
            lines, killed = self._follow(process)
        finally:
            # Whatever went wrong, no child outlives the test.
            process.kill()
            process.wait(self.timeout)
            reader.join(self.timeout)
            process.stdout.close()
        lines.extend(self._drain())
        return Outcome(killed, process.returncode, lines)

    def _read(self, stream):
        for raw in stream:
            self._lines.put(raw.decode('utf-8', 'replace').rstrip('\n'))
        self._lines.put(None)

    def _follow(self, process):
        """Read the lines until the kill point or the end of the child."""
        lines = []
        matches = 0
        while True:
            try:
                line = self._lines.get(timeout=self.timeout)
            except queue.Empty:
                raise AssertionError(
                    f'child silent for {self.timeout} s; its lines:\n'
                    + '\n'.join(lines)) from None
            if line is None:
                process.wait(self.timeout)
                return lines, False
            lines.append(line)
            if (self.kill_point is not None
                    and re.search(self.kill_point.pattern, line)):
                matches += 1
                if matches == self.kill_point.nth:
                    process.kill()
                    return lines, True

    def _drain(self):
        """The lines the child wrote before it died, not read yet."""
        lines = []
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return lines
            if line is not None:
                lines.append(line)


def run_until_success(call, attempts=3, timeout=TIMEOUT):
    """Run ``call`` until a run exits 0 without an ERROR line; returns
    the outcomes of all runs. Fails after ``attempts`` runs."""
    outcomes = []
    for _ in range(attempts):
        outcomes.append(ChildRun(call, timeout=timeout).run())
        if outcomes[-1].returncode == 0 and not outcomes[-1].errors:
            return outcomes
    raise AssertionError(
        f'no success in {attempts} runs; the last:\n{outcomes[-1]}')


class Hold:
    """Holds up one command of a test server for one file until
    ``release``; the server's handler is a HoldingHandler.

    ``arm(command, name, note)`` picks the command (``RETR``: after the
    first chunk is sent; ``STOR``: with the file created, before any byte
    arrives; ``DELE`` and ``RNTO``: before anything is removed or renamed;
    ``RENAMED``: after a rename, before its reply), the file,
    and the function told, with a line for ``ChildRun.note``, once the
    server holds.
    """

    def __init__(self, timeout=TIMEOUT):
        self.timeout = timeout
        self._armed = None
        self._released = threading.Event()

    def arm(self, command, name, note):
        self._released.clear()
        self._armed = command, name, note

    def release(self):
        self._released.set()

    def holds(self, command, name):
        """Whether to hold ``command`` for ``name``; it does so once."""
        if self._armed is None or self._armed[:2] != (command, name):
            return False
        self._note = self._armed[2]
        self._armed = None
        return True

    def wait(self, command, name):
        """Tell that the server holds, and wait for ``release``. This
        blocks the server's thread, on purpose."""
        self._note(f'[server] holding {command} {name}')
        self._released.wait(self.timeout)


class HoldingHandler(zeit.cds.testing.RetrieveHandler):
    """Holds up what its ``hold`` is armed for; a subclass sets ``hold``."""

    hold = None

    def retrieving(self, name, producer):
        if not self.hold.holds('RETR', name):
            return producer
        return _HeldProducer(producer, self.hold, name)

    def ftp_STOR(self, file, mode='w'):
        name = os.path.basename(file)
        if not self.hold.holds('STOR', name):
            return super().ftp_STOR(file, mode)
        # The transfer has begun: the file is there, empty.
        self.run_as_current_user(self.fs.open, file, 'wb').close()
        self.hold.wait('STOR', name)
        self.respond('451 Held back by the test.')
        return None

    def ftp_DELE(self, path):
        name = os.path.basename(path)
        if not self.hold.holds('DELE', name):
            return super().ftp_DELE(path)
        self.hold.wait('DELE', name)
        # The child is gone by now; the file stays, as if the command
        # had never arrived.
        self.respond('451 Held back by the test.')
        return None

    def ftp_RNTO(self, path):
        name = os.path.basename(path)
        if self.hold.holds('RNTO', name):
            self.hold.wait('RNTO', name)
            self.respond('451 Held back by the test.')
            return None
        if not self.hold.holds('RENAMED', name):
            return super().ftp_RNTO(path)
        # Renamed, but the client never hears of it.
        self.fs.rename(self._rnfr, path)
        self.hold.wait('RENAMED', name)
        self.respond('451 Held back by the test.')
        return None


class _HeldProducer:

    def __init__(self, producer, hold, name):
        self.producer = producer
        self.hold = hold
        self.name = name
        self.chunks = 0

    def more(self):
        if self.chunks == 1:
            # The first chunk is out: the child is in the middle of the
            # download.
            self.hold.wait('RETR', self.name)
        self.chunks += 1
        return self.producer.more()


class CrashTestCase(SpoolTestCase):
    """A test of runs killed at chosen points, against a server of its own
    (``self.server``) that can hold a command up (``self.hold``).

    A subclass sets ``function`` (the dotted name of the call under test,
    which takes the spool, host, port, user, password and directory), and
    ``consume()``: what the other side takes away between runs, so that a
    second delivery of a file would show."""

    layer = zeit.cds.testing.FTP_LAYER
    function = None

    def setUp(self):
        super().setUp()
        self.hold = Hold()
        handler = type('HoldingHandler', (HoldingHandler,),
                       {'hold': self.hold})
        self.server = zeit.cds.testing.server_for(self, handler)
        # Runs after the server's stop: a held-up server must not wait.
        self.addCleanup(self.hold.release)
        self.call = Call(self.function, (
            self.store_dir, self.server.host, self.server.port,
            zeit.cds.testing.USER, zeit.cds.testing.PASSWORD, '/'))
        # What the other side took: name -> the contents it got.
        self.consumed = collections.defaultdict(list)

    def consume(self):
        raise NotImplementedError

    def kill(self, kill_point, hold=None):
        """Run the call and kill it at ``kill_point``, with the server
        holding ``hold`` (command, name); returns the child's lines."""
        run = ChildRun(self.call, kill_point)
        if hold is not None:
            self.hold.arm(*hold, run.note)
        outcome = run.run()
        self.hold.release()
        self.assertTrue(outcome.killed, outcome)
        self.consume()
        return '\n'.join(outcome.lines)


def main():
    """The child: run the call read from stdin, logging to stdout."""
    call = json.load(sys.stdin)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter('%(levelname)s %(message)s'))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    module, _, name = call['function'].rpartition('.')
    getattr(importlib.import_module(module), name)(*call['args'])


if __name__ == '__main__':
    main()
