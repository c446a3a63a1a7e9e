"""SIGTERM and SIGINT stop a run between two files: the CDS lock is
released, every file is either delivered or still waiting."""
import json
import os
import signal
import subprocess
import sys
import unittest

import zeit.cds.testing
from zeit.cds import names
from zeit.cds.run import shutdown
from zeit.cds.watch.pause import Pause
from zeit.cds.tests.handlers import pausing
from zeit.cds.tests.test_components import SpoolTestCase

FILES = {'a.xml': b'A' * 10, 'b.xml': b'B' * 20, 'c.xml': b'C' * 30}


class SignalTest(SpoolTestCase):

    layer = zeit.cds.testing.FTP_LAYER

    def setUp(self):
        super().setUp()
        zeit.cds.testing.make_spool(self.store_dir, FILES)
        handler = pausing(self)
        self.paused, self.go = handler.paused, handler.go
        self.server = zeit.cds.testing.server_for(self, handler)

    def export_until_paused(self, *options):
        """A cds-export that is uploading b.xml, held by the server."""
        child = subprocess.Popen(
            [sys.executable, '-c',
             'from zeit.cds.cli import export_main; export_main()',
             '--spool', self.store_dir, '--host', self.server.host,
             '--port', str(self.server.port), '--user', 'test',
             # One connection: the file after the held one waits its turn.
             '--connections', '1', *options],
            env=zeit.cds.testing.child_environment(
                {'CDS_PASSWORD': 'testpw'}),
            stderr=subprocess.PIPE, text=True)
        self.addCleanup(child.stderr.close)
        self.addCleanup(child.kill)
        self.assertTrue(self.paused.wait(timeout=30))
        return child

    def stop(self, signum, *options):
        child = self.export_until_paused(*options)
        child.send_signal(signum)
        self.go.set()
        log = child.stderr.read()
        child.wait(timeout=30)
        return child.returncode, log

    def assertStoppedCleanly(self, log, signal_name):
        self.assertTrue(log.endswith(
            "Moved file b.xml from 'new' to 'cur'\n"
            'Removing lock file\n'
            'Lock file successfully removed\n'
            'Disconnected from CDS FTP server\n'
            f'ERROR: Stopped by {signal_name}\n'), log)
        self.assertNotIn('Traceback', log)
        self.assertEqual(['a.xml', 'b.xml'], sorted(os.listdir(
            self.server.root)))
        self.assertNotIn(names.WRITE_LOCK, os.listdir(self.server.root))
        self.assertEqual(['a.xml', 'b.xml'], self.spool_files('cur'))
        self.assertEqual(['c.xml'], self.spool_files('new'))

    def test_sigterm_finishes_the_file_releases_the_lock_and_ends(self):
        returncode, log = self.stop(signal.SIGTERM)
        # The process still ends by SIGTERM, as its parent expects.
        self.assertEqual(-signal.SIGTERM, returncode)
        self.assertStoppedCleanly(log, 'SIGTERM')

    def test_sigint_finishes_the_file_releases_the_lock_and_ends(self):
        returncode, log = self.stop(signal.SIGINT)
        self.assertEqual(128 + signal.SIGINT, returncode)
        self.assertStoppedCleanly(log, 'SIGINT')

    def test_an_interrupted_run_leaves_its_status(self):
        status_file = os.path.join(self.store_dir, 'status.json')
        returncode, log = self.stop(signal.SIGTERM,
                                    '--status-file', status_file)
        self.assertEqual(-signal.SIGTERM, returncode)
        self.assertStoppedCleanly(log, 'SIGTERM')
        with open(status_file) as f:
            status = json.load(f)
        # What it did before it stopped counts.
        self.assertEqual(
            ('failed', 'Stopped by SIGTERM', 128 + signal.SIGTERM, 2, 30,
             1), (status['result'], status['reason'], status['exit_code'],
                  status['files'], status['bytes'],
                  status['backlog']['files']))


class WakingTest(unittest.TestCase):

    def test_a_signal_wakes_a_wait_without_the_python_handler(self):
        # Python's handler runs only between two steps of Python code: a
        # signal that comes just before a watcher's wait begins must end
        # it all the same, so the byte comes from the C-level handler.
        pause = Pause()
        self.addCleanup(pause.close)
        previous = signal.signal(signal.SIGUSR1, lambda *ignored: None)
        self.addCleanup(signal.signal, signal.SIGUSR1, previous)
        with shutdown.waking(pause.wakeup_fd):
            os.kill(os.getpid(), signal.SIGUSR1)
        self.assertEqual(bytes([signal.SIGUSR1]), os.read(pause._read, 16))
