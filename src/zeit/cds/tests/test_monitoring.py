"""What runs leave for monitoring: the status file and the metrics file,
as cron runs cds-export and cds-import (subprocesses against a real FTP
server)."""
import datetime
import json
import os
import stat
import subprocess
import sys
import time

import prometheus_client.parser

import zeit.cds.testing
from zeit.cds import names
from zeit.cds.tests.test_cli import FILES
from zeit.cds.tests.test_cli import CommandLineTestCase

AN_HOUR_AGO = time.time() - 3600


def metrics(path):
    """The samples of the metrics file ``path``: {(name, result label or
    None): value}, each checked to carry the labels of one run."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    found = {}
    for family in prometheus_client.parser.text_string_to_metric_families(
            text):
        for sample in family.samples:
            labels = dict(sample.labels)
            result = labels.pop('result', None)
            assert set(labels) == {'direction', 'connection'}, labels
            found[sample.name, result] = sample.value
    return found


class MonitoredRunTest(CommandLineTestCase):

    def setUp(self):
        super().setUp()
        self.status_file = os.path.join(self.scratch, 'status.json')
        self.metrics_file = os.path.join(self.scratch, 'cds.prom')

    def run_monitored(self, code, script='cds-export', **options):
        before = time.time()
        result = self.cds(*self.options(**{
            'status-file': self.status_file,
            'metrics-file': self.metrics_file, **options}), script=script)
        self.assertExit(code, result)
        status = self.status()
        started = datetime.datetime.fromisoformat(status['started'])
        ended = datetime.datetime.fromisoformat(status['ended'])
        self.assertEqual(datetime.timezone.utc, started.tzinfo)
        # Whole seconds in the file.
        self.assertLessEqual(int(before), started.timestamp())
        self.assertLessEqual(started, ended)
        self.assertLessEqual(ended.timestamp(), time.time())
        self.assertEqual(code, status['exit_code'])
        return result, status, metrics(self.metrics_file)

    def status(self):
        with open(self.status_file, encoding='utf-8') as f:
            return json.load(f)

    def test_success(self):
        os.utime(os.path.join(self.store_dir, 'new', 'a-file'),
                 (AN_HOUR_AGO, AN_HOUR_AGO))
        _, status, found = self.run_monitored(0)
        self.assertEqual(
            {'version': 1, 'direction': 'export', 'connection': '127.0.0.1',
             'result': 'ok', 'reason': None, 'exit_code': 0, 'files': 2,
             'bytes': 36, 'failures': 0,
             'backlog': {'files': 0, 'oldest_seconds': None}},
            {key: value for key, value in status.items()
             if key not in ('started', 'ended', 'last_success')})
        self.assertEqual(status['ended'], status['last_success'])
        self.assertEqual(1, found['zeit_cds_last_result', 'ok'])
        self.assertEqual(0, found['zeit_cds_last_result', 'failed'])
        self.assertEqual(0, found['zeit_cds_last_result', 'backed-off'])
        self.assertEqual(0, found['zeit_cds_last_exit_code', None])
        self.assertEqual(2, found['zeit_cds_files_total', None])
        self.assertEqual(36, found['zeit_cds_bytes_total', None])
        self.assertEqual(0, found['zeit_cds_failures_total', None])
        self.assertEqual(0, found['zeit_cds_backlog_files', None])
        self.assertEqual(0, found['zeit_cds_backlog_oldest_seconds', None])
        self.assertEqual(found['zeit_cds_last_run_timestamp_seconds', None],
                         found['zeit_cds_last_success_timestamp_seconds',
                               None])
        self.assertGreaterEqual(
            found['zeit_cds_run_duration_seconds', None], 0)
        # No _created series: the counters are carried over, not created.
        self.assertNotIn(('zeit_cds_files_created', None), found)

    def test_files_are_readable_by_the_monitoring(self):
        self.run_monitored(0)
        for path in [self.status_file, self.metrics_file]:
            self.assertEqual(0o644, stat.S_IMODE(os.stat(path).st_mode))
        # And nothing else is left in their folder.
        self.assertEqual(['cds.prom', 'password', 'status.json'],
                         sorted(os.listdir(self.scratch)))

    def test_failure_tells_why_and_what_waits(self):
        os.utime(os.path.join(self.store_dir, 'new', 'a-file'),
                 (AN_HOUR_AGO, AN_HOUR_AGO))
        self.write('password', 'wrong\n')
        result, status, found = self.run_monitored(1)
        self.assertEqual('failed', status['result'])
        self.assertIn('refused login for user test', status['reason'])
        self.assertEqual(0, status['files'])
        self.assertEqual(2, status['backlog']['files'])
        self.assertGreaterEqual(status['backlog']['oldest_seconds'], 3600)
        self.assertLess(status['backlog']['oldest_seconds'], 3600 + 600)
        self.assertEqual(1, found['zeit_cds_last_result', 'failed'])
        self.assertEqual(0, found['zeit_cds_last_result', 'ok'])
        self.assertEqual(2, found['zeit_cds_backlog_files', None])
        self.assertGreaterEqual(
            found['zeit_cds_backlog_oldest_seconds', None], 3600)
        # Never succeeded: no time of a last success to show.
        self.assertIsNone(status['last_success'])
        self.assertNotIn(
            ('zeit_cds_last_success_timestamp_seconds', None), found)
        self.assertNotIn('Traceback', result.stderr)

    def test_back_off(self):
        with open(os.path.join(self.server.root, names.READ_LOCK), 'w') as f:
            f.write('partner reading\n')
        _, status, found = self.run_monitored(75)
        self.assertEqual('backed-off', status['result'])
        self.assertIn("lock file 'read' exists", status['reason'])
        self.assertEqual(2, status['backlog']['files'])
        self.assertEqual(1, found['zeit_cds_last_result', 'backed-off'])
        self.assertEqual(75, found['zeit_cds_last_exit_code', None])

    def test_a_file_that_fails_alone(self):
        os.chmod(os.path.join(self.store_dir, 'new', 'a-file'), 0)
        if os.access(os.path.join(self.store_dir, 'new', 'a-file'),
                     os.R_OK):
            # Root reads anything; a link is refused by anybody.
            os.remove(os.path.join(self.store_dir, 'new', 'a-file'))
            os.symlink('b.xml', os.path.join(self.store_dir, 'new',
                                             'a-file'))
        _, status, found = self.run_monitored(1)
        self.assertEqual('failed', status['result'])
        self.assertEqual('1 failed, 1 transferred', status['reason'])
        self.assertEqual((1, 1), (status['files'], status['failures']))
        self.assertEqual(1, status['backlog']['files'])
        self.assertEqual(1, found['zeit_cds_failures_total', None])

    def test_counters_and_last_success_carry_over(self):
        _, _, first = self.run_monitored(0)
        zeit.cds.testing.make_spool(self.store_dir, {'c-file': b'12345'})
        _, _, second = self.run_monitored(0)
        self.assertEqual(3, second['zeit_cds_files_total', None])
        self.assertEqual(41, second['zeit_cds_bytes_total', None])
        self.assertGreaterEqual(
            second['zeit_cds_last_success_timestamp_seconds', None],
            first['zeit_cds_last_success_timestamp_seconds', None])
        zeit.cds.testing.make_spool(self.store_dir, {'d-file': b'1'})
        self.write('password', 'wrong\n')
        status = self.status()
        _, failed_status, failed = self.run_monitored(1)
        self.assertEqual(status['last_success'],
                         failed_status['last_success'])
        self.assertEqual(3, failed['zeit_cds_files_total', None])
        self.assertEqual(41, failed['zeit_cds_bytes_total', None])
        self.assertEqual(
            second['zeit_cds_last_success_timestamp_seconds', None],
            failed['zeit_cds_last_success_timestamp_seconds', None])
        self.assertGreater(
            failed['zeit_cds_last_run_timestamp_seconds', None],
            failed['zeit_cds_last_success_timestamp_seconds', None] - 1)

    def test_a_broken_previous_file_starts_the_counters_again(self):
        self.write('cds.prom', 'this is { not metrics\n')
        result, _, found = self.run_monitored(0)
        self.assertIn('WARNING: Cannot read the previous metrics file',
                      result.stderr)
        self.assertEqual(2, found['zeit_cds_files_total', None])

    def test_import_names_the_config_section_and_its_files(self):
        config = self.write('cds.ini', f'''\
[partner-a]
spool = {self.store_dir}
host = {self.server.host}
port = {self.server.port}
user = test
password-file = {self.password_file}
status-file = {self.scratch}/{{direction}}.json
metrics-file = {self.scratch}/{{direction}}.prom
''')
        self.status_file = os.path.join(self.scratch, 'import.json')
        self.metrics_file = os.path.join(self.scratch, 'import.prom')
        with open(os.path.join(self.server.root, 'x.xml'), 'wb') as f:
            f.write(b'<x/>')
        result = self.cds('--config', config, script='cds-import')
        self.assertExit(0, result)
        status = self.status()
        self.assertEqual(('import', 'partner-a', 1, 4),
                         (status['direction'], status['connection'],
                          status['files'], status['bytes']))
        # What waits for zeit.cms: the spool's files and the new one.
        self.assertEqual(3, status['backlog']['files'])
        with open(self.metrics_file, encoding='utf-8') as f:
            self.assertIn(
                'zeit_cds_files_total{connection="partner-a",'
                'direction="import"} 1.0', f.read())

    def test_a_dry_run_leaves_nothing(self):
        result = self.cds(*self.options(**{
            'status-file': self.status_file,
            'metrics-file': self.metrics_file}), '--dry-run')
        self.assertExit(0, result)
        self.assertFalse(os.path.exists(self.status_file))
        self.assertFalse(os.path.exists(self.metrics_file))

    def test_a_status_file_that_cannot_be_written_fails_the_run(self):
        blocked = self.write('blocked', '')
        result = self.cds(*self.options(**{
            'status-file': os.path.join(blocked, 'status.json')}))
        self.assertExit(1, result)
        self.assertEqual(sorted(FILES), self.spool_files('cur'))
        self.assertRegex(result.stderr.splitlines()[-1],
                         r'^ERROR: Cannot write .*blocked')
        self.assertNotIn('Traceback', result.stderr)

    def test_a_folder_in_the_way_is_named_not_a_temporary(self):
        folder = os.path.join(self.scratch, 'status.json')
        os.mkdir(folder)
        result = self.cds(*self.options(**{'status-file': folder}))
        self.assertExit(1, result)
        self.assertEqual(f'ERROR: Cannot write {folder}: Is a directory',
                         result.stderr.splitlines()[-1])
        self.assertEqual([], os.listdir(folder))
        self.assertEqual(['status.json'], [
            name for name in os.listdir(self.scratch)
            if name.startswith(('.tmp-', 'status'))])


class KilledWhileWritingTest(CommandLineTestCase):
    """A run killed (SIGKILL) while it replaces its status or metrics file
    leaves the previous file whole: the final name is only ever renamed
    onto. The child is killed by an audit hook at the named event."""

    CHILD = '''\
import os, signal, sys
folder, final, event = sys.argv[1:4]

def kill(name, args):
    if name != event:
        return
    if name == 'open' and isinstance(args[0], str) and (
            os.path.dirname(args[0]) == folder
            and os.path.basename(args[0]).startswith('.tmp-')):
        os.kill(os.getpid(), signal.SIGKILL)
    if name == 'os.rename' and args[1] == final:
        os.kill(os.getpid(), signal.SIGKILL)

sys.addaudithook(kill)
sys.argv[0] = 'cds-export'
from zeit.cds.cli import export_main
export_main(sys.argv[4:])
'''

    def run_killed(self, final, event, options):
        return subprocess.run(
            [sys.executable, '-c', self.CHILD, self.scratch, final, event,
             *options], env=zeit.cds.testing.child_environment(),
            capture_output=True, text=True, timeout=60)

    def test_killed_at_any_point_of_the_writing(self):
        status_file = os.path.join(self.scratch, 'status.json')
        metrics_file = os.path.join(self.scratch, 'cds.prom')
        options = self.options(**{'status-file': status_file,
                                  'metrics-file': metrics_file})
        self.assertExit(0, self.cds(*options))
        zeit.cds.testing.make_spool(self.store_dir, {'c-file': b'123'})
        for final in [status_file, metrics_file]:
            for event in ['open', 'os.rename']:
                with self.subTest(final=final, event=event):
                    with open(final, 'rb') as f:
                        before = f.read()
                    result = self.run_killed(final, event, options)
                    self.assertEqual(-9, result.returncode, result.stderr)
                    with open(final, 'rb') as f:
                        self.assertEqual(before, f.read())
                    # Whole: it parses.
                    json.loads(self.read(status_file))
                    metrics(metrics_file)
                    # What is left over has a hidden name that neither
                    # the textfile collector (*.prom) nor cds-check reads.
                    self.assertEqual(
                        ['cds.prom', 'password', 'status.json'],
                        sorted(name for name in os.listdir(self.scratch)
                               if not name.startswith('.tmp-')))

    def read(self, path):
        with open(path, encoding='utf-8') as f:
            return f.read()
