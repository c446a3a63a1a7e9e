"""The console scripts cds-export and cds-import.

Exit codes: see EXIT_CODES, which --help shows.
"""
import argparse
import logging
import re
import signal
import sys
import textwrap
import time

import zope.configuration.fields
import zope.schema.interfaces

import zeit.cds.main
from zeit.cds import config
from zeit.cds import connection
from zeit.cds import names
from zeit.cds import progress
from zeit.cds.monitoring import status
from zeit.cds.monitoring.backlog import backlog
from zeit.cds.run import shutdown
from zeit.cds.run.report import Summary
from zeit.cds.interfaces import CDSError
from zeit.cds.interfaces import IExporter
from zeit.cds.interfaces import IImporter
from zeit.cds.interfaces import SettingsError
from zeit.cds.oserrors import reported_as

log = logging.getLogger(__name__)

USAGE_ERROR = 2
FAILURE = 1
BACK_OFF = status.BACK_OFF

EXIT_CODES = """\
exit codes:
  0    done (nothing to do included)
  1    a failure: connection, login, remote directory, local I/O, or a
       file that could not be transferred (the others were)
  2    a usage or configuration error (one line on stderr)
  75   backed off: the CDS is locked by another party, or another run
       (or a watcher) works on the spool; try again later
  130  stopped by SIGINT (Ctrl-C) between two files, the CDS lock
       released
  143  stopped by SIGTERM, likewise
With --watch: 0 after SIGTERM or SIGINT (the file in flight finished, the
CDS lock released), 2 for a usage or configuration error; everything else
is waited out.
"""

DIRECTIONS = {
    # direction: (interface, past tense, description)
    'export': (IExporter, 'Exported',
               'Export files from a spool to the CDS'),
    'import': (IImporter, 'Imported',
               'Import files from the CDS into a spool'),
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse's, with a usage error in one line and exit code 2, and
    careful with secrets typed where they do not belong: no abbreviated
    options (``--password SECRET`` would be taken for ``--password-file``
    and the secret shown as its name), and of arguments it does not know
    only the options are shown, not the values."""

    def __init__(self, *args, **kw):
        super().__init__(*args, allow_abbrev=False, **kw)

    def parse_args(self, args=None, namespace=None):
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            self.error(_unrecognized(unknown))
        return parsed

    def error(self, message):
        # argparse quotes a value given to a flag (-vSECRET); not here.
        message = re.sub(r"ignored explicit argument .*",
                         'takes no value (not shown)', message)
        # One line, not the whole usage: cron mails should be readable.
        self.exit(USAGE_ERROR, f'{self.prog}: error: {message}\n')


def _unrecognized(arguments):
    """What argparse would say of ``arguments`` it does not know, naming
    only long options: their values (also one that looks like an option),
    and short options, which may have one joined (``-pSECRET``), are only
    counted."""
    options, hidden, valued = [], 0, False
    for argument in arguments:
        if argument.startswith('--') and not valued:
            option, given, _ = argument.partition('=')
            options.append(option)
            hidden += bool(given)
            valued = not given
        else:
            hidden += 1
            valued = False
    told = ' '.join(options)
    if hidden:
        told += f' and {hidden} more' if told else str(hidden)
        told += ' (not shown)'
    if '--password' in options:
        told += ('; the password comes from --password-file or '
                 f'{connection.PASSWORD_VARIABLE}, never from the command '
                 'line')
    return f'unrecognized arguments: {told}'


def parser(direction):
    """The options: one per config key (see zeit.cds.config), derived from
    the settings' fields, and those of the command line alone."""
    p = ArgumentParser(
        prog=f'cds-{direction}',
        # Wrapped here: the formatter keeps the exit codes' lines as
        # they are, and this text too.
        description=textwrap.fill(
            f'{DIRECTIONS[direction][2]} (CDS: the Content '
            'Drehscheibe). The password comes from --password-file or '
            f'the environment variable {connection.PASSWORD_VARIABLE}, '
            'never from the command line.'),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    groups = {'run': p, 'connection': p}
    for key in config.keys().values():
        if key.kind not in groups:
            groups[key.kind] = p.add_argument_group(
                f'only for --protocol {key.kind}')
        groups[key.kind].add_argument(
            f'--{key.key}', help=_help(key), default=None,
            **({'action': 'store_true'}
               if zope.schema.interfaces.IBool.providedBy(key.field)
               else {'metavar': _metavar(key)}))
    p.add_argument('--config', help='an INI file, one section per target')
    p.add_argument('--section', help='the section of --config to use')
    p.add_argument('--dry-run', action='store_true',
                   help='list what would be transferred; change nothing')
    verbosity = p.add_mutually_exclusive_group()
    verbosity.add_argument('-v', '--verbose', action='store_true',
                           help='also log debugging details: the FTP '
                           'commands and replies of every connection')
    verbosity.add_argument('-q', '--quiet', action='store_true',
                           help='log only warnings and errors; a back-off '
                           '(exit 75) only when the lock is older than '
                           '--warn-lock-older-than')
    return p


# How --help shows the value of an option, where its field does not say.
METAVARS = {'spool': 'DIR', 'dir': 'DIR', 'protocol': 'NAME',
            'connections': 'N', 'break-lock-older-than': 'SECONDS',
            'warn-lock-older-than': 'SECONDS', 'timeout': 'SECONDS',
            'interval': 'SECONDS', 'keepalive': 'SECONDS'}


def _metavar(key):
    if isinstance(key.field, zope.configuration.fields.Path):
        return 'FILE'
    return METAVARS.get(key.key)


def _help(key):
    """The field's description, in the style of --help."""
    text = key.field.description.rstrip('.')
    if key.inverted:
        # The field says what it does when true, as a verb.
        text = (f'do not {text[0].lower()}{text[1:]} (sets {key.name} to '
                'false)')
    if key.name == 'scheme':
        text += f'; known: {", ".join(connection.known_schemes())}'
    low, high = (getattr(key.field, 'min', None),
                 getattr(key.field, 'max', None))
    notes = []
    if high is not None:
        notes.append(f'{low}-{high}')
    elif low is not None:
        notes.append(f'at least {low}')
    if key.field.default not in (None, False) and not key.inverted:
        notes.append(f'default {key.field.default}')
    if notes:
        text += f' ({"; ".join(notes)})'
    return text[0].lower() + text[1:]


def settings_from(args):
    """The run's settings: the config file, overridden by the options."""
    given, section = {}, None
    if args.config:
        section, given = config.read_section(args.config, args.section)
    elif args.section:
        raise SettingsError('--section needs --config')
    for key in config.keys().values():
        value = getattr(args, key.key.replace('-', '_'))
        if value is not None:
            given[key.key] = config.converted(key, value)
    settings = config.settings(given)
    settings.section = section
    return settings


def set_up_logging(args, logfile):
    level = (logging.DEBUG if args.verbose
             else logging.WARNING if args.quiet else logging.INFO)
    root = logging.getLogger()
    root.setLevel(level)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(ConsoleFormatter())
    if logfile:
        # With a log file, cron mails only what needs attention. (A filter,
        # not a level: the progress bar's handler takes over filters.)
        console.addFilter(lambda record: record.levelno >= logging.WARNING)
        # Reopened when logrotate moved the file away: the export and the
        # import, writing one file, leave rotating it to logrotate.
        # (Imported here: a run without a log file does without it.)
        from logging.handlers import WatchedFileHandler
        with reported_as(SettingsError, f'Cannot open log file {logfile}'):
            handler = WatchedFileHandler(logfile, encoding='utf-8')
        handler.setFormatter(logging.Formatter(
            '%(asctime)s %(levelname)s %(message)s'))
        root.addHandler(handler)
    root.addHandler(console)


class ConsoleFormatter(logging.Formatter):
    """Plain lines; warnings and errors say so."""

    def format(self, record):
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            message = f'{record.levelname}: {message}'
        return message


def transfer_for(direction, settings):
    """The run, with its target made of the command line's settings or of
    the ZCML connection they name."""
    interface = DIRECTIONS[direction][0]
    if settings.zcml:
        zeit.cds.main.load_zcml(settings.zcml)
    if settings.connection:
        declared = zeit.cds.main.connection(settings.connection)
    else:
        declared = settings.remote
    target = declared.target(settings.password)
    transfer = zeit.cds.main.transfer(
        interface, settings.spool, target,
        settings.connections or declared.connections)
    transfer.break_lock_older_than = settings.break_lock_older_than
    return transfer


def report(error, quiet, warn_lock_older_than):
    """Log why the run ended with ``error`` (see ``verdict``)."""
    log.log(*verdict(error, quiet, warn_lock_older_than))


def verdict(error, quiet, warn_lock_older_than):
    """How to tell that a run ended with ``error``, as (level, text). A
    back-off is routine: a WARNING, and only INFO with -q (cron mails
    only what needs a person), unless the other party's lock is older
    than ``warn_lock_older_than`` seconds: then it may be forgotten, an
    ERROR."""
    if error.exit_code != BACK_OFF:
        return logging.ERROR, str(error)
    age = getattr(error, 'lock_age', None)
    if age is not None and age > warn_lock_older_than:
        return logging.ERROR, f'{error}; it is {int(age)} seconds old'
    return (logging.INFO if quiet else logging.WARNING), str(error)


def usage_error(direction, error):
    print(f'cds-{direction}: error: {error}', file=sys.stderr)
    return USAGE_ERROR


def run(direction, argv=None):
    """Run one direction; returns the exit code."""
    # The factories registered by zeit.cds declare options of their own.
    zeit.cds.main.ensure_configured()
    args = parser(direction).parse_args(argv)
    try:
        settings = settings_from(args)
        if settings.watch and args.dry_run:
            raise SettingsError('--dry-run and --watch exclude each other')
        # Given on the command line, not in a config file, which cron and
        # a watcher may share.
        for option in ('interval', 'keepalive'):
            if getattr(args, option) is not None and not settings.watch:
                raise SettingsError(f'--{option} needs --watch')
        set_up_logging(args, settings.logfile)
    except SettingsError as e:
        return usage_error(direction, e)
    if settings.watch:
        return watch(direction, args, settings)
    started, clock = time.time(), time.monotonic()
    with shutdown.graceful():
        code, summary, reason = transfer_once(direction, args, settings)
        if not args.dry_run:
            # Still within graceful(): a SIGTERM ends the process only
            # once the run has told how it ended.
            code = monitor(settings, direction, code, summary, reason,
                           started, time.monotonic() - clock)
    return code


def watch(direction, args, settings):
    """Watch (``zeit.cds.watch.watcher``) until SIGTERM or SIGINT; returns
    the exit code: 0, or 2 for a configuration error."""
    # Imported here: a run from cron does without inotify.
    from zeit.cds.watch.systemd import Notifier
    from zeit.cds.watch.watcher import Watch
    try:
        transfer = transfer_for(direction, settings)
    except SettingsError as e:
        return usage_error(direction, e)
    except CDSError as e:
        report(e, args.quiet, settings.warn_lock_older_than)
        return e.exit_code

    def told(code, summary, reason, started, duration):
        monitor(settings, direction, code, summary, reason, started,
                duration)

    watcher = Watch(
        transfer, interval=settings.interval, keepalive=settings.keepalive,
        verdict=lambda error: verdict(error, args.quiet,
                                      settings.warn_lock_older_than),
        notifier=Notifier(), told=told)
    with shutdown.graceful(redeliver=False):
        try:
            watcher.serve()
        except SettingsError as e:
            return usage_error(direction, e)
    return 0


def transfer_once(direction, args, settings):
    """Transfer what there is, or only list it with --dry-run; returns the
    exit code, the run's Summary (as far as it got) and the line that
    tells why it did not end well (None when it did)."""
    try:
        transfer = transfer_for(direction, settings)
    except SettingsError as e:
        return usage_error(direction, e), Summary(), str(e)
    except CDSError as e:
        report(e, args.quiet, settings.warn_lock_older_than)
        return e.exit_code, Summary(), str(e)
    try:
        if args.dry_run:
            planned, refused = transfer.plan()
            for name in planned:
                log.info('Would %s file %s', direction, names.shown(name))
            # As the run would tell them, and end.
            for error in refused.values():
                log.error('%s', error)
            if refused:
                return (FAILURE, Summary(),
                        f'{len(refused)} would fail, {len(planned)} go')
            return 0, Summary(), None
        with progress.bar_on_terminal(sys.stderr, transfer):
            summary = transfer.run()
    except CDSError as e:
        report(e, args.quiet, settings.warn_lock_older_than)
        return e.exit_code, transfer.summary or Summary(), str(e)
    log.info('%s %s', DIRECTIONS[direction][1], summary)
    if summary.failures:
        return (FAILURE, summary,
                f'{summary.failures} failed, {summary.files} transferred')
    return 0, summary, None


def connection_label(settings):
    """What the status and the metrics call the connection: the ZCML
    connection's name, the config file's section, or the host (the folder
    for a scheme without one)."""
    return (settings.connection or settings.section or settings.remote.host
            or settings.remote.directory)


def _backlog(spool):
    """The spool's Backlog; None, and an ERROR line, when its ``new``
    cannot be read."""
    try:
        return backlog(spool, time.time())
    except OSError as e:
        log.error('Cannot count the files waiting in spool %s: %s',
                  spool, e.strerror or e)
        return None


def monitor(settings, direction, code, summary, reason, started, duration):
    """Write the status and metrics files asked for, of a run (or a
    watcher's burst) of ``direction`` that began at ``started`` (seconds
    since the epoch), took ``duration`` seconds and ended with the exit
    ``code``, its Summary, and the ``reason`` it did not end well (None
    when it did); returns the exit code, FAILURE instead of 0 when they
    cannot be written (monitoring that silently stands still would tell
    of a success forever)."""
    if not (settings.status_file or settings.metrics_file):
        return code
    outcome = status.Outcome(
        direction=direction, connection=connection_label(settings),
        started=started, ended=time.time(), duration=duration,
        exit_code=code, reason=reason, files=summary.files,
        bytes=summary.bytes, failures=summary.failures,
        backlog=_backlog(settings.spool))
    writers = []
    if settings.status_file:
        writers.append((status.write, settings.status_file))
    if settings.metrics_file:
        # prometheus_client only when asked for: it costs start-up time.
        from zeit.cds.monitoring import metrics
        writers.append((metrics.write, settings.metrics_file))
    for write, path in writers:
        path = for_direction(path, outcome)
        try:
            write(path, outcome)
        except OSError as e:
            # The file asked for: the error's own may be a temporary.
            log.error('Cannot write %s: %s', path, e.strerror or e)
            return code or FAILURE
    return code


def for_direction(path, outcome):
    """``path`` with ``{direction}`` made ``export`` or ``import``: the
    export and the import may share the setting (in a config file's
    DEFAULT section), and each needs files of its own."""
    return path.replace('{direction}', outcome.direction)


def main(direction, argv):
    try:
        sys.exit(run(direction, argv))
    except KeyboardInterrupt:
        # The run has stopped cleanly already and said so.
        sys.exit(128 + signal.SIGINT)


def export_main(argv=None):
    main('export', argv)


def import_main(argv=None):
    main('import', argv)
