"""A server that stops answering: at one command, in the middle of a data
transfer, or altogether. Every wait for it ends after the target's
timeout, the message says what the client was doing, and the run ends
within the documented bound (README: "When the server stops
answering"): it waits in vain at most twice, with one reconnect between.
Nothing is lost, and a normal run afterwards delivers everything."""
import os
import re
import tempfile

import zeit.cds.testing
from zeit.cds import names
from zeit.cds.exporter import Exporter
from zeit.cds.importer import Importer
from zeit.cds.interfaces import ConnectError
from zeit.cds.interfaces import ConnectionLost
from zeit.cds.interfaces import NoAnswer
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests.handlers import StalledDataHandler
from zeit.cds.tests.handlers import stalling
from zeit.cds.tests.test_components import ExportTestCase
from zeit.cds.tests.test_components import ftp_target

# b.xml is where the servers stall; it is larger than a data connection's
# buffers, so that an upload blocks when the server stops reading.
FILES = {'a.xml': b'A' * 100, 'b.xml': b'B' * 200_000, 'c.xml': b'C' * 300}
TIMEOUT = 0.5
# A wait that ran out, as the message that ends a run or a WARNING before
# a reconnect tells it.
NO_ANSWER = re.compile('no answer from the CDS FTP server within 0.5 s while',
                       re.IGNORECASE)


class StallTestCase(ExportTestCase):

    connections = 1

    def run_against(self, server, transfer_class, store=None):
        transfer = transfer_class(
            FileStoreSpool(store or self.store),
            ftp_target(server, timeout=TIMEOUT))
        transfer.connections = self.connections
        transfer.reconnect_delays = (0, 0, 0)
        return transfer.run()

    def assertStalled(self, server, transfer_class, store=None):
        """The run against ``server`` ends with one NoAnswer, a CDSError
        of exit code 1 told in one line, after it waited in vain at most
        twice (README: "When the server stops answering"). Returns the
        message."""
        with self.assertRaises(NoAnswer) as raised:
            self.run_against(server, transfer_class, store)
        error = raised.exception
        self.assertIsInstance(error, ConnectionLost)
        self.assertIsInstance(error, ConnectError)
        self.assertEqual(1, error.exit_code)
        message = str(error)
        self.assertNotIn('\n', message)
        self.assertRegex(message, NO_ANSWER)
        # The wait that ended the run, and at most one before it, after
        # which the run reconnected.
        self.assertLessEqual(len(self.silent_reconnects()), 1)
        return message

    def silent_reconnects(self):
        return [line for line in self.log.getvalue().splitlines()
                if NO_ANSWER.search(line) and 'reconnecting in' in line]

    def answering_again(self, server):
        """A server that answers, on the root of ``server`` (stopped)."""
        server.stop()
        again = zeit.cds.testing.FTPServerThread(server.root).start()
        self.addCleanup(again.stop)
        return again

    def remote(self, server):
        return {name: self.content(os.path.join(server.root, name))
                for name in os.listdir(server.root)}

    def content(self, path):
        with open(path, 'rb') as f:
            return f.read()


class ExportStallTestCase(StallTestCase):

    files = FILES

    def assertNothingLost(self, server):
        """Each file waits in new or is on the server, complete, and in
        cur; nothing but temporary uploads and our lock besides."""
        remote = self.remote(server)
        for name, data in self.files.items():
            if name in self.spool_files('cur'):
                self.assertEqual(data, remote[name])
            else:
                self.assertIn(name, self.spool_files('new'))
                self.assertNotIn(name, remote)
        for name in set(remote) - set(self.files):
            self.assertTrue(names.is_reserved(name), name)

    def assertDeliversAll(self, server):
        server = self.answering_again(server)
        summary = self.run_against(server, Exporter)
        self.assertEqual(0, summary.failures)
        self.assertEqual(self.files, self.remote(server))
        self.assertEqual(sorted(self.files), self.spool_files('cur'))
        self.assertEqual([], self.spool_files('new'))


class ExportStallTest(ExportStallTestCase):

    def test_lock_file_store(self):
        server = zeit.cds.testing.server_for(
            self, stalling('STOR', stalls_on=names.WRITE_LOCK))
        message = self.assertStalled(server, Exporter)
        # Once more after a reconnect, and then no more.
        self.assertEqual(
            'No answer from the CDS FTP server within 0.5 s while storing '
            'write; gave up waiting for the server', message)
        self.assertEqual({}, self.remote(server))
        self.assertDeliversAll(server)

    def test_pasv_of_an_upload(self):
        # The lock takes two data connections: its upload and reading it
        # back (it looks for lock files with MLST). The third is a.xml's
        # upload.
        server = zeit.cds.testing.server_for(
            self, stalling('PASV', stalls_on='', after=2))
        message = self.assertStalled(server, Exporter)
        # The reconnect takes the lock again, and reads the lock file it
        # finds there (its own) to tell whose it is.
        self.assertEqual(
            'No answer from the CDS FTP server within 0.5 s while '
            'downloading write; gave up waiting for the server', message)
        self.assertIn(
            'Cannot upload file a.xml: no answer from the CDS FTP server '
            'within 0.5 s while storing .cds-partial.a.xml; reconnecting in '
            '0 seconds\n', self.log.getvalue())
        self.assertIn('Not removing the lock file: the CDS FTP server '
                      'stopped answering; the next run of ours takes it '
                      'over\n', self.log.getvalue())
        self.assertNothingLost(server)
        self.assertDeliversAll(server)

    def test_size(self):
        server = zeit.cds.testing.server_for(self, stalling('SIZE'))
        message = self.assertStalled(server, Exporter)
        self.assertEqual(
            'Cannot upload files: no answer from the CDS FTP server within '
            '0.5 s while asking for the sizes of files; gave up waiting for '
            'the server', message)
        self.assertEqual(['a.xml'], self.spool_files('cur'))
        self.assertNothingLost(server)
        self.assertDeliversAll(server)

    def test_rnto(self):
        server = zeit.cds.testing.server_for(self, stalling('RNTO'))
        message = self.assertStalled(server, Exporter)
        self.assertIn('while renaming files; gave up', message)
        self.assertNothingLost(server)
        self.assertDeliversAll(server)
        # b.xml was complete under its temporary name; it is not sent again.
        self.assertIn('Finished uploading file b.xml for an interrupted run',
                      self.log.getvalue())

    def test_data_connection_that_stops_reading(self):
        server = zeit.cds.testing.server_for(self, StalledDataHandler)
        message = self.assertStalled(server, Exporter)
        self.assertEqual(
            'Cannot upload file b.xml: no answer from the CDS FTP server '
            'within 0.5 s while storing .cds-partial.b.xml; gave up waiting '
            'for the server', message)
        self.assertNothingLost(server)
        self.assertDeliversAll(server)

    def test_server_that_hangs_is_not_reconnected_twice(self):
        server = zeit.cds.testing.server_for(
            self, stalling('SIZE', for_good=True))
        message = self.assertStalled(server, Exporter)
        # The reconnect got no greeting: the server is silent, not
        # restarting.
        self.assertRegex(
            message, r'^No answer from the CDS FTP server within 0.5 s while '
            r'connecting to 127.0.0.1 port \d+; gave up waiting for the '
            r'server$')
        self.assertNothingLost(server)
        self.assertDeliversAll(server)


class ParallelExportStallTest(ExportStallTestCase):
    """On four connections (the command line's default), once the server
    is given up, the others start nothing more; which connection's wait
    is told depends on which gets there first."""

    connections = 4
    files = {f'{i}-{name}': data for i, (name, data)
             in enumerate(sorted(FILES.items()) * 4)}

    def assertStalled(self, server, transfer_class, store=None):
        with self.assertRaises(ConnectionLost) as raised:
            self.run_against(server, transfer_class, store)
        self.assertEqual(1, raised.exception.exit_code)
        self.assertNotIn('\n', str(raised.exception))
        self.assertRegex(str(raised.exception), NO_ANSWER)
        # One reconnect after the server fell silent, on one connection.
        self.assertLessEqual(len(self.silent_reconnects()), 1)
        return str(raised.exception)

    def test_server_that_hangs(self):
        server = zeit.cds.testing.server_for(
            self, stalling('SIZE', for_good=True))
        self.assertStalled(server, Exporter)
        self.assertNothingLost(server)
        self.assertDeliversAll(server)

    def test_data_connections_that_stop_reading(self):
        server = zeit.cds.testing.server_for(self, StalledDataHandler)
        self.assertStalled(server, Exporter)
        self.assertNothingLost(server)
        self.assertDeliversAll(server)


class ImportStallTest(StallTestCase):

    def setUp(self):
        super().setUp()
        self.server = None

    def offering(self, handler):
        server = zeit.cds.testing.server_for(self, handler)
        for name, data in FILES.items():
            with open(os.path.join(server.root, name), 'wb') as f:
                f.write(data)
        return server

    def assertNothingLost(self, server):
        """Each file is on the server or delivered, complete."""
        remote = self.remote(server)
        for name, data in FILES.items():
            if name in self.spool_files('new'):
                self.assertEqual(
                    data, self.content(os.path.join(self.store_dir, 'new',
                                                    name)))
            else:
                self.assertEqual(data, remote[name])
        self.assertEqual([], self.spool_files('tmp'))

    def assertDeliversAll(self, server):
        server = self.answering_again(server)
        summary = self.run_against(server, Importer)
        self.assertEqual(0, summary.failures)
        self.assertEqual({}, self.remote(server))
        for name, data in FILES.items():
            self.assertEqual(
                data, self.content(os.path.join(self.store_dir, 'new', name)))

    def test_mlsd(self):
        # The lock looks with MLST: the first listing is the import's.
        server = self.offering(stalling('MLSD', stalls_on=''))
        message = self.assertStalled(server, Importer)
        self.assertEqual(
            'No answer from the CDS FTP server within 0.5 s while listing '
            '/; gave up waiting for the server', message)
        self.assertEqual([], self.spool_files('new'))
        self.assertNothingLost(server)
        self.assertDeliversAll(server)

    def test_retr_in_the_middle_of_a_transfer(self):
        server = self.offering(StalledDataHandler)
        message = self.assertStalled(server, Importer)
        self.assertEqual(
            'No answer from the CDS FTP server within 0.5 s while '
            'downloading b.xml; gave up waiting for the server', message)
        self.assertEqual(['a.xml'], self.spool_files('new'))
        self.assertNothingLost(server)
        self.assertDeliversAll(server)

    def test_dele(self):
        server = self.offering(stalling('DELE'))
        message = self.assertStalled(server, Importer)
        self.assertIn('while removing files; gave up', message)
        # Delivered; the next run only removes it from the CDS.
        self.assertEqual(['a.xml', 'b.xml'], self.spool_files('new'))
        self.assertNothingLost(server)
        self.assertDeliversAll(server)
        self.assertIn('File b.xml was delivered by an interrupted run',
                      self.log.getvalue())



class CommandLineStallTest(ExportStallTestCase):
    """cds-export as cron runs it, with ``--timeout 1`` and its own pauses:
    exit 1 and one ERROR line; the next run delivers everything."""

    def export(self, server):
        folder = tempfile.mkdtemp(prefix='cds-cli-')
        self.addCleanup(zeit.cds.testing.remove_tree, folder)
        password_file = os.path.join(folder, 'password')
        with open(password_file, 'w') as f:
            f.write(zeit.cds.testing.PASSWORD)
        return zeit.cds.testing.run_script(
            'cds-export', '--spool', self.store_dir, '--host', server.host,
            '--port', str(server.port), '--user', zeit.cds.testing.USER,
            '--password-file', password_file, '--timeout', '1',
            '--connections', '1')

    def test_size(self):
        server = zeit.cds.testing.server_for(self, stalling('SIZE'))
        result = self.export(server)
        self.assertEqual(1, result.returncode, result.stderr)
        errors = [line for line in result.stderr.splitlines()
                  if line.startswith('ERROR: ')]
        self.assertEqual(
            ['ERROR: Cannot upload files: no answer from the CDS FTP server '
             'within 1 s while asking for the sizes of files; gave up '
             'waiting for the server'], errors)
        self.assertNotIn('Traceback', result.stderr)
        self.assertIn('WARNING: Not removing the lock file', result.stderr)
        self.assertNothingLost(server)
        again = self.answering_again(server)
        result = self.export(again)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertEqual(self.files, self.remote(again))
