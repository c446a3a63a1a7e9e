"""SFTP when things go wrong, against real OpenSSH servers (sshd.py): a
server gone for good, a full disk, a server without the OpenSSH
extensions. Every file stays waiting or is delivered, never lost, never
partial under its final name.
"""
import os

import zope.component

import zeit.cds.testing
from zeit.cds import names
from zeit.cds.events import IFileExported
from zeit.cds.exporter import Exporter
from zeit.cds.interfaces import ConnectionLost
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests import sshd
from zeit.cds.tests.test_sftp import SFTPTestCase

FILES = {'a.xml': b'A' * 100, 'b.xml': b'B' * 200_000, 'c.xml': b'C' * 300}


class SFTPFaultTestCase(SFTPTestCase):

    files = FILES

    def setUp(self):
        super().setUp()
        zeit.cds.testing.make_spool(self.store_dir, self.files)

    def export(self, connections=1):
        exporter = Exporter(FileStoreSpool(self.store), self.target())
        exporter.connections = connections
        exporter.reconnect_delays = (0, 0, 0)
        with zeit.cds.testing.LogCapture() as log:
            try:
                return exporter.run()
            finally:
                self.log = log.getvalue()

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
