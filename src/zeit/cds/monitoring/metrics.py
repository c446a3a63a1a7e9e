"""The metrics of the runs, for node_exporter's textfile collector.

One file per run (``--metrics-file``, named ``*.prom`` for the collector),
labelled by ``direction`` and ``connection``, replaced atomically after
every run. The counters and the time of the last success are carried over
from the file the previous run left, so they only grow.

prometheus_client's ``write_to_textfile`` renames a temporary file onto
the final name, but does not fsync: after a power cut the final name may
hold an empty file. So the text is made with ``generate_latest`` and
written by ``zeit.cds.durable``, which does.
"""
import logging

import prometheus_client
import prometheus_client.core
import prometheus_client.parser

from zeit.cds.durable import write_atomically
from zeit.cds.monitoring.status import READABLE
from zeit.cds.monitoring.status import RESULTS

log = logging.getLogger(__name__)

PREFIX = 'zeit_cds_'
LABELS = ('direction', 'connection')
# Carried over from the previous file, each grown by the Outcome's
# attribute of its name (without _total).
COUNTERS = {
    'files': 'Files transferred, over all runs.',
    'bytes': 'Bytes transferred, over all runs.',
    'failures': 'Files that failed on their own, over all runs.',
}
LAST_SUCCESS = 'last_success_timestamp_seconds'


def write(path, outcome):
    """Replace the metrics file ``path`` by the metrics after ``outcome``,
    durably. Raises OSError."""
    registry = prometheus_client.CollectorRegistry()
    registry.register(RunCollector(outcome, previous(path, outcome)))
    write_atomically(path, prometheus_client.generate_latest(registry),
                     durable=True, mode=READABLE)


def previous(path, outcome):
    """The samples of the previous file ``path`` for the outcome's labels,
    by name; none when there is no file, or one that cannot be read (then
    the counters start again, which Prometheus takes as a reset)."""
    labels = _labels(outcome)
    found = {}
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
        for family in prometheus_client.parser.text_string_to_metric_families(
                text):
            for sample in family.samples:
                if sample.labels == labels:
                    found[sample.name] = sample.value
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as e:
        log.warning('Cannot read the previous metrics file %s (%s); the '
                    'counters start again', path, e)
        return {}
    return found


def _labels(outcome):
    return {'direction': outcome.direction, 'connection': outcome.connection}


class RunCollector:
    """The metrics after ``outcome``, carrying over the ``previous``
    samples (by name)."""

    def __init__(self, outcome, previous):
        self.outcome = outcome
        self.previous = previous

    def collect(self):
        outcome, previous = self.outcome, self.previous
        values = [outcome.direction, outcome.connection]
        core = prometheus_client.core

        def gauge(name, documentation, value):
            family = core.GaugeMetricFamily(
                PREFIX + name, documentation, labels=LABELS)
            family.add_metric(values, value)
            return family

        yield gauge('last_run_timestamp_seconds',
                    'When the last run ended, in seconds since the epoch.',
                    outcome.ended)
        last_success = (outcome.ended if outcome.result == 'ok'
                        else previous.get(PREFIX + LAST_SUCCESS))
        if last_success is not None:
            yield gauge(LAST_SUCCESS, 'When the last successful run ended, '
                        'in seconds since the epoch.', last_success)
        # An enum the Prometheus way: one series per result, 1 for the
        # last run's.
        result = core.GaugeMetricFamily(
            PREFIX + 'last_result', 'How the last run ended: 1 for its '
            'result, 0 for the others.', labels=LABELS + ('result',))
        for name in RESULTS:
            result.add_metric(values + [name],
                              1 if name == outcome.result else 0)
        yield result
        yield gauge('last_exit_code', 'The exit code of the last run.',
                    outcome.exit_code)
        for name, documentation in COUNTERS.items():
            counter = core.CounterMetricFamily(
                PREFIX + name, documentation, labels=LABELS)
            counter.add_metric(values, previous.get(
                f'{PREFIX}{name}_total', 0) + getattr(outcome, name))
            yield counter
        if outcome.backlog is not None:
            yield gauge('backlog_files', "How many files wait in the "
                        "spool's new/ after the last run.",
                        outcome.backlog.files)
            yield gauge('backlog_oldest_seconds', 'How long the oldest file '
                        "in new/ has waited (0 when none waits).",
                        outcome.backlog.oldest_seconds or 0)
        yield gauge('run_duration_seconds', 'How long the last run took.',
                    outcome.duration)
