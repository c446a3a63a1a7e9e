"""The façade zeit.cms has always called: one function per direction.

It keeps the original behaviour: log every step, log failures at ERROR
and return None; the files stay where they were.
"""
import logging
import os

import gocept.filestore.filestore
import zope.component
import zope.configuration.xmlconfig

import zeit.cds
from zeit.cds.interfaces import CDSError
from zeit.cds.interfaces import IExporter
from zeit.cds.interfaces import IImporter
from zeit.cds.interfaces import IRemoteTargetFactory
from zeit.cds.interfaces import ISpool
from zeit.cds.interfaces import LocalFileError

log = logging.getLogger(__name__)


def ensure_configured():
    """Load zeit.cds's configure.zcml unless a site has set things up."""
    if zope.component.queryUtility(IRemoteTargetFactory, name='ftp') is None:
        zope.configuration.xmlconfig.file('configure.zcml', package=zeit.cds)


def open_spool(store_dir):
    """The ISpool for the folder ``store_dir``, which must exist."""
    if not os.path.isdir(store_dir):
        raise LocalFileError(f'Spool {store_dir} is not a directory')
    store = gocept.filestore.filestore.FileStore(store_dir)
    try:
        store.prepare()
    except OSError as e:
        raise LocalFileError(
            f'Cannot prepare spool {store_dir}: {e.strerror}') from e
    return ISpool(store)


def export(store_dir, hostname, port, user, password, upload_dir):
    """Export the files waiting in the spool ``store_dir`` to the CDS."""
    _run(IExporter, store_dir, hostname, port, user, password, upload_dir)


def import_(store_dir, hostname, port, user, password, download_dir):
    """Import the files the CDS offers into the spool ``store_dir``."""
    _run(IImporter, store_dir, hostname, port, user, password, download_dir)


def _run(interface, store_dir, hostname, port, user, password, directory):
    """Run the ``interface`` adapter of spool and target; log failures."""
    ensure_configured()
    try:
        spool = open_spool(store_dir)
        factory = zope.component.getUtility(IRemoteTargetFactory, name='ftp')
        target = factory(host=hostname, port=port, user=user,
                         password=password, directory=directory)
        zope.component.getMultiAdapter((spool, target), interface).run()
    except CDSError as e:
        log.error('%s', e)
