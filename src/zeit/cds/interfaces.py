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
        """The names of the files waiting in ``new``, sorted."""

    def open(name):
        """Open the file ``name`` in ``new`` for reading, in binary mode.

        Raises LocalFileError when it cannot be read.
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

    def deliver(names):
        """Move the received files ``names`` from ``tmp`` to ``new``.

        First they are made durable (fsync), then noted in the spool's
        journal, where each stays
        until ``forget``: it marks the file as delivered, even after
        zeit.cms took it from ``new``. Everything is on disk (fsynced)
        when this returns. Raises LocalFileError.
        """

    def received():
        """The names in the journal, sorted: files delivered to ``new``
        whose source may still exist.

        A delivery that was cut off after its journal entry but before
        the move is finished here first: the complete file moves on to
        ``new``. Raises LocalFileError when the journal cannot be used.
        """

    def forget(names):
        """Remove ``names`` from the journal, once their source is gone.

        Harmless for names that are not there; raises LocalFileError when
        the journal cannot be changed.
        """

    def remembered(key):
        """The bytes ``remember`` last kept under the text ``key``, or None.

        Raises LocalFileError when they cannot be read.
        """

    def remember(key, data, durable=True):
        """Keep the bytes ``data`` under the text ``key`` for later runs.

        They replace what was kept under ``key`` as a whole: a run killed
        meanwhile leaves the old bytes or the new. Durable, they are on
        disk (fsynced) when this returns; else a crash of the system (not
        of the process) may lose them, which costs less. Runs keep what
        they learned about a server there (its clock, a lock file they
        may have left). Raises LocalFileError.
        """


class IRemoteTarget(zope.interface.Interface):
    """The CDS side: one directory on a server, reached through a session.

    All methods except ``connect`` need an open session. Names are plain
    file names inside the directory. Failures raise a CDSError.
    """

    description = zope.interface.Attribute(
        'How the target is named in log lines, '
        'e.g. "host localhost, port 21, user test".')

    directory = zope.interface.Attribute('The remote directory.')

    progress = zope.interface.Attribute(
        'None, or a callable the target may call with the number of bytes '
        'it just moved, for a progress bar.')

    def another():
        """A new, unconnected target with the same settings: one more
        connection for parallel transfers."""

    def connect():
        """Open the session: connect, log in, enter the directory.

        Either all of it succeeds or the target is left unconnected.
        """

    def names():
        """The names of the plain files in the directory, sorted."""

    def upload_all(files, before_publish=None):
        """Store each file of ``files``, (name, open) pairs where ``open()``
        opens the local file for reading in binary mode, atomically.

        Each is written under a temporary name first and renamed to its
        name only after its size on the server was verified, so a name
        never shows partial content. ``before_publish``, when given, is
        called with the names about to be renamed. Returns a dict: for
        each name its size in bytes, or the CDSError (TransferError,
        LocalFileError) that kept it from arriving. Raises
        ConnectionLost when the session breaks.
        """

    def finish_upload(name, size):
        """Give a complete upload of ``name`` that an interrupted run left
        under its temporary name its final name.

        Returns False when there is no such upload: it was renamed
        already. Raises TransferError when the temporary file does not
        have ``size`` bytes (it is removed then).
        """

    def download(name, fileobj):
        """Write the content of the remote file ``name`` into ``fileobj``.

        Returns the size in bytes.
        """

    def read(name):
        """The content of the small remote file ``name`` as bytes."""

    def modified(name):
        """When the remote file ``name`` was last changed, as an aware
        datetime in UTC."""

    def write(name, data):
        """Store the bytes ``data`` under ``name`` (for lock files)."""

    def remove(name):
        """Delete the remote file ``name``."""

    def remove_all(names):
        """Delete the remote files ``names``; returns a dict: for each name
        None, or the TransferError that kept it. Raises ConnectionLost
        when the session breaks."""

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
        'The name of the IRemoteTargetFactory to use: ftp, ftps, file.')
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
        'it, its age measured by the server clock an earlier run of the '
        'spool checked (without one, the run backs off); None (the '
        'default) never removes somebody else\'s lock.')

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
    """The root of every error zeit.cds raises on purpose."""

    exit_code = 1


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


class AuthenticationError(RemoteError):
    """The server did not accept the user name and password."""


class RemoteDirectoryError(RemoteError):
    """The remote directory does not exist or cannot be entered."""


class ConnectionLost(RemoteError):
    """The session with the server broke off."""


class TransferError(RemoteError):
    """One file could not be transferred; the session is still usable."""


class RemoteNameError(RemoteError):
    """A name the server offers is not a plain file name; refused."""


class RemoteLocked(RemoteError):
    """Somebody else holds a CDS lock file."""

    exit_code = 75
