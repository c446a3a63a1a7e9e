"""SFTP against a real OpenSSH sshd (see sshd.py): the stories every
target tells, the export and the import as zeit.cms runs them, the lock
protocol, host keys, both logins, a dropped session, several connections.

Skipped with the reason where sshd cannot run here; under CI
(``CI=true``) it must run, so there the tests fail instead.
"""
import io
import os
import shutil
import socket
import tempfile
import unittest

import asyncssh
import zope.component
from zope.interface.verify import verifyObject

import zeit.cds.connection
import zeit.cds.main
import zeit.cds.testing
from zeit.cds import names
from zeit.cds.events import IFileExported
from zeit.cds.exporter import Exporter
from zeit.cds.importer import Importer
from zeit.cds.interfaces import AuthenticationError
from zeit.cds.interfaces import SettingsError
from zeit.cds.interfaces import HostKeyError
from zeit.cds.interfaces import IBatchStore
from zeit.cds.interfaces import IRemoteTargetFactory
from zeit.cds.interfaces import NoAnswer
from zeit.cds.interfaces import NoSuchFile
from zeit.cds.interfaces import RemoteExists
from zeit.cds.interfaces import RemoteLocked
from zeit.cds.interfaces import TransferError
from zeit.cds.sftpserver import EmbeddedSFTPServer
from zeit.cds.spool import FileStoreSpool
from zeit.cds.targets.sftp import CHUNK_SIZE
from zeit.cds.targets.sftp import SFTPTarget
from zeit.cds.targets.sftpfactory import make_sftp_target
from zeit.cds.tests import sshd
from zeit.cds.tests.test_interop import ExportTests
from zeit.cds.tests.test_interop import FieldTests
from zeit.cds.tests.test_interop import ImportTests
from zeit.cds.tests.test_components import SpoolTestCase
from zeit.cds.tests.test_interop import RealServerTestCase
from zeit.cds.tests.test_targets import FolderStories


class SFTPTestCase(RealServerTestCase):
    """A test against the layer's sshd, with a fresh spool and an empty
    root folder; targets log in with the layer's client key."""

    layer = sshd.SSHD_LAYER

    def target(self, **options):
        settings = dict(
            host=self.server.host, port=self.server.port,
            user=self.server.user, directory=self.server.directory,
            key_file=self.server.client_key,
            known_hosts=self.server.known_hosts, timeout=10)
        settings.update(options)
        return SFTPTarget(**settings)

    def run_transfer(self, direction, target=None):
        # Through the registry's exporter or importer, as for FTPS.
        return super().run_transfer(direction, target or self.target())

    def cds(self, direction, *options, spool=None):
        # The password file too: the key comes first, the password is not
        # needed.
        return super().cds(
            direction, '--protocol', 'sftp', '--key-file',
            self.server.client_key, '--known-hosts', self.server.known_hosts,
            *options, spool=spool)


class SFTPTargetStoriesTest(FolderStories, SFTPTestCase):

    def setUp(self):
        super().setUp()
        self.remote_root = self.server.root

    def make_target(self):
        return self.target()


def embedded_sftp(test, serving=asyncssh.SFTPServer):
    """Start cds-server's SFTP server (asyncssh's) for ``test``, on a new
    folder ``test.remote_root``, its requests served by ``serving``;
    returns a function that makes targets for it."""
    test.remote_root = tempfile.mkdtemp(prefix='cds-sftp-root-')
    test.addCleanup(zeit.cds.testing.remove_tree, test.remote_root)
    server = EmbeddedSFTPServer(test.remote_root, 'test', 'pw')
    server.serving = serving
    server.start()
    test.addCleanup(server.stop)
    known_hosts = test.remote_root + '-known_hosts'
    test.addCleanup(os.remove, known_hosts)
    with open(known_hosts, 'w') as f:
        f.write(server.known_hosts_line + '\n')
    return lambda: SFTPTarget(
        host=server.host, port=server.port, user='test', password='pw',
        directory='/', known_hosts=known_hosts, timeout=10)


class EmbeddedSFTPStoriesTest(FolderStories, SpoolTestCase):
    """The same stories against cds-server's SFTP server (asyncssh's),
    which runs everywhere, without root."""

    def setUp(self):
        super().setUp()
        self.make_target = embedded_sftp(self)


class SilentServerTest(unittest.TestCase):

    def test_a_server_that_never_greets_is_no_answer(self):
        # It takes the connection and says nothing, not even SSH's
        # greeting.
        listener = socket.create_server(('127.0.0.1', 0))
        self.addCleanup(listener.close)
        target = SFTPTarget(host='127.0.0.1', port=listener.getsockname()[1],
                            user='u', password='p', directory='/',
                            known_hosts='/dev/null', timeout=1)
        with self.assertRaises(NoAnswer) as raised:
            target.connect()
        self.assertEqual('Cannot connect to CDS SFTP server at 127.0.0.1 '
                         f'port {listener.getsockname()[1]}: no answer '
                         'within 1 s', str(raised.exception))


class SFTPExportTest(ExportTests, SFTPTestCase):
    pass


class SFTPImportTest(ImportTests, SFTPTestCase):
    pass


class SFTPFieldTest(FieldTests, SFTPTestCase):
    pass


class SFTPTargetTest(SFTPTestCase):

    def test_registered_factory_makes_sftp_targets(self):
        zeit.cds.main.ensure_configured()
        factory = zope.component.getUtility(IRemoteTargetFactory, 'sftp')
        self.assertIs(make_sftp_target, factory)
        verifyObject(IRemoteTargetFactory, factory)
        target = factory(host='h', user='u', password='p', directory='/',
                         timeout=10)
        self.assertIsInstance(target, SFTPTarget)

    def test_stores_a_batch_at_once(self):
        # The delivery protocol gives it a batch's files together.
        verifyObject(IBatchStore, self.target())

    def test_description_names_the_protocol(self):
        self.assertEqual(
            f'host {self.server.host}, port {self.server.port}, '
            f'user {self.server.user}, SFTP', self.target().description)

    def test_password_login(self):
        target = self.connected(key_file=None, password=self.server.password)
        self.assertEqual([], target.names())

    def test_wrong_password_is_refused_and_not_shown(self):
        target = self.target(key_file=None, password='not-the-password')
        with self.assertRaises(AuthenticationError) as raised:
            target.connect()
        self.assertIn(f'refused login for user {self.server.user}',
                      str(raised.exception))
        self.assertNotIn('not-the-password', str(raised.exception))
        self.assertNotIn('not-the-password', repr(target))

    def test_key_the_server_does_not_know_is_refused(self):
        other = os.path.join(self.tmp(), 'other_key')
        sshd.make_key(other)
        with self.assertRaises(AuthenticationError):
            self.target(key_file=other).connect()

    def test_encrypted_key_with_its_passphrase(self):
        path = os.path.join(self.tmp(), 'key')
        key = sshd.make_key(path)
        os.remove(path)
        with open(path, 'wb') as f:
            f.write(key.export_private_key(passphrase='secret phrase'))
        with self.assertRaises(SettingsError) as raised:
            self.target(key_file=path, passphrase='wrong')
        self.assertNotIn('wrong', str(raised.exception).replace(
            'wrong passphrase', ''))
        # The key opens, and the server, which does not know it, refuses.
        target = self.target(key_file=path, passphrase='secret phrase')
        with self.assertRaises(AuthenticationError):
            target.connect()

    def test_missing_key_file_is_a_configuration_error(self):
        with self.assertRaises(SettingsError) as raised:
            self.target(key_file='/no/such/key')
        self.assertEqual(2, raised.exception.exit_code)

    def tmp(self):
        path = os.path.join(self.store_dir, 'keys')
        os.makedirs(path, exist_ok=True)
        return path

    def assert_refused_before_login(self, known_hosts, why):
        """A connect with ``known_hosts`` ends with a HostKeyError that
        names the host and the key's fingerprint, before any login."""
        target = self.target(known_hosts=known_hosts, key_file=None,
                             password=self.server.password)
        with open(self.server.log_path) as log:
            log.seek(0, os.SEEK_END)
            with self.assertRaises(HostKeyError) as raised:
                target.connect()
            # Nothing was sent: sshd saw no user, no password.
            self.assertNotIn(self.server.user, log.read())
        fingerprint = self.server.host_key.get_fingerprint()
        self.assertEqual(
            f'Host key of CDS SFTP server at {self.server.host} port '
            f'{self.server.port} not trusted: ssh-ed25519 key '
            f'{fingerprint} {why}', str(raised.exception))
        self.assertEqual(1, raised.exception.exit_code)

    def test_unknown_host_key_ends_the_connect(self):
        missing = os.path.join(self.tmp(), 'known_hosts')
        self.assert_refused_before_login(missing, f'is not in {missing}')

    def test_changed_host_key_ends_the_connect(self):
        known_hosts = os.path.join(self.tmp(), 'known_hosts')
        other = sshd.make_key(os.path.join(self.tmp(), 'other_host_key'))
        with open(known_hosts, 'wb') as f:
            f.write(f'[{self.server.host}]:{self.server.port} '.encode()
                    + other.export_public_key())
        self.assert_refused_before_login(
            known_hosts, f'does not match the key in {known_hosts} '
            '(changed, or somebody is in between)')

    def test_a_file_that_is_no_known_hosts_file_is_not_quoted(self):
        # Such as the password file, named by mistake: its line is secret.
        path = os.path.join(self.tmp(), 'password')
        with open(path, 'w') as f:
            f.write('Tr0ub4dor&3\n')
        target = self.target(known_hosts=path, key_file=None,
                             password=self.server.password)
        with self.assertRaises(SettingsError) as raised:
            target.connect()
        self.assertEqual(f'Cannot read known_hosts file {path}: not in the '
                         'known_hosts format', str(raised.exception))
        self.assertEqual(2, raised.exception.exit_code)

    def test_unknown_host_key_makes_the_export_send_nothing(self):
        zeit.cds.testing.make_spool(self.store_dir, {'a.xml': b'A'})
        missing = os.path.join(self.tmp(), 'known_hosts')
        lines = self.run_transfer('export', self.target(known_hosts=missing))
        self.assertIn('not trusted: ssh-ed25519 key SHA256:', lines[-1])
        self.assertEqual({}, self.server.contents())
        self.assertEqual(['a.xml'], self.spool_files('new'))

    def test_create_is_exclusive(self):
        target = self.connected()
        target.create(names.WRITE_LOCK, b'one')
        with self.assertRaises(RemoteExists):
            target.create(names.WRITE_LOCK, b'two')
        self.assertEqual({names.WRITE_LOCK: b'one'}, self.server.contents())

    def test_sizes_and_identities(self):
        self.server.put('a.xml', b'abc')
        target = self.connected()
        found = target.sizes(['a.xml', 'gone.xml'])
        self.assertEqual(3, found['a.xml'])
        self.assertIsInstance(found['gone.xml'], NoSuchFile)
        stat = os.stat(os.path.join(self.server.root, 'a.xml'))
        self.assertEqual(
            {'a.xml': f'size 3 modified {int(stat.st_mtime)}'.encode(),
             'gone.xml': None},
            target.identities(['a.xml', 'gone.xml']))

    def test_rename_replaces_the_final_name(self):
        self.server.put('a.xml', b'old')
        self.server.put('new.xml', b'new')
        target = self.connected()
        self.assertEqual({'new.xml': None, 'gone.xml': NoSuchFile},
                         {old: type(error) if error else None
                          for old, error in target.rename_all(
                              [('new.xml', 'a.xml'),
                               ('gone.xml', 'b.xml')]).items()})
        self.assertEqual({'a.xml': b'new'}, self.server.contents())

    def test_plain_rename_never_replaces(self):
        # What a server without posix-rename@openssh.com gets: the final
        # name that exists is kept, the upload waits under its own.
        self.server.put('a.xml', b'old')
        self.server.put('new.xml', b'new')
        target = self.connected()
        target._lacks.add('posix-rename')
        error = target.rename_all([('new.xml', 'a.xml')])['new.xml']
        self.assertIsInstance(error, TransferError)
        self.assertEqual({'a.xml': b'old', 'new.xml': b'new'},
                         self.server.contents())

    def test_foreign_lock_makes_both_directions_back_off(self):
        self.server.put(names.READ_LOCK, b'partner\n')
        zeit.cds.testing.make_spool(self.store_dir, {'a.xml': b'A'})
        for run in (Exporter, Importer):
            with self.subTest(run=run.__name__):
                with self.assertRaises(RemoteLocked):
                    run(FileStoreSpool(self.store), self.target()).run()
        self.assertEqual({names.READ_LOCK: b'partner\n'},
                         self.server.contents())
        self.assertEqual(['a.xml'], self.spool_files('new'))

    def test_download_of_a_missing_file(self):
        with self.assertRaises(NoSuchFile):
            self.connected().download('gone.xml', io.BytesIO())


FILES = {f'{i:03}.xml': bytes([i]) * (i * 100) for i in range(40)}


class SFTPRunTest(SFTPTestCase):
    """Whole runs with faults and with several connections."""

    def export(self, connections=1):
        zeit.cds.testing.make_spool(self.store_dir, FILES)
        exporter = Exporter(FileStoreSpool(self.store), self.target())
        exporter.connections = connections
        exporter.reconnect_delays = (0, 0, 0)
        with zeit.cds.testing.LogCapture() as log:
            summary = exporter.run()
        return summary, log.getvalue()

    def assert_all_delivered(self):
        self.assertEqual(FILES, self.server.contents())
        self.assertEqual(sorted(FILES), self.spool_files('cur'))
        self.assertEqual([], self.spool_files('new'))

    def test_dropped_session_is_reconnected_and_converges(self):
        dropped = []

        def drop_once(event):
            if not dropped:
                dropped.extend(self.server.sessions())
                self.server.drop_sessions()
        gsm = zope.component.getGlobalSiteManager()
        gsm.registerHandler(drop_once, [IFileExported])
        self.addCleanup(gsm.unregisterHandler, drop_once, [IFileExported])
        summary, log = self.export()
        self.assertTrue(dropped)
        self.assertIn('reconnecting in 0 seconds', log)
        self.assertEqual((len(FILES), 0), (summary.files, summary.failures))
        self.assert_all_delivered()

    def test_parallel_connections(self):
        summary, log = self.export(connections=4)
        self.assertEqual((len(FILES), 0), (summary.files, summary.failures))
        self.assert_all_delivered()

    def test_large_files_of_one_batch_share_the_channel(self):
        # Stored at once, each waits for room among the chunks in flight.
        large = {f'{i}.xml': os.urandom(2 * CHUNK_SIZE + i)
                 for i in range(3)}
        zeit.cds.testing.make_spool(self.store_dir, large)
        summary = Exporter(FileStoreSpool(self.store), self.target()).run()
        self.assertEqual((3, 0), (summary.files, summary.failures))
        self.assertEqual(large, self.server.contents())

    def test_round_trip_back_into_a_spool(self):
        self.export(connections=4)
        for name in os.listdir(self.server.root):
            os.chown(os.path.join(self.server.root, name),
                     *sshd.ensure_account())
        shutil.rmtree(self.store_dir)
        zeit.cds.testing.make_spool(self.store_dir, {})
        importer = Importer(FileStoreSpool(self.store), self.target())
        importer.connections = 4
        summary = importer.run()
        self.assertEqual((len(FILES), 0), (summary.files, summary.failures))
        self.assertEqual({}, self.server.contents())
        for name, data in FILES.items():
            with open(os.path.join(self.store_dir, 'new', name), 'rb') as f:
                self.assertEqual(data, f.read())


class SFTPCommandLineTest(SFTPTestCase):
    """cds-export and cds-import with --protocol sftp."""

    def setUp(self):
        super().setUp()
        zeit.cds.testing.make_spool(self.store_dir, {'a.xml': b'A'})

    def command(self, *args, script='cds-export', env=None):
        argv = ['--protocol', 'sftp', '--spool', self.store_dir,
                '--host', self.server.host, '--port', str(self.server.port),
                '--user', self.server.user, '--dir', self.server.directory,
                '--known-hosts', self.server.known_hosts, *args]
        return zeit.cds.testing.run_script(script, *argv, env=env)

    def test_export_and_import_with_a_key(self):
        result = self.command('--key-file', self.server.client_key)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertEqual({'a.xml': b'A'}, self.server.contents())
        os.remove(os.path.join(self.store_dir, 'cur', 'a.xml'))
        result = self.command('--key-file', self.server.client_key,
                          script='cds-import')
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertEqual(['a.xml'], self.spool_files('new'))
        self.assertEqual({}, self.server.contents())

    def test_password_from_the_environment(self):
        result = self.command(env={'CDS_PASSWORD': self.server.password})
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertEqual({'a.xml': b'A'}, self.server.contents())

    def test_passphrase_from_a_file_and_never_shown(self):
        path = os.path.join(self.store_dir, 'key')
        key = sshd.make_key(path)
        os.remove(path)
        with open(path, 'wb') as f:
            f.write(key.export_private_key(passphrase='open sesame'))
        wrong = os.path.join(self.store_dir, 'passphrase')
        with open(wrong, 'w') as f:
            f.write('close sesame\n')
        result = self.command('--key-file', path, '--passphrase-file', wrong,
                          env={'CDS_PASSWORD': 'unused'})
        self.assertEqual(2, result.returncode, result.stderr)
        self.assertEqual(
            f'cds-export: error: Cannot use key file {path}: wrong '
            'passphrase or none given\n', result.stderr)
        self.assertNotIn('sesame', result.stdout)

    def test_unknown_host_key_is_1_and_one_line(self):
        empty = os.path.join(self.store_dir, 'known_hosts')
        open(empty, 'w').close()
        result = self.command('--key-file', self.server.client_key,
                          '--known-hosts', empty)
        self.assertEqual(1, result.returncode, result.stderr)
        errors = [line for line in result.stderr.splitlines()
                  if 'ERROR' in line or 'error' in line]
        self.assertEqual(1, len(errors), result.stderr)
        self.assertIn(f'at {self.server.host} port {self.server.port} not '
                      'trusted: ssh-ed25519 key SHA256:', errors[0])
        self.assertEqual({}, self.server.contents())

    def test_sftp_options_apply_to_sftp_only(self):
        result = zeit.cds.testing.run_script(
            'cds-export', '--spool', self.store_dir, '--host', 'h',
            '--user', 'u', '--key-file', self.server.client_key,
            env={'CDS_PASSWORD': 'x'})
        self.assertEqual(2, result.returncode, result.stderr)
        self.assertIn('key-file does not apply to protocol ftp; it needs '
                      'protocol sftp', result.stderr)

    def test_port_22_by_default(self):
        zeit.cds.main.ensure_configured()
        settings = zeit.cds.connection.checked(
            {'scheme': 'sftp', 'host': 'h', 'user': 'u'}, {})
        self.assertEqual(22, settings.target(password='x').port)
