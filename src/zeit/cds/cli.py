"""The console scripts cds-export and cds-import.

Exit codes: 0 done (nothing to do included); 75 the CDS is locked by
another party or the spool is busy; 1 a failure (connection, login,
remote directory, a file that could not be transferred, local I/O);
2 a usage or configuration error.
"""
import argparse
import logging
import logging.handlers
import signal
import sys

import zope.component

import zeit.cds.main
from zeit.cds import config
from zeit.cds import progress
from zeit.cds.run import shutdown
from zeit.cds.interfaces import CDSError
from zeit.cds.interfaces import ConfigurationError
from zeit.cds.interfaces import IExporter
from zeit.cds.interfaces import IImporter
from zeit.cds.interfaces import IRemoteTargetFactory
from zeit.cds.oserrors import reported_as
from zeit.cds.run.transfer import Transfer

log = logging.getLogger(__name__)

USAGE_ERROR = 2
FAILURE = 1

DIRECTIONS = {
    # direction: (interface, past tense, the remote directory's role)
    'export': (IExporter, 'Exported', 'upload'),
    'import': (IImporter, 'Imported', 'download'),
}


class ArgumentParser(argparse.ArgumentParser):

    def error(self, message):
        # One line, not the whole usage: cron mails should be readable.
        self.exit(USAGE_ERROR, f'{self.prog}: error: {message}\n')


def parser(direction):
    role = DIRECTIONS[direction][2]
    p = ArgumentParser(
        prog=f'cds-{direction}',
        description=f'{direction.capitalize()} files between a spool and '
        'the Content Drehscheibe (CDS). The password comes from '
        f'--password-file or the environment variable '
        f'{config.PASSWORD_VARIABLE}, never from the command line.')
    p.add_argument('--spool', help='the gocept.filestore spool folder')
    p.add_argument('--host', help='the CDS FTP server')
    p.add_argument('--port', help='its port (default 21)')
    p.add_argument('--user', help='the user name to log in with')
    p.add_argument('--dir', help=f'the remote {role} directory (default /)')
    p.add_argument('--password-file', help='a file holding the password')
    p.add_argument('--tls', action='store_true', default=None,
                   help='explicit TLS (FTPS); certificates are verified')
    p.add_argument('--ca-file',
                   help='trust the CAs in this PEM file (default: the '
                   "system's)")
    p.add_argument('--insecure-skip-verify', action='store_true',
                   default=None,
                   help='encrypt, but do not check the certificate')
    p.add_argument('--zcml', help="a site's ZCML declaring connections")
    p.add_argument('--connection',
                   help='the <cds:connection> of --zcml to use')
    p.add_argument('--config', help='an INI file, one section per target')
    p.add_argument('--section', help='the section of --config to use')
    p.add_argument('--logfile', help='log here too, rotated weekly')
    p.add_argument(
        '--break-lock-older-than', metavar='SECONDS',
        help='remove any CDS lock older than this, whoever holds it')
    p.add_argument(
        '--connections', metavar='N',
        help=f'transfer on N connections at once (default '
        f'{Transfer.connections}; 1 keeps the order of the files)')
    p.add_argument('--dry-run', action='store_true',
                   help='list what would be transferred; change nothing')
    verbosity = p.add_mutually_exclusive_group()
    verbosity.add_argument('-v', '--verbose', action='store_true',
                           help='also log debugging details')
    verbosity.add_argument('-q', '--quiet', action='store_true',
                           help='log only warnings and errors')
    return p


def settings_from(args):
    """The run's settings: the config file, overridden by the options."""
    values = {}
    if args.config:
        values = config.read_section(args.config, args.section)
    elif args.section:
        raise ConfigurationError('--section needs --config')
    for key, convert in config.KEYS.items():
        given = getattr(args, key.replace('-', '_'))
        if given is not None:
            values[key] = convert(given)
    return config.settings(values)


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
        with reported_as(ConfigurationError,
                         f'Cannot open log file {logfile}'):
            handler = logging.handlers.TimedRotatingFileHandler(
                logfile, when='W0', backupCount=8, encoding='utf-8')
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
    interface = DIRECTIONS[direction][0]
    if settings.zcml:
        zeit.cds.main.load_zcml(settings.zcml)
    zeit.cds.main.ensure_configured()
    if settings.connection:
        declared = zeit.cds.main.connection(settings.connection)
        target, connections = declared.target(), declared.connections
    else:
        target, connections = target_for(settings), None
    transfer = zeit.cds.main.transfer(
        interface, settings.spool, target,
        settings.connections or connections)
    transfer.break_lock_older_than = settings.break_lock_older_than
    return transfer


def target_for(settings):
    options = {}
    if settings.tls:
        options = dict(ca_file=settings.ca_file,
                       verify=not settings.insecure_skip_verify)
    factory = zope.component.getUtility(
        IRemoteTargetFactory, name='ftps' if settings.tls else 'ftp')
    return factory(host=settings.host, port=settings.port,
                   user=settings.user, password=settings.password,
                   directory=settings.dir, **options)


def run(direction, argv=None):
    """Run one direction; returns the exit code."""
    args = parser(direction).parse_args(argv)
    try:
        settings = settings_from(args)
        set_up_logging(args, settings.logfile)
    except ConfigurationError as e:
        print(f'cds-{direction}: error: {e}', file=sys.stderr)
        return USAGE_ERROR
    with shutdown.graceful():
        try:
            transfer = transfer_for(direction, settings)
            if args.dry_run:
                for name in transfer.plan():
                    log.info('Would %s file %s', direction, name)
                return 0
            with progress.bar_on_terminal(sys.stderr, transfer):
                summary = transfer.run()
        except CDSError as e:
            log.error('%s', e)
            return e.exit_code
    log.info('%s %s', DIRECTIONS[direction][1], summary)
    return FAILURE if summary.failures else 0


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
