"""The export, the import and the listing against real FTP servers: vsftpd,
ProFTPD and Pure-FTPd, each with plain FTP and with explicit TLS (FTPS);
GNU inetutils' ftpd and Twisted's FTP server with plain FTP.

Each server runs in a layer of its own (see realservers.py) and the same
tests run against each of them. Where a server cannot run here, its tests
are skipped with the reason; under CI (``CI=true``) every server must run,
so there they fail instead.
"""
import ftplib
import hashlib
import logging
import os
import ssl
import tempfile

import trustme
import zope.component

import zeit.cds.main
import zeit.cds.testing
from zeit.cds import names
from zeit.cds.targets.ftps import FTPSTarget
from zeit.cds.interfaces import AuthenticationError
from zeit.cds.interfaces import CDSError
from zeit.cds.interfaces import IExporter
from zeit.cds.interfaces import IImporter
from zeit.cds.targets.ftp import FTPTarget
from zeit.cds.run.lock import RemoteLock
from zeit.cds.run.notes import ServerNotes
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests import realservers
from zeit.cds.tests.test_components import SpoolTestCase

log = logging.getLogger(__name__)

MIB = 1024 * 1024
# A name as a Latin-1 client leaves it: the servers keep and list its bytes.
LATIN_1_NAME = os.fsdecode('Größe.xml'.encode('latin-1'))
FOREIGN_LOCK = b'held by the CDS\n'
# Each direction: the function of zeit.cds.main, the component's interface,
# and the name of the remote directory in the log.
DIRECTIONS = {
    'export': (zeit.cds.main.export, IExporter, 'upload_dir'),
    'import': (zeit.cds.main.import_, IImporter, 'download_dir'),
}


def under_ci():
    return os.environ.get('CI', '').lower() == 'true'


def digest(path):
    result = hashlib.sha256()
    with open(path, 'rb') as f:
        while chunk := f.read(MIB):
            result.update(chunk)
    return result.hexdigest()


class RealServerTestCase(SpoolTestCase):
    """A test against the real server of its layer (``self.server``), with
    a fresh spool in ``self.store_dir`` and an empty root folder on the
    server.

    Concrete classes combine mixins of tests with this class and name one
    of the layers of realservers.py; with a TLS layer, every transfer goes
    through FTPS.
    """

    layer = None

    def setUp(self):
        reason = self.layer.unavailable
        if reason is not None:
            if under_ci():
                self.fail(f'{reason} (under CI every server must run)')
            self.skipTest(reason)
        super().setUp()
        self.server = self.layer.server

    def target(self, tls=None, **options):
        """A new remote target for the server: FTPS with the server's CA
        file when the server insists on TLS (or ``tls``), else FTP."""
        options = dict(
            host=self.server.host, port=self.server.port,
            user=self.server.user, password=self.server.password,
            directory=self.server.directory, timeout=10, **options)
        if tls is None:
            tls = self.server.tls
        if tls:
            options.setdefault('ca_file', self.server.certificate.ca_file)
            return FTPSTarget(**options)
        return FTPTarget(**options)

    def connected(self, **options):
        """A remote target with an open session on the server."""
        target = self.target(**options)
        target.connect()
        self.addCleanup(target.close)
        return target

    def run_transfer(self, direction, target=None):
        """Export or import between the spool and the server; return the
        lines logged.

        Plain FTP runs through zeit.cds.main, as zeit.cms calls it. FTPS
        (or another ``target``) runs through the exporter or importer that
        zeit.cms finds in the registry, and a run that fails as a whole is
        logged as zeit.cds.main would log it.
        """
        function, interface, _ = DIRECTIONS[direction]
        with zeit.cds.testing.LogCapture() as capture:
            if target is None and not self.server.tls:
                function(self.store_dir, self.server.host, self.server.port,
                         self.server.user, self.server.password,
                         self.server.directory)
            else:
                zeit.cds.main.ensure_configured()
                transfer = zope.component.getMultiAdapter(
                    (zeit.cds.main.open_spool(self.store_dir),
                     target or self.target()), interface)
                # As zeit.cds.main: one connection, lines in file order.
                transfer.connections = 1
                try:
                    transfer.run()
                except CDSError as e:
                    log.error('%s', e)
        return capture.getvalue().splitlines()

    def connecting_line(self, direction):
        """The first line a run logs."""
        return (f'Connecting to CDS FTP server ({self.target().description}'
                f', {DIRECTIONS[direction][2]} {self.server.directory})')

    def run_log(self, direction, steps):
        """The lines a whole run logs around the lines of its ``steps``."""
        return [
            self.connecting_line(direction),
            f'Accessed filestore {self.store_dir}',
            'Creating lock file',
            'Lock file successfully created',
            *steps,
            'Removing lock file',
            'Lock file successfully removed',
            'Disconnected from CDS FTP server',
        ]

    def scratch(self):
        folder = tempfile.mkdtemp(prefix='cds-interop-')
        self.addCleanup(zeit.cds.testing.remove_tree, folder)
        return folder

    def cds(self, direction, *options, spool=None):
        """Run cds-export or cds-import against the server, with TLS when
        it insists, on ``spool`` (a folder) or the test's spool."""
        password_file = os.path.join(self.scratch(), 'password')
        with open(password_file, 'w') as f:
            f.write(self.server.password)
        return zeit.cds.testing.run_script(
            f'cds-{direction}', '--spool', spool or self.store_dir,
            '--host', self.server.host, '--port', str(self.server.port),
            '--user', self.server.user, '--dir', self.server.directory,
            '--password-file', password_file,
            *(['--tls'] if self.server.tls else []), *options,
            # Past the run's own timeout (60 s), so that a run that waits
            # for the server ends with its own error.
            timeout=120)

    def remote_path(self, name):
        return os.path.join(self.server.root, name)

    def spool_path(self, section, name):
        return os.path.join(self.store_dir, section, name)

    def spool_state(self):
        """The spool's files and the server's: what a run may change."""
        return ({section: self.spool_files(section)
                 for section in ['tmp', 'new', 'cur']},
                self.server.contents())

    def assert_backs_off(self, direction):
        """While either lock file is on the server and not ours, a run
        backs off: nothing is transferred, the lock is left alone."""
        spool, remote = self.spool_state()
        for lock in names.LOCKS:
            with self.subTest(lock=lock):
                self.server.put(lock, FOREIGN_LOCK)
                lines = self.run_transfer(direction)
                self.assertIn(f"lock file '{lock}' exists", lines[-1])
                self.assertEqual(
                    (spool, dict(remote, **{lock: FOREIGN_LOCK})),
                    self.spool_state())
                os.remove(self.remote_path(lock))


class ExportTests:
    """The export against the layer's server."""

    def export(self, files):
        """Put ``files`` (name to bytes) into the spool's ``new`` and
        export them; return the lines logged."""
        zeit.cds.testing.make_spool(self.store_dir, files)
        return self.run_transfer('export')

    def assert_exported(self, names):
        self.assertEqual([], self.spool_files('new'))
        self.assertEqual(sorted(names), self.spool_files('cur'))
        # No lock file and no temporary upload is left behind.
        self.assertEqual(sorted(names), sorted(os.listdir(self.server.root)))

    def test_round_trip(self):
        files = {'a-file': b'This is the A file',
                 'b-file': bytes(range(256)) + b'\r\n\n\r'}
        lines = self.export(files)
        self.assertEqual(self.run_log('export', [
            'Uploaded file a-file',
            "Moved file a-file from 'new' to 'cur'",
            'Uploaded file b-file',
            "Moved file b-file from 'new' to 'cur'",
        ]), lines)
        self.assertEqual(files, self.server.contents())
        self.assert_exported(files)

    def test_foreign_lock_makes_export_back_off(self):
        zeit.cds.testing.make_spool(self.store_dir, {'a-file': b'A'})
        self.assert_backs_off('export')

    def test_run_checks_the_server_clock_for_lock_ages(self):
        self.export({'a-file': b'A'})
        notes = ServerNotes(FileStoreSpool(self.store), self.target())
        self.assertEqual({}, notes.locks)
        self.assertIsNone(notes.clock.doubt)
        # The server runs on our clock and reports UTC (RFC 3659).
        self.assertLessEqual(notes.clock.low, 0)
        self.assertLessEqual(0, notes.clock.high)
        self.server.put(names.READ_LOCK, FOREIGN_LOCK)
        lock = RemoteLock(self.connected(), names.WRITE_LOCK,
                          FileStoreSpool(self.store))
        age = lock.age(names.READ_LOCK)
        self.assertIsNotNone(age)
        self.assertLess(age, 60)

    def test_name_with_spaces_and_umlauts(self):
        files = {'Größe und Maß.xml': '<Maß>Größe</Maß>'.encode()}
        self.export(files)
        # Stored under its UTF-8 name, listed under the same name.
        self.assertEqual(files, self.server.contents())
        self.assert_exported(files)
        self.assertEqual(['Größe und Maß.xml'], self.connected().names())

    def test_empty_file(self):
        self.export({'empty.xml': b''})
        self.assertEqual({'empty.xml': b''}, self.server.contents())
        self.assert_exported(['empty.xml'])

    def test_50_mib_file(self):
        data = os.urandom(50 * MIB)
        self.export({'big.xml': data})
        self.assert_exported(['big.xml'])
        self.assertEqual(hashlib.sha256(data).hexdigest(),
                         digest(self.remote_path('big.xml')))

    def test_name_not_in_utf8_on_the_server(self):
        self.server.put(LATIN_1_NAME, b'from elsewhere')
        self.export({'a-file': b'A'})
        self.assertEqual({'a-file': b'A', LATIN_1_NAME: b'from elsewhere'},
                         self.server.contents())
        self.assertEqual(['a-file'], self.spool_files('cur'))

    def test_existing_remote_file_is_replaced(self):
        self.server.put('a-file', b'yesterday')
        self.export({'a-file': b'today'})
        self.assertEqual({'a-file': b'today'}, self.server.contents())
        self.assert_exported(['a-file'])

    # A run killed after the size check of an upload journals the file
    # (see exporter.py). The next run asks the server for the temporary
    # upload's SIZE instead of looking for it in a listing: vsftpd lists
    # no names that start with a dot, such as ``.cds-partial.a-file``.

    def interrupted(self, remote):
        """The state a run killed after the size check of ``a-file``
        leaves, with ``remote`` (name to bytes) on the server; return the
        lines the next run logs."""
        store = zeit.cds.testing.make_spool(self.store_dir, {'a-file': b'A'})
        FileStoreSpool(store).publishing('a-file')
        for name, data in remote.items():
            self.server.put(name, data)
        return self.run_transfer('export')

    def test_interrupted_before_the_rename(self):
        lines = self.interrupted({names.partial_name('a-file'): b'A'})
        self.assertIn(
            'Finished uploading file a-file for an interrupted run', lines)
        self.assertEqual({'a-file': b'A'}, self.server.contents())
        self.assert_exported(['a-file'])

    def test_interrupted_after_the_rename(self):
        lines = self.interrupted({'a-file': b'A'})
        self.assertIn('File a-file was uploaded by an interrupted run; not '
                      'uploading it again', lines)
        self.assertEqual({'a-file': b'A'}, self.server.contents())
        self.assert_exported(['a-file'])

    def test_upload_cut_short_by_a_killed_run_is_replaced(self):
        self.server.put(names.partial_name('a-file'), b'half')
        self.export({'a-file': b'all of it'})
        self.assertEqual({'a-file': b'all of it'}, self.server.contents())
        self.assert_exported(['a-file'])


class ImportTests:
    """The import against the layer's server."""

    def import_files(self, files):
        """Put ``files`` (name to bytes) on the server and import them;
        return the lines logged."""
        for name, data in files.items():
            self.server.put(name, data)
        return self.run_transfer('import')

    def assert_imported(self, names):
        """``names`` are in the spool's ``new``, nothing is in ``tmp``, and
        nothing is left on the server, no lock file either."""
        self.assertEqual(sorted(names), self.spool_files('new'))
        self.assertEqual([], self.spool_files('tmp'))
        self.assertEqual([], os.listdir(self.server.root))

    def assert_received(self, files):
        for name, data in files.items():
            with open(self.spool_path('new', name), 'rb') as f:
                self.assertEqual(data, f.read())

    def test_import_round_trip(self):
        files = {'foo.xml': b'<article>Foo</article>',
                 'bar.xml': bytes(range(256)) + b'\r\n\n\r'}
        lines = self.import_files(files)
        self.assertEqual(self.run_log('import', [
            'Downloaded file bar.xml',
            "Moved file bar.xml from 'tmp' to 'new'",
            'Removed file bar.xml from CDS FTP server',
            'Downloaded file foo.xml',
            "Moved file foo.xml from 'tmp' to 'new'",
            'Removed file foo.xml from CDS FTP server',
        ]), lines)
        self.assert_imported(files)
        self.assert_received(files)

    def test_foreign_lock_makes_import_back_off(self):
        self.server.put('foo.xml', b'<article>Foo</article>')
        self.assert_backs_off('import')

    def test_import_name_with_spaces_and_umlauts(self):
        files = {'Größe und Maß.xml': '<Maß>Größe</Maß>'.encode()}
        self.import_files(files)
        self.assert_imported(files)
        self.assert_received(files)

    def test_import_empty_file(self):
        self.import_files({'empty.xml': b''})
        self.assert_imported(['empty.xml'])
        self.assert_received({'empty.xml': b''})

    def test_import_50_mib_file(self):
        data = os.urandom(50 * MIB)
        self.import_files({'big.xml': data})
        self.assert_imported(['big.xml'])
        self.assertEqual(hashlib.sha256(data).hexdigest(),
                         digest(self.spool_path('new', 'big.xml')))

    def test_folders_are_not_imported(self):
        # Servers without MLSD list the folder with NLST too.
        folder = os.path.join(self.server.root, 'archive')
        os.mkdir(folder)
        if self.server.system_account:
            os.chown(folder, *realservers.ensure_account())
        lines = self.import_files({'a.xml': b'A'})
        self.assertEqual(self.run_log('import', [
            'Downloaded file a.xml',
            "Moved file a.xml from 'tmp' to 'new'",
            'Removed file a.xml from CDS FTP server',
        ]), lines)
        self.assertEqual(['a.xml'], self.spool_files('new'))
        self.assertEqual(['archive'], os.listdir(self.server.root))

    def test_temporary_uploads_and_lock_files_are_not_imported(self):
        # Our own lock file ``read`` is on the server while the import
        # lists the directory: it is not imported either.
        partial = names.partial_name('a.xml')
        self.import_files({partial: b'half', 'a.xml': b'A'})
        self.assertEqual(['a.xml'], self.spool_files('new'))
        self.assertEqual({partial: b'half'}, self.server.contents())

    def test_dot_files(self):
        # Files whose names start with a dot are imported like any other,
        # from the servers that list them. vsftpd lists none (unless
        # configured with force_dot_files=YES): they stay on the CDS.
        self.import_files({'.hidden.xml': b'H', 'a.xml': b'A'})
        if self.server.lists_dot_files:
            self.assert_imported(['.hidden.xml', 'a.xml'])
        else:
            self.assertEqual(['a.xml'], self.spool_files('new'))
            self.assertEqual({'.hidden.xml': b'H'}, self.server.contents())


class ListingTests:
    """The remote target's names() against the layer's server."""

    def make_remote(self):
        os.mkdir(os.path.join(self.server.root, 'folder'))
        for name in ['b.xml', 'a.xml', 'Größe und Maß.xml', '.hidden']:
            self.server.put(name, b'x')

    def test_names(self):
        self.make_remote()
        target = self.connected()
        listed = target.names()
        self.assertEqual(self.server.has_mlsd, target._habits.mlsd)
        expected = {'a.xml', 'b.xml', 'Größe und Maß.xml'}
        if self.server.lists_dot_files:
            expected.add('.hidden')
        self.assertEqual(sorted(expected), listed)

    def test_present(self):
        # By MLST where the server has it, else by the listing; told as
        # names() would tell it, with the times MDTM gives.
        self.make_remote()
        target = self.connected()
        wanted = ['a.xml', 'folder', 'missing.xml', 'Größe und Maß.xml']
        found = target.present(wanted)
        self.assertEqual(['Größe und Maß.xml', 'a.xml'], sorted(found))
        for name, stamp in found.items():
            if self.server.has_mlsd:
                self.assertEqual(target.modified(name), stamp)
            else:
                self.assertIsNone(stamp)

    def test_names_by_nlst(self):
        # What the fallback sees, should a server lack MLSD: the folder
        # too, which SIZE then tells apart.
        self.make_remote()
        target = self.connected()
        target._habits.mlsd = False
        self.assertEqual(
            ['Größe und Maß.xml', 'a.xml', 'b.xml'],
            [name for name in target.names() if not name.startswith('.')])

    def test_name_not_in_utf8(self):
        # Listed with surrogates for the bytes that are not UTF-8, so the
        # import can refuse the name; the listing itself goes on.
        self.server.put(LATIN_1_NAME, b'x')
        self.server.put('a.xml', b'x')
        target = self.connected()
        self.assertEqual(['Gr\udcf6\udcdfe.xml', 'a.xml'], target.names())
        target._habits.mlsd = False
        self.assertEqual(['Gr\udcf6\udcdfe.xml', 'a.xml'], target.names())

    def test_empty_directory(self):
        target = self.connected()
        self.assertEqual([], target.names())
        target._habits.mlsd = False
        self.assertEqual([], target.names())


class FieldTests:
    """What a partner's runs meet on the layer's server, through the
    command line: a hundred small files, a big one and a name with spaces
    (and umlauts, where the server keeps UTF-8 names) exported on the
    default connections and on one, then imported into a fresh spool;
    an export into a directory that holds a file of the partner's; and
    runs with nothing to do against an empty directory.

    After each run: exit 0, every file byte for byte where it belongs,
    and no temporary upload and no lock file left on the server.
    """

    def field_files(self):
        files = {f'article-{i:03}.xml': f'<article>{i}</article>\n'.encode()
                 for i in range(100)}
        files['big.xml'] = os.urandom(3 * MIB)
        # Twisted's server cannot keep a UTF-8 name (see realservers.py).
        name = ('Größe und Maß.xml' if self.server.utf8_names
                else 'Name mit Leerzeichen.xml')
        files[name] = '<article>Maß</article>\n'.encode()
        return files

    def assert_ran(self, result):
        self.assertEqual(0, result.returncode,
                         f'stdout: {result.stdout}\nstderr: {result.stderr}')
        self.assertEqual([], [name for name in os.listdir(self.server.root)
                              if names.is_reserved(name)])

    def fresh_spool(self):
        folder = self.scratch()
        zeit.cds.testing.make_spool(folder, {})
        return folder

    def spool_contents(self, spool, section):
        """The files in the ``section`` of ``spool``: name to bytes."""
        folder = os.path.join(spool, section)
        result = {}
        for name in os.listdir(folder):
            with open(os.path.join(folder, name), 'rb') as f:
                result[name] = f.read()
        return result

    def export_and_import(self, *options):
        """Export the field's files with ``options``, import them into a
        fresh spool with the same options, and check each run."""
        files = self.field_files()
        zeit.cds.testing.make_spool(self.store_dir, files)
        self.assert_ran(self.cds('export', *options))
        self.assertEqual(files, self.server.contents())
        self.assertEqual([], self.spool_files('new'))
        self.assertEqual(files, self.spool_contents(self.store_dir, 'cur'))
        spool = self.fresh_spool()
        self.assert_ran(self.cds('import', *options, spool=spool))
        self.assertEqual([], os.listdir(self.server.root))
        self.assertEqual({}, self.spool_contents(spool, 'tmp'))
        self.assertEqual(files, self.spool_contents(spool, 'new'))

    def test_field_on_the_default_connections(self):
        self.export_and_import()

    def test_field_on_one_connection(self):
        self.export_and_import('--connections', '1')

    def test_field_export_beside_a_foreign_file(self):
        foreign = {'partner.xml': b'<article>not ours</article>\n'}
        self.server.put('partner.xml', foreign['partner.xml'])
        files = self.field_files()
        zeit.cds.testing.make_spool(self.store_dir, files)
        self.assert_ran(self.cds('export'))
        self.assertEqual(dict(files, **foreign), self.server.contents())
        self.assertEqual([], self.spool_files('new'))
        self.assertEqual(sorted(files), self.spool_files('cur'))

    def test_field_nothing_to_do(self):
        for direction, past in [('export', 'Exported'),
                                ('import', 'Imported')]:
            with self.subTest(direction=direction):
                result = self.cds(direction)
                self.assert_ran(result)
                self.assertIn(f'{past} 0 files, 0 bytes', result.stderr)
                self.assertEqual([], os.listdir(self.server.root))
                self.assertEqual(
                    ([], [], []),
                    tuple(self.spool_files(section)
                          for section in ['tmp', 'new', 'cur']))


class TLSTests:
    """What only a server that insists on TLS shows."""

    def test_tls_1_2_and_1_3(self):
        # Data connections resume the control connection's TLS session
        # where the server insists. (Pure-FTPd does not; with TLS 1.3 it
        # offers no session to resume.)
        self.server.put('a.xml', b'A')
        for version in [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]:
            with self.subTest(version=version.name):
                target = self.target()
                target._context.maximum_version = version
                target.connect()
                self.addCleanup(target.close)
                self.assertEqual(version.name.replace('_', '.'),
                                 target._ftp.sock.version())
                with target._ftp.transfercmd('RETR a.xml') as data:
                    resumed = data.session_reused
                    self.assertEqual(b'A', data.recv(1024))
                target._ftp.voidresp()
                if self.server.requires_tls_session_reuse:
                    self.assertTrue(resumed)
                target.create('b.xml', b'B')
                self.assertEqual(['a.xml', 'b.xml'], target.names())
                self.assertEqual({'b.xml': None}, target.remove_all(['b.xml']))

    def test_data_connections_that_do_not_resume(self):
        # ftplib's own FTP_TLS does not resume the control connection's
        # TLS session for its data connections.
        self.server.put('a.xml', b'A')
        ftp = ftplib.FTP_TLS(context=ssl.create_default_context(
            cafile=self.server.certificate.ca_file), timeout=10)
        self.addCleanup(ftp.close)
        ftp.connect(self.server.host, self.server.port)
        ftp.login(self.server.user, self.server.password)
        ftp.prot_p()
        ftp.cwd(self.server.directory)
        received = []
        if self.server.requires_tls_session_reuse:
            with self.assertRaises((ftplib.Error, ssl.SSLError)):
                ftp.retrbinary('RETR a.xml', received.append)
        else:
            ftp.retrbinary('RETR a.xml', received.append)
            self.assertEqual([b'A'], received)

    def test_no_login_in_the_clear(self):
        # The server is strict; that the FTPS target logs in shows that
        # its password went under TLS.
        with self.assertRaises(AuthenticationError):
            self.target(tls=False).connect()

    def test_untrusted_certificate_moves_nothing(self):
        untrusted = zeit.cds.testing.write_ca_file(
            trustme.CA(), self.scratch())
        zeit.cds.testing.make_spool(self.store_dir, {'a-file': b'A'})
        self.server.put('b.xml', b'B')
        before = self.spool_state()
        for direction in DIRECTIONS:
            with self.subTest(direction=direction):
                lines = self.run_transfer(
                    direction, self.target(ca_file=untrusted))
                self.assertEqual([
                    self.connecting_line(direction),
                    f'TLS certificate of host {self.server.host} not '
                    'trusted: unable to get local issuer certificate',
                ], lines)
                self.assertEqual(before, self.spool_state())

    def test_command_line_round_trip(self):
        ca_file = ['--ca-file', self.server.certificate.ca_file]
        files = {'a.xml': b'A', 'Größe und Maß.xml': b'M'}
        zeit.cds.testing.make_spool(self.store_dir, files)
        result = self.cds('export', *ca_file)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertEqual(files, self.server.contents())
        self.assertEqual(sorted(files), self.spool_files('cur'))
        result = self.cds('import', *ca_file)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertEqual({}, self.server.contents())
        self.assertEqual(sorted(files), self.spool_files('new'))

    def test_command_line_with_untrusted_certificate(self):
        zeit.cds.testing.make_spool(self.store_dir, {'a-file': b'A'})
        self.server.put('b.xml', b'B')
        before = self.spool_state()
        for direction in DIRECTIONS:
            with self.subTest(direction=direction):
                # Without --ca-file: the system's CAs do not know ours.
                result = self.cds(direction)
                self.assertEqual(1, result.returncode, result.stderr)
                self.assertEqual(
                    f'ERROR: TLS certificate of host {self.server.host} not '
                    'trusted: unable to get local issuer certificate',
                    result.stderr.splitlines()[-1])
                self.assertNotIn(self.server.password, result.stderr)
                self.assertEqual(before, self.spool_state())


# One class per server, each running every mixin of tests above; with TLS
# as well.

class VsftpdTest(ExportTests, ImportTests, ListingTests, FieldTests,
                 RealServerTestCase):
    layer = realservers.VSFTPD_LAYER


class ProFTPDTest(ExportTests, ImportTests, ListingTests, FieldTests,
                  RealServerTestCase):
    layer = realservers.PROFTPD_LAYER


class PureFTPdTest(ExportTests, ImportTests, ListingTests, FieldTests,
                   RealServerTestCase):
    layer = realservers.PUREFTPD_LAYER


class InetutilsFTPdTest(ExportTests, ImportTests, ListingTests, FieldTests,
                        RealServerTestCase):
    layer = realservers.INETUTILS_LAYER


class TwistedFTPdTest(FieldTests, RealServerTestCase):
    layer = realservers.TWISTED_LAYER


class VsftpdTLSTest(ExportTests, ImportTests, ListingTests, TLSTests,
                    RealServerTestCase):
    layer = realservers.VSFTPD_TLS_LAYER


class ProFTPDTLSTest(ExportTests, ImportTests, ListingTests, TLSTests,
                     RealServerTestCase):
    layer = realservers.PROFTPD_TLS_LAYER


class PureFTPdTLSTest(ExportTests, ImportTests, ListingTests, TLSTests,
                      RealServerTestCase):
    layer = realservers.PUREFTPD_TLS_LAYER


class ProFTPDWithoutOverwriteTest(RealServerTestCase):
    """A CDS that never replaces a file: re-exporting a name that is still
    there fails, and leaves nothing in the way of a later run."""

    layer = realservers.PROFTPD_WITHOUT_OVERWRITE_LAYER

    def test_existing_name_is_kept_until_the_cds_took_it(self):
        self.server.put('a-file', b'yesterday')
        zeit.cds.testing.make_spool(self.store_dir, {'a-file': b'today'})
        for _ in range(2):
            lines = self.run_transfer('export')
            self.assertIn(
                'Cannot upload file a-file: 550 a-file: Rename permission '
                'denied', lines)
            # Neither replaced nor a temporary upload left behind.
            self.assertEqual({'a-file': b'yesterday'}, self.server.contents())
            self.assertEqual(['a-file'], self.spool_files('new'))
        os.remove(self.remote_path('a-file'))
        self.run_transfer('export')
        self.assertEqual({'a-file': b'today'}, self.server.contents())
        self.assertEqual(['a-file'], self.spool_files('cur'))
