"""Export runs killed with SIGKILL at random moments: once a run gets
through, every file is on the CDS exactly once with its exact bytes, none
partial, the spool's new empty and cur full, no lock left behind."""
import os
import random

import zeit.cds.testing
from zeit.cds import names
from zeit.cds.spool import EXPORT_JOURNAL
from zeit.cds.tests import crash

# Kill/restart rounds at random moments, besides the exact ones.
RANDOM_ROUNDS = 6


def waiting_files():
    """A few hundred files of varied sizes and names, with fixed content."""
    rng = random.Random(7)
    files = {f'article-{i:03d}.xml': rng.randbytes(
        rng.choice([0, 1, 300, 5000, 40000])) for i in range(290)}
    files.update({f'Größe und Maß {i}.xml': rng.randbytes(3000)
                  for i in range(10)})
    return files


class ExportCrashTest(crash.CrashTestCase):

    function = 'zeit.cds.main.export'

    def setUp(self):
        super().setUp()
        self.files = waiting_files()
        zeit.cds.testing.make_spool(self.store_dir, self.files)

    def consume(self):
        """Take every published file from the CDS, as the partner does."""
        for name in os.listdir(self.server.root):
            if names.is_reserved(name):
                continue
            path = os.path.join(self.server.root, name)
            with open(path, 'rb') as f:
                self.consumed[name].append(f.read())
            os.remove(path)

    def test_killed_anywhere_every_file_arrives_exactly_once(self):
        held = crash.KillPoint(r'^\[server\] holding ')

        # Complete under its temporary name, noted, not yet renamed: the
        # next run renames it instead of uploading it again.
        self.kill(held, hold=('RNTO', 'article-010.xml'))
        self.assertIn(names.partial_name('article-010.xml'),
                      os.listdir(self.server.root))
        lines = self.kill(crash.KillPoint(r"^INFO Moved file article-011"))
        self.assertIn('WARNING Finished uploading file article-010.xml for '
                      'an interrupted run', lines)

        # Renamed, not yet moved to cur: the next run only moves it.
        self.kill(held, hold=('RENAMED', 'article-020.xml'))
        self.assertIn('article-020.xml', self.consumed)
        self.assertIn('article-020.xml', self.spool_files('new'))
        lines = self.kill(crash.KillPoint(r"^INFO Moved file article-021"))
        self.assertIn('WARNING File article-020.xml was uploaded by an '
                      'interrupted run; not uploading it again', lines)

        seed = random.randrange(2 ** 32)
        rng = random.Random(seed)
        kinds = [r'^INFO Uploaded file ', r'^INFO Moved file ',
                 r'^INFO Lock file successfully created$']
        for _ in range(RANDOM_ROUNDS):
            kind = rng.choice(kinds)
            nth = 1 if kind.endswith('$') else rng.randint(1, 30)
            lines = self.kill(crash.KillPoint(kind, nth))
            self.assertIn('WARNING Taking over lock file write left behind '
                          'by a killed run', lines, f'seed {seed}')

        crash.run_until_success(self.call)
        self.consume()
        self.assertEqual(
            {name: [data] for name, data in self.files.items()},
            dict(self.consumed), f'seed {seed}')
        self.assertEqual([], os.listdir(self.server.root))
        self.assertEqual([], self.spool_files('new'))
        self.assertEqual(sorted(self.files), self.spool_files('cur'))
        self.assertNotIn(EXPORT_JOURNAL, os.listdir(self.store_dir))

    def test_killed_while_storing_its_lock(self):
        self.kill(crash.KillPoint(r'^\[server\] holding '),
                  hold=('STOR', names.WRITE_LOCK))
        # The run could not remove what its store left.
        self.assertEqual([names.WRITE_LOCK], os.listdir(self.server.root))
        first, = crash.run_until_success(self.call)
        self.assertIn('WARNING Taking over lock file write that a failed '
                      'store of this spool left (empty)', first.lines)
        self.consume()
        self.assertEqual(sorted(self.files), sorted(self.consumed))
        self.assertEqual([], os.listdir(self.server.root))
