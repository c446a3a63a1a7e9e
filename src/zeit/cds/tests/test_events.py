"""The events a run sends, as zeit.cms would subscribe to them."""
import os

import zope.event

import zeit.cds.testing
from zeit.cds.events import IFileExported
from zeit.cds.events import IFileFailed
from zeit.cds.events import IRunFinished
from zeit.cds.events import IRunStarted
from zeit.cds.exporter import Exporter
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests.test_components import SpoolTestCase
from zeit.cds.tests.test_components import ftp_target
from zeit.cds.tests.handlers import DiskFullHandler


class ExportEventsTest(SpoolTestCase):

    layer = zeit.cds.testing.FTP_LAYER

    def setUp(self):
        super().setUp()
        self.events = []
        zope.event.subscribers.append(self.events.append)
        self.addCleanup(zope.event.subscribers.remove, self.events.append)
        self.log = zeit.cds.testing.LogCapture()
        self.addCleanup(self.log.uninstall)

    def export(self, server):
        exporter = Exporter(FileStoreSpool(self.store), ftp_target(server))
        return exporter, exporter.run()

    def test_run_and_each_file_are_announced(self):
        zeit.cds.testing.make_spool(self.store_dir,
                                    {'a.xml': b'AA', 'b.xml': b'BBB'})
        exporter, summary = self.export(self.layer.server)
        started, *files, finished = self.events
        # Several connections may finish their files in any order.
        a, b = sorted(files, key=lambda event: event.name)
        self.assertTrue(IRunStarted.providedBy(started))
        self.assertEqual(['a.xml', 'b.xml'], started.planned)
        self.assertTrue(IFileExported.providedBy(a))
        self.assertEqual(('a.xml', 2), (a.name, a.size))
        self.assertEqual(('b.xml', 3), (b.name, b.size))
        self.assertIs(exporter, b.transfer)
        self.assertTrue(IRunFinished.providedBy(finished))
        self.assertIs(summary, finished.summary)
        self.assertEqual((2, 5, 0), (summary.files, summary.bytes,
                                     summary.failures))

    def test_failed_file_is_announced_with_its_error(self):
        zeit.cds.testing.make_spool(self.store_dir, {'b.xml': b'B'})
        server = zeit.cds.testing.server_for(self, DiskFullHandler)
        self.export(server)
        failed = [e for e in self.events if IFileFailed.providedBy(e)]
        self.assertEqual(['b.xml'], [e.name for e in failed])
        self.assertIn('552 Disk full', str(failed[0].error))
        self.assertEqual([], os.listdir(server.root))
