"""cds-check: an Icinga/Nagios plugin telling whether a spool's files get
away, by what waits in its ``new`` and by the status file of its runs.

It reads local files only: it never needs the password and never
connects to the CDS.

Thresholds follow the monitoring plugins' range convention (nagiosplugin
implements it): ``--warning 10m`` is the range 0 to 600 seconds, and a
value inside it, its ends included, is OK. So an oldest file that has
waited exactly 600 seconds is OK, one that has waited 601 is WARNING.
"""
import argparse
import re
import time

import nagiosplugin

from zeit.cds.monitoring.backlog import backlog
from zeit.cds.monitoring.status import parse_time
from zeit.cds.monitoring.status import read

UNKNOWN = 3
UNITS = {'': 1, 's': 1, 'm': 60, 'h': 3600, 'd': 86400}


def age(text):
    """Seconds of an AGE: 90s, 10m, 2h, 1d, or plain seconds."""
    found = re.fullmatch(r'(\d+)([smhd]?)', text.strip())
    if not found:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not an age such as 90s, 10m, 2h or 600')
    return int(found.group(1)) * UNITS[found.group(2)]


class Spool(nagiosplugin.Resource):
    """What waits in the spool ``path``, and, with a ``status_file``, how
    long ago a run last succeeded."""

    name = 'CDS'

    def __init__(self, path, status_file=None, clock=time.time):
        self.path = path
        self.status_file = status_file
        self.clock = clock

    def probe(self):
        now = self.clock()
        try:
            waiting = backlog(self.path, now)
        except OSError as e:
            return [nagiosplugin.Metric(
                'unreadable', f'cannot read spool {self.path}: '
                f'{e.strerror or e}', context='unreadable')]
        metrics = [
            nagiosplugin.Metric('backlog', waiting.files, min=0,
                                context='backlog'),
            nagiosplugin.Metric('oldest', round(waiting.oldest_seconds or 0),
                                uom='s', min=0, context='oldest')]
        if self.status_file:
            try:
                last_success = read(self.status_file).get('last_success')
                since = (None if last_success is None
                         else max(0, round(now - parse_time(last_success))))
            except (OSError, ValueError) as e:
                return [nagiosplugin.Metric(
                    'unreadable', f'cannot read status file '
                    f'{self.status_file}: {getattr(e, "strerror", None) or e}',
                    context='unreadable')]
            metrics.append(nagiosplugin.Metric(
                'since_success', since, uom='s', min=0,
                context='since_success'))
        return metrics


class Unreadable(nagiosplugin.Context):
    """A file the check needs cannot be read: the state is unknown."""

    def evaluate(self, metric, resource):
        return self.result_cls(nagiosplugin.Unknown, metric.value, metric)


class SinceSuccess(nagiosplugin.ScalarContext):
    """Seconds since the last successful run; a run that never succeeded
    is as bad as one that did long ago."""

    def evaluate(self, metric, resource):
        if metric.value is None:
            state = (nagiosplugin.Critical if self.critical.end
                     != float('inf') else nagiosplugin.Ok)
            return self.result_cls(state, metric=metric)
        return super().evaluate(metric, resource)

    def describe(self, metric):
        if metric.value is None:
            return 'no successful run yet'
        return super().describe(metric)

    def performance(self, metric, resource):
        if metric.value is None:
            return None
        return super().performance(metric, resource)


class Summary(nagiosplugin.Summary):

    def ok(self, results):
        return ', '.join(str(result) for result in results)

    def problem(self, results):
        return ', '.join(str(result) for result in results.most_significant)


class ArgumentParser(argparse.ArgumentParser):

    def error(self, message):
        # A usage error is UNKNOWN to the monitoring (2 would be
        # CRITICAL), told on stdout, where the monitoring reads.
        print(f'CDS UNKNOWN - {self.prog}: {message}')
        self.exit(UNKNOWN)


def parser():
    p = ArgumentParser(
        prog='cds-check',
        description='An Icinga/Nagios plugin: is anything stuck in the '
        "spool's new/, and since when; when did a run last succeed? "
        'Reads local files only. AGE: 90s, 10m, 2h, 1d, or seconds. '
        'An age equal to a threshold is still within it.',
        epilog='exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN')
    p.add_argument('--spool', required=True, metavar='DIR',
                   help='the spool whose new/ to look at')
    p.add_argument('--status-file', metavar='FILE',
                   help='the --status-file of the runs')
    p.add_argument('--warning', required=True, type=age, metavar='AGE',
                   help='WARNING when the oldest file in new/ waited longer')
    p.add_argument('--critical', required=True, type=age, metavar='AGE',
                   help='CRITICAL when the oldest file in new/ waited '
                   'longer')
    p.add_argument('--last-success-critical', type=age, metavar='AGE',
                   help='CRITICAL when the last successful run ended '
                   'longer ago, or there was none (needs --status-file)')
    p.add_argument('-v', '--verbose', action='count', default=0,
                   help='more output (up to -vvv)')
    return p


def check_for(args, clock=time.time):
    """The nagiosplugin.Check of the parsed command line ``args``, its
    ages measured by ``clock``."""
    return nagiosplugin.Check(
        Spool(args.spool, args.status_file, clock),
        nagiosplugin.ScalarContext(
            'backlog', fmt_metric='{value} files waiting'),
        nagiosplugin.ScalarContext(
            'oldest', warning=str(args.warning),
            critical=str(args.critical),
            fmt_metric='the oldest for {value}{uom}'),
        SinceSuccess(
            'since_success', critical=(
                None if args.last_success_critical is None
                else str(args.last_success_critical)),
            fmt_metric='last success {value}{uom} ago'),
        Unreadable('unreadable'),
        Summary())


@nagiosplugin.guarded(verbose=0)
def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    if args.last_success_critical is not None and not args.status_file:
        p.error('--last-success-critical needs --status-file')
    if args.warning > args.critical:
        # Swapped: the warning would never be seen.
        p.error('--warning must not be longer than --critical')
    check_for(args).main(verbose=args.verbose)
