"""Import runs killed with SIGKILL at many points deliver every file to
the spool's ``new`` exactly once, once a run gets through."""
import os
import random

from zeit.cds import names
from zeit.cds.tests import crash

# The file held up in the middle of its download; much larger than the
# first chunk the server sends.
HELD = 'article-040.xml'


def offered_files():
    """A few hundred files of varied sizes and names, with fixed content."""
    rng = random.Random(3)
    files = {f'article-{i:03d}.xml': rng.randbytes(rng.choice([0, 1, 300,
                                                               5000, 40000]))
             for i in range(280)}
    files.update({f'Grüße aus Köln {i}.xml': rng.randbytes(2000)
                  for i in range(10)})
    files[HELD] = rng.randbytes(1024 * 1024)
    return files


class ImportCrashTest(crash.CrashTestCase):

    function = 'zeit.cds.main.import_'

    def setUp(self):
        super().setUp()
        self.files = offered_files()
        for name, data in self.files.items():
            with open(os.path.join(self.server.root, name), 'wb') as f:
                f.write(data)

    def consume(self):
        """Take every file from new, as zeit.cms does between runs."""
        new = os.path.join(self.store_dir, 'new')
        for name in os.listdir(new):
            with open(os.path.join(new, name), 'rb') as f:
                self.consumed[name].append(f.read())
            os.remove(os.path.join(new, name))

    def remote(self):
        return sorted(os.listdir(self.server.root))

    def kill(self, kill_point, hold=None):
        lines = super().kill(kill_point, hold)
        self.assertIn(names.READ_LOCK, self.remote(), 'lock left behind')
        return lines

    def test_killed_anywhere_every_file_arrives_exactly_once(self):
        held = crash.KillPoint(r'^\[server\] holding ')
        moved = r"^INFO Moved file .* from 'tmp' to 'new'$"

        # Mid-download: the file stays offered and is not delivered.
        self.kill(held, hold=('RETR', HELD))
        self.assertIn(HELD, self.remote())
        self.assertNotIn(HELD, self.consumed)

        # Moved to new, not yet removed: the next run only removes it.
        lines = self.kill(held, hold=('DELE', 'article-060.xml'))
        self.assertIn("INFO Moved file article-060.xml from 'tmp' to 'new'",
                      lines)
        self.assertIn('article-060.xml', self.remote())
        self.assertIn('article-060.xml', self.spool_files('cds-journal'))
        lines = self.kill(crash.KillPoint(r'^INFO Removed file '))
        self.assertIn('WARNING File article-060.xml was delivered by an '
                      'interrupted run; not downloading it again', lines)

        # Wherever the kill lands after a line.
        for kill_point in [
                crash.KillPoint(r'^INFO Downloaded file ', nth=30),
                crash.KillPoint(moved, nth=30),
                crash.KillPoint(r'^INFO Removed file ', nth=30),
                crash.KillPoint(r'^INFO Lock file successfully created$'),
                crash.KillPoint(moved, nth=1)]:
            lines = self.kill(kill_point)
            self.assertIn('WARNING Taking over lock file read left behind '
                          'by a killed run', lines)

        outcomes = crash.run_until_success(self.call)
        self.consume()
        self.assertIn('WARNING Taking over lock file read',
                      '\n'.join(outcomes[0].lines))
        self.assertEqual(
            {name: [data] for name, data in self.files.items()},
            dict(self.consumed))
        self.assertEqual([], self.remote())
        self.assertEqual([], self.spool_files('tmp'))
        self.assertEqual([], self.spool_files('cds-journal'))
