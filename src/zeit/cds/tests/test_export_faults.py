"""The export when things go wrong: every file stays waiting or is
delivered, never lost, never partial under its final name."""
import logging
import os

import pyftpdlib.handlers

import zeit.cds.main
import zeit.cds.testing
from zeit.cds import names
from zeit.cds.exporter import Exporter
from zeit.cds.interfaces import ConnectError
from zeit.cds.interfaces import ConnectionLost
from zeit.cds.interfaces import SpoolBusy
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests.handlers import CutDataHandler
from zeit.cds.tests.handlers import DiskFullHandler
from zeit.cds.tests.handlers import DropControlOnceHandler
from zeit.cds.tests.handlers import GoneHandler
from zeit.cds.tests.test_components import ExportTestCase
from zeit.cds.tests.test_components import ftp_target

FILES = {'a.xml': b'A' * 100, 'b.xml': b'B' * 200_000, 'c.xml': b'C' * 300}


class RefuseRenameDropAtCleanupHandler(pyftpdlib.handlers.FTPHandler):
    """Refuses to rename anything to b.xml; removes the temporary upload
    it is asked to, but hangs up before its reply, once."""

    dropped = False

    def ftp_RNTO(self, path):
        if path.endswith('/b.xml'):
            self.respond('553 Rename refused.')
            return None
        return super().ftp_RNTO(path)

    def ftp_DELE(self, path):
        if names.PARTIAL_PREFIX in path and not type(self).dropped:
            type(self).dropped = True
            os.remove(path)
            self.close()
            return None
        return super().ftp_DELE(path)


class DropAfterRenameHandler(pyftpdlib.handlers.FTPHandler):
    """Renames the upload of b.xml, but hangs up before its reply, once."""

    dropped = False

    def ftp_RNTO(self, path):
        if path.endswith('/b.xml') and not type(self).dropped:
            type(self).dropped = True
            os.rename(self._rnfr, path)
            self.close()
            return None
        return super().ftp_RNTO(path)


class FullAfterDropHandler(DropControlOnceHandler):
    """Hangs up at the upload of b.xml; from then on it refuses every
    login as a full server does."""

    def ftp_PASS(self, line):
        if type(self).dropped:
            self.respond('421 Too many connections, try later.')
            return None
        return super().ftp_PASS(line)


class ExportFaultTest(ExportTestCase):

    files = FILES

    def export(self, server):
        exporter = Exporter(FileStoreSpool(self.store),
                            ftp_target(server))
        # One connection: the faults strike it in a known order
        # (test_parallel has them on several).
        exporter.connections = 1
        exporter.reconnect_delays = (0, 0, 0)
        return exporter.run()

    def assertDelivered(self, server, delivered):
        """``delivered`` is on the server with its bytes and in cur; the
        rest waits in new; no partial upload, no lock is left."""
        remote = sorted(os.listdir(server.root))
        self.assertEqual(sorted(delivered), remote)
        for name in delivered:
            with open(os.path.join(server.root, name), 'rb') as f:
                self.assertEqual(FILES[name], f.read())
        self.assertEqual(sorted(delivered), self.spool_files('cur'))
        self.assertEqual(sorted(set(FILES) - set(delivered)),
                         self.spool_files('new'))

    def test_cut_data_connection_fails_that_file_only(self):
        server = zeit.cds.testing.server_for(self, CutDataHandler)
        summary = self.export(server)
        self.assertDelivered(server, ['a.xml', 'c.xml'])
        self.assertEqual((2, 1), (summary.files, summary.failures))
        self.assertIn('Cannot upload file b.xml: ', self.log.getvalue())

    def test_dropped_control_connection_is_reconnected(self):
        server = zeit.cds.testing.server_for(self, DropControlOnceHandler)
        summary = self.export(server)
        self.assertDelivered(server, list(FILES))
        self.assertEqual((3, 0), (summary.files, summary.failures))
        self.assertRegex(self.log.getvalue(),
                         r'\nCannot upload file b.xml: .*; reconnecting in 0 '
                         r'seconds\n')

    def test_refused_rename_whose_cleanup_broke_off_stays_waiting(self):
        # The temporary upload is gone, but its removal was never
        # confirmed: the file must not be taken for renamed.
        server = zeit.cds.testing.server_for(
            self, type('Handler', (RefuseRenameDropAtCleanupHandler,), {}))
        summary = self.export(server)
        self.assertDelivered(server, ['a.xml', 'c.xml'])
        self.assertEqual((2, 1), (summary.files, summary.failures))
        self.assertIn('Cannot upload file b.xml: 553 Rename refused.',
                      self.log.getvalue())

    def test_rename_whose_reply_was_lost_counts_once(self):
        server = zeit.cds.testing.server_for(
            self, type('Handler', (DropAfterRenameHandler,), {}))
        summary = self.export(server)
        self.assertDelivered(server, list(FILES))
        self.assertEqual((3, 0), (summary.files, summary.failures))
        self.assertNotIn('Cannot read file', self.log.getvalue())

    def test_login_refused_on_reconnect_ends_the_run_cleanly(self):
        server = zeit.cds.testing.server_for(
            self, type('Handler', (FullAfterDropHandler,), {}))
        with self.assertRaises(ConnectionLost) as raised:
            self.export(server)
        self.assertIn('421 Too many connections', str(raised.exception))
        self.assertIn('gave up after 3 attempts to reconnect',
                      str(raised.exception))
        # The lock it could not remove (no login) is left, for the next
        # run of ours to take over; b.xml and c.xml wait.
        os.remove(os.path.join(server.root, names.WRITE_LOCK))
        self.assertDelivered(server, ['a.xml'])

    def test_server_gone_for_good_ends_the_run(self):
        server = zeit.cds.testing.server_for(self, GoneHandler)
        with self.assertRaises(ConnectionLost) as raised:
            self.export(server)
        self.assertEqual(1, raised.exception.exit_code)
        self.assertIn('gave up after 3 attempts to reconnect',
                      str(raised.exception))
        self.assertEqual(3, self.log.getvalue().count('reconnecting in'))
        # Only the lock it could not remove is left besides a.xml; the
        # next run of ours takes it over.
        os.remove(os.path.join(server.root, names.WRITE_LOCK))
        self.assertDelivered(server, ['a.xml'])

    def test_upload_an_interrupted_run_left_is_finished_among_others(self):
        server = self.layer.server
        # Killed after b.xml was complete under its temporary name.
        FileStoreSpool(self.store).publishing('b.xml')
        with open(os.path.join(server.root, names.partial_name('b.xml')),
                  'wb') as f:
            f.write(FILES['b.xml'])
        summary = self.export(server)
        self.assertDelivered(server, list(FILES))
        self.assertEqual((3, 0), (summary.files, summary.failures))
        self.assertIn('Finished uploading file b.xml for an interrupted run',
                      self.log.getvalue())

    def test_disk_full_fails_that_file_only(self):
        server = zeit.cds.testing.server_for(self, DiskFullHandler)
        summary = self.export(server)
        self.assertDelivered(server, ['a.xml', 'c.xml'])
        self.assertEqual(1, summary.failures)
        self.assertIn('Cannot upload file b.xml: 552 Disk full.\n',
                      self.log.getvalue())

    def test_unreadable_local_file_fails_that_file_only(self):
        os.remove(os.path.join(self.store_dir, 'new', 'b.xml'))
        os.symlink('/nonexistent', os.path.join(self.store_dir, 'new', 'b.xml'))
        server = self.layer.server
        summary = self.export(server)
        self.assertEqual(['a.xml', 'c.xml'], sorted(os.listdir(server.root)))
        self.assertEqual(['b.xml'], self.spool_files('new'))
        self.assertEqual(1, summary.failures)
        self.assertIn('Refusing to export b.xml: not a regular file\n',
                      self.log.getvalue())

    def test_second_run_on_a_busy_spool_backs_off(self):
        with FileStoreSpool(self.store).locked():
            with self.assertRaises(SpoolBusy) as raised:
                self.export(self.layer.server)
        self.assertEqual(75, raised.exception.exit_code)
        self.assertEqual([], os.listdir(self.layer.server.root))
        self.assertEqual('', self.log.getvalue())

    def test_nothing_listening(self):
        target = ftp_target(self.layer.server)
        target.port = zeit.cds.testing.closed_port()
        with self.assertRaises(ConnectError):
            Exporter(FileStoreSpool(self.store), target).run()
        self.assertEqual(sorted(FILES), self.spool_files('new'))

    def test_the_facade_backs_off_at_warning_and_fails_at_error(self):
        with open(os.path.join(self.layer.server.root, 'read'), 'w') as f:
            f.write('partner reading\n')
        self.addCleanup(os.remove,
                        os.path.join(self.layer.server.root, 'read'))
        zeit.cds.main.export(self.store_dir, '127.0.0.1',
                             self.layer.server.port, 'test', 'testpw', '/')
        zeit.cds.main.export(self.store_dir, '127.0.0.1',
                             zeit.cds.testing.closed_port(), 'test',
                             'testpw', '/')
        with FileStoreSpool(self.store).locked():
            zeit.cds.main.export(self.store_dir, '127.0.0.1',
                                 self.layer.server.port, 'test', 'testpw',
                                 '/')
        self.assertEqual(
            ["CDS directory / is locked: lock file 'read' exists (held by "
             'another party)', f'Spool {self.store_dir} is busy: another run '
             f'holds {os.path.join(self.store_dir, "cds.lock")}'],
            self.log.logged_at(logging.WARNING))
        self.assertEqual(1, len(self.log.logged_at(logging.ERROR)))
        self.assertIn('Cannot connect to CDS FTP server',
                      self.log.logged_at(logging.ERROR)[0])
        self.assertEqual(sorted(FILES), self.spool_files('new'))

    def test_password_appears_in_no_log_line(self):
        zeit.cds.main.export(self.store_dir, '127.0.0.1',
                             self.layer.server.port, 'test', 'wrong-s3cret',
                             '/')
        zeit.cds.main.export(self.store_dir, '127.0.0.1',
                             zeit.cds.testing.closed_port(), 'test',
                             'wrong-s3cret', '/')
        self.assertIn('refused login', self.log.getvalue())
        self.assertNotIn('s3cret', self.log.getvalue())
