"""Properties of runs against a real pyftpdlib server, checked by
hypothesis on generated cases: whatever the names in ``new``, and whatever
a server says to a command, nothing is lost and nothing but a CDSError
ends a run."""
import os
import tempfile

import hypothesis
import hypothesis.strategies as st
import zope.component.testlayer

import zeit.cds
import zeit.cds.testing
from zeit.cds import names
from zeit.cds.exporter import Exporter
from zeit.cds.importer import Importer
from zeit.cds.interfaces import CDSError
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests.handlers import ReplyRewritingHandler
from zeit.cds.tests.handlers import Rewrite
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

    def run_logged(self, transfer, timeout):
        """Run ``transfer`` with ``timeout`` and no pauses; its summary or
        the CDSError that ended it (told in one line), and the log."""
        transfer.target.timeout = timeout
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
            FileStoreSpool(store), ftp_target(self.server)), timeout=10)
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


class RewritingServerLayer(zope.component.testlayer.LayerBase):
    """A server whose replies its ``rewrite`` (a Rewrite) changes."""

    # FTP_LAYER keeps the server's log quiet.
    __bases__ = (zeit.cds.testing.FTP_LAYER,)

    def setUp(self):
        self.rewrite = Rewrite()
        self.server = zeit.cds.testing.FTPServerThread(
            tempfile.mkdtemp(prefix='cds-ftp-'),
            type('Handler', (ReplyRewritingHandler,),
                 {'rewrite': self.rewrite})).start()

    def tearDown(self):
        self.server.stop()
        zeit.cds.testing.remove_tree(self.server.root)


REWRITING_LAYER = RewritingServerLayer(zeit.cds, 'RewritingServerLayer')

# Each command a run sends, and "" for the greeting.
COMMANDS = ['', 'USER', 'PASS', 'CWD', 'TYPE', 'FEAT', 'MLSD', 'PASV',
            'STOR', 'SIZE', 'RNFR', 'RNTO', 'RETR', 'DELE', 'QUIT']
_TEXT = st.binary(max_size=60).map(
    lambda text: text.replace(b'\r', b' ').replace(b'\n', b' '))
_CODES = st.sampled_from([
    '110', '125', '150', '200', '211', '213', '220', '221', '226', '227',
    '230', '250', '331', '350', '421', '425', '426', '450', '451', '500',
    '501', '502', '503', '530', '550', '552', '553']).map(str.encode)
REPLIES = st.one_of(
    st.just(b''),
    # Garbage, often not UTF-8.
    _TEXT,
    # A code, right or wrong for the command.
    st.builds(lambda code, text: code + b' ' + text, _CODES, _TEXT),
    # The first line of a reply that never ends.
    st.builds(lambda code, text: code + b'-' + text, _CODES, _TEXT),
    # Longer than a client takes.
    st.builds(lambda code, size: code + b' ' + b'x' * size, _CODES,
              st.integers(8000, 9000)),
)

EXPORTS = [b'out-1.xml', b'out-2.xml']
IMPORTS = [b'in-1.xml', b'in-2.xml']


class ReplyProperties(PropertyTestCase):

    layer = REWRITING_LAYER

    @PROPERTY
    @hypothesis.given(command=st.sampled_from(COMMANDS), reply=REPLIES,
                      times=st.one_of(st.none(), st.integers(1, 2)))
    # Found by this property: a greeting that is not UTF-8 ended the run
    # with a UnicodeDecodeError, an overlong one with ftplib's own Error.
    @hypothesis.example(command='', reply=b'\x80', times=None)
    @hypothesis.example(command='', reply=b'110 ' + b'x' * 8188, times=None)
    @hypothesis.example(command='SIZE', reply=b'213 ' + b'9' * 9000, times=1)
    def test_any_reply_ends_a_run_with_nothing_lost(
            self, command, reply, times):
        """Whatever the server answers to one command of a run, once or
        every time, an export and then an import end normally or with a
        CDSError (told in one line), never with another exception; every
        file is either where it was or delivered with its bytes, and no
        name on the server shows partial content."""
        zeit.cds.testing.empty_folder(self.root)
        for name in IMPORTS:
            with open(os.path.join(os.fsencode(self.root), name), 'wb') as f:
                f.write(content(name))
        exporting, export_store = self.fresh_spool(EXPORTS)
        importing, import_store = self.fresh_spool()
        rewrite = self.layer.rewrite
        rewrite.command, rewrite.reply, rewrite.times = command, reply, times
        try:
            for transfer, store in [(Exporter, export_store),
                                    (Importer, import_store)]:
                _, log = self.run_logged(transfer(
                    FileStoreSpool(store), ftp_target(self.server)),
                    timeout=0.3)
                self.assertNotIn('Traceback', log)
        finally:
            rewrite.command = None
        remote = self.remote()
        imported = {name: read(os.path.join(importing, b'new', name))
                    for name in listed(importing, b'new')}
        for name in EXPORTS:
            if name in listed(exporting, b'cur'):
                self.assertIn(content(name),
                              [remote.get(name), imported.get(name)])
            else:
                self.assertIn(name, listed(exporting, b'new'))
        for name in IMPORTS:
            self.assertIn(content(name),
                          [remote.get(name), imported.get(name)])
        for name, data in list(remote.items()) + list(imported.items()):
            if not names.is_reserved(os.fsdecode(name)):
                self.assertEqual(content(name), data)
        self.assertEqual([], listed(importing, b'tmp'))


def read(path):
    with open(path, 'rb') as f:
        return f.read()
