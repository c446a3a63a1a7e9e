"""The scope of a run's CDS lock: the spool held, the target connected,
the lock file taken; and all of it given back on the way out, also after
the connection was lost for good.

A watcher (``zeit.cds.watch.watcher``) holds the spool and the connection
for its whole life, and each of its runs only the lock.
"""
import contextlib
import logging

from zeit.cds.interfaces import CDSError
from zeit.cds.interfaces import ConnectionLost

log = logging.getLogger(__name__)


@contextlib.contextmanager
def lock_scope(spool, lock, reconnect, directory_label, *, dry_run=False,
               held=False):
    """Within the block the spool is held, the target of ``lock`` (a
    RemoteLock) is connected and the lock is ours; ``reconnect`` (a
    ReconnectPolicy) takes the lock again whenever it reconnects that
    target. ``directory_label`` names the remote directory in the log.

    A dry run only checks the locks as the run would (the spool's, then
    connected, RemoteLock.check): it holds no lock and writes nothing.
    Where the spool is ``held`` and the target connected already (by a
    watcher), only the lock is taken.
    """
    if held:
        with locked(lock, reconnect):
            yield
        return
    with contextlib.ExitStack() as stack:
        if dry_run:
            spool.check_free()
        else:
            stack.enter_context(spool.locked())
        stack.enter_context(connected(lock.target, directory_label))
        log.info('Accessed filestore %s', spool.path)
        if dry_run:
            reconnect.attempt(lock.check, target=lock.target)
        else:
            stack.enter_context(locked(lock, reconnect))
        yield


@contextlib.contextmanager
def connected(target, directory_label, *, announce=True):
    """Within the block ``target`` is connected. Without ``announce`` the
    attempt is logged at DEBUG only (a watcher trying again and again)."""
    log.log(logging.INFO if announce else logging.DEBUG,
            'Connecting to CDS FTP server (%s, %s %s)',
            target.description, directory_label, target.directory)
    target.connect()
    try:
        yield
    finally:
        target.close()
        log.info('Disconnected from CDS FTP server')


@contextlib.contextmanager
def locked(lock, reconnect):
    """Within the block ``lock`` is ours, and taken again whenever
    ``reconnect`` brings its connection back; it is released on the way
    out, with a reconnect if need be, or, once the connection was lost for
    good, with one more try, unless the server stopped answering."""
    log.info('Creating lock file')
    with reconnect.restoring(lock.target, lock.acquire):
        # A store of the lock file cut off by a dropped connection: the
        # reconnect takes the lock again, and over what the store left.
        reconnect.attempt(lock.acquire, target=lock.target)
        log.info('Lock file successfully created')
        try:
            yield
        except ConnectionLost:
            _release_after_loss(lock, reconnect)
            raise
        except BaseException:
            # What ended the run is what it reports (a signal's exit code,
            # a back-off's 75), not a failed release.
            try:
                _release(lock, reconnect)
            except CDSError as e:
                _left_for_the_next_run(e)
            raise
        _release(lock, reconnect)


def _release(lock, reconnect):
    log.info('Removing lock file')
    reconnect.attempt(lock.release, target=lock.target)
    log.info('Lock file successfully removed')


def _release_after_loss(lock, reconnect):
    """Remove the lock once more, without waiting, when a connection could
    not be brought back; it may have been another one, or only some
    commands the server cannot stand. Not when the server stopped
    answering: that would only wait for it once more."""
    if reconnect.server_silent:
        log.warning('Not removing the lock file: the CDS FTP server stopped '
                    'answering; the next run of ours takes it over')
        return
    try:
        if reconnect.gave_up_on(lock.target):
            lock.target.connect()
        log.info('Removing lock file')
        lock.release()
    except CDSError as e:
        _left_for_the_next_run(e)
    else:
        log.info('Lock file successfully removed')


def _left_for_the_next_run(error):
    log.warning('Could not remove the lock file (%s); the next run of ours '
                'takes it over', error)
