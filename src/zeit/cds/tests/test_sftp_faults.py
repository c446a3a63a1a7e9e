"""SFTP when things go wrong, against real OpenSSH servers (sshd.py): a
server gone for good, a full disk, a server without the OpenSSH
extensions. Every file stays waiting or is delivered, never lost, never
partial under its final name.
"""
import os

import asyncssh
import zope.component

import zeit.cds.testing
from zeit.cds import names
from zeit.cds.events import IFileExported
from zeit.cds.exporter import Exporter
from zeit.cds.interfaces import ConnectionLost
from zeit.cds.interfaces import TransferError
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests import sshd
from zeit.cds.tests.test_components import SpoolTestCase
from zeit.cds.tests.test_sftp import SFTPTestCase
from zeit.cds.tests.test_sftp import embedded_sftp

FILES = {'a.xml': b'A' * 100, 'b.xml': b'B' * 200_000, 'c.xml': b'C' * 300}


def _export(test, target, connections):
    """Export the spool of ``test`` to ``target``, on up to
    ``connections``, reconnecting at once; the summary. The run's log
    lines go to ``test.log``, also when it raises."""
    exporter = Exporter(FileStoreSpool(test.store), target)
    exporter.connections = connections
    exporter.reconnect_delays = (0, 0, 0)
    with zeit.cds.testing.LogCapture() as log:
        try:
            return exporter.run()
        finally:
            test.log = log.getvalue()


class SFTPFaultTestCase(SFTPTestCase):

    files = FILES

    def setUp(self):
        super().setUp()
        zeit.cds.testing.make_spool(self.store_dir, self.files)

    def export(self, connections=1):
        return _export(self, self.target(), connections)

    def assertDelivered(self, delivered):
        """``delivered`` is on the server with its bytes and in cur; the
        rest waits in new; nothing else is on the server."""
        self.assertEqual({name: self.files[name] for name in delivered},
                         self.server.contents())
        self.assertEqual(sorted(delivered), self.spool_files('cur'))
        self.assertEqual(sorted(set(self.files) - set(delivered)),
                         self.spool_files('new'))


class SFTPServerGoneTest(SFTPFaultTestCase):

    files = {f'{i:02}.xml': bytes([i]) * (i * 1000) for i in range(20)}

    def test_server_gone_for_good_ends_the_run(self):
        delivered = []

        def halt_once(event):
            if not delivered:
                self.server.halt()
                # Back for the next test: a new sshd, on a new port.
                self.addCleanup(self.server.start)
                self.addCleanup(self.server.stop)
            delivered.append(event.name)
        gsm = zope.component.getGlobalSiteManager()
        gsm.registerHandler(halt_once, [IFileExported])
        self.addCleanup(gsm.unregisterHandler, halt_once, [IFileExported])
        with self.assertRaises(ConnectionLost) as raised:
            self.export()
        self.assertEqual(1, raised.exception.exit_code)
        self.assertIn('gave up after 3 attempts to reconnect',
                      str(raised.exception))
        self.assertEqual(3, self.log.count('reconnecting in'))
        # The files of the batch that was renamed before the server went
        # are delivered; the others wait. Only the lock that could not be
        # removed is left besides them; the next run of ours takes it
        # over.
        self.assertTrue(0 < len(delivered) < len(self.files))
        os.remove(os.path.join(self.server.root, names.WRITE_LOCK))
        self.assertDelivered(delivered)


class SFTPDiskFullTest(SFTPFaultTestCase):

    layer = sshd.SSHD_ON_SMALL_DISK_LAYER

    def test_disk_full_fails_that_file_only(self):
        result = self.cds('export', '--connections', '1')
        self.assertEqual(1, result.returncode, result.stderr)
        errors = [line for line in result.stderr.splitlines()
                  if 'ERROR' in line]
        self.assertEqual(['ERROR: Cannot upload file b.xml: Failure'],
                         errors)
        self.assertIn('Exported 2 files, 400 bytes', result.stderr)
        self.assertNotIn('Traceback', result.stderr)
        # What b.xml left on the disk is gone: the next run has room.
        self.assertDelivered(['a.xml', 'c.xml'])


class SFTPWithoutExtensionsTest(SFTPFaultTestCase):
    """A server without fsync@openssh.com and posix-rename@openssh.com:
    the size check alone stands for the fsync, and the plain SFTP rename,
    which never replaces a file, for posix-rename."""

    layer = sshd.SSHD_WITHOUT_EXTENSIONS_LAYER

    def test_every_file_is_delivered(self):
        summary = self.export(connections=2)
        self.assertEqual((3, 0), (summary.files, summary.failures))
        self.assertDelivered(list(self.files))
        self.assertNotIn('ERROR', self.log)

    def test_a_final_name_that_exists_is_kept_and_the_file_waits(self):
        self.server.put('b.xml', b'old')
        summary = self.export()
        self.assertEqual((2, 1), (summary.files, summary.failures))
        self.assertIn('Cannot upload file b.xml: ', self.log)
        # Neither replaced nor left under the temporary name.
        self.assertEqual(dict(FILES, **{'b.xml': b'old'}),
                         self.server.contents())
        self.assertEqual(['a.xml', 'c.xml'], self.spool_files('cur'))
        self.assertEqual(['b.xml'], self.spool_files('new'))


class _DenyingFsync(asyncssh.SFTPServer):
    """Offers fsync@openssh.com, and denies it, as a server's rule."""

    def fsync(self, file_obj):
        raise asyncssh.SFTPPermissionDenied('fsync denied by policy')


class _DenyingPosixRename(asyncssh.SFTPServer):
    """Offers posix-rename@openssh.com, and denies it."""

    def posix_rename(self, oldpath, newpath):
        raise asyncssh.SFTPPermissionDenied('posix-rename denied by policy')


class _FailingFsync(asyncssh.SFTPServer):
    """Cannot flush a file to its disk, as on a failing one."""

    def fsync(self, file_obj):
        raise asyncssh.SFTPFailure('Input/output error')


class _FailingFsyncOfB(_FailingFsync):
    """Cannot flush the upload of b.xml to its disk."""

    def fsync(self, file_obj):
        if os.path.basename(os.fsdecode(file_obj.name)) == (
                names.partial_name('b.xml')):
            super().fsync(file_obj)


class RefusingServerTest(SpoolTestCase):
    """Servers that offer an OpenSSH extension and then refuse it, through
    cds-server's SFTP server (asyncssh's) with requests refused as such a
    server refuses them."""

    def serve(self, serving):
        return embedded_sftp(self, serving)()

    def export(self, target):
        zeit.cds.testing.make_spool(self.store_dir, FILES)
        return _export(self, target, connections=2)

    def remote(self):
        return zeit.cds.testing.folder_contents(self.remote_root)

    def assertAllDelivered(self, serving, told):
        """An export to a server ``serving`` so delivers every file, and
        tells ``told`` once."""
        summary = self.export(self.serve(serving))
        self.assertEqual((3, 0), (summary.files, summary.failures))
        self.assertEqual(FILES, self.remote())
        self.assertEqual(1, self.log.count(told))
        self.assertNotIn('ERROR', self.log)

    def test_a_denied_fsync_is_done_without_once_told(self):
        self.assertAllDelivered(
            _DenyingFsync,
            'The CDS SFTP server does not flush files to its disk')

    def test_a_denied_posix_rename_is_done_with_the_plain_rename(self):
        self.assertAllDelivered(
            _DenyingPosixRename,
            'The CDS SFTP server denies posix-rename@openssh.com')

    def test_a_final_name_that_exists_then_is_kept_and_the_file_waits(self):
        target = self.serve(_DenyingPosixRename)
        with open(os.path.join(self.remote_root, 'b.xml'), 'wb') as f:
            f.write(b'old')
        summary = self.export(target)
        self.assertEqual((2, 1), (summary.files, summary.failures))
        self.assertIn('Cannot upload file b.xml: File already exists',
                      self.log)
        self.assertEqual(dict(FILES, **{'b.xml': b'old'}),
                         self.remote())
        self.assertEqual(['b.xml'], self.spool_files('new'))

    def test_a_failed_fsync_fails_that_file_only(self):
        summary = self.export(self.serve(_FailingFsyncOfB))
        self.assertEqual((2, 1), (summary.files, summary.failures))
        self.assertIn('Cannot upload file b.xml: Input/output error',
                      self.log)
        self.assertNotIn('does not flush', self.log)
        # Not published, and what it left is removed.
        self.assertEqual({'a.xml': FILES['a.xml'], 'c.xml': FILES['c.xml']},
                         self.remote())
        self.assertEqual(['b.xml'], self.spool_files('new'))

    def test_a_failed_fsync_of_the_lock_fails_the_run_before_any_file(self):
        # The lock file is flushed like any upload: it cannot be taken,
        # and it is not left behind. Every file waits.
        with self.assertRaises(TransferError) as raised:
            self.export(self.serve(_FailingFsync))
        self.assertEqual(
            f'Cannot create file {names.WRITE_LOCK}: Input/output error',
            str(raised.exception))
        self.assertEqual({}, self.remote())
        self.assertEqual(sorted(FILES), self.spool_files('new'))
