"""The names zeit.cds gives to files on the CDS, the ones it reserves, and
the ones it accepts from there."""
import unicodedata

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


# What no file name on the CDS can hold: FTP ends a command at a line
# break, and NUL ends a name in C.
_UNSENDABLE = ('\r', '\n', '\0')


def is_transferable(name):
    """Whether the local name ``name`` can be sent to the CDS."""
    return not any(c in name for c in _UNSENDABLE)


# What some servers list for the directory itself and its parent.
DOT_ENTRIES = ('.', '..')

# The longest file name most local file systems take.
MAX_NAME_BYTES = 255

# Control and format characters, and surrogates (bytes that were not UTF-8).
_UNSAFE_CATEGORIES = ('Cc', 'Cf', 'Cs')


def is_plain_file_name(name):
    """Whether the remote name ``name`` is safe as a file name in a local
    folder.

    Remote listings are untrusted. A plain file name is not empty, not
    ``.`` or ``..``, contains neither ``/`` nor ``\\``, no control or
    format characters (nor bytes that were not UTF-8), and takes at most
    255 bytes in UTF-8. Spaces and letters of any script are fine.
    """
    if not name or name in DOT_ENTRIES or '/' in name or '\\' in name:
        return False
    if any(unicodedata.category(c) in _UNSAFE_CATEGORIES for c in name):
        return False
    return len(name.encode('utf-8')) <= MAX_NAME_BYTES
