"""Named connection settings: how to reach one CDS partner."""
import dataclasses

import zope.component
import zope.interface

from zeit.cds import config
from zeit.cds.interfaces import IConnectionSettings
from zeit.cds.interfaces import IRemoteTargetFactory


@zope.interface.implementer(IConnectionSettings)
@dataclasses.dataclass(frozen=True)
class ConnectionSettings:

    name: str
    scheme: str = 'ftp'
    host: str = None
    port: int = 21
    user: str = None
    password_file: str = None
    directory: str = '/'
    ca_file: str = None
    connections: int = 4

    def target(self):
        factory = zope.component.getUtility(
            IRemoteTargetFactory, name=self.scheme)
        password = (config.read_password(self.password_file)
                    if self.password_file else None)
        # Only FTPS knows of CAs; other factories need not hear of them.
        options = {'ca_file': self.ca_file} if self.ca_file else {}
        return factory(host=self.host, port=self.port, user=self.user,
                       password=password, directory=self.directory,
                       **options)
