"""Properties of runs against a real pyftpdlib server, checked by
hypothesis on generated cases: whatever the names in ``new``, and whatever
a server says to a command, nothing is lost and nothing but a CDSError
ends a run."""
import os
import tempfile

import hypothesis
import hypothesis.strategies as st

import zeit.cds.testing
from zeit.cds import names
from zeit.cds.exporter import Exporter
from zeit.cds.importer import Importer
from zeit.cds.interfaces import CDSError
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests.test_components import SpoolTestCase
from zeit.cds.tests.test_components import ftp_target

# A few dozen cases each; no deadline, as a run against a server takes its
# time; no example database in the working tree.
PROPERTY = hypothesis.settings(
    max_examples=40, deadline=None, database=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow])


class PropertyTestCase(SpoolTestCase):
    """One server for all cases (its layer's), its root emptied for each."""

    layer = zeit.cds.testing.FTP_LAYER

    @property
    def root(self):
        return self.layer.server.root

    @property
    def server(self):
        return self.layer.server

    def fresh_spool(self, files=()):
        """A new spool with ``files`` (bytes names) waiting in new; its
        folder, as bytes."""
        folder = os.fsencode(tempfile.mkdtemp(prefix='cds-spool-'))
        self.addCleanup(zeit.cds.testing.remove_tree, folder)
        store = zeit.cds.testing.make_spool(os.fsdecode(folder), {})
        for name in files:
            with open(os.path.join(folder, b'new', name), 'wb') as f:
                f.write(content(name))
        return folder, store

    def remote(self):
        """The server's files and their content, by bytes name."""
        root = os.fsencode(self.root)
        found = {}
        for name in os.listdir(root):
            with open(os.path.join(root, name), 'rb') as f:
                found[name] = f.read()
        return found

    def run_logged(self, transfer):
        """Run ``transfer`` with a short timeout and no pauses; its summary
        or the CDSError that ended it (told in one line), and the log."""
        transfer.target.timeout = 2
        transfer.reconnect_delays = (0, 0, 0)
        with zeit.cds.testing.LogCapture() as log:
            try:
                result = transfer.run()
            except CDSError as e:
                self.assertNotIn('\n', str(e))
                result = e
            return result, log.getvalue()


def content(name):
    """What the file ``name`` holds: its own name, to tell files apart."""
    return b'content of ' + name


def listed(folder, section):
    return sorted(os.listdir(os.path.join(folder, section)))


# Names as the local file system has them: any bytes but "/" and NUL, at
# most 255, not "." or "..". Names of words, of any bytes, and names the
# CDS protocol gives a meaning.
_NAME_BYTES = bytes(b for b in range(1, 256) if b != ord('/'))
FILE_NAMES = st.one_of(
    st.text(st.characters(blacklist_characters='/\0',
                          blacklist_categories=('Cs',)),
            min_size=1, max_size=40).map(str.encode),
    st.lists(st.sampled_from(_NAME_BYTES), min_size=1, max_size=255)
    .map(bytes),
    st.sampled_from([b'write', b'read', b'.cds-partial.a.xml', b'.hidden',
                     b' leading space', b'trailing space ', b'back\\slash',
                     b'x' * 242, b'x' * 243, b'x' * 255]),
).filter(lambda name: len(name) <= 255 and name not in (b'.', b'..'))


class FileNameProperties(PropertyTestCase):

    @PROPERTY
    @hypothesis.given(st.sets(FILE_NAMES, min_size=1, max_size=6))
    # Found by this property: a file named "write" replaced the run's own
    # lock, and stayed on the CDS as a lock nobody would remove.
    @hypothesis.example({b'write', b'a.xml'})
    def test_every_name_ftp_can_carry_arrives_under_it(self, waiting):
        """A name with a line break cannot be sent; a name the CDS protocol
        reserves (the lock files ``write`` and ``read``, temporary uploads
        ``.cds-partial.*``) would break the protocol for everybody, and an
        importer skips it; a name whose temporary name is longer than the
        server's file system takes (255 bytes on Linux) is refused by the
        server. Each of those fails alone and stays in new, with one ERROR
        line; every other name arrives as its own bytes, with its content.
        No temporary upload, no lock is left on the server."""
        zeit.cds.testing.empty_folder(self.root)
        folder, store = self.fresh_spool(waiting)
        refused = {name for name in waiting
                   if b'\r' in name or b'\n' in name
                   or names.is_reserved(os.fsdecode(name))
                   or len(names.partial_name(os.fsdecode(name)).encode(
                       'utf-8', 'surrogateescape')) > names.MAX_NAME_BYTES}
        summary, log = self.run_logged(Exporter(
            FileStoreSpool(store), ftp_target(self.server)))
        delivered = waiting - refused
        self.assertEqual({name: content(name) for name in delivered},
                         self.remote())
        self.assertEqual(sorted(delivered), listed(folder, b'cur'))
        self.assertEqual(sorted(refused), listed(folder, b'new'))
        self.assertEqual((len(delivered), len(refused)),
                         (summary.files, summary.failures))
        errors = [line for line in log.splitlines()
                  if line.startswith(('Refusing', 'Cannot'))]
        self.assertEqual(len(refused), len(errors), log)
        self.assertNotIn('Traceback', log)
