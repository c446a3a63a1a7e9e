"""The parts of zeit.cds and the errors they raise.

zeit.cms can replace any part by registering its own component in ZCML;
``configure.zcml`` registers the defaults.
"""
import zope.interface


class ISpool(zope.interface.Interface):
    """The local side: a maildir-like folder with ``tmp``, ``new``, ``cur``.

    zeit.cms puts the files to export into ``new``; exported files move on
    to ``cur``. Imported files are written into ``tmp`` and appear in
    ``new`` only when they are complete and on disk.
    """

    path = zope.interface.Attribute('The folder of the spool, for messages.')

    def locked():
        """A context manager holding the spool for one run.

        Raises SpoolBusy when another run holds it. The hold ends with
        the block, or with the process, however it ends.
        """

    def waiting():
        """The names of the regular files waiting in ``new``, sorted.

        Links are not followed: a link is no file to export.
        """

    def strays():
        """The names of what else is in ``new`` (links, folders, ...),
        sorted: nothing to export."""

    def open(name):
        """Open the regular file ``name`` in ``new`` for reading, in binary
        mode, without following a link.

        Raises LocalFileError when it cannot be read or is not a regular
        file.
        """

    def publishing(name):
        """Note in the spool's export journal that ``name`` is complete on
        the CDS under a temporary name and about to get its final one.

        ``mark_exported`` clears the note.
        """

    def published():
        """The names in ``new`` noted by ``publishing`` and not marked
        exported since: a run was interrupted around their publishing.

        A file that changed in ``new`` since its note is not among them:
        its note is dropped, and it is to be uploaded anew.
        """

    def unpublished(name):
        """Drop the note of ``name``: its temporary upload is gone, so it
        is to be uploaded anew."""

    def mark_exported(name):
        """Move the file ``name`` from ``new`` to ``cur``."""

    def receiving(name):
        """A context manager for receiving the file ``name``.

        It yields a binary file in ``tmp`` to write into. When the block
        ends without an error the file waits in ``tmp`` for ``deliver``;
        otherwise it is removed.
        """

    def deliver(received):
        """Move the received files from ``tmp`` to ``new``: ``received``
        is a dict of their names to what identifies their source (bytes,
        see IRemoteTarget.identities; None where nothing does).

        First they are made durable (fsync), then noted in the spool's
        journal with their identities, where each stays until ``forget``:
        it marks the file as delivered, even after zeit.cms took it from
        ``new``. Everything is on disk (fsynced) when this returns.
        Raises LocalFileError.
        """

    def received():
        """The journal: a dict of the names of files delivered to ``new``
        whose source may still exist, to the identities noted with them
        (None where there was none).

        A delivery that was cut off after its journal entry but before
        the move is finished here first: the complete file moves on to
        ``new``. Raises LocalFileError when the journal cannot be used.
        """

    def forget(names):
        """Remove ``names`` from the journal, once their source is gone.

        Harmless for names that are not there; raises LocalFileError when
        the journal cannot be changed.
        """


class IRemoteTarget(zope.interface.Interface):
    """The CDS side: one directory on a server, reached through a session.

    A target supplies primitives only, each for a batch where a protocol
    can batch; the delivery protocol above them (temporary name, size
    check, rename) is ``zeit.cds.delivery``, written once for all. All
    methods except ``connect`` need an open session. Names are plain file
    names inside the directory. Failures raise a CDSError; the reason
    alone (a server's reply, an OS error) is its ``reason``. Where a
    session breaks, ConnectionLost.
    """

    description = zope.interface.Attribute(
        'How the target is named in log lines, '
        'e.g. "host localhost, port 21, user test".')

    directory = zope.interface.Attribute('The remote directory.')

    progress = zope.interface.Attribute(
        'None, or a callable the target may call with the number of bytes '
        'it just moved, for a progress bar.')

    creates_exclusively = zope.interface.Attribute(
        'Whether ``create`` refuses a name that exists (as O_EXCL does); '
        'FTP cannot.')

    def another():
        """A new, unconnected target with the same settings: one more
        connection for parallel transfers."""

    def connect():
        """Open the session: connect, log in, enter the directory.

        Either all of it succeeds or the target is left unconnected.
        """

    def names():
        """The names of the plain files in the directory, sorted."""

    def store(name, fileobj):
        """Write the content of the binary file ``fileobj`` under ``name``,
        replacing a file of that name.

        Raises TransferError when the server refuses or the transfer
        breaks off (part of the content may be left under ``name``), and
        LocalFileError when ``fileobj`` cannot be read.
        """

    def sizes(names):
        """The size of each file of ``names``: a dict of name to the size
        in bytes, or None where the target cannot tell sizes, or the
        TransferError that kept it (NoSuchFile where there is none)."""

    def identities(names):
        """What tells each remote file of ``names`` from a newer one of the
        same name (such as its size and modification time), as bytes: a
        dict of name to bytes, or None where the target cannot tell. A
        name that is gone maps to None as well."""

    def rename_all(pairs):
        """Rename each (old, new) of ``pairs``, replacing a file ``new``.

        Returns a dict: for each old name None, or the TransferError that
        kept it.
        """

    def remove_all(names):
        """Delete the remote files ``names``.

        Returns a dict: for each name None, or the TransferError that
        kept it.
        """

    def download(name, fileobj):
        """Write the content of the remote file ``name`` into ``fileobj``.

        Returns the size in bytes.
        """

    def read(name):
        """The content of the small remote file ``name`` as bytes."""

    def create(name, data):
        """Store the bytes ``data`` (a small file, such as a lock) under
        ``name``.

        Where ``creates_exclusively``, raises RemoteExists when a file
        ``name`` exists; elsewhere that file is replaced.
        """

    def modified(name):
        """When the remote file ``name`` was last changed, as an aware
        datetime in UTC."""

    def close():
        """End the session; harmless when it is already gone."""


class IRemoteTargetFactory(zope.interface.Interface):
    """Makes remote targets; registered as a utility named by URL scheme."""

    def __call__(*, host, port, user, password, directory):
        """A new, unconnected IRemoteTarget."""


class IConnectionSettings(zope.interface.Interface):
    """How to reach one CDS partner; a named utility, declared in ZCML
    with ``<cds:connection>``. It holds no password, only where to read
    it."""

    name = zope.interface.Attribute('The name of the connection.')
    scheme = zope.interface.Attribute(
        'The name of the IRemoteTargetFactory to use: ftp, ftps, sftp, file.')
    connections = zope.interface.Attribute(
        'How many transfers run at once.')

    def target():
        """A new, unconnected IRemoteTarget for this connection.

        Reads the password file now, so a changed password is used by
        the next run. Raises ConfigurationError when it cannot.
        """


class ISummary(zope.interface.Interface):
    """What one run did."""

    files = zope.interface.Attribute('Number of files transferred.')
    bytes = zope.interface.Attribute('Number of bytes transferred.')
    seconds = zope.interface.Attribute('Duration of the run in seconds.')
    failures = zope.interface.Attribute('Number of files that failed.')


class ITransfer(zope.interface.Interface):
    """One run between a spool and a remote target."""

    break_lock_older_than = zope.interface.Attribute(
        'Seconds after which any CDS lock file is removed, whoever holds '
        'it; None (the default) never removes somebody else\'s lock.')

    connections = zope.interface.Attribute(
        'How many connections transfer at once (4 by default; 1 keeps '
        'the files, and the log lines, in their order).')

    def run():
        """Transfer every file there is; returns an ISummary.

        Raises a CDSError when the run as a whole fails (no connection,
        the CDS is locked by somebody else, ...). Files that fail on
        their own are counted in the summary and the run goes on.
        """

    def plan():
        """The names ``run`` would transfer now, in order.

        It connects, to check the settings, but takes no lock and
        changes nothing, locally or remotely.
        """


class IExporter(ITransfer):
    """Carries the files waiting in a spool's ``new`` to a remote target;
    each moves on to ``cur`` once it is complete on the server.

    A multi-adapter of (ISpool, IRemoteTarget).
    """


class IImporter(ITransfer):
    """Carries the files a remote target offers into a spool's ``new``.

    Each file reaches ``new`` exactly once, even across runs that were
    killed, and is removed from the remote directory only after it is on
    disk there. Files that were not delivered stay on the server.

    A multi-adapter of (ISpool, IRemoteTarget).
    """


class CDSError(Exception):
    """The root of every error zeit.cds raises on purpose.

    Its message says what failed and why; ``reason`` is the why alone
    (the whole message unless given), for a caller that tells the what
    in its own words.
    """

    exit_code = 1

    def __init__(self, message, reason=None):
        super().__init__(message)
        self.reason = message if reason is None else reason


class ConfigurationError(CDSError):
    """The settings or arguments do not make sense."""

    exit_code = 2


class Interrupted(CDSError):
    """A signal asked the run to stop; it stopped between two files."""

    def __init__(self, message, signum):
        super().__init__(message)
        # The shell's convention for "ended by a signal".
        self.exit_code = 128 + signum


class LocalFileError(CDSError):
    """A file or folder of the spool cannot be used."""


class NotARegularFile(LocalFileError):
    """What waits in ``new`` under a name is a link, a folder or another
    thing that is not a regular file; it is not exported."""

    def __init__(self, shown):
        super().__init__(f'Refusing to export {shown}: not a regular file')


class SpoolBusy(LocalFileError):
    """Another run is working on the same spool."""

    exit_code = 75


class RemoteError(CDSError):
    """The server failed or refused."""


class ConnectError(RemoteError):
    """Nothing answers at the given host and port."""


class TLSError(ConnectError):
    """TLS was asked for and cannot be had: the server does not offer it,
    or its certificate is not trusted or not for this host. Nothing is
    sent in the clear instead."""


class HostKeyError(ConnectError):
    """The SSH server's host key is not in the known_hosts file, or is not
    the key there. Nothing was sent: no user name, no password, no key;
    there is no trust on first use."""


class AuthenticationError(RemoteError):
    """The server did not accept the user name and password."""


class RemoteDirectoryError(RemoteError):
    """The remote directory does not exist or cannot be entered."""


class ConnectionLost(RemoteError):
    """The session with the server broke off."""


class TransferError(RemoteError):
    """One file could not be transferred; the session is still usable."""


class NoSuchFile(TransferError):
    """The remote file is not there."""


class RemoteExists(TransferError):
    """An exclusive create found the remote name taken."""


class RemoteNameError(RemoteError):
    """A name the server offers is not a plain file name; refused."""


class RemoteLocked(RemoteError):
    """Somebody else holds a CDS lock file."""

    exit_code = 75
