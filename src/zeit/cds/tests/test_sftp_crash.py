"""Runs over SFTP killed with SIGKILL at random moments, against the real
sshd: once a run gets through, every file has arrived exactly once with
its exact bytes, and nothing is left behind (see crash.py, and
test_export_crash and test_import_crash for the same over FTP)."""
import collections
import logging
import os
import random

import zeit.cds.main
import zeit.cds.testing
from zeit.cds import names
from zeit.cds.interfaces import CDSError
from zeit.cds.interfaces import IExporter
from zeit.cds.interfaces import IImporter
from zeit.cds.targets.sftp import SFTPTarget
from zeit.cds.tests import crash
# Modules, not their test classes, which would run here a second time.
from zeit.cds.tests import test_export_crash
from zeit.cds.tests import test_import_crash
from zeit.cds.tests.test_sftp import SFTPTestCase

log = logging.getLogger(__name__)

ROUNDS = 6
DIRECTIONS = {'export': IExporter, 'import': IImporter}


def run_over_sftp(direction, store_dir, options):
    """The crash tests' child: one run over SFTP, its failure logged at
    ERROR, as zeit.cds.main does it for FTP."""
    try:
        zeit.cds.main.transfer(DIRECTIONS[direction], store_dir,
                               SFTPTarget(**options), connections=1).run()
    except CDSError as e:
        log.error('%s', e)


class SFTPCrashTestCase(SFTPTestCase):
    """Kills runs of ``direction`` at random lines of ``kinds``."""

    direction = None
    kinds = ()

    def setUp(self):
        super().setUp()
        options = dict(
            host=self.server.host, port=self.server.port,
            user=self.server.user, directory=self.server.directory,
            key_file=self.server.client_key,
            known_hosts=self.server.known_hosts, timeout=10)
        self.call = crash.Call(f'{__name__}.run_over_sftp',
                               (self.direction, self.store_dir, options))
        # What the other side took: name -> the contents it got.
        self.consumed = collections.defaultdict(list)

    def kill_at_random(self):
        seed = random.randrange(2 ** 32)
        rng = random.Random(seed)
        for _ in range(ROUNDS):
            outcome = crash.ChildRun(self.call, crash.KillPoint(
                rng.choice(self.kinds), rng.randint(1, 30))).run()
            self.assertTrue(outcome.killed, outcome)
            self.consume()
        crash.run_until_success(self.call)
        self.consume()
        return seed


class SFTPExportCrashTest(SFTPCrashTestCase):

    direction = 'export'
    kinds = [r'^INFO Uploaded file ', r'^INFO Moved file ']
    consume = test_export_crash.ExportCrashTest.consume

    def test_killed_anywhere_every_file_arrives_exactly_once(self):
        files = test_export_crash.waiting_files()
        zeit.cds.testing.make_spool(self.store_dir, files)
        seed = self.kill_at_random()
        self.assertEqual({name: [data] for name, data in files.items()},
                         dict(self.consumed), f'seed {seed}')
        self.assertEqual([], os.listdir(self.server.root))
        self.assertEqual([], self.spool_files('new'))
        self.assertEqual(sorted(files), self.spool_files('cur'))


class SFTPImportCrashTest(SFTPCrashTestCase):

    direction = 'import'
    kinds = [r'^INFO Downloaded file ', r"^INFO Moved file ",
             r'^INFO Removed file ']
    consume = test_import_crash.ImportCrashTest.consume

    def test_killed_anywhere_every_file_arrives_exactly_once(self):
        files = test_import_crash.offered_files()
        for name, data in files.items():
            self.server.put(name, data)
        seed = self.kill_at_random()
        self.assertEqual({name: [data] for name, data in files.items()},
                         dict(self.consumed), f'seed {seed}')
        self.assertEqual([], os.listdir(self.server.root))
        self.assertEqual([], self.spool_files('tmp'))
        self.assertNotIn(names.READ_LOCK, os.listdir(self.server.root))
