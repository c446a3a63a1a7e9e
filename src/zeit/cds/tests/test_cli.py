"""cds-export and cds-server as cron and operators run them: subprocesses
against a real FTP server."""
import fcntl
import os
import pty
import re
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
import unittest

import zeit.cds.testing
from zeit.cds import names
from zeit.cds.spool import FileStoreSpool
from zeit.cds.tests.handlers import DiskFullHandler
from zeit.cds.tests.test_components import SpoolTestCase

FILES = {'a-file': b'This is the A file', 'b.xml': b'This is the B file'}


def tree(path):
    """Every file below ``path`` with its content, to compare states."""
    found = {}
    for folder, _, files in os.walk(path):
        for name in files:
            full = os.path.join(folder, name)
            with open(full, 'rb') as f:
                found[os.path.relpath(full, path)] = f.read()
    return found


def errors(result):
    """The ERROR lines of a run's ``result``."""
    return [line for line in result.stderr.splitlines()
            if line.startswith('ERROR: ')]


class CommandLineTestCase(SpoolTestCase):

    layer = zeit.cds.testing.FTP_LAYER

    def setUp(self):
        super().setUp()
        zeit.cds.testing.make_spool(self.store_dir, FILES)
        self.server = self.layer.server
        self.scratch = tempfile.mkdtemp(prefix='cds-cli-')
        self.addCleanup(zeit.cds.testing.remove_tree, self.scratch)
        self.password_file = self.write('password', 'testpw\n')

    def write(self, name, text):
        path = os.path.join(self.scratch, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def options(self, server=None, **overrides):
        server = server or self.server
        options = {'spool': self.store_dir, 'host': server.host,
                   'port': str(server.port), 'user': 'test',
                   'password-file': self.password_file}
        options.update(overrides)
        argv = []
        for key, value in options.items():
            if value is not None:
                argv += [f'--{key}', value]
        return argv

    def dry_run(self, script='cds-export'):
        """A ``--dry-run`` of ``script``, checked to change nothing, neither
        in the spool nor on the server; its result."""
        before = tree(self.store_dir), tree(self.server.root)
        result = self.cds(*self.options(), '--dry-run', script=script)
        self.assertEqual(before, (tree(self.store_dir),
                                  tree(self.server.root)))
        return result

    def cds(self, *args, script='cds-export', env=None):
        return zeit.cds.testing.run_script(script, *args, env=env)

    def assertExit(self, code, result):
        self.assertEqual(code, result.returncode,
                         f'stdout: {result.stdout}\nstderr: {result.stderr}')


class ExportCommandTest(CommandLineTestCase):

    def test_export_reports_a_summary_and_exits_0(self):
        result = self.cds(*self.options())
        self.assertExit(0, result)
        self.assertEqual(sorted(FILES), sorted(os.listdir(self.server.root)))
        self.assertEqual(sorted(FILES), self.spool_files('cur'))
        last = result.stderr.splitlines()[-1]
        self.assertRegex(
            last, r'^Exported 2 files, 36 bytes, \d+\.\d\d seconds, '
            r'0 failures$')
        self.assertIn('Uploaded file a-file\n', result.stderr)

    def test_nothing_to_do_exits_0(self):
        self.cds(*self.options())
        result = self.cds(*self.options())
        self.assertExit(0, result)
        self.assertIn('Exported 0 files, 0 bytes', result.stderr)

    def test_password_from_the_environment(self):
        result = self.cds(*self.options(**{'password-file': None}),
                          env={'CDS_PASSWORD': 'testpw'})
        self.assertExit(0, result)

    def test_password_never_shows(self):
        for password in ['testpw\n', 'wrong-s3cret\n']:
            self.write('password', password)
            logfile = os.path.join(self.scratch, 'cds.log')
            result = self.cds(*self.options(logfile=logfile), '-v')
            with open(logfile) as f:
                logged = f.read()
            for output in [result.stdout, result.stderr, logged]:
                self.assertNotIn(password.strip(), output)
        self.assertIn('refused login for user test', logged)

    def test_logfile_gets_everything_the_console_only_trouble(self):
        logfile = os.path.join(self.scratch, 'cds.log')
        result = self.cds(*self.options(logfile=logfile))
        self.assertExit(0, result)
        self.assertEqual('', result.stderr)
        self.write('password', 'wrong\n')
        result = self.cds(*self.options(logfile=logfile))
        self.assertExit(1, result)
        self.assertEqual('ERROR: CDS FTP server refused login for user test:'
                         ' 530 Authentication failed.\n', result.stderr)
        with open(logfile) as f:
            lines = f.read().splitlines()
        self.assertRegex(lines[0], r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ '
                         r'INFO Connecting to CDS FTP server')
        self.assertIn('INFO Exported 2 files', lines[-3])
        self.assertIn('ERROR CDS FTP server refused login', lines[-1])

    def test_verbose_shows_the_ftp_conversation_without_the_password(self):
        zeit.cds.testing.make_spool(self.store_dir, {
            f'file-{i}': b'x' for i in range(8)})
        result = self.cds(*self.options(connections='2'), '-v')
        self.assertExit(0, result)
        lines = result.stderr.splitlines()
        self.assertIn('FTP 1> USER test', lines)
        self.assertIn('FTP 1> PASS ****', lines)
        self.assertIn('FTP 1< 230 Login successful.', lines)
        self.assertIn('FTP 2> PASS ****', lines)
        self.assertTrue(any(line.startswith('FTP 2> STOR ')
                            for line in lines), result.stderr)
        self.assertNotIn('testpw', result.stderr)
        # Without -v not a line of it.
        zeit.cds.testing.make_spool(self.store_dir, {'c-file': b'c'})
        result = self.cds(*self.options())
        self.assertExit(0, result)
        self.assertNotIn('FTP 1', result.stderr)

    def test_help_tells_the_exit_codes_and_ranges(self):
        for script, description in [
                ('cds-export', 'Export files from a spool to the CDS'),
                ('cds-import', 'Import files from the CDS into a spool')]:
            with self.subTest(script):
                result = self.cds('--help', script=script)
                self.assertExit(0, result)
                text = ' '.join(result.stdout.split())
                self.assertIn(description, text)
                for code in ['0', '1', '2', '75', '130', '143']:
                    self.assertRegex(result.stdout, rf'\n +{code} ')
                self.assertIn('--connections N how many transfers run at '
                              'once; 1 keeps the files, and the log lines, '
                              'in their order (1-16; default 4)', text)
                self.assertIn('(1-86400; default 60)', text)
                self.assertIn("--insecure-skip-verify do not check the "
                              "server's certificate and host name. Without "
                              'the check', text)
                self.assertIn('by default the usual one of the scheme (21 '
                              'for ftp and ftps, 22 for sftp) (1-65535)',
                              text)

    def test_quiet_shows_only_trouble(self):
        result = self.cds(*self.options(), '-q')
        self.assertExit(0, result)
        self.assertEqual('', result.stderr)

    def test_dry_run_changes_nothing(self):
        result = self.dry_run()
        self.assertExit(0, result)
        self.assertIn('Would export file a-file\n'
                      'Would export file b.xml\n', result.stderr)

    def test_dry_run_backs_off_as_the_run_would(self):
        for lock in names.LOCKS:
            with self.subTest(lock):
                path = os.path.join(self.server.root, lock)
                with open(path, 'w') as f:
                    f.write('partner\n')
                try:
                    self.assertBacksOffDry(lock)
                finally:
                    os.remove(path)

    def assertBacksOffDry(self, lock):
        dry = self.dry_run()
        real = self.cds(*self.options())
        self.assertExit(75, dry)
        self.assertExit(75, real)
        self.assertEqual(real.stderr.splitlines()[-1],
                         dry.stderr.splitlines()[-1])
        self.assertIn(f"lock file '{lock}' exists",
                      dry.stderr.splitlines()[-1])
        self.assertNotIn('Would export', dry.stderr)
        self.assertEqual(sorted(FILES), self.spool_files('new'))

    def test_dry_run_of_a_busy_spool_is_75(self):
        store = zeit.cds.testing.make_spool(self.store_dir, {})
        # A spool a run held before: its lock file is there.
        with FileStoreSpool(store).locked():
            pass
        before = tree(self.store_dir), tree(self.server.root)
        with FileStoreSpool(store).locked():
            dry = self.cds(*self.options(), '--dry-run')
            real = self.cds(*self.options())
        self.assertExit(75, dry)
        self.assertExit(75, real)
        self.assertEqual(real.stderr, dry.stderr)
        self.assertIn('is busy: another run holds', dry.stderr)
        self.assertEqual(before, (tree(self.store_dir),
                                  tree(self.server.root)))
        # Free again, the dry run finds the spool free, and leaves the
        # lock file as it was.
        result = self.cds(*self.options(), '--dry-run')
        self.assertExit(0, result)
        self.assertEqual(before, (tree(self.store_dir),
                                  tree(self.server.root)))

    def test_dry_run_fails_as_the_run_would(self):
        new = os.path.join(self.store_dir, 'new')
        os.symlink('a-file', os.path.join(new, 'link.xml'))
        os.mkdir(os.path.join(new, 'folder'))
        dry = self.dry_run()
        real = self.cds(*self.options())
        self.assertExit(1, dry)
        self.assertExit(1, real)
        self.assertIn('Would export file a-file\n'
                      'Would export file b.xml\n', dry.stderr)
        self.assertEqual(errors(real), errors(dry))
        self.assertEqual(
            ['ERROR: Refusing to export folder: not a regular file',
             'ERROR: Refusing to export link.xml: not a regular file'],
            sorted(errors(dry)))

    def test_dry_run_says_what_it_would_take_over(self):
        # A lock a killed run of this spool left: the run takes it over,
        # the dry run says so and leaves it.
        from zeit.cds.run.lock import LockOwner
        owner = LockOwner.this_process(self.store_dir)
        dead = LockOwner(owner.host, 2 ** 22 + 1, owner.spool, owner.time)
        path = os.path.join(self.server.root, names.WRITE_LOCK)
        with open(path, 'wb') as f:
            f.write(dead.dumps())
        result = self.cds(*self.options(), '--dry-run')
        self.assertExit(0, result)
        self.assertIn('\nWould take over lock file write left behind '
                      'by a killed run', result.stderr)
        self.assertIn('Would export file a-file', result.stderr)
        with open(path, 'rb') as f:
            self.assertEqual(dead.dumps(), f.read())

    def config(self, directory, more=''):
        return self.write('cds.ini', f'''\
[partner-a]
spool = {self.store_dir}
host = {self.server.host}
port = {self.server.port}
user = test
dir = {directory}
password-file = {self.password_file}
{more}''')

    def test_config_file_with_override(self):
        config = self.config('/missing', '[partner-b]\nhost = elsewhere\n')
        result = self.cds('--config', config, '--section', 'partner-a',
                          '--dir', '/')
        self.assertExit(0, result)
        self.assertEqual(sorted(FILES), sorted(os.listdir(self.server.root)))

    def test_config_file_alone(self):
        os.mkdir(os.path.join(self.server.root, 'incoming'))
        self.assertExit(0, self.cds('--config', self.config('/incoming')))
        self.assertEqual(sorted(FILES), sorted(
            os.listdir(os.path.join(self.server.root, 'incoming'))))

    def test_protocol_file_needs_no_server(self):
        folder = os.path.join(self.scratch, 'share')
        os.mkdir(folder)
        result = self.cds('--spool', self.store_dir, '--protocol', 'file',
                          '--dir', folder)
        self.assertExit(0, result)
        self.assertEqual(sorted(FILES), sorted(os.listdir(folder)))

    def silent_server(self):
        """The port of a server that takes connections, but never says a
        word."""
        silent = socket.socket()
        self.addCleanup(silent.close)
        silent.bind(('127.0.0.1', 0))
        silent.listen(5)
        return str(silent.getsockname()[1])

    def test_timeout_ends_the_wait_for_a_server(self):
        port = self.silent_server()
        for args in [self.options(port=port, timeout='1'),
                     ['--config', self.config('/', 'timeout = 1\n'),
                      '--port', port]]:
            result = self.cds(*args)
            self.assertExit(1, result)
            self.assertIn(f'ERROR: No answer from the CDS FTP server '
                          f'within 1 s while connecting to 127.0.0.1 port '
                          f'{port}\n', result.stderr)
            self.assertEqual(sorted(FILES), self.spool_files('new'))


class ExitCodeTest(CommandLineTestCase):

    def assertFails(self, code, message, *args, env=None):
        result = self.cds(*args, env=env)
        self.assertExit(code, result)
        self.assertEqual(1, len(result.stderr.splitlines()), result.stderr)
        self.assertIn(message, result.stderr)
        self.assertNotIn('Traceback', result.stderr)
        self.assertEqual(sorted(FILES), self.spool_files('new'))

    def test_remote_locked_by_another_party_is_75(self):
        with open(os.path.join(self.server.root, names.READ_LOCK), 'w') as f:
            f.write('partner reading\n')
        result = self.cds(*self.options())
        self.assertExit(75, result)
        # Routine for cron: a warning, no error.
        self.assertEqual(
            "WARNING: CDS directory / is locked: lock file 'read' exists "
            "(held by another party)", result.stderr.splitlines()[-1])
        self.assertNotIn('ERROR', result.stderr)
        self.assertEqual(sorted(FILES), self.spool_files('new'))

    def test_quiet_back_off_is_silent_until_the_lock_is_old(self):
        # A run that gets the lock checks the server's clock: lock ages
        # are known from then on.
        self.assertExit(0, self.cds(*self.options(), script='cds-import'))
        lock = os.path.join(self.server.root, names.READ_LOCK)
        with open(lock, 'w') as f:
            f.write('partner reading\n')
        result = self.cds(*self.options(), '-q')
        self.assertExit(75, result)
        self.assertEqual('', result.stderr)
        an_hour_ago = time.time() - 3600
        os.utime(lock, (an_hour_ago, an_hour_ago))
        result = self.cds(*self.options(), '-q')
        self.assertExit(75, result)
        self.assertRegex(
            result.stderr, r"^ERROR: CDS directory / is locked: lock file "
            r"'read' exists \(held by another party\); it is 3\d\d\d "
            r"seconds old\n$")
        result = self.cds(*self.options(), '-q',
                          '--warn-lock-older-than', '7200')
        self.assertExit(75, result)
        self.assertEqual('', result.stderr)
        self.assertEqual(sorted(FILES), self.spool_files('new'))

    def test_quiet_back_off_of_an_unknown_age_is_silent(self):
        # No run has checked the server's clock: the age is unknown, and
        # not taken for old.
        lock = os.path.join(self.server.root, names.READ_LOCK)
        with open(lock, 'w') as f:
            f.write('partner reading\n')
        a_day_ago = time.time() - 86400
        os.utime(lock, (a_day_ago, a_day_ago))
        result = self.cds(*self.options(), '-q')
        self.assertExit(75, result)
        self.assertEqual('', result.stderr)

    def test_old_lock_is_broken_only_when_asked(self):
        # A run that gets the lock checks the server's clock, for the
        # lock ages of later runs.
        self.assertExit(0, self.cds(*self.options(), script='cds-import'))
        lock = os.path.join(self.server.root, names.READ_LOCK)
        with open(lock, 'w') as f:
            f.write('partner reading\n')
        two_hours_ago = time.time() - 7200
        os.utime(lock, (two_hours_ago, two_hours_ago))
        self.assertExit(75, self.cds(*self.options()))
        result = self.cds(*self.options(**{'break-lock-older-than': '3600'}))
        self.assertExit(0, result)
        self.assertIn('WARNING: Breaking lock file read, 7', result.stderr)
        self.assertEqual(sorted(FILES), sorted(os.listdir(self.server.root)))

    def test_busy_spool_is_75(self):
        store = zeit.cds.testing.make_spool(self.store_dir, {})
        with FileStoreSpool(store).locked():
            result = self.cds(*self.options())
        self.assertExit(75, result)
        self.assertEqual(f'WARNING: Spool {self.store_dir} is busy: '
                         'another run holds '
                         f'{os.path.join(self.store_dir, "cds.lock")}\n',
                         result.stderr)
        with FileStoreSpool(store).locked():
            result = self.cds(*self.options(), '-q')
        self.assertExit(75, result)
        self.assertEqual('', result.stderr)
        self.assertEqual([], os.listdir(self.server.root))

    def test_failures_are_1(self):
        cases = [
            ('Cannot connect to CDS FTP server at 127.0.0.1 port',
             self.options(port=str(zeit.cds.testing.closed_port()))),
            ('CDS FTP server refused login for user nobody',
             self.options(user='nobody')),
            ('Cannot enter directory /missing',
             self.options(dir='/missing')),
        ]
        for message, argv in cases:
            with self.subTest(message):
                result = self.cds(*argv)
                self.assertExit(1, result)
                self.assertIn(f'ERROR: {message}', result.stderr)
                self.assertNotIn('Traceback', result.stderr)
                self.assertEqual(sorted(FILES), self.spool_files('new'))

    def test_a_file_that_failed_is_1(self):
        server = zeit.cds.testing.server_for(self, DiskFullHandler)
        result = self.cds(*self.options(server))
        self.assertExit(1, result)
        self.assertIn('ERROR: Cannot upload file b.xml: 552 Disk full.\n',
                      result.stderr)
        self.assertIn('Exported 1 files, 18 bytes', result.stderr)
        self.assertEqual(['b.xml'], self.spool_files('new'))

    def test_a_secret_on_the_command_line_is_not_repeated(self):
        for args in (['--password', 'Secret99'], ['--password=Secret99'],
                     ['--passw', 'Secret99'], ['Secret99'],
                     ['--password', '--Secret99'], ['-PSecret99'],
                     ['-vSecret99']):
            with self.subTest(args):
                result = self.cds(*self.options(), *args)
                self.assertExit(2, result)
                self.assertNotIn('Secret99', result.stderr)
                self.assertIn('(not shown)', result.stderr)
        # Not taken for --password-file, whose name would show it.
        result = self.cds(*self.options(**{'password-file': None}),
                          '--password', 'Secret99')
        self.assertEqual(
            'cds-export: error: unrecognized arguments: --password and 1 '
            'more (not shown); the password comes from --password-file or '
            'CDS_PASSWORD, never from the command line\n', result.stderr)

    def test_usage_errors_are_2(self):
        a_file = self.write('not-a-folder', '')
        self.assertFails(2, 'unrecognized arguments: --bogus',
                         *self.options(), '--bogus')
        self.assertFails(2, 'No spool given', *self.options(spool=None))
        self.assertFails(2, 'No host given', *self.options(host=None))
        self.assertFails(2, 'port 70000 is out of range',
                         *self.options(port='70000'))
        self.assertFails(2, "port must be a whole number, not 'ftp'",
                         *self.options(port='ftp'))
        self.assertFails(2, 'Cannot read password file /nonexistent',
                         *self.options(**{'password-file': '/nonexistent'}))
        self.assertFails(2, 'No password: use --password-file or set '
                         'CDS_PASSWORD',
                         *self.options(**{'password-file': None}))
        self.assertFails(2, f'Spool {a_file} is not a directory',
                         *self.options(spool=a_file))
        self.assertFails(2, 'Spool /nonexistent is missing',
                         *self.options(spool='/nonexistent'))
        self.assertFails(2, 'nope.zcml: No such file or directory',
                         '--zcml', 'nope.zcml', '--connection', 'a',
                         '--spool', self.store_dir)

    def test_an_empty_password_is_2(self):
        empty = self.write('empty', '\n')
        self.assertFails(2, f'Empty password in the password file {empty}',
                         *self.options(**{'password-file': empty}))
        self.assertFails(2, 'Empty password in the environment variable '
                         'CDS_PASSWORD', *self.options(**{'password-file':
                                                          None}),
                         env={'CDS_PASSWORD': ''})
        self.assertEqual([], os.listdir(self.server.root))

    def test_a_password_of_two_lines_is_2(self):
        # Not the server's refusal: a login cannot send it.
        two = self.write('two', 'testpw\nsecond line\n')
        self.assertFails(
            2, f'cds-export: error: The password in the password file {two} '
            'has more than one line', *self.options(**{'password-file': two}))
        self.assertFails(
            2, 'The password in the environment variable CDS_PASSWORD has '
            'more than one line', *self.options(**{'password-file': None}),
            env={'CDS_PASSWORD': 'a\rb'})
        self.assertEqual([], os.listdir(self.server.root))

    def test_a_folder_that_is_no_spool_is_2_unless_prepare(self):
        folder = os.path.join(self.scratch, 'typo')
        os.mkdir(folder)
        for script in ['cds-export', 'cds-import']:
            with self.subTest(script):
                result = self.cds(*self.options(spool=folder), script=script)
                self.assertExit(2, result)
                self.assertEqual(
                    f'{script}: error: Spool {folder} is not a spool (it '
                    'has no new/): check the path, or create it with '
                    "--prepare (config key 'prepare')\n", result.stderr)
                self.assertEqual([], os.listdir(folder))
        result = self.cds(*self.options(spool=folder), '--prepare')
        self.assertExit(0, result)
        self.assertIn('Exported 0 files', result.stderr)
        self.assertLessEqual({'tmp', 'new', 'cur'}, set(os.listdir(folder)))
        # Missing altogether: made, from a config file too.
        missing = os.path.join(self.scratch, 'new-spool')
        config = self.write('cds.ini', f'''\
[partner-a]
spool = {missing}
prepare = yes
host = {self.server.host}
port = {self.server.port}
user = test
password-file = {self.password_file}
''')
        result = self.cds('--config', config, script='cds-import')
        self.assertExit(0, result)
        self.assertLessEqual({'tmp', 'new', 'cur'}, set(os.listdir(missing)))

    def test_config_errors_are_2(self):
        config = self.write('cds.ini', '[partner-a]\nhost = h\n'
                            '[partner-b]\nhots = h\n')
        self.assertFails(2, 'has no section [partner-c]',
                         '--config', config, '--section', 'partner-c')
        self.assertFails(2, 'has sections partner-a, partner-b: choose one',
                         '--config', config)
        self.assertFails(2, "section [partner-b]: unknown key 'hots'",
                         '--config', config, '--section', 'partner-b')
        self.assertFails(2, 'Cannot read config file /nonexistent',
                         '--config', '/nonexistent')
        secret = self.write('secret.ini', '[a]\npassword = Secret99\n')
        self.assertFails(2, f'Config file {secret}, section [a]: there is no '
                         'key password; name the file it is in with '
                         'password-file', '--config', secret)
        broken = self.write('broken.ini', 'no section here\n')
        self.assertFails(2, f'Config file {broken} is not valid: line 1: '
                         'a key before the first [section]',
                         '--config', broken)
        broken = self.write('broken.ini', '[a]\nhost = h\nuser u\n')
        self.assertFails(2, f'Config file {broken} is not valid: line 3: '
                         'neither a [section] nor a key = value',
                         '--config', broken)

    def test_unknown_protocol_is_2_and_names_the_known_ones(self):
        self.assertFails(
            2, "cds-export: error: unknown protocol 'scp'; known: file, "
            'ftp, ftps, sftp\n', *self.options(), '--protocol', 'scp')

    def test_an_option_of_another_protocol_is_2(self):
        self.assertFails(
            2, 'ca-file does not apply to protocol file; it needs tls',
            *self.options(protocol='file', **{'ca-file': 'ca.pem'}))
        self.assertFails(
            2, 'tls does not apply to protocol file',
            *self.options(protocol='file'), '--tls')
        config = self.write('cds.ini', '[partner-a]\n'
                            'insecure-skip-verify = yes\n')
        self.assertFails(
            2, 'insecure-skip-verify does not apply to protocol ftp; it '
            'needs tls', '--config', config, *self.options())

    def test_a_share_must_be_named(self):
        # Without --dir, "file" would work on this machine's root, and an
        # import take its files away.
        for script in ('cds-export', 'cds-import'):
            result = self.cds('--protocol', 'file', '--spool',
                              self.store_dir, script=script)
            self.assertExit(2, result)
            self.assertEqual(f'{script}: error: protocol file needs dir: '
                             'the folder of the CDS share\n', result.stderr)
        self.assertEqual(sorted(FILES), self.spool_files('new'))

    def test_watch_options_need_watch(self):
        for option in ('interval', 'keepalive'):
            self.assertFails(2, f'cds-export: error: --{option} needs '
                             '--watch', *self.options(**{option: '10'}))
        # A config file may hold them for the watcher beside cron runs.
        config = self.write('cds.ini', '[a]\ninterval = 10\n')
        result = self.cds(*self.options(), '--config', config)
        self.assertExit(0, result)

    def test_timeout_must_be_in_range(self):
        self.assertFails(2, 'timeout 0 is out of range (1-86400)',
                         *self.options(timeout='0'))
        self.assertFails(
            2, 'timeout 99999999999 is out of range (1-86400)',
            *self.options(timeout='99999999999'))
        self.assertFails(2, "timeout must be a whole number, not 'soon'",
                         *self.options(timeout='soon'))

    def test_config_value_errors_name_the_key_and_the_file(self):
        for line, message in [
                ('tls = yes please', "tls: 'yes please' is neither yes "
                 'nor no'),
                ('timeout = 0', 'timeout 0 is out of range (1-86400)'),
                ('port = ftp', "port must be a whole number, not 'ftp'"),
                ('connections = 17', 'connections 17 is out of range '
                 '(1-16)')]:
            with self.subTest(line):
                config = self.write('cds.ini', f'[partner-a]\n{line}\n')
                self.assertFails(
                    2, f'cds-export: error: Config file {config}, section '
                    f'[partner-a]: {message}\n', '--config', config)


class ProgressBarTest(CommandLineTestCase):

    def export(self, stderr):
        zeit.cds.testing.make_spool(
            self.store_dir, {f'{i:03}.xml': b'x' for i in range(150)})
        return subprocess.Popen(
            [sys.executable, '-c',
             'from zeit.cds.cli import export_main; export_main()',
             *self.options(), '-q'],
            env=zeit.cds.testing.child_environment(),
            stdout=subprocess.DEVNULL, stderr=stderr)

    def test_a_terminal_sees_a_bar_for_a_long_run(self):
        controller, terminal = pty.openpty()
        self.addCleanup(os.close, controller)
        # A terminal of 24 lines of 100 columns, as a person's would be.
        fcntl.ioctl(terminal, termios.TIOCSWINSZ,
                    struct.pack('HHHH', 24, 100, 0, 0))
        process = self.export(terminal)
        os.close(terminal)
        shown = b''
        # Read while the child writes, until its end of the terminal closes.
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
        self.assertEqual(0, process.wait(timeout=60))
        self.assertIn(b'/152 [', shown)
        self.assertIn(b'file/s]', shown)

    def test_cron_sees_no_bar(self):
        process = self.export(subprocess.PIPE)
        _, stderr = process.communicate(timeout=60)
        self.assertEqual(0, process.returncode)
        self.assertEqual(b'', stderr)


class StartUpTest(CommandLineTestCase):
    """A run imports only what it needs: cron's runs are many and short."""

    def imported(self, *argv):
        """Which of the modules a run may do without ``argv`` imported."""
        process = subprocess.run(
            [sys.executable, '-c',
             'import sys\n'
             'from zeit.cds.cli import run\n'
             'code = run("export")\n'
             'print(code, *sorted(m for m in ("tqdm", "logging.handlers")'
             ' if m in sys.modules))',
             *argv],
            env=zeit.cds.testing.child_environment(), capture_output=True,
            text=True, check=True)
        return process.stdout.split()

    def test_no_progress_bar_nor_log_file_machinery_without_need(self):
        self.assertEqual(['0'], self.imported(*self.options(), '-q'))

    def test_a_log_file_brings_its_handler(self):
        self.assertEqual(
            ['0', 'logging.handlers'],
            self.imported(*self.options(),
                          '--logfile', os.path.join(self.scratch, 'log')))


class ImportCommandTest(CommandLineTestCase):

    def offer(self, files):
        for name, data in files.items():
            with open(os.path.join(self.server.root, name), 'wb') as f:
                f.write(data)

    def test_import_reports_a_summary_and_exits_0(self):
        self.offer({'bar.xml': b'bar', 'foo.xml': b'foo!'})
        result = self.cds(*self.options(), script='cds-import')
        self.assertExit(0, result)
        self.assertEqual([], os.listdir(self.server.root))
        self.assertEqual(sorted(FILES) + ['bar.xml', 'foo.xml'],
                         self.spool_files('new'))
        self.assertIn('Removed file foo.xml from CDS FTP server\n',
                      result.stderr)
        self.assertRegex(result.stderr.splitlines()[-1],
                         r'^Imported 2 files, 7 bytes, ')

    def test_dry_run_changes_nothing(self):
        self.offer({'bar.xml': b'bar', '.cds-partial.foo.xml': b'f'})
        result = self.dry_run(script='cds-import')
        self.assertExit(0, result)
        self.assertIn('Would import file bar.xml\n', result.stderr)
        self.assertNotIn('foo.xml', result.stderr)

    def test_dry_run_fails_as_the_run_would(self):
        self.offer({'bar.xml': b'bar', 'back\\slash.xml': b'odd'})
        dry = self.dry_run(script='cds-import')
        real = self.cds(*self.options(), script='cds-import')
        self.assertExit(1, dry)
        self.assertExit(1, real)
        self.assertIn('Would import file bar.xml\n', dry.stderr)
        self.assertEqual(errors(real), errors(dry))
        self.assertEqual(["ERROR: Refusing to import 'back\\\\slash.xml': "
                          'not a plain file name'], errors(dry))

    def test_dry_run_under_a_foreign_lock_is_75(self):
        self.offer({'bar.xml': b'bar', 'read': b'partner\n'})
        result = self.dry_run(script='cds-import')
        self.assertExit(75, result)
        self.assertEqual(
            "WARNING: CDS directory / is locked: lock file 'read' exists "
            "(held by another party)", result.stderr.splitlines()[-1])
        self.assertNotIn('Would import', result.stderr)

    def test_remote_locked_is_75(self):
        self.offer({'bar.xml': b'bar', 'write': b'partner writing\n'})
        result = self.cds(*self.options(), script='cds-import')
        self.assertExit(75, result)
        self.assertEqual(['bar.xml', 'write'], sorted(os.listdir(
            self.server.root)))


class TLSCommandTest(CommandLineTestCase):

    layer = zeit.cds.testing.FTPS_LAYER

    def test_export_over_tls_with_the_ca(self):
        result = self.cds(*self.options(), '--tls',
                          '--ca-file', self.layer.ca_file)
        self.assertExit(0, result)
        self.assertEqual(sorted(FILES), sorted(os.listdir(self.server.root)))

    def test_untrusted_certificate_is_1_and_moves_nothing(self):
        result = self.cds(*self.options(), '--tls')
        self.assertExit(1, result)
        self.assertIn('ERROR: TLS certificate of host 127.0.0.1 not trusted',
                      result.stderr)
        self.assertEqual([], os.listdir(self.server.root))
        self.assertEqual(sorted(FILES), self.spool_files('new'))

    def test_insecure_skip_verify_warns_once_per_run(self):
        zeit.cds.testing.make_spool(self.store_dir, {
            f'file-{i}': b'x' for i in range(8)})
        result = self.cds(*self.options(connections='4'), '--tls',
                          '--insecure-skip-verify', '-v')
        self.assertExit(0, result)
        # Four connections, one warning.
        self.assertEqual(4, result.stderr.count('> PASS ****'))
        self.assertEqual(1, result.stderr.count(
            'WARNING: TLS certificate verification is OFF'))

    def test_tls_asked_of_a_plain_server_is_1(self):
        server = zeit.cds.testing.server_for(self)
        result = self.cds(*self.options(server), '--tls')
        self.assertExit(1, result)
        self.assertIn('refused TLS (AUTH TLS)', result.stderr)
        self.assertEqual([], os.listdir(server.root))

    def test_protocol_ftps_is_tls(self):
        result = self.cds(*self.options(protocol='ftps'),
                          '--ca-file', self.layer.ca_file)
        self.assertExit(0, result)
        self.assertEqual(sorted(FILES), sorted(os.listdir(self.server.root)))

    def test_protocol_and_ca_file_from_a_config_file(self):
        config = self.write('cds.ini', f'''\
[partner-a]
protocol = ftps
ca-file = {self.layer.ca_file}
''')
        result = self.cds('--config', config, *self.options())
        self.assertExit(0, result)
        self.assertEqual(sorted(FILES), sorted(os.listdir(self.server.root)))

    def test_tls_options_need_tls(self):
        for option in [('--ca-file', self.layer.ca_file),
                       ('--insecure-skip-verify',)]:
            result = self.cds(*self.options(), *option)
            self.assertExit(2, result)
            self.assertIn('needs tls', result.stderr)


class ZCMLCommandTest(CommandLineTestCase):

    def site(self, **attributes):
        attributes = ' '.join(f'{key}="{value}"'
                              for key, value in attributes.items())
        return self.write('site.zcml', f'''\
<configure xmlns="http://namespaces.zope.org/zope"
           xmlns:cds="http://namespaces.zeit.de/cds">
  <include package="zeit.cds" />
  <cds:connection name="partner-a" {attributes} />
</configure>
''')

    def test_export_through_a_zcml_connection(self):
        site = self.site(host=self.server.host, port=self.server.port,
                         user='test', password_file=self.password_file)
        result = self.cds('--zcml', site, '--connection', 'partner-a',
                          '--spool', self.store_dir)
        self.assertExit(0, result)
        self.assertEqual(sorted(FILES), sorted(os.listdir(self.server.root)))

    def test_unknown_connection_is_2(self):
        site = self.site(scheme='file', directory=self.scratch)
        result = self.cds('--zcml', site, '--connection', 'partner-z',
                          '--spool', self.store_dir)
        self.assertExit(2, result)
        self.assertIn("No CDS connection 'partner-z' is configured",
                      result.stderr)

    def test_broken_zcml_is_one_line_and_2(self):
        site = self.site(host='h', port='70000', user='u',
                         password_file=self.password_file)
        result = self.cds('--zcml', site, '--connection', 'partner-a',
                          '--spool', self.store_dir)
        self.assertExit(2, result)
        self.assertEqual(1, len(result.stderr.splitlines()), result.stderr)
        self.assertIn("Invalid value for 'port'", result.stderr)

    def test_a_secret_in_a_refused_attribute_is_not_shown(self):
        # zope.configuration's own message quotes the directive's text.
        for attribute in ('passphrase', 'passwd'):
            with self.subTest(attribute):
                site = self.site(
                    scheme='sftp', host='h', user='u',
                    password_file=self.password_file,
                    **{attribute: 'Top&quot;Secret99'})
                result = self.cds('--zcml', site, '--connection',
                                  'partner-a', '--spool', self.store_dir)
                self.assertExit(2, result)
                # The place stays; the text there goes.
                self.assertRegex(result.stderr, re.escape(
                    f"cds-export: error: Cannot load ZCML {site}: "
                    f"cds:connection 'partner-a': {attribute} does not "
                    f'apply to scheme sftp File "{site}", line 4.2-4.')
                    + r'\d+\n\Z')
                self.assertNotIn('Secret99', result.stderr)

    def test_zcml_conflicts_and_unknown_directives_are_told(self):
        for directives, told in [
                ('<cds:connection name="twin" scheme="file" directory="/a"/>'
                 '\n<cds:connection name="twin" scheme="file" '
                 'directory="/b"/>',
                 "Conflicting configuration actions for ('utility', "
                 "<InterfaceClass zeit.cds.interfaces.IConnection>, "
                 "'twin'): File \"{site}\", line 4.0-4.58 File \"{site}\", "
                 'line 5.0-5.58\n'),
                ('<cds:connectio name="twin"/>',
                 "('Unknown directive', 'http://namespaces.zeit.de/cds', "
                 '\'connectio\') File "{site}", line 4.0\n')]:
            site = self.write('site.zcml', f'''\
<configure xmlns="http://namespaces.zope.org/zope"
           xmlns:cds="http://namespaces.zeit.de/cds">
  <include package="zeit.cds" />
{directives}
</configure>
''')
            result = self.cds('--zcml', site, '--connection', 'twin',
                              '--spool', self.store_dir)
            self.assertExit(2, result)
            self.assertEqual(
                f'cds-export: error: Cannot load ZCML {site}: '
                + told.format(site=site), result.stderr)

    def test_zcml_that_is_not_xml_is_one_line_and_2(self):
        site = self.write('site.zcml', '<configure\n<oops')
        result = self.cds('--zcml', site, '--connection', 'partner-a',
                          '--spool', self.store_dir)
        self.assertExit(2, result)
        self.assertEqual(
            f'cds-export: error: Cannot load ZCML {site}: {site}:2:0: not '
            'well-formed (invalid token)\n', result.stderr)

    def test_a_ca_file_that_cannot_be_used_is_one_line_and_2(self):
        result = self.cds(*self.options(), '--tls', '--ca-file',
                          '/nonexistent')
        self.assertExit(2, result)
        self.assertEqual('cds-export: error: Cannot use CA file '
                         '/nonexistent: No such file or directory\n',
                         result.stderr)

    def test_connection_settings_come_from_zcml_only(self):
        site = self.site(scheme='file', directory=self.scratch)
        result = self.cds('--zcml', site, '--connection', 'partner-a',
                          '--spool', self.store_dir, '--host', 'elsewhere')
        self.assertExit(2, result)
        self.assertIn('The ZCML connection declares host itself',
                      result.stderr)

    def test_the_timeout_comes_from_zcml_too(self):
        site = self.site(scheme='file', directory=self.scratch, timeout=5)
        result = self.cds('--zcml', site, '--connection', 'partner-a',
                          '--spool', self.store_dir, '--timeout', '9')
        self.assertExit(2, result)
        self.assertIn('The ZCML connection declares timeout itself',
                      result.stderr)

    def test_unknown_scheme_is_one_line_and_2(self):
        site = self.site(scheme='scp', host='h', user='u',
                         password_file=self.password_file)
        result = self.cds('--zcml', site, '--connection', 'partner-a',
                          '--spool', self.store_dir)
        self.assertExit(2, result)
        self.assertEqual(1, len(result.stderr.splitlines()), result.stderr)
        self.assertRegex(
            result.stderr, r"^cds-export: error: Cannot load ZCML .*: "
            r"cds:connection 'partner-a': unknown scheme 'scp'; known: "
            r"file, ftp, ftps, sftp ")


class ServerCommandTest(CommandLineTestCase):

    def serve(self, *args, env=None):
        """A running cds-server; returns it and the lines it printed until
        it said where it serves."""
        root = os.path.join(self.scratch, 'root')
        os.makedirs(root, exist_ok=True)
        server = subprocess.Popen(
            [sys.executable, '-c',
             'from zeit.cds.server import main; main()',
             '--root', root, '--user', 'test', '--port', '0', *args],
            env=zeit.cds.testing.child_environment(
                env or {'CDS_PASSWORD': 'testpw'}),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.addCleanup(server.stdout.close)
        self.addCleanup(server.kill)
        lines = []
        for line in server.stdout:
            lines.append(line)
            if line.startswith('Serving '):
                return server, root, lines
        self.fail(''.join(lines))

    def port_of(self, lines):
        return lines[-1].split('://127.0.0.1:')[1].split('/')[0]

    def stop(self, server):
        server.terminate()
        self.assertEqual(0, server.wait(timeout=30))
        self.assertEqual('Stopped\n', server.stdout.read())

    def test_serves_a_folder_until_terminated(self):
        server, root, lines = self.serve()
        result = self.cds(*self.options(port=self.port_of(lines)))
        self.assertExit(0, result)
        self.assertEqual(sorted(FILES), sorted(os.listdir(root)))
        self.stop(server)

    def test_readme_example_with_the_password_from_a_file(self):
        password_file = self.write('server-password', 'testpw\n')
        server, root, lines = self.serve(
            '--password-file', password_file, env={'PATH': os.defpath})
        result = self.cds(*self.options(port=self.port_of(lines)))
        self.assertExit(0, result)
        self.assertEqual(sorted(FILES), sorted(os.listdir(root)))
        self.stop(server)

    def test_tls_with_a_certificate_of_its_own(self):
        server, root, lines = self.serve('--tls')
        ca_file = lines[0].split('--ca-file ')[1].strip()
        self.assertIn('ftps://', lines[-1])
        result = self.cds(*self.options(port=self.port_of(lines)), '--tls',
                          '--ca-file', ca_file)
        self.assertExit(0, result)
        self.assertEqual(sorted(FILES), sorted(os.listdir(root)))
        # Plain FTP is refused: no login without TLS.
        result = self.cds(*self.options(port=self.port_of(lines)))
        self.assertExit(1, result)
        # Its certificate, key and CA file go with it.
        self.assertTrue(os.path.exists(ca_file))
        self.stop(server)
        self.assertFalse(os.path.exists(os.path.dirname(ca_file)))

    def test_tls_dir_keeps_the_ca_for_clients(self):
        folder = os.path.join(self.scratch, 'tls')
        server, root, lines = self.serve('--tls', '--tls-dir', folder)
        ca_file = os.path.join(folder, 'ca.pem')
        self.assertIn(f'--ca-file {ca_file}\n', lines[0])
        self.stop(server)
        self.assertEqual(['ca.pem', 'cert.pem', 'key.pem'],
                         sorted(os.listdir(folder)))
        kept = tree(folder)
        # The next start serves with them, for the same clients.
        server, root, lines = self.serve('--tls', '--tls-dir', folder)
        self.assertEqual(kept, tree(folder))
        result = self.cds(*self.options(port=self.port_of(lines)), '--tls',
                          '--ca-file', ca_file)
        self.assertExit(0, result)
        self.stop(server)

    def test_sftp_with_a_host_key_of_its_own(self):
        server, root, lines = self.serve('--protocol', 'sftp')
        self.assertIn('sftp://', lines[-1])
        self.assertRegex(server.stdout.readline(), r'^Host key SHA256:\S+; '
                         r'clients trust it with this line in their '
                         r'known_hosts file:$')
        known_hosts = self.write('known_hosts', server.stdout.readline())
        sftp = ('--protocol', 'sftp', '--known-hosts', known_hosts)
        result = self.cds(*self.options(port=self.port_of(lines)), *sftp)
        self.assertExit(0, result)
        self.assertEqual(sorted(FILES), sorted(os.listdir(root)))
        # Without the line, the host key is unknown: nothing is sent.
        result = self.cds(*self.options(port=self.port_of(lines)),
                          '--protocol', 'sftp', '--known-hosts', '/dev/null',
                          script='cds-import')
        self.assertExit(1, result)
        self.assertIn('not trusted', result.stderr)
        self.assertEqual(sorted(FILES), sorted(os.listdir(root)))
        self.stop(server)

    def test_bad_input_is_one_line_and_2(self):
        empty = self.write('empty', '')
        junk = self.write('junk.pem', 'not a certificate\n')
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        for args, env, message in [
                (['--root', '/nonexistent', '--user', 'u'],
                 {'CDS_PASSWORD': 'x'}, 'Root /nonexistent is not a dir'),
                (['--root', self.scratch, '--user', 'u'], {},
                 'No password'),
                (['--root', self.scratch, '--user', 'u', '--port', '70000'],
                 {'CDS_PASSWORD': 'x'}, 'port 70000 is out of range'),
                (['--root', self.scratch, '--user', 'u', '--certfile', 'c'],
                 {'CDS_PASSWORD': 'x'}, '--certfile, --keyfile and '
                 '--tls-dir need --tls'),
                (['--root', self.scratch, '--user', 'u'],
                 {'CDS_PASSWORD': ''},
                 'Empty password in the environment variable CDS_PASSWORD'),
                (['--root', self.scratch, '--user', 'u', '--password-file',
                  empty], {},
                 f'Empty password in the password file {empty}'),
                (['--root', self.scratch, '--user', 'u', '--tls',
                  '--certfile', junk, '--keyfile', junk],
                 {'CDS_PASSWORD': 'x'}, f'Cannot use --certfile {junk} with '
                 f'--keyfile {junk} (a PEM certificate and its key): '),
                (['--root', self.scratch, '--user', 'u', '--tls',
                  '--certfile', '/nonexistent', '--keyfile', junk],
                 {'CDS_PASSWORD': 'x'}, 'Cannot read --certfile /nonexist'),
                (['--root', self.scratch, '--user', 'u', '--port',
                  str(taken.getsockname()[1])],
                 {'CDS_PASSWORD': 'x'}, f'Cannot listen on 127.0.0.1 port '
                 f'{taken.getsockname()[1]}: '),
                (['--root', self.scratch, '--user', 'u', '--tls',
                  '--protocol', 'sftp'], {'CDS_PASSWORD': 'x'},
                 '--tls does not go with --protocol sftp'),
                (['--root', self.scratch, '--user', 'u', '--host-key', 'k'],
                 {'CDS_PASSWORD': 'x'}, '--host-key needs --protocol sftp'),
                (['--root', self.scratch, '--user', 'u', '--protocol',
                  'sftp', '--host-key', '/nonexistent'],
                 {'CDS_PASSWORD': 'x'}, 'Cannot use host key /nonexistent'),
                (['--user', 'u'], {}, 'the following arguments are '
                 'required: --root')]:
            with self.subTest(message):
                result = self.cds(*args, env=env, script='cds-server')
                self.assertExit(2, result)
                self.assertEqual(1, len(result.stderr.splitlines()),
                                 result.stderr)
                self.assertIn(message, result.stderr)
                self.assertNotIn(': None', result.stderr)


class QuickStartTest(unittest.TestCase):

    def test_demo_round_trip_in_a_fresh_folder(self):
        self.assert_round_trip()

    def test_demo_round_trip_over_sftp(self):
        output = self.assert_round_trip('--protocol', 'sftp')
        self.assertIn('SFTP, upload_dir /incoming', output)

    def assert_round_trip(self, *args):
        folder = tempfile.mkdtemp(prefix='cds-quick-')
        self.addCleanup(zeit.cds.testing.remove_tree, folder)
        result = zeit.cds.testing.run_script('cds-demo', '--folder', folder,
                                             *args)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertIn('Exported 3 files', result.stdout)
        self.assertIn('Imported 2 files', result.stdout)
        self.assertEqual(3, len(os.listdir(
            os.path.join(folder, 'cds-server', 'incoming'))))
        self.assertEqual(['agentur-0001.xml', 'agentur-0002.xml'], sorted(
            os.listdir(os.path.join(folder, 'import-spool', 'new'))))
        self.assertEqual([], os.listdir(
            os.path.join(folder, 'export-spool', 'new')))
        return result.stdout
