"""The CDS lock protocol on top of any IRemoteTarget.

Export holds the lock file ``write``, import holds ``read``; either run
backs off while the other file exists. A lock file names its owner, so a
lock left behind by a killed run of ours can be told from anybody else's.
"""
import dataclasses
import datetime
import logging
import os
import socket

from zeit.cds import names
from zeit.cds.interfaces import RemoteExists
from zeit.cds.interfaces import RemoteLocked

log = logging.getLogger(__name__)

TOOL = 'zeit.cds'


@dataclasses.dataclass(frozen=True)
class LockOwner:
    """Who holds a lock: written into the lock file, never a secret."""

    host: str
    pid: int
    spool: str
    time: str
    tool: str = TOOL

    @classmethod
    def this_process(cls, spool):
        return cls(host=socket.gethostname(), pid=os.getpid(),
                   spool=os.path.abspath(spool),
                   time=datetime.datetime.now(datetime.timezone.utc)
                   .isoformat(timespec='seconds'))

    def dumps(self):
        return ''.join(
            f'{field.name}: {getattr(self, field.name)}\n'
            for field in dataclasses.fields(self)).encode('utf-8')

    @classmethod
    def parse(cls, data):
        """The owner named by a lock file's content, or None.

        The content comes from the server and may be anything.
        """
        fields = {}
        for line in data.decode('utf-8', 'replace').splitlines():
            key, sep, value = line.partition(': ')
            if sep and value.isprintable():
                fields[key] = value
        try:
            return cls(host=fields['host'], pid=int(fields['pid']),
                       spool=fields['spool'], time=fields['time'],
                       tool=fields['tool'])
        except (KeyError, ValueError):
            return None

    def left_behind_by_us(self, spool):
        """Whether this lock is ours on this host and spool, from a dead
        process."""
        me = self.this_process(spool)
        return (self.tool == TOOL and self.host == me.host
                and self.spool == me.spool and not _alive(self.pid))

    def same_process(self, other):
        return (self.tool, self.host, self.pid, self.spool) == (
            other.tool, other.host, other.pid, other.spool)

    def __str__(self):
        return (f'{self.tool} on host {self.host}, pid {self.pid}, '
                f'spool {self.spool}, since {self.time}')


def _remove(target, name):
    error = target.remove_all([name])[name]
    if error is not None:
        raise error


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RemoteLock:
    """One CDS lock file, taken and released through a remote target.

    ``break_older_than`` (seconds, off when None) lets a run remove any
    lock older than that, whoever holds it.
    """

    def __init__(self, target, name, spool, break_older_than=None):
        self.target = target
        self.name = name
        self.spool = spool
        self.break_older_than = break_older_than
        self.owner = LockOwner.this_process(spool)

    def acquire(self):
        """Create the lock file; raises RemoteLocked when another lock
        holds. Taking a lock this process already holds is harmless (as
        after a reconnect)."""
        self._clear_way(self.target.names())
        content = self.owner.dumps()
        try:
            self.target.create(self.name, content)
        except RemoteExists:
            pass  # Ours from before a reconnect, or a racer's: see below.
        # Where a file cannot be created exclusively (FTP), and for the
        # other lock's name in any case: look again, so that of two
        # parties racing for the lock at most one goes on.
        present = self.target.names()
        others = [lock for lock in names.LOCKS
                  if lock != self.name and lock in present]
        ours = self.target.read(self.name) == content
        if others or not ours:
            self._give_up_after_race(others, ours)

    def _clear_way(self, present):
        for lock in names.LOCKS:
            if lock in present:
                self._clear(lock)

    def _clear(self, lock):
        owner = LockOwner.parse(self.target.read(lock))
        if owner is not None and owner.same_process(self.owner):
            return
        if owner is not None and owner.left_behind_by_us(self.spool):
            log.warning(
                'Taking over lock file %s left behind by a killed run (%s)',
                lock, owner)
            _remove(self.target, lock)
            return
        holder = owner or 'held by another party'
        if self.break_older_than is not None:
            age = self._age(lock)
            if age > self.break_older_than:
                log.warning('Breaking lock file %s, %d seconds old (%s)',
                            lock, age, holder)
                _remove(self.target, lock)
                return
        raise RemoteLocked(
            f'CDS directory {self.target.directory} is locked: '
            f'lock file {lock!r} exists ({holder})')

    def _age(self, lock):
        now = datetime.datetime.now(datetime.timezone.utc)
        return (now - self.target.modified(lock)).total_seconds()

    def _give_up_after_race(self, others, ours):
        if not ours:
            raise RemoteLocked(
                f'CDS directory {self.target.directory} is locked: '
                f'lock file {self.name!r} was taken by another party')
        _remove(self.target, self.name)
        raise RemoteLocked(
            f'CDS directory {self.target.directory} is locked: '
            f'lock file {others[0]!r} appeared')

    def release(self):
        """Remove the lock file, unless it is not ours (any more)."""
        if self.target.read(self.name) == self.owner.dumps():
            _remove(self.target, self.name)
        else:
            log.warning('Lock file %s is not ours any more; left alone',
                        self.name)
