"""One asyncio event loop in a thread of its own, for a remote target built
on an asyncio library (asyncssh) whose callers block, as every part of
zeit.cds does: each call waits for its coroutine there.

The loop serves every connection of the process; the parallel connections
of a run are threads that wait on it side by side.
"""
import asyncio
import threading

_lock = threading.Lock()
_loop = None


def _running_loop():
    global _loop
    with _lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            # A daemon: an open connection must not keep the process alive.
            threading.Thread(target=_loop.run_forever, name='zeit.cds-asyncio',
                             daemon=True).start()
        return _loop


def call(coroutine, timeout=None):
    """What ``coroutine`` returns, run on the loop; raises what it raises,
    and TimeoutError after ``timeout`` seconds, unless None (it is
    cancelled then)."""
    future = asyncio.run_coroutine_threadsafe(
        asyncio.wait_for(coroutine, timeout), _running_loop())
    try:
        return future.result()
    except BaseException:
        # Such as the Interrupted of a signal: the coroutine stops too.
        future.cancel()
        raise
