"""What every run does around its transfers: the session and the CDS lock,
with their log lines."""
import contextlib
import logging
import time

from zeit.cds.interfaces import ConnectionLost
from zeit.cds.lock import RemoteLock
from zeit.cds.summary import Summary

log = logging.getLogger(__name__)


@contextlib.contextmanager
def session(target, directory_label):
    """Be connected to the target for the length of the block."""
    log.info('Connecting to CDS FTP server (%s, %s %s)',
             target.description, directory_label, target.directory)
    target.connect()
    try:
        yield
    finally:
        target.close()
        log.info('Disconnected from CDS FTP server')


@contextlib.contextmanager
def locked(target, lock_name, spool):
    """Hold the CDS lock file ``lock_name`` for the length of the block."""
    lock = RemoteLock(target, lock_name, spool.path)
    log.info('Creating lock file')
    lock.acquire()
    log.info('Lock file successfully created')
    try:
        yield
    except ConnectionLost:
        # The lock cannot be removed without a session; a later run of
        # ours recognises it as left behind.
        raise
    except BaseException:
        _release(lock)
        raise
    _release(lock)


def _release(lock):
    log.info('Removing lock file')
    lock.release()
    log.info('Lock file successfully removed')


@contextlib.contextmanager
def running(spool, target, directory_label, lock_name):
    """One whole run: connected, the spool named, the lock held.

    Yields the run's Summary to fill in; its seconds are set when the
    block ends without an error.
    """
    summary = Summary()
    started = time.monotonic()
    with session(target, directory_label):
        log.info('Accessed filestore %s', spool.path)
        with locked(target, lock_name, spool):
            yield summary
    summary.seconds = time.monotonic() - started
