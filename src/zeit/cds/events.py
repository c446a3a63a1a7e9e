"""What a run tells the world through zope.event, so that zeit.cms can
subscribe (for example to mark an article as syndicated)."""
# Imported for its effect: zope.event notifications reach subscribers
# registered with zope.component (``<subscriber>`` in ZCML).
import zope.component.event  # noqa: F401
import zope.interface


class IRunEvent(zope.interface.Interface):
    """Something happened in a run of an exporter or importer."""

    transfer = zope.interface.Attribute('The IExporter or IImporter.')


class IRunStarted(IRunEvent):
    """A run is connected and holds the CDS lock."""

    planned = zope.interface.Attribute(
        'The names the run is about to transfer, in order.')


class IRunFinished(IRunEvent):
    """A run ended without a run-wide error."""

    summary = zope.interface.Attribute('The ISummary of the run.')


class IFileEvent(IRunEvent):
    """Something happened to one file."""

    name = zope.interface.Attribute('The file name.')


class IFileExported(IFileEvent):
    """The file is on the CDS under its final name and in ``cur``."""

    size = zope.interface.Attribute('Its size in bytes.')


class IFileImported(IFileEvent):
    """The file is durably in the spool's ``new``; its removal from the
    CDS follows."""

    size = zope.interface.Attribute('Its size in bytes.')


class IFileFailed(IFileEvent):
    """The file could not be transferred; it stays where it was."""

    error = zope.interface.Attribute('The CDSError.')


@zope.interface.implementer(IRunStarted)
class RunStarted:

    def __init__(self, transfer, planned):
        self.transfer = transfer
        self.planned = planned


@zope.interface.implementer(IRunFinished)
class RunFinished:

    def __init__(self, transfer, summary):
        self.transfer = transfer
        self.summary = summary


class _FileEvent:

    def __init__(self, transfer, name, **details):
        self.transfer = transfer
        self.name = name
        self.__dict__.update(details)

    def __repr__(self):
        return f'<{type(self).__name__} {self.name!r}>'


@zope.interface.implementer(IFileExported)
class FileExported(_FileEvent):
    pass


@zope.interface.implementer(IFileImported)
class FileImported(_FileEvent):
    pass


@zope.interface.implementer(IFileFailed)
class FileFailed(_FileEvent):
    pass
