"""Files that survive a crash: replaced atomically, and on disk (fsync)
before anything counts on them."""
import contextlib
import os
import tempfile


def write_atomically(path, data, durable, mode=None, prefix='.tmp-'):
    """Replace the file ``path`` by one with ``data``: a crash leaves
    either the old file or the new one, never a mix, and at most a
    temporary file named ``prefix`` and some letters. Durable, the new
    one is on disk when this returns. The new file has the permissions
    ``mode``, by default only the owner's."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        os.makedirs(folder, exist_ok=True)
        fsync_directory(os.path.dirname(folder))
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=prefix)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with open(fd, 'wb') as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.rename(temporary, path)
    except BaseException:
        remove_quietly(temporary)
        raise
    if durable:
        fsync_directory(folder)


def remove_quietly(path):
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def fsync_directory(path):
    # A rename is durable only once the directory itself is on disk.
    fsync(path, os.O_RDONLY | os.O_DIRECTORY)


def fsync(path, flags=os.O_RDONLY):
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
