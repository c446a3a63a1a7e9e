"""Batches of files carried over several connections at once.

The run's own connection, which holds the CDS lock, works beside the
extra ones; each takes the next batch when done with one. Events the
work sends from another connection's thread are handed to the run's
thread, so zope.event subscribers (such as zeit.cms's, bound to their
thread) are always called there.
"""
import logging
import math
import queue
import threading
import time

from zeit.cds.interfaces import CDSError

log = logging.getLogger(__name__)

# Files per batch at most: the round trips of a batch's checks and
# renames are shared by its files.
BATCH_SIZE = 32


def batches(names, connections):
    """``names`` in batches, enough of them to keep every connection
    busy till the end (four per connection) where there are that many."""
    size = max(1, min(BATCH_SIZE, math.ceil(len(names) / (4 * connections))))
    return [names[i:i + size] for i in range(0, len(names), size)]


class Twins:
    """The connections a transfer works on beside its own. A run closes
    them at its end; a burst of a watch keeps those that did well, so that
    the next burst need not log in again, until ``close``."""

    def __init__(self):
        # (twin, when it was given back, by time.monotonic)
        self._kept = []
        # The target they are twins of.
        self._of = None
        self._lock = threading.Lock()

    def take(self, target, count):
        """``count`` twins of ``target``, kept ones first, as (twin,
        whether it is connected)."""
        with self._lock:
            if target is not self._of:
                stale, self._kept, self._of = self._kept, [], target
            else:
                stale = []
            kept, self._kept = self._kept[:count], self._kept[count:]
        for twin, since in stale:
            twin.close()
        return [(twin, True) for twin, since in kept] + [
            (target.another(), False) for _ in range(count - len(kept))]

    def give_back(self, twin, keep):
        """From the twin's own thread, when it is done."""
        if not keep:
            twin.close()
            return
        with self._lock:
            self._kept.append((twin, time.monotonic()))

    def close(self, idle=0):
        """Close the kept twins unused for ``idle`` seconds or more;
        returns the seconds until the next of the others is (None when
        none is left)."""
        now = time.monotonic()
        with self._lock:
            due = [(twin, since) for twin, since in self._kept
                   if now - since >= idle]
            self._kept = [(twin, since) for twin, since in self._kept
                          if now - since < idle]
            left = min((since + idle - now for twin, since in self._kept),
                       default=None)
        for twin, since in due:
            twin.close()
        return left


class _Done:

    def __init__(self, error):
        self.error = error


def run_batches(run, work, batches, connections):
    """Call ``work(target, batch)`` for every batch, on up to
    ``connections`` connections at once, the run's own and its twins
    (``run.twins``). Raises the first error a connection ended with, once
    all are done."""
    if connections <= 1 or len(batches) <= 1:
        for batch in batches:
            run.attempt(work, run.target, batch, target=run.target)
        return
    todo = queue.SimpleQueue()
    for batch in batches:
        todo.put(batch)
    outbox = queue.SimpleQueue()
    extra = min(connections, len(batches)) - 1
    workers = [threading.Thread(
        target=_work, args=(run, work, target, connected, todo, outbox),
        name=f'cds-connection-{i}', daemon=True)
        for i, (target, connected) in enumerate(
            [(run.target, True)] + run.twins.take(run.target, extra))]
    with run.handing_over(outbox.put):
        for worker in workers:
            worker.start()
        errors = []
        for done in _until_all_done(outbox, len(workers), run):
            if done.error is not None:
                errors.append(done.error)
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]


def _until_all_done(outbox, count, run):
    while count:
        item = outbox.get()
        if isinstance(item, _Done):
            count -= 1
            yield item
        else:
            run.receive(item)


def _work(run, work, target, connected, todo, outbox):
    error = None
    usable = False
    try:
        if not connected:
            try:
                target.connect()
            except CDSError as e:
                # The others carry the load; servers limit connections.
                log.warning('Could not open one more connection: %s', e)
                return
        while True:
            try:
                batch = todo.get_nowait()
            except queue.Empty:
                # Connected and in step: fit for the next burst of a watch.
                usable = True
                return
            run.attempt(work, target, batch, target=target)
    except BaseException as e:
        error = e
    finally:
        if target is not run.target:
            run.twins.give_back(target, run.held and usable)
        outbox.put(_Done(error))
