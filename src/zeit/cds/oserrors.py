"""Local file system errors, told in zeit.cds's exception family."""
import contextlib


@contextlib.contextmanager
def reported_as(error, message):
    """Raise ``error`` with ``message`` and the reason when the block
    fails with an OSError."""
    try:
        yield
    except OSError as e:
        raise error(f'{message}: {e.strerror or e}') from e
