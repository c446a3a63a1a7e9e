"""Local file system errors, told in zeit.cds's exception family."""
import contextlib


@contextlib.contextmanager
def reported_as(error, message):
    """Raise ``error`` with ``message`` and the reason when the block
    fails with an OSError."""
    try:
        yield
    except OSError as e:
        reason = e.strerror or str(e)
        raise error(f'{message}: {reason}', reason) from e
