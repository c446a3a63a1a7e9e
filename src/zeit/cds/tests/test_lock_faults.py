"""A run that fails while creating its CDS lock leaves no lock behind that
would make later runs back off; a partner's lock still does."""
import os
import threading

import zeit.cds.testing
from zeit.cds import names
from zeit.cds.exporter import Exporter
from zeit.cds.interfaces import ConnectionLost
from zeit.cds.interfaces import RemoteLocked
from zeit.cds.interfaces import TransferError
from zeit.cds.run.lock import LockOwner
from zeit.cds.run.notes import ServerNotes
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests.handlers import AbortedLockStoreHandler
from zeit.cds.tests.handlers import DropAtLockStoreOnceHandler
from zeit.cds.tests.handlers import GoneAtLockStoreHandler
from zeit.cds.tests.handlers import SilentAtLockStoreOnceHandler
from zeit.cds.tests.handlers import UnreadableLockHandler
from zeit.cds.tests.test_components import ExportTestCase
from zeit.cds.tests.test_components import ftp_target

FILES = {'a.xml': b'A' * 100, 'c.xml': b'C' * 300}
ABORTED = ('Cannot store file write: 426 Transfer aborted. '
           'Data connection closed.')


class LockStoreFaultTest(ExportTestCase):

    files = FILES

    def export(self, server, **options):
        exporter = Exporter(FileStoreSpool(self.store),
                            ftp_target(server, **options))
        exporter.reconnect_delays = (0, 0, 0)
        return exporter.run()

    def assertDelivered(self, server):
        self.assertEqual(sorted(FILES), sorted(os.listdir(server.root)))
        self.assertEqual(sorted(FILES), self.spool_files('cur'))
        self.assertEqual([], self.spool_files('new'))

    def assertNothingMoved(self, server):
        self.assertEqual([], os.listdir(server.root))
        self.assertEqual(sorted(FILES), self.spool_files('new'))

    def notes(self, server):
        return ServerNotes(FileStoreSpool(self.store), ftp_target(server))

    def refusing_server(self, **settings):
        handler = type('Refusing', (AbortedLockStoreHandler,), settings)
        return handler, zeit.cds.testing.server_for(self, handler)

    def test_lock_store_refused_after_creating_the_file_leaves_none(self):
        handler, server = self.refusing_server()
        with self.assertRaises(TransferError) as raised:
            self.export(server)
        self.assertEqual(ABORTED, str(raised.exception))
        self.assertEqual(1, raised.exception.exit_code)
        self.assertNothingMoved(server)
        self.assertEqual({}, self.notes(server).locks)
        self.assertEqual([], self.log.warnings())
        handler.refusing = False
        self.export(server)
        self.assertDelivered(server)
        self.assertEqual([], self.log.warnings())

    def test_lock_store_cut_short_leaves_none(self):
        handler, server = self.refusing_server(kept=20)
        with self.assertRaises(TransferError) as raised:
            self.export(server)
        self.assertEqual(ABORTED, str(raised.exception))
        self.assertNothingMoved(server)
        handler.refusing = False
        self.export(server)
        self.assertDelivered(server)
        self.assertEqual([], self.log.warnings())

    def test_lock_store_cut_by_a_dropped_connection_is_made_again(self):
        server = zeit.cds.testing.server_for(self, DropAtLockStoreOnceHandler)
        summary = self.export(server)
        self.assertDelivered(server)
        self.assertEqual((2, 0), (summary.files, summary.failures))
        cannot, reconnecting, taking = self.log.warnings()
        self.assertIn('Cannot make sure that lock file write is gone', cannot)
        self.assertIn('reconnecting in 0 seconds', reconnecting)
        self.assertEqual('Taking over lock file write that a failed store '
                         'of this spool left (empty)', taking)
        self.assertEqual({}, self.notes(server).locks)

    def test_lock_store_that_timed_out_is_made_again(self):
        server = zeit.cds.testing.server_for(
            self, SilentAtLockStoreOnceHandler)
        self.export(server, timeout=1)
        self.assertDelivered(server)
        cannot, reconnecting, taking = self.log.warnings()
        self.assertEqual('Cannot make sure that lock file write is gone '
                         '(No answer from the CDS FTP server within 1 s '
                         'while storing write); this spool takes it over '
                         'when it gets the lock next', cannot)
        self.assertEqual('Taking over lock file write that a failed store '
                         'of this spool left (empty)', taking)

    def test_lock_left_by_a_server_gone_is_taken_over_by_the_next_run(self):
        down = threading.Event()
        server = zeit.cds.testing.server_for(self, type(
            'Gone', (GoneAtLockStoreHandler,), {'down': down}))
        with self.assertRaises(ConnectionLost) as raised:
            self.export(server)
        self.assertIn('gave up after 3 attempts', str(raised.exception))
        # The server went away before the empty lock could be removed.
        self.assertEqual([names.WRITE_LOCK], os.listdir(server.root))
        self.assertIn('Cannot make sure that lock file write is gone',
                      self.log.getvalue())
        self.assertEqual([names.WRITE_LOCK], list(self.notes(server).locks))
        down.clear()
        self.log.clear()
        self.export(server)
        self.assertDelivered(server)
        self.assertEqual(['Taking over lock file write that a failed store '
                          'of this spool left (empty)'], self.log.warnings())
        self.assertEqual({}, self.notes(server).locks)

    def test_empty_lock_of_a_partner_makes_the_run_back_off(self):
        server = self.layer.server
        with open(os.path.join(server.root, names.WRITE_LOCK), 'wb'):
            pass
        with self.assertRaises(RemoteLocked) as raised:
            self.export(server)
        self.assertEqual(75, raised.exception.exit_code)
        self.assertIn("lock file 'write' exists (held by another party)",
                      str(raised.exception))
        self.assertEqual([names.WRITE_LOCK], os.listdir(server.root))
        self.assertEqual(0, os.path.getsize(
            os.path.join(server.root, names.WRITE_LOCK)))
        self.assertEqual(sorted(FILES), self.spool_files('new'))

    def test_note_on_one_server_takes_over_nothing_on_another(self):
        down = threading.Event()
        gone = zeit.cds.testing.server_for(self, type(
            'Gone', (GoneAtLockStoreHandler,), {'down': down}))
        with self.assertRaises(ConnectionLost):
            self.export(gone)
        # Another server on the same folder: the empty lock there is not
        # one this spool left on it.
        other = zeit.cds.testing.FTPServerThread(gone.root).start()
        self.addCleanup(other.stop)
        with self.assertRaises(RemoteLocked):
            self.export(other)
        self.assertEqual([names.WRITE_LOCK], os.listdir(gone.root))

    def test_partners_lock_after_a_failed_store_of_ours_is_respected(self):
        down = threading.Event()
        server = zeit.cds.testing.server_for(self, type(
            'Gone', (GoneAtLockStoreHandler,), {'down': down}))
        with self.assertRaises(ConnectionLost):
            self.export(server)
        down.clear()
        # Meanwhile the empty lock went, and the partner took the lock.
        with open(os.path.join(server.root, names.WRITE_LOCK), 'wb') as f:
            f.write(b'partner writing\n')
        with self.assertRaises(RemoteLocked):
            self.export(server)
        with open(os.path.join(server.root, names.WRITE_LOCK), 'rb') as f:
            self.assertEqual(b'partner writing\n', f.read())

    def test_unreadable_lock_of_a_partner_makes_the_run_back_off(self):
        server = zeit.cds.testing.server_for(self, UnreadableLockHandler)
        with open(os.path.join(server.root, names.WRITE_LOCK), 'wb') as f:
            f.write(b'partner writing\n')
        with self.assertRaises(RemoteLocked) as raised:
            self.export(server)
        self.assertEqual(75, raised.exception.exit_code)
        self.assertEqual([names.WRITE_LOCK], os.listdir(server.root))

    def test_unreadable_lock_a_killed_store_of_ours_left_is_taken_over(self):
        server = zeit.cds.testing.server_for(self, UnreadableLockHandler)
        # As a run killed in the middle of storing its lock leaves it: the
        # note taken before the store, the file on the server.
        notes = self.notes(server)
        notes.locks[names.WRITE_LOCK] = LockOwner.this_process(
            self.store_dir).dumps()
        notes.save()
        with open(os.path.join(server.root, names.WRITE_LOCK), 'wb') as f:
            f.write(b'tool: zeit')
        self.export(server)
        self.assertDelivered(server)
        self.assertEqual(['Taking over lock file write that a failed store '
                          'of this spool left (unreadable)'],
                         self.log.warnings())
