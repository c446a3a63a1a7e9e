"""Exports on several connections at once."""
import os
import threading

import zope.event

import zeit.cds.testing
from zeit.cds.events import IFileExported
from zeit.cds.exporter import Exporter
from zeit.cds.interfaces import ConnectionLost
from zeit.cds.run.parallel import batches
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests.handlers import DropOnBHandler
from zeit.cds.tests.test_components import ExportTestCase
from zeit.cds.tests.test_components import SpoolTestCase
from zeit.cds.tests.test_components import ftp_target

FILES = {f'{i:03d}.xml': bytes([i]) * (i * 100) for i in range(60)}
FILES['b.xml'] = b'B' * 1000


class BatchesTest(SpoolTestCase):

    def test_every_connection_gets_several_batches(self):
        names = [str(i) for i in range(300)]
        chunks = batches(names, 4)
        self.assertEqual(names, [name for chunk in chunks for name in chunk])
        self.assertEqual(16, len(chunks))

    def test_batches_are_at_most_32(self):
        self.assertEqual({32}, {len(chunk) for chunk in
                                batches([str(i) for i in range(640)], 4)})

    def test_a_few_files_are_one_per_batch(self):
        self.assertEqual([['a'], ['b']], batches(['a', 'b'], 4))


class ParallelExportTest(ExportTestCase):

    files = FILES

    def export(self, server, connections=4):
        exporter = Exporter(FileStoreSpool(self.store), ftp_target(server))
        exporter.connections = connections
        exporter.reconnect_delays = (0, 0, 0)
        return exporter.run()

    def assertOnServer(self, server, names):
        self.assertEqual(sorted(names), sorted(os.listdir(server.root)))
        for name in names:
            with open(os.path.join(server.root, name), 'rb') as f:
                self.assertEqual(FILES[name], f.read())

    def test_every_file_arrives_and_events_come_in_the_runs_thread(self):
        threads = set()

        def follow(event):
            if IFileExported.providedBy(event):
                threads.add(threading.current_thread())

        zope.event.subscribers.append(follow)
        self.addCleanup(zope.event.subscribers.remove, follow)
        summary = self.export(self.layer.server)
        self.assertOnServer(self.layer.server, FILES)
        self.assertEqual(sorted(FILES), self.spool_files('cur'))
        self.assertEqual((61, sum(map(len, FILES.values())), 0),
                         (summary.files, summary.bytes, summary.failures))
        self.assertEqual({threading.current_thread()}, threads)

    def test_a_connection_that_fails_for_good_loses_nothing_elsewhere(self):
        server = zeit.cds.testing.server_for(self, DropOnBHandler)
        with self.assertRaises(ConnectionLost):
            self.export(server)
        delivered = sorted(set(FILES) - {'b.xml'})
        # Only b.xml's batch stopped; what else it held waits in new.
        self.assertEqual(sorted(FILES),
                         sorted(self.spool_files('cur')
                                + self.spool_files('new')))
        self.assertIn('b.xml', self.spool_files('new'))
        self.assertOnServer(server, self.spool_files('cur'))
        self.assertGreater(len(self.spool_files('cur')), len(delivered) // 2)

    def test_a_server_that_limits_connections_still_gets_everything(self):
        server = zeit.cds.testing.server_for(self)
        server._server.max_cons = 2
        summary = self.export(server, connections=8)
        self.assertOnServer(server, FILES)
        self.assertEqual(61, summary.files)
        self.assertIn('Could not open one more connection', self.log.getvalue())

    def test_one_connection_keeps_the_order(self):
        self.export(self.layer.server, connections=1)
        uploaded = [line.split()[-1] for line in
                    self.log.getvalue().splitlines()
                    if line.startswith('Uploaded file ')]
        self.assertEqual(sorted(FILES), uploaded)
