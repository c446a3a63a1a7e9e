"""cds-check, the Icinga/Nagios plugin: its thresholds at their edges (in
process, with a clock of the test's) and its output and exit codes as the
monitoring sees them (subprocesses)."""
import json
import os
import re
import tempfile
import time
import unittest

import nagiosplugin

import zeit.cds.testing
from zeit.cds.monitoring import check
from zeit.cds.monitoring.status import iso

# The monitoring plugins' output: "SERVICE STATUS - text | perfdata"
# (nagiosplugin writes " - "; the guidelines' ": " is read alike), the
# performance data as 'label'=value[UOM];[warn];[crit];[min];[max].
OUTPUT = re.compile(r'^CDS (OK|WARNING|CRITICAL|UNKNOWN)(?: -|:) ([^|]+?)'
                    r'(?: \| (.*))?$')
PERFDATA = re.compile(r"^('[^']+'|[^'= ]+)=(-?[\d.]+)(s|%|B|KB|MB|TB|c)?"
                      r'(?:;([\d.:~@]*)){0,4}$')
STATES = {'OK': 0, 'WARNING': 1, 'CRITICAL': 2, 'UNKNOWN': 3}

# An integral time, so that file times hold it exactly.
NOW = 1_800_000_000


def parse_output(text):
    """(state, text, {label: value}) of a plugin's output, which must be
    one line."""
    lines = text.splitlines()
    assert len(lines) == 1, text
    found = OUTPUT.match(lines[0])
    assert found, lines[0]
    perfdata = {}
    for item in (found.group(3) or '').split():
        parsed = PERFDATA.match(item)
        assert parsed, item
        perfdata[parsed.group(1)] = float(parsed.group(2))
    return found.group(1), found.group(2), perfdata


class CheckTestCase(unittest.TestCase):

    def setUp(self):
        self.folder = tempfile.mkdtemp(prefix='cds-check-')
        self.addCleanup(zeit.cds.testing.remove_tree, self.folder)
        self.spool = os.path.join(self.folder, 'spool')
        zeit.cds.testing.make_spool(self.spool, {})
        self.status_file = os.path.join(self.folder, 'status.json')

    def waiting(self, name, seconds, now=NOW):
        path = os.path.join(self.spool, 'new', name)
        with open(path, 'wb') as f:
            f.write(b'x')
        os.utime(path, (now - seconds, now - seconds))

    def status(self, last_success, **more):
        document = {'version': 1, 'result': 'ok',
                    'last_success': last_success, **more}
        with open(self.status_file, 'w') as f:
            json.dump(document, f)


class ThresholdTest(CheckTestCase):
    """The plugins' range convention: a threshold of N seconds is the
    range 0:N, and a value within it, N included, is OK."""

    def state(self, *argv):
        args = check.parser().parse_args(['--spool', self.spool, *argv])
        evaluated = check.check_for(args, clock=lambda: NOW)
        evaluated()
        return evaluated.state

    def test_oldest_file_at_and_beyond_the_warning(self):
        self.waiting('a', 10)
        self.waiting('b', 600)
        argv = ['--warning', '10m', '--critical', '30m']
        self.assertEqual(nagiosplugin.Ok, self.state(*argv))
        self.waiting('b', 601)
        self.assertEqual(nagiosplugin.Warn, self.state(*argv))

    def test_oldest_file_at_and_beyond_the_critical(self):
        self.waiting('a', 1800)
        argv = ['--warning', '10m', '--critical', '30m']
        self.assertEqual(nagiosplugin.Warn, self.state(*argv))
        self.waiting('a', 1801)
        self.assertEqual(nagiosplugin.Critical, self.state(*argv))

    def test_nothing_waits(self):
        self.assertEqual(nagiosplugin.Ok,
                         self.state('--warning', '0', '--critical', '0'))

    def test_last_success_at_and_beyond_the_critical(self):
        argv = ['--status-file', self.status_file, '--warning', '10m',
                '--critical', '30m', '--last-success-critical', '1h']
        self.status(iso(NOW - 3600))
        self.assertEqual(nagiosplugin.Ok, self.state(*argv))
        self.status(iso(NOW - 3601))
        self.assertEqual(nagiosplugin.Critical, self.state(*argv))

    def test_no_success_yet(self):
        self.status(None, result='failed')
        argv = ['--status-file', self.status_file, '--warning', '10m',
                '--critical', '30m']
        self.assertEqual(nagiosplugin.Ok, self.state(*argv))
        self.assertEqual(nagiosplugin.Critical, self.state(
            *argv, '--last-success-critical', '1h'))

    def test_ages(self):
        for text, seconds in [('90', 90), ('90s', 90), ('10m', 600),
                              ('2h', 7200), ('1d', 86400)]:
            self.assertEqual(seconds, check.age(text))


class CommandTest(CheckTestCase):
    """cds-check as Icinga runs it."""

    def cds_check(self, *argv):
        result = zeit.cds.testing.run_script('cds-check', *argv)
        self.assertEqual('', result.stderr)
        state, text, perfdata = parse_output(result.stdout)
        self.assertEqual(STATES[state], result.returncode, result.stdout)
        return state, text, perfdata

    def test_ok_with_performance_data(self):
        now = time.time()
        self.waiting('a', 5, now)
        self.waiting('b', 60, now)
        self.status(iso(now - 120))
        state, text, perfdata = self.cds_check(
            '--spool', self.spool, '--status-file', self.status_file,
            '--warning', '1h', '--critical', '2h',
            '--last-success-critical', '1d')
        self.assertEqual('OK', state)
        self.assertIn('2 files waiting', text)
        self.assertEqual(2, perfdata['backlog'])
        # Seconds, measured while the check ran: bounded, not exact.
        self.assertGreaterEqual(perfdata['oldest'], 60)
        self.assertLess(perfdata['oldest'], 600)
        self.assertGreaterEqual(perfdata['since_success'], 120)
        self.assertLess(perfdata['since_success'], 600)

    def test_warning_and_critical(self):
        now = time.time()
        self.waiting('a', 3600, now)
        state, text, perfdata = self.cds_check(
            '--spool', self.spool, '--warning', '10m', '--critical', '2h')
        self.assertEqual('WARNING', state)
        self.assertIn('the oldest for 36', text)
        state, _, _ = self.cds_check(
            '--spool', self.spool, '--warning', '10m', '--critical', '30m')
        self.assertEqual('CRITICAL', state)

    def test_last_success_too_long_ago(self):
        self.status(iso(time.time() - 7200))
        state, text, perfdata = self.cds_check(
            '--spool', self.spool, '--status-file', self.status_file,
            '--warning', '10m', '--critical', '30m',
            '--last-success-critical', '1h')
        self.assertEqual('CRITICAL', state)
        self.assertIn('last success 72', text)
        self.assertGreaterEqual(perfdata['since_success'], 7200)

    def test_missing_spool_is_unknown(self):
        missing = os.path.join(self.folder, 'missing')
        state, text, _ = self.cds_check(
            '--spool', missing, '--warning', '10m', '--critical', '30m')
        self.assertEqual('UNKNOWN', state)
        self.assertEqual(
            f'cannot read spool {missing}: No such file or directory', text)

    def test_unreadable_status_file_is_unknown(self):
        for content, reason in [
                (None, 'No such file or directory'),
                ('{"version": 1', 'Expecting'),
                ('{"version": 2}', 'status format version 2, not 1'),
                # Edited by hand.
                ('{"version": 1, "last_success": 5}', 'not a time: 5')]:
            with self.subTest(reason):
                if content is not None:
                    with open(self.status_file, 'w') as f:
                        f.write(content)
                state, text, _ = self.cds_check(
                    '--spool', self.spool, '--status-file',
                    self.status_file, '--warning', '10m', '--critical',
                    '30m')
                self.assertEqual('UNKNOWN', state)
                self.assertIn(
                    f'cannot read status file {self.status_file}: {reason}',
                    text)

    def test_usage_errors_are_unknown(self):
        for argv, message in [
                (['--spool', self.spool, '--warning', '10x', '--critical',
                  '1h'], "'10x' is not an age"),
                (['--spool', self.spool, '--warning', '1m', '--critical',
                  '1h', '--last-success-critical', '1h'],
                 '--last-success-critical needs --status-file'),
                (['--spool', self.spool, '--warning', '2h', '--critical',
                  '30m'], '--warning must not be longer than --critical'),
                ([], 'the following arguments are required')]:
            with self.subTest(message):
                state, text, _ = self.cds_check(*argv)
                self.assertEqual('UNKNOWN', state)
                self.assertIn(message, text)
