"""The façade zeit.cms has always called: one function per direction.

It keeps the original behaviour: log every step, log failures at ERROR
(a back-off under another party's lock at WARNING) and return None; the
files stay where they were.
"""
import logging
import os

import gocept.filestore.filestore
import zope.component
import zope.configuration.exceptions
import zope.configuration.xmlconfig
from zope.configuration.xmlconfig import ParserInfo

import zeit.cds
import zeit.cds.run.shutdown
from zeit.cds.interfaces import CDSError
from zeit.cds.interfaces import IConnection
from zeit.cds.interfaces import IExporter
from zeit.cds.interfaces import IImporter
from zeit.cds.interfaces import IRemoteTargetFactory
from zeit.cds.interfaces import ISpool
from zeit.cds.interfaces import LocalFileError
from zeit.cds.interfaces import RemoteLocked
from zeit.cds.interfaces import SettingsError
from zeit.cds.interfaces import SpoolBusy
from zeit.cds.oserrors import reported_as

log = logging.getLogger(__name__)


def ensure_configured():
    """Load zeit.cds's configure.zcml unless a site has set things up."""
    if zope.component.queryUtility(IRemoteTargetFactory, name='ftp') is None:
        zope.configuration.xmlconfig.file('configure.zcml', package=zeit.cds)


def open_spool(store_dir):
    """The ISpool for the folder ``store_dir``, prepared as the original
    did: the folder and its tmp, new and cur are made where missing. (The
    command line refuses a folder that is not a spool unless asked to
    prepare it: see zeit.cds.config.)"""
    store = gocept.filestore.filestore.FileStore(store_dir)
    with reported_as(LocalFileError, f'Cannot prepare spool {store_dir}'):
        store.prepare()
    return ISpool(store)


def transfer(interface, store_dir, target, connections=None):
    """The ``interface`` (IExporter, IImporter) between the spool
    ``store_dir`` and ``target``; on ``connections`` at once, if given."""
    ensure_configured()
    found = zope.component.getMultiAdapter(
        (open_spool(store_dir), target), interface)
    if connections is not None:
        found.connections = connections
    return found


def connection(name):
    """The IConnection named ``name``, declared in ZCML."""
    settings = zope.component.queryUtility(IConnection, name=name)
    if settings is None:
        raise SettingsError(f'No CDS connection {name!r} is configured')
    return settings


def load_zcml(path):
    """Load a site's ZCML file, which includes zeit.cds."""
    try:
        with reported_as(SettingsError, f'Cannot load ZCML {path}'):
            zope.configuration.xmlconfig.file(os.path.abspath(path))
    except zope.configuration.xmlconfig.ZopeSAXParseException as e:
        # Its own text shows the open file's repr; the parser's error
        # names file, line and column.
        raise SettingsError(f'Cannot load ZCML {path}: {e.evalue}') from e
    except zope.configuration.exceptions.ConfigurationError as e:
        raise SettingsError(f'Cannot load ZCML {path}: {_told(e)}') from e


def _told(error):
    """zope.configuration's ``error`` in one line (cron mails want one),
    with the places in the files it names, but not their text: that may
    hold a secret, such as a passphrase put into an attribute."""
    conflicts = getattr(error, '_conflicts', {})
    told = ['Conflicting configuration actions' if conflicts
            else Exception.__str__(error) or type(error).__name__]
    for discriminator, places in sorted(conflicts.items()):
        told.append(f'for {discriminator}:')
        told += [_place(place) for place in places]
    # The places and the lines of a wrapped exception, innermost last.
    told += [_place(detail)
             for detail in reversed(getattr(error, '_details', ()))]
    return ' '.join(' '.join(told).split())


def _place(detail):
    # A ParserInfo's repr is its place alone; its str adds the text there.
    return repr(detail) if isinstance(detail, ParserInfo) else str(detail)


def export_via(connection, store_dir):
    """Export the spool ``store_dir`` through the connection named
    ``connection`` (declared with ``<cds:connection>``); returns the
    ISummary and raises a CDSError when the run fails as a whole."""
    return _run_via(IExporter, connection, store_dir)


def import_via(connection, store_dir):
    """Import into the spool ``store_dir`` through the connection named
    ``connection``; like ``export_via``."""
    return _run_via(IImporter, connection, store_dir)


def _run_via(interface, name, store_dir):
    ensure_configured()
    settings = connection(name)
    return transfer(interface, store_dir, settings.target(),
                    settings.connections).run()


def export(store_dir, hostname, port, user, password, upload_dir):
    """Export the files waiting in the spool ``store_dir`` to the CDS."""
    _run(IExporter, store_dir, hostname, port, user, password, upload_dir)


def import_(store_dir, hostname, port, user, password, download_dir):
    """Import the files the CDS offers into the spool ``store_dir``."""
    _run(IImporter, store_dir, hostname, port, user, password, download_dir)


def _run(interface, store_dir, hostname, port, user, password, directory):
    """Run the ``interface`` adapter of spool and target; log failures."""
    ensure_configured()
    with zeit.cds.run.shutdown.graceful():
        try:
            factory = zope.component.getUtility(
                IRemoteTargetFactory, name='ftp')
            target = factory(host=hostname, port=port, user=user,
                             password=password, directory=directory)
            # One connection: the files in order, as it always was.
            transfer(interface, store_dir, target, connections=1).run()
        except CDSError as e:
            # A back-off (another party's lock, another run on the spool)
            # is routine: a WARNING, as on the command line.
            log.log(logging.WARNING if isinstance(e, (RemoteLocked, SpoolBusy))
                    else logging.ERROR, '%s', e)
