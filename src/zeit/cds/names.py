"""The names zeit.cds gives to files on the CDS, and the ones it reserves."""

# The CDS protocol's lock files: export holds WRITE, import holds READ.
WRITE_LOCK = 'write'
READ_LOCK = 'read'
LOCKS = (WRITE_LOCK, READ_LOCK)

# Uploads are written under this prefix and renamed when complete; the
# leading dot hides them from the partner's usual listings.
PARTIAL_PREFIX = '.cds-partial.'


def partial_name(name):
    """The temporary name an upload of ``name`` is written under."""
    return PARTIAL_PREFIX + name


def is_reserved(name):
    """Whether ``name`` is a lock file or one of our temporary uploads."""
    return name in LOCKS or name.startswith(PARTIAL_PREFIX)
