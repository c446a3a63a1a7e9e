"""The CDS lock protocol on top of any IRemoteTarget.

Export holds the lock file ``write``, import holds ``read``; either run
backs off while the other file exists. A lock file names its owner, so a
lock left behind by a killed run of ours can be told from anybody else's;
one that a failed store of ours left (empty, cut short, unreadable) is
told by the spool's notes on the server (ServerNotes), which also keep
the server's clock, by which lock ages are judged.
"""
import dataclasses
import datetime
import logging
import os
import socket
import time

from zeit.cds import names
from zeit.cds.interfaces import CDSError
from zeit.cds.interfaces import ConnectionLost
from zeit.cds.interfaces import RemoteError
from zeit.cds.interfaces import RemoteExists
from zeit.cds.interfaces import RemoteLocked
from zeit.cds.interfaces import TransferError
from zeit.cds.run.notes import ServerNotes

log = logging.getLogger(__name__)

TOOL = 'zeit.cds'

# What a run does about a lock file that may go, as its log line says.
DOING = {'take over': 'Taking over', 'break': 'Breaking'}


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


def _part_of(sent, content):
    """Whether a lock file with ``content`` (None: unreadable) may be what
    a store of the bytes ``sent`` left: all or the beginning of them."""
    return content is None or sent.startswith(content)


def _described(content):
    """A lock file's ``content`` (None: unreadable), for a log line."""
    if content is None:
        return 'unreadable'
    if not content:
        return 'empty'
    return str(LockOwner.parse(content) or 'incomplete')


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

    ``spool`` (an ISpool) keeps the notes on the server (see
    ServerNotes) from run to run. ``break_older_than`` (seconds, off when
    None) lets a run remove any lock older than that, whoever holds it,
    but only by an age measured against a server clock a run checked.

    Of the target's methods it calls present, read, create, remove_all and
    modified; ServerNotes keeps what it learns in the spool.
    """

    def __init__(self, target, name, spool, break_older_than=None):
        self.target = target
        self.name = name
        self.spool = spool
        self.break_older_than = break_older_than
        self.owner = LockOwner.this_process(spool.path)
        self._notes = None
        # Whether the target's ``present`` shows lock files (see _store).
        self._trusted = True

    @property
    def notes(self):
        # Read when needed first: a dry run never needs them.
        if self._notes is None:
            self._notes = ServerNotes(self.spool, self.target)
        return self._notes

    def acquire(self):
        """Create the lock file; raises RemoteLocked when another lock
        holds. Taking a lock this process already holds is harmless (as
        after a reconnect).

        When the store of the lock file fails, what it may have left is
        removed before the error is raised; when even that fails, the
        notes keep it for the next run to take over.
        """
        self._clear_way(self._present(names.LOCKS))
        content = self.owner.dumps()
        # Noted before the store: whatever becomes of it (even the end of
        # this process), a later run knows what it may find. Only a crash
        # of the system can lose the note, and that makes a later run back
        # off, never take a partner's lock: it need not wait for the disk.
        # Its removal, which keeps a later run from taking a partner's
        # empty lock for ours, does.
        self.notes.locks[self.name] = content
        self.notes.save(durable=False)
        try:
            others, ours = self._store(content)
        except CDSError as e:
            self._take_back(content, e)
            raise
        if others or not ours:
            self._give_up_after_race(others, ours)

    def _store(self, content):
        """Store our lock file, see whether it holds, and learn the
        server's clock from it; returns the other lock files there, and
        whether ours holds our ``content``."""
        before = time.time()
        try:
            self.target.create(self.name, content)
        except RemoteExists:
            pass  # Ours from before a reconnect, or a racer's: see below.
        after = time.time()
        # Where a file cannot be created exclusively (FTP), and for the
        # other lock's name in any case: look again, so that of two
        # parties racing for the lock at most one goes on.
        present = self._present(names.LOCKS)
        ours = self.target.read(self.name) == content
        if ours and self.name not in present:
            # Ours is there, yet not shown: neither would a partner's be.
            log.info('The CDS server does not show lock files when asked '
                     'for them by name; listing the directory instead')
            self._trusted = False
            present = self._present(names.LOCKS)
        others = [lock for lock in names.LOCKS
                  if lock != self.name and lock in present]
        if ours and not others:
            self._learn_clock(before, after, present.get(self.name))
        # Stored: from now on its content tells whose it is.
        del self.notes.locks[self.name]
        self.notes.save()
        return others, ours

    def _present(self, wanted):
        """The target's ``present``, or what its listing tells where that
        was found not to show lock files."""
        if self._trusted:
            return self.target.present(wanted)
        return names.listed_among(wanted, self.target.names())

    def _take_back(self, sent, failure):
        """After ``failure`` to store ``sent``: remove what the store
        left, or see that it left nothing; else the note stays, for the
        spool to take the file over when it gets the lock next."""
        if isinstance(failure, ConnectionLost):
            # The session is gone, or out of step: nothing it would show
            # now can be trusted.
            self._may_be_left(failure)
            return
        try:
            if self.name in self._present([self.name]):
                if _part_of(sent, self._content(self.name)):
                    _remove(self.target, self.name)
        except CDSError as e:
            self._may_be_left(e)
            return
        self.notes.locks.pop(self.name, None)
        self.notes.save()

    def _may_be_left(self, reason):
        log.warning('Cannot make sure that lock file %s is gone (%s); this '
                    'spool takes it over when it gets the lock next',
                    self.name, reason)

    def _content(self, lock):
        """The content of ``lock``; None when the server refuses to give
        it."""
        try:
            return self.target.read(lock)
        except TransferError:
            return None

    def _left_by_us(self, lock, content):
        """Whether ``lock``, with ``content`` (None: unreadable), may be
        what a store of this spool left, as its notes have it."""
        sent = self.notes.locks.get(lock)
        return sent is not None and _part_of(sent, content)

    def _clear_way(self, present):
        """Clear the way of the lock files ``present`` (name -> time, as
        the target's ``present`` tells)."""
        for lock in names.LOCKS:
            if lock in present:
                self._clear(lock, present[lock])
            else:
                # Nothing there: no store of ours left anything.
                self.notes.locks.pop(lock, None)

    def check(self):
        """Raise RemoteLocked when ``acquire`` would, and say (at INFO)
        which lock files it would remove; reading only: nothing is
        removed, stored or noted (as for a dry run)."""
        present = self._present(names.LOCKS)
        for lock in names.LOCKS:
            if lock in present:
                verdict = self._judge(lock, present[lock])
                if verdict is not None:
                    log.info('Would %s %s', *verdict)

    def _clear(self, lock, stamp):
        verdict = self._judge(lock, stamp)
        if verdict is not None:
            action, what = verdict
            log.warning('%s %s', DOING[action], what)
            _remove(self.target, lock)
            # Gone: nothing of a store of ours is left there.
            self.notes.locks.pop(lock, None)

    def _judge(self, lock, stamp):
        """What to do about the lock file ``lock``, last changed at
        ``stamp`` (None: unknown yet), as (action, what):
        an action of DOING, and which lock, whose, for a log line; None
        when it is this process's own. Raises RemoteLocked when it holds.
        Reads only."""
        content = self._content(lock)
        owner = None if content is None else LockOwner.parse(content)
        if owner is not None and owner.same_process(self.owner):
            return None
        if self._left_by_us(lock, content):
            return 'take over', (
                f'lock file {lock} that a failed store of this spool left '
                f'({_described(content)})')
        if owner is not None and owner.left_behind_by_us(self.spool.path):
            return 'take over', (
                f'lock file {lock} left behind by a killed run ({owner})')
        holder = owner or 'held by another party'
        age = self._age_if_known(lock, stamp)
        if self.break_older_than is not None:
            if age is None:
                log.warning(
                    'Not breaking lock file %s (%s): its age is unknown, '
                    'as %s; remove it by hand if its holder is gone',
                    lock, holder, self.notes.clock.doubt
                    or 'the server did not tell when it was written')
            elif age > self.break_older_than:
                return 'break', (
                    f'lock file {lock}, {int(age)} seconds old ({holder})')
        locked = RemoteLocked(
            f'CDS directory {self.target.directory} is locked: '
            f'lock file {lock!r} exists ({holder})')
        locked.lock_age = age
        raise locked

    def _age_if_known(self, lock, stamp):
        """``age``, or None when the server cannot tell it."""
        try:
            return self.age(lock, stamp)
        except ConnectionLost:
            raise
        except RemoteError:
            return None  # No MDTM, or the lock went meanwhile.

    def age(self, lock, stamp=None):
        """How many seconds ago, at least, the lock file ``lock`` was
        written (at ``stamp``, where the target told it already), by the
        server clock our own lock files showed; None while that clock is
        in doubt (see ServerClock.doubt)."""
        clock = self.notes.clock
        if clock.doubt is not None:
            return None
        # Judged only by a time told the way the clock learned it.
        if clock.source != 'present':
            stamp = self.target.modified(lock)
        elif stamp is None:
            stamp = self._present([lock]).get(lock)
            if stamp is None:
                return None
        return clock.age(stamp)

    def _learn_clock(self, before, after, stamp):
        """Learn the server clock from our lock, stored between our times
        ``before`` and ``after``, and last changed at ``stamp`` by the
        server's clock (None: not told yet)."""
        source = 'modified' if stamp is None else 'present'
        try:
            stamp = stamp or self.target.modified(self.name)
        except ConnectionLost:
            raise
        except RemoteError:
            return  # No MDTM: ages on this server stay unknown.
        moved = self.notes.clock.learn(before, after, stamp, source)
        if moved is not None:
            log.warning('The clock of the CDS server moved by %d seconds '
                        'against ours since the last run; lock ages are '
                        'not trusted until the next run confirms it', moved)

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
        """Remove the lock file, unless it is not ours (any more): gone,
        broken by a partner, replaced."""
        if self._content(self.name) == self.owner.dumps():
            _remove(self.target, self.name)
        else:
            log.warning('Lock file %s is not ours any more; left alone',
                        self.name)
