"""The parts of zeit.cds and the errors they raise.

zeit.cms can replace any part by registering its own component in ZCML;
``configure.zcml`` registers the defaults.
"""
import zope.configuration.fields
import zope.interface
import zope.schema

from zeit.cds import names


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

    def check_free():
        """Raise SpoolBusy when another run holds the spool (see
        ``locked``); holds nothing and writes nothing, as a dry run must.
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
        """Note in the spool's export journal that ``name`` (the file as
        ``open`` opened it) is complete on the CDS under a temporary name
        and about to get its final one.

        ``mark_exported`` and ``unpublished`` clear the note.
        """

    def published():
        """The names in ``new`` with a note of ``publishing`` that was not
        cleared since: a run was interrupted around their publishing.

        A file that changed in ``new`` since its note is not among them:
        its note is dropped, and it is to be uploaded anew.
        """

    def unpublished(name):
        """Clear the note of ``name``, on disk before this returns: its
        temporary upload is about to be removed, so it is to be uploaded
        anew."""

    def mark_exported(name):
        """Move the file ``name`` from ``new`` to ``cur``, and clear its
        note (see ``publishing``).

        Returns False, leaving the file in ``new`` for the next run, where
        the file there is not the one ``open`` opened: a newer version put
        there during the upload.
        """

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

        Returns the names whose earlier copy, still in ``new`` (not taken
        by zeit.cms yet), the newer one replaced. Raises LocalFileError.
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

    A target supplies primitives only, each for a batch where a protocol
    can batch; the delivery protocol above them (temporary name, size
    check, rename) is ``zeit.cds.delivery``, written once for all. All
    methods except ``connect`` need an open session. Names are plain file
    names inside the directory. Failures raise a CDSError; the reason
    alone (a server's reply, an OS error) is its ``reason``. Where a
    session breaks, ConnectionLost; where the server leaves a wait
    unanswered for the target's timeout, NoAnswer (a ConnectionLost, and
    a ConnectError as well).
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
        """The names of the plain files in the directory, sorted. (An FTP
        server without MLSD lists folders too; a SIZE refused with 550
        tells them, where the server has SIZE.)"""

    def present(names):
        """Which of ``names`` are plain files in the directory, as a dict:
        name -> when it was last changed (an aware datetime in UTC, as
        ``modified`` tells it), or None where the answer did not tell it
        (then ask ``modified``).

        It answers as ``names`` would for those names, at a cost that
        does not grow with the directory: the lock looks for its two
        files this way at every run.
        """

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

        Raises RemoteExists when a file ``name`` exists, where the target
        can create a file exclusively (O_EXCL; FTP cannot, and replaces
        it).
        """

    def modified(name):
        """When the remote file ``name`` was last changed, as an aware
        datetime in UTC."""

    def close():
        """End the session; harmless when it is already gone."""


class IBatchStore(IRemoteTarget):
    """A remote target that can store many files at once, such as SFTP
    with many requests on their way on one channel: an optional feature.
    The delivery protocol uses it where a target provides it, and calls
    ``store`` for one file after another where not.
    """

    def store_all(files):
        """Write each (name, fileobj) of ``files`` as ``store`` would.

        Returns a dict: for each name None, or the TransferError or
        LocalFileError that kept it (part of its content may be left under
        its name). One file's failure keeps no other from being stored.
        Raises ConnectionLost when the session breaks.
        """


class IRemoteTargetFactory(zope.interface.Interface):
    """Makes remote targets; registered as a utility named by URL scheme
    (``ftp``, ``ftps``, ``sftp``, ``file``, or a site's own). ``<cds:connection
    scheme="...">`` and ``--protocol`` take any registered name.

    ``IConnection.target`` calls it. (A factory without the two
    attributes below is taken as one with no options that logs in. One
    that can log in without a password names the options that do it
    instead in ``instead_of_password``: SFTP's ``key_file``.)
    """

    options = zope.interface.Attribute(
        'A zope.schema interface of the settings only this kind of target '
        'takes (FTPS: ``IFTPSOptions``), or None. They are passed to it as '
        'keyword arguments besides the common ones, and can be set in '
        'ZCML, config files and on the command line, for this scheme only: '
        'giving one with another scheme is a SettingsError.')

    login = zope.interface.Attribute(
        'Whether its targets log in to a server: a connection then needs '
        'a host, a user and a password. A local folder (``file``) does '
        'not: its connections refuse host, port, user and password file, '
        'and must name their directory (the default "/" is a server\'s top, '
        'not a folder of this machine).')

    def __call__(*, host, port, user, password, directory, timeout,
                 **options):
        """A new, unconnected IRemoteTarget.

        ``port`` is left out where none was given: the factory knows the
        usual port of its protocol. ``timeout`` is in seconds; a target
        without a network may ignore it; one that does not log in gets
        None for host, port, user and password (see ``login``).
        ``options`` are the ones declared by ``options``, converted and
        validated; one that is not given is not passed.
        """


# The longest wait a setting may ask for, in seconds: longer ones are
# typing errors, and beyond some 292 years no clock can count them.
DAY = 24 * 60 * 60


class NoHostName(zope.schema.ValidationError):
    """Not a name or address that can be looked up"""


def _host(value):
    # Instead of TextLine's own constraint: no line break either.
    if '\n' in value or '\r' in value:
        return False
    if not names.is_host_name(value):
        raise NoHostName(value)
    return True


class IConnectionSettings(zope.interface.Interface):
    """How to reach one CDS partner: the one model of a connection's
    settings, with their defaults.

    The ZCML directive ``<cds:connection>`` takes these fields as its
    attributes, a config file and the command line as keys and options
    (``password_file`` as ``password-file``; ``directory`` as ``dir``,
    ``scheme`` as ``protocol``, and FTPS's ``verify = false`` as
    ``insecure-skip-verify`` there). Options that belong to one kind of
    target are declared by its factory (``IRemoteTargetFactory.options``).
    There is no password: only the file it is read from.
    """

    scheme = zope.schema.TextLine(
        title='Kind of target', default='ftp',
        description='The name of a registered IRemoteTargetFactory, such '
        'as ftp, ftps, sftp, or file (a local or mounted folder).')

    host = zope.schema.TextLine(
        title='Host', required=False, constraint=_host,
        description='The CDS server\'s name or address.')

    port = zope.schema.Int(
        title='Port', min=1, max=65535, required=False,
        description='The port the server listens on; by default the '
        'usual one of the scheme (21 for ftp and ftps, 22 for sftp).')

    user = zope.schema.TextLine(
        title='User', required=False,
        description='The user name to log in with.')

    password_file = zope.configuration.fields.Path(
        title='Password file', required=False,
        description='A file holding the password, read at every run '
        '(a watcher reads it when it starts).')

    directory = zope.schema.TextLine(
        title='Directory', default='/',
        description='The CDS directory on the server; for "file", the '
        'folder, which must be given.')

    connections = zope.schema.Int(
        title='Connections', min=1, max=16, default=4,
        description='How many transfers run at once; 1 keeps the files, '
        'and the log lines, in their order.')

    timeout = zope.schema.Int(
        title='Timeout', min=1, max=DAY, default=60,
        description='Seconds to wait for any answer of the server before '
        'the connection counts as broken.')


class IFTPSOptions(zope.interface.Interface):
    """The settings only FTPS takes (``FTPSTarget.options``)."""

    ca_file = zope.configuration.fields.Path(
        title='CA file', required=False,
        description='Trust the CAs in this PEM file instead of the '
        "system's.")

    verify = zope.configuration.fields.Bool(
        title='Verify the certificate', default=True,
        description='Check the server\'s certificate and host name. Without '
        'the check the connection is still encrypted, but anybody in '
        'between can pose as the server: for test servers only.')


class ISFTPOptions(zope.interface.Interface):
    """The settings only SFTP takes (``SFTPTarget.options``)."""

    key_file = zope.configuration.fields.Path(
        title='Key file', required=False,
        description='Log in with this private key (OpenSSH or PEM '
        'format), besides or instead of the password.')

    passphrase_file = zope.configuration.fields.Path(
        title='Passphrase file', required=False,
        description='A file holding the passphrase of the key file, read '
        'at every run (a watcher reads it when it starts); else the '
        'environment variable CDS_PASSPHRASE.')

    known_hosts = zope.configuration.fields.Path(
        title='Known hosts', required=False,
        description='Trust the host keys in this file (OpenSSH\'s '
        'known_hosts format) instead of ~/.ssh/known_hosts. An unknown or '
        'changed host key ends the run before anything is sent.')


class IConnection(IConnectionSettings):
    """One CDS partner by name: a named utility, declared in ZCML with
    ``<cds:connection>`` (or made from the command line's settings)."""

    name = zope.interface.Attribute(
        'The name of the connection; None when it has none.')

    options = zope.interface.Attribute(
        'A dict of the settings only its scheme takes (see '
        'IRemoteTargetFactory.options), converted and validated.')

    def target(password=None):
        """A new, unconnected IRemoteTarget for this connection: the one
        place that makes a target of settings.

        Reads the password file now, so a changed password is used by
        the next run; ``password``, when given, is used instead. Raises
        SettingsError when the scheme is not registered (naming the known
        ones) or the password file cannot be read.
        """


class ICommandLineSettings(zope.interface.Interface):
    """What cds-export and cds-import take besides a connection's settings
    (``IConnectionSettings``), on the command line or in a config file."""

    spool = zope.schema.TextLine(
        title='Spool', required=False,
        description='The gocept.filestore spool folder.')

    prepare = zope.schema.Bool(
        title='Prepare', required=False, default=False,
        description='Create the spool (its folder and tmp, new, cur) when '
        'it is missing; else a folder that is not a spool is an error.')

    logfile = zope.configuration.fields.Path(
        title='Log file', required=False,
        description='Log here too; the file is reopened when logrotate '
        'moved it away.')

    status_file = zope.configuration.fields.Path(
        title='Status file', required=False,
        description='After every run, replace this file by a JSON document '
        'telling how the run ended and what waits in the spool; '
        '{direction} in its name is export or import.')

    metrics_file = zope.configuration.fields.Path(
        title='Metrics file', required=False,
        description='After every run, replace this file by the metrics of '
        "the runs, for node_exporter's textfile collector (*.prom); "
        '{direction} in its name is export or import.')

    break_lock_older_than = zope.schema.Int(
        title='Break locks older than', min=0, required=False,
        description='Remove any CDS lock older than this many seconds, '
        'whoever holds it.')

    warn_lock_older_than = zope.schema.Int(
        title='Warn of locks older than', min=0, required=False,
        default=1800,
        description='With -q a back-off is silent unless the lock of the '
        'other party is older than this many seconds: then it is an '
        'ERROR.')

    watch = zope.schema.Bool(
        title='Watch', required=False, default=False,
        description='Run on, as a service: export each file as it lands '
        'in new/ (inotify), or import what the CDS offers every '
        '--interval seconds; transient trouble is waited out. SIGTERM '
        'ends it with exit code 0.')

    interval = zope.schema.Int(
        title='Interval', min=1, max=DAY, required=False,
        description='With --watch: seconds between two listings of the '
        'CDS (import; default 10), or between two full scans of new/ '
        'besides inotify, when files that failed are tried again '
        '(export; default 60).')

    keepalive = zope.schema.Int(
        title='Keepalive', min=1, max=DAY, required=False, default=60,
        description='With --watch: list the CDS directory after this many '
        'idle seconds, so that the server does not close the connection; '
        'below its idle timeout.')

    zcml = zope.configuration.fields.Path(
        title='ZCML', required=False,
        description="A site's ZCML declaring connections.")

    connection = zope.schema.TextLine(
        title='Connection', required=False,
        description='The <cds:connection> of the ZCML to use.')


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

    summary = zope.interface.Attribute(
        'The ISummary of the latest run (not of a dry run), as far as it '
        'got, also when ``run`` raised; None before the first.')

    def run():
        """Transfer every file there is; returns an ISummary.

        Raises a CDSError when the run as a whole fails (no connection,
        the CDS is locked by somebody else, ...). Files that fail on
        their own are counted in the summary and the run goes on.
        """

    def burst(only=None):
        """One run within a watch (``zeit.cds.watch.watcher``), which holds
        the spool and keeps the target connected: only the CDS lock is
        taken, and released at the end. ``only`` (names, or a callable
        that returns them once the lock is taken), when given, limits it
        to those of them that are there; an export then leaves out the
        other files of ``new`` and does not report its strays.
        Returns an ISummary and raises as ``run`` does.
        """

    def rest(idle=0):
        """Close the connections beside the target's own that ``burst``
        keeps open for the next burst (see ``connections``), those unused
        for ``idle`` seconds or more; returns the seconds until the next
        of the others is (None when none is left). The watch calls it so
        that they never idle longer than its keepalive."""

    def plan():
        """What ``run`` would do now: the names it would transfer, in
        order, and a dict of those it would refuse, each to the CDSError
        that would fail it (a name that cannot be sent or taken, a link
        in ``new``).

        It checks the spool's lock, connects, to check the settings, and
        checks the CDS locks as ``run`` would (raising SpoolBusy or
        RemoteLocked where it would back off), but takes no lock and
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


class SettingsError(CDSError):
    """The settings or arguments do not make sense."""

    exit_code = 2


# Deprecated: the old name, easily confused with zope.configuration's
# ConfigurationError. Kept in 0.2 for code that imported it; to be
# removed in the release after.
ConfigurationError = SettingsError


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


class NoAnswer(ConnectError, ConnectionLost):
    """The server left a wait unanswered for the target's timeout: at the
    connect nothing answers (a ConnectError); later the session is out of
    step and given up (a ConnectionLost)."""


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
    # How many seconds ago, at least, the lock file was written, by the
    # server clock a run checked; None when unknown.
    lock_age = None
