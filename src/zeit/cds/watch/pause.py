"""A watcher's waits: until a deadline, files arrive, or a stop is asked.

A self-pipe: ``wake`` writes a byte, which any thread may do, and so
does a signal (see ``zeit.cds.run.shutdown.waking``, given
``wakeup_fd``); ``wait`` polls it beside the sources it is given (such
as the inotify descriptor of ``zeit.cds.watch.arrivals``).
"""
import os
import select


class Pause:

    def __init__(self):
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    @property
    def wakeup_fd(self):
        """The pipe's write end (non-blocking): a byte written ends the
        current wait, or the next one."""
        return self._write

    def wake(self):
        """End the current wait, or the next one, at once."""
        try:
            os.write(self._write, b'.')
        except BlockingIOError:
            pass  # Full of wake-ups already.

    def wait(self, seconds, sources=()):
        """Wait up to ``seconds`` (None: no limit) for a wake-up or for
        one of ``sources`` (objects with ``fileno``) to be readable;
        returns those that are. A wake-up is used up by the wait it ends."""
        poll = select.poll()
        poll.register(self._read, select.POLLIN)
        by_fd = {source.fileno(): source for source in sources}
        for fd in by_fd:
            poll.register(fd, select.POLLIN)
        timeout = None if seconds is None else max(0, int(seconds * 1000))
        ready = [fd for fd, events in poll.poll(timeout)]
        if self._read in ready:
            self._drain()
        return [by_fd[fd] for fd in ready if fd in by_fd]

    def _drain(self):
        try:
            while os.read(self._read, 4096):
                pass
        except BlockingIOError:
            pass

    def close(self):
        os.close(self._read)
        os.close(self._write)
