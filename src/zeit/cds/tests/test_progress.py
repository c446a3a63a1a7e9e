"""The progress bar a person at a terminal sees."""
import io
import os

import zeit.cds.testing
from zeit.cds import progress
from zeit.cds.exporter import Exporter
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests.test_components import SpoolTestCase
from zeit.cds.tests.test_components import ftp_target


class Terminal(io.StringIO):

    def isatty(self):
        return True


class ProgressTest(SpoolTestCase):

    layer = zeit.cds.testing.FTP_LAYER

    def export(self, stream, delay=0):
        exporter = Exporter(FileStoreSpool(self.store),
                            ftp_target(self.layer.server))
        # Drawn at every change, so that a quick test sees it.
        with progress.bar_on_terminal(stream, exporter, delay=delay,
                                      every=0):
            exporter.run()
        return exporter

    def test_a_big_file_counts_its_bytes(self):
        zeit.cds.testing.make_spool(
            self.store_dir, {'big.bin': os.urandom(3 * 1024 * 1024)})
        terminal = Terminal()
        exporter = self.export(terminal)
        self.assertIn('3.15MB', terminal.getvalue())
        self.assertIsNone(exporter.target.progress)

    def test_a_short_run_shows_nothing(self):
        zeit.cds.testing.make_spool(self.store_dir, {'a.xml': b'A'})
        terminal = Terminal()
        self.export(terminal, delay=progress.DELAY)
        self.assertEqual('', terminal.getvalue())

    def test_no_terminal_no_bar(self):
        zeit.cds.testing.make_spool(
            self.store_dir, {'big.bin': os.urandom(1024 * 1024)})
        stream = io.StringIO()
        self.export(stream)
        self.assertEqual('', stream.getvalue())
