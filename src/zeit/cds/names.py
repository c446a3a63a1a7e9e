"""The names zeit.cds gives to files on the CDS, the ones it reserves, and
the ones it accepts from there; and the names of servers it can look up."""
import os
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


def shown(name):
    """``name`` as a log line shows it: as it is where it prints on one
    line, escaped (as Python writes it) where it holds line breaks, other
    control characters or bytes that are not UTF-8."""
    return name if name.isprintable() else repr(name)


# What some servers list for the directory itself and its parent.
DOT_ENTRIES = ('.', '..')

# The longest file name most local file systems take.
MAX_NAME_BYTES = 255

# Control and format characters.
_UNSAFE_CATEGORIES = ('Cc', 'Cf')


def is_plain_file_name(name):
    """Whether the remote name ``name`` is safe as a file name in a local
    folder.

    Remote listings are untrusted. A plain file name is not empty, not
    ``.`` or ``..``, contains neither ``/`` nor ``\\``, no control or
    format characters, and takes at most 255 bytes. Spaces and letters
    of any script are fine, and so are bytes that are not UTF-8 (listed
    as surrogates): the local file gets the same bytes.
    """
    if not name or name in DOT_ENTRIES or '/' in name or '\\' in name:
        return False
    if name.isascii():
        # The common case, quickly: ASCII's control characters are just
        # the unprintable ones, it has no format characters, and each
        # character is one byte.
        return name.isprintable() and len(name) <= MAX_NAME_BYTES
    if any(unicodedata.category(c) in _UNSAFE_CATEGORIES for c in name):
        return False
    try:
        return len(os.fsencode(name)) <= MAX_NAME_BYTES
    except UnicodeEncodeError:
        return False  # a surrogate that stands for no byte


def listed_among(wanted, listing):
    """Which of ``wanted`` a directory ``listing`` (names) shows, told as
    ``IRemoteTarget.present`` tells them where it knows no times."""
    shown = set(listing)
    return {name: None for name in wanted if name in shown}


def is_host_name(host):
    """Whether ``host`` is a name the resolver takes, or an address: Python
    encodes a name for its lookup, which refuses an empty label (as in
    ``cds..example``) or one of over 63 letters."""
    try:
        host.encode('idna')
    except UnicodeError:
        return False
    return True
