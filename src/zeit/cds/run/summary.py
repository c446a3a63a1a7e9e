import dataclasses

import zope.interface

from zeit.cds.interfaces import ISummary


@zope.interface.implementer(ISummary)
@dataclasses.dataclass
class Summary:
    """What one run did; the run fills it in as it goes."""

    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failures: int = 0

    def __str__(self):
        return (f'{self.files} files, {self.bytes} bytes, '
                f'{self.seconds:.2f} seconds, {self.failures} failures')
