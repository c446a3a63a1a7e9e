"""The fake server for the odd replies of servers in the field
(zeit.cds.testing.OddHandler), proved with raw ftplib commands: each odd
reply comes as from the real server it stands for, and only where it
should."""
import calendar
import ftplib
import io
import os
import socket
import time
import unittest

import zeit.cds.testing
from zeit.cds.testing import LIKE_INETUTILS
from zeit.cds.testing import LIKE_TWISTED
from zeit.cds.testing import odd_handler


class OddServerTestCase(unittest.TestCase):

    # Keeps pyftpdlib's log quiet.
    layer = zeit.cds.testing.FTP_LAYER

    def session(self, **odd):
        """A logged-in ftplib session with a server of the test's own that
        has the ``odd`` behaviours (see zeit.cds.testing.odd_handler)."""
        self.server = zeit.cds.testing.server_for(self, odd_handler(**odd))
        ftp = ftplib.FTP(timeout=10)
        self.addCleanup(ftp.close)
        ftp.connect(self.server.host, self.server.port)
        ftp.login(zeit.cds.testing.USER, zeit.cds.testing.PASSWORD)
        # As zeit.cds: pyftpdlib refuses SIZE in ASCII mode.
        ftp.voidcmd('TYPE I')
        return ftp

    def put(self, name, data=b'x'):
        with open(os.path.join(self.server.root, name), 'wb') as f:
            f.write(data)

    def nlst(self, ftp, *args):
        try:
            return ftp.nlst(*args)
        except ftplib.Error as e:
            return str(e)

    def pipelined(self, ftp, *commands):
        """Send ``commands`` in one packet; return each reply, or the
        error the server answered it with."""
        ftp.sock.sendall(b''.join(
            command.encode() + b'\r\n' for command in commands))
        replies = []
        for _ in commands:
            try:
                replies.append(ftp.getresp())
            except ftplib.Error as e:
                replies.append(str(e))
        return replies


class EmptyNLSTTest(OddServerTestCase):

    def test_like_inetutils(self):
        ftp = self.session(**LIKE_INETUTILS)
        self.assertEqual('550 No files found.', self.nlst(ftp))
        self.assertEqual('550 No files found.', self.nlst(ftp, '.'))
        ftp.retrlines('LIST', self.fail)
        self.put('a.xml')
        self.assertEqual(['a.xml'], self.nlst(ftp))

    def test_ordinary(self):
        ftp = self.session()
        self.assertEqual([], self.nlst(ftp))


class NLSTArgumentTest(OddServerTestCase):

    def test_like_twisted(self):
        ftp = self.session(**LIKE_TWISTED)
        self.put('a.xml')
        self.assertEqual('500 Syntax error: NLST requires an argument.',
                         self.nlst(ftp))
        self.assertEqual(['a.xml'], self.nlst(ftp, '.'))


class UnknownCommandsTest(OddServerTestCase):

    def test_no_size_and_no_mlsd(self):
        ftp = self.session(unknown=('SIZE', 'MLSD', 'MLST'))
        self.put('a.xml')
        features = ftp.sendcmd('FEAT')
        for command, send in [
                ('SIZE', lambda: ftp.sendcmd('SIZE a.xml')),
                ('MLSD', lambda: ftp.retrlines('MLSD', self.fail))]:
            with self.subTest(command=command):
                with self.assertRaises(ftplib.error_perm) as raised:
                    send()
                self.assertEqual(
                    f'500 Command "{command}" not understood.',
                    str(raised.exception))
        self.assertNotIn('SIZE', features)
        self.assertNotIn('MLST', features)
        self.assertIn('MDTM', features)

    def test_ordinary(self):
        ftp = self.session()
        self.put('a.xml')
        self.assertEqual(1, ftp.size('a.xml'))


class PipelinedTest(OddServerTestCase):

    def test_refused_when_read_with_their_predecessor(self):
        ftp = self.session(refuse_pipelined=True)
        self.put('a.xml')
        self.assertEqual(
            ['213 1', '503 Bad sequence of commands.',
             '503 Bad sequence of commands.',
             '503 Bad sequence of commands.'],
            self.pipelined(ftp, 'SIZE a.xml', 'SIZE a.xml', 'RNFR a.xml',
                           'RNTO b.xml'))
        # Nothing was renamed; in lock step all is well.
        self.assertEqual(['a.xml'], os.listdir(self.server.root))
        ftp.rename('a.xml', 'b.xml')
        self.assertEqual(['b.xml'], os.listdir(self.server.root))

    def test_a_transfer_with_its_pasv_is_refused(self):
        ftp = self.session(refuse_pipelined=True)
        reply, refused = self.pipelined(ftp, 'PASV', 'STOR a.xml')
        self.assertTrue(reply.startswith('227 '), reply)
        self.assertEqual('503 Bad sequence of commands.', refused)
        self.assertEqual([], os.listdir(self.server.root))

    def test_ordinary(self):
        ftp = self.session()
        self.put('a.xml')
        self.assertEqual(
            ['213 1', '350 Ready for destination name.',
             '250 Renaming ok.'],
            self.pipelined(ftp, 'SIZE a.xml', 'RNFR a.xml', 'RNTO b.xml'))


class EarlyTransferTest(OddServerTestCase):

    def test_store_with_its_pasv_is_aborted_like_twisted(self):
        ftp = self.session(**LIKE_TWISTED)
        reply, aborted = self.pipelined(ftp, 'PASV', 'STOR write')
        self.assertTrue(reply.startswith('227 '), reply)
        self.assertEqual('426 Transfer aborted. Data connection closed.',
                         aborted)
        # An empty file stays, as with Twisted; the passive port is shut.
        self.assertEqual(b'', self.read('write'))
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(ftplib.parse227(reply), timeout=10)

    def test_retrieve_with_its_pasv_is_aborted(self):
        ftp = self.session(**LIKE_TWISTED)
        self.put('a.xml')
        reply, aborted = self.pipelined(ftp, 'PASV', 'RETR a.xml')
        self.assertEqual('426 Transfer aborted. Data connection closed.',
                         aborted)

    def test_lock_step_transfers_and_other_pipelines_go_through(self):
        ftp = self.session(**LIKE_TWISTED)
        ftp.storbinary('STOR a.xml', io.BytesIO(b'A'))
        self.assertEqual(['213 1', '213 1'],
                         self.pipelined(ftp, 'SIZE a.xml', 'SIZE a.xml'))
        received = []
        ftp.retrbinary('RETR a.xml', received.append)
        self.assertEqual([b'A'], received)

    def read(self, name):
        with open(os.path.join(self.server.root, name), 'rb') as f:
            return f.read()


class LocalTimeTest(OddServerTestCase):

    def test_mdtm_in_local_time_west_of_utc(self):
        zeit.cds.testing.local_timezone(self, 'EST5EDT')
        ftp = self.session(use_gmt_times=False)
        self.put('a.xml')
        modified = os.stat(os.path.join(self.server.root, 'a.xml')).st_mtime
        reply = ftp.sendcmd('MDTM a.xml')
        # Read as UTC, as RFC 3659 has it, the time lies 4 or 5 hours back.
        told = calendar.timegm(time.strptime(reply[4:], '%Y%m%d%H%M%S'))
        self.assertIn(int(modified) - told, [4 * 3600, 5 * 3600])

    def test_ordinary_mdtm_is_utc(self):
        zeit.cds.testing.local_timezone(self, 'EST5EDT')
        ftp = self.session()
        self.put('a.xml')
        modified = os.stat(os.path.join(self.server.root, 'a.xml')).st_mtime
        reply = ftp.sendcmd('MDTM a.xml')
        told = calendar.timegm(time.strptime(reply[4:], '%Y%m%d%H%M%S'))
        self.assertEqual(int(modified), told)
