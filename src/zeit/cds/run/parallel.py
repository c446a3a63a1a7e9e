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


class _Done:

    def __init__(self, error):
        self.error = error


def run_batches(run, work, batches, connections):
    """Call ``work(target, batch)`` for every batch, on up to
    ``connections`` connections at once. Raises the first error a
    connection ended with, once all are done."""
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
        target=_work, args=(run, work, target, todo, outbox),
        name=f'cds-connection-{i}', daemon=True)
        for i, target in enumerate(
            [run.target] + [run.target.another() for _ in range(extra)])]
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


def _work(run, work, target, todo, outbox):
    error = None
    extra = target is not run.target
    try:
        if extra:
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
                return
            run.attempt(work, target, batch, target=target)
    except BaseException as e:
        error = e
    finally:
        if extra:
            target.close()
        outbox.put(_Done(error))
