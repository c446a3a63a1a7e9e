"""What one server answers, another refuses: each fallback of the FTP
target against a server that really behaves so (OddHandler), beside the
slow real-server tests of test_interop."""
import os

import zeit.cds.testing
from zeit.cds import names
from zeit.cds.exporter import Exporter
from zeit.cds.importer import Importer
from zeit.cds.interfaces import RemoteError
from zeit.cds.interfaces import RemoteLocked
from zeit.cds.spool import FileStoreSpool
from zeit.cds.testing import LIKE_INETUTILS
from zeit.cds.testing import LIKE_TWISTED
from zeit.cds.testing import odd_handler
from zeit.cds.tests.test_components import ExportTestCase
from zeit.cds.tests.test_components import ftp_target

FILES = {f'doc-{i:02}.xml': b'<doc>%d</doc>' % i for i in range(40)}


class FallbackTestCase(ExportTestCase):

    files = FILES

    def server(self, unknown=(), **odd):
        return zeit.cds.testing.server_for(self, odd_handler(unknown, **odd))

    def target(self, server):
        target = ftp_target(server)
        self.addCleanup(target.close)
        return target

    def export(self, server, connections=4):
        exporter = Exporter(FileStoreSpool(self.store), self.target(server))
        exporter.connections = connections
        exporter.reconnect_delays = (0, 0, 0)
        return exporter.run()

    def import_(self, server):
        other = os.path.join(self.store_dir, 'imported')
        store = zeit.cds.testing.make_spool(other, {})
        Importer(FileStoreSpool(store), self.target(server)).run()
        return sorted(os.listdir(os.path.join(other, 'new')))

    def assertDelivered(self, server, summary):
        """Every file on the server with its bytes, in cur, nothing else
        left: no lock, no temporary upload."""
        self.assertEqual((len(FILES), 0), (summary.files, summary.failures))
        self.assertEqual(sorted(FILES), sorted(os.listdir(server.root)))
        for name, data in FILES.items():
            with open(os.path.join(server.root, name), 'rb') as f:
                self.assertEqual(data, f.read())
        self.assertEqual([], self.spool_files('new'))


class ListingFallbackTest(FallbackTestCase):

    def test_550_for_an_empty_directory_is_an_empty_listing(self):
        server = self.server(**LIKE_INETUTILS)
        target = self.target(server)
        target.connect()
        self.assertEqual([], target.names())
        self.assertFalse(target._habits.mlsd)
        self.assertDelivered(server, self.export(server))
        self.assertEqual(sorted(FILES), self.import_(server))
        self.assertEqual([], os.listdir(server.root))

    def test_450_for_an_empty_directory_is_an_empty_listing_too(self):
        # As some servers answer an NLST of an empty directory.
        server = self.server(empty_nlst_reply='450 No files found.',
                             unknown=('MLSD', 'MLST'))
        target = self.target(server)
        target.connect()
        self.assertEqual([], target.names())
        self.assertDelivered(server, self.export(server))
        self.assertEqual(sorted(FILES), self.import_(server))
        self.assertEqual([], os.listdir(server.root))

    def test_550_for_a_directory_that_lists_something_stays_an_error(self):
        # A LIST that shows entries: the 550 was no empty directory.
        server = self.server(empty_nlst_reply='550 No files found.',
                             unknown=('MLSD', 'MLST'))
        with open(os.path.join(server.root, 'a.xml'), 'wb') as f:
            f.write(b'x')
        target = self.target(server)
        target.connect()
        self.assertEqual(['a.xml'], target.names())

    def test_nlst_with_an_argument_where_a_bare_one_is_refused(self):
        server = self.server(nlst_needs_argument=True,
                             unknown=('MLSD', 'MLST'))
        with open(os.path.join(server.root, 'offered.xml'), 'wb') as f:
            f.write(b'x')
        target = self.target(server)
        target.connect()
        self.assertEqual(['offered.xml'], target.names())
        self.assertEqual('NLST .', target._habits.nlst)

    def test_features_spare_the_mlsd_attempt(self):
        server = self.server(unknown=('MLSD', 'MLST'))
        target = self.target(server)
        target.connect()
        self.assertIs(False, target._habits.mlsd)


    def test_lists_where_mlst_is_refused_though_features_name_it(self):
        asked = []

        def refuse(handler, path):
            asked.append(path)
            handler.respond('502 Command not implemented.')
        server = zeit.cds.testing.server_for(
            self, type('NoMLST', (odd_handler(),), {'ftp_MLST': refuse}))
        with open(os.path.join(server.root, 'a.xml'), 'wb') as f:
            f.write(b'x')
        target = self.target(server)
        target.connect()
        self.assertEqual({'a.xml': None}, target.present(['a.xml', 'b.xml']))
        self.assertIs(False, target._habits.mlst)
        self.assertEqual(2, len(asked))
        # A run learns it once, at its lock's first look, and goes on.
        os.remove(os.path.join(server.root, 'a.xml'))
        self.assertDelivered(server, self.export(server))
        self.assertEqual(4, len(asked))


    def test_lock_files_hidden_from_mlst_are_found_by_listing(self):
        # A server whose MLST finds nothing (550), as one that resolves
        # the names elsewhere: the run's own lock, stored and read back
        # but not shown, gives it away, and the listing shows the
        # partner's lock.
        def hide(handler, path):
            handler.respond('550 No such file or directory.')
        server = zeit.cds.testing.server_for(
            self, type('BlindMLST', (odd_handler(),), {'ftp_MLST': hide}))
        with open(os.path.join(server.root, names.READ_LOCK), 'wb') as f:
            f.write(b'partner reading\n')
        with self.assertRaises(RemoteLocked):
            self.export(server)
        self.assertEqual([names.READ_LOCK], os.listdir(server.root))
        self.assertIn('listing the directory instead', self.log.getvalue())
        os.remove(os.path.join(server.root, names.READ_LOCK))
        self.assertDelivered(server, self.export(server))


class PipeliningFallbackTest(FallbackTestCase):

    def test_transfers_in_lock_step_where_early_ones_are_aborted(self):
        server = self.server(**LIKE_TWISTED)
        summary = self.export(server)
        self.assertDelivered(server, summary)
        self.assertEqual(sorted(FILES), self.import_(server))

    def test_batches_in_lock_step_where_early_commands_are_refused(self):
        server = self.server(refuse_pipelined=True)
        self.assertDelivered(server, self.export(server, connections=1))
        self.assertEqual(sorted(FILES), self.import_(server))
        self.assertEqual([], os.listdir(server.root))

    def test_a_server_that_pipelines_is_not_slowed_down(self):
        server = self.server()
        target = self.target(server)
        target.connect()
        zeit.cds.testing.upload(target, 'a.xml', b'A')
        self.assertTrue(target._habits.pipelining)

    def test_lock_step_is_learned_once_for_every_connection(self):
        server = self.server(**LIKE_TWISTED)
        target = self.target(server)
        target.connect()
        zeit.cds.testing.upload(target, 'a.xml', b'A')
        self.assertFalse(target._habits.pipelining)
        twin = target.another()
        self.addCleanup(twin.close)
        self.assertFalse(twin._habits.pipelining)


class BusyPassivePortTest(FallbackTestCase):

    def test_a_refused_passive_port_is_tried_again_in_lock_step(self):
        # As ProFTPD under load: "425 PASV: Address already in use", and
        # no reply at all to the STOR sent with that PASV.
        class Busy(odd_handler()):
            # Every other passive port is busy.
            busy = False
            swallow = False

            def ftp_PASV(self, line):
                type(self).busy = not type(self).busy
                if type(self).busy:
                    self.respond('425 PASV: Address already in use')
                    self.swallow = True
                    return None
                return super().ftp_PASV(line)

            def pre_process_command(self, line, cmd, arg):
                if self.swallow and cmd != 'NOOP':
                    self.swallow = False
                    return None
                self.swallow = False
                return super().pre_process_command(line, cmd, arg)
        server = zeit.cds.testing.server_for(self, Busy)
        self.assertDelivered(server, self.export(server, connections=1))


class NoSizeTest(FallbackTestCase):

    def test_without_size_the_transfer_reply_is_the_check(self):
        server = self.server(unknown=('SIZE',))
        self.assertDelivered(server, self.export(server))

    def test_an_interrupted_upload_is_finished_without_size(self):
        server = self.server(unknown=('SIZE',))
        spool = FileStoreSpool(self.store)
        spool.publishing('doc-00.xml')
        with open(os.path.join(server.root,
                               names.partial_name('doc-00.xml')), 'wb') as f:
            f.write(FILES['doc-00.xml'])
        self.assertDelivered(server, self.export(server))
        self.assertIn('Finished uploading file doc-00.xml for an '
                      'interrupted run', self.log.getvalue())


class LyingServerTest(FallbackTestCase):

    def test_a_size_that_is_not_a_number_fails_the_file_alone(self):
        class Lying(odd_handler()):
            def ftp_SIZE(self, path):
                if 'doc-01' in path:
                    self.respond('213 lots')
                else:
                    super().ftp_SIZE(path)
        server = zeit.cds.testing.server_for(self, Lying)
        summary = self.export(server, connections=1)
        self.assertEqual((len(FILES) - 1, 1),
                         (summary.files, summary.failures))
        self.assertIn('Cannot upload file doc-01.xml: unexpected reply '
                      '213 lots', self.log.getvalue())
        self.assertEqual(['doc-01.xml'], self.spool_files('new'))
        self.assertNotIn(names.partial_name('doc-01.xml'),
                         os.listdir(server.root))

    def test_a_listing_that_fails_for_real_is_an_error(self):
        server = self.server(empty_nlst_reply='550 Permission denied.',
                             unknown=('MLSD', 'MLST', 'LIST'))
        target = self.target(server)
        target.connect()
        with self.assertRaises(RemoteError) as raised:
            target.names()
        self.assertIn('550 Permission denied.', str(raised.exception))
