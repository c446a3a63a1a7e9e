"""The ZCML directive ``<cds:connection>``: a named CDS partner."""
import zope.component.zcml
import zope.configuration.fields
import zope.interface
import zope.schema
from zope.configuration.exceptions import ConfigurationError

from zeit.cds.connection import ConnectionSettings
from zeit.cds.interfaces import IConnectionSettings


class IConnectionDirective(zope.interface.Interface):
    """Declare how to reach one CDS partner. There is deliberately no
    attribute for a password: it is read from ``password_file``."""

    name = zope.schema.TextLine(
        title='Name', description='How runs and cds-export refer to it.')

    scheme = zope.schema.Choice(
        title='Kind of target', values=('ftp', 'ftps', 'file', 'memory'),
        required=False, default='ftp',
        description='"file" is a local or mounted folder (host, user and '
        'password are not used).')

    host = zope.schema.TextLine(title='Host', required=False)

    port = zope.schema.Int(title='Port', min=1, max=65535, required=False,
                           default=21)

    user = zope.schema.TextLine(title='User', required=False)

    password_file = zope.configuration.fields.Path(
        title='Password file', required=False,
        description='A file holding the password, read at every run.')

    directory = zope.schema.TextLine(
        title='Directory', required=False, default='/',
        description='The CDS directory on the server, or the folder for '
        '"file".')

    tls = zope.configuration.fields.Bool(
        title='Use TLS', required=False, default=False,
        description='The same as scheme="ftps".')

    connections = zope.schema.Int(
        title='Connections', min=1, max=16, required=False, default=4,
        description='How many transfers run at once.')

    ca_file = zope.configuration.fields.Path(
        title='CA file', required=False,
        description='Trust the CAs in this PEM file instead of the '
        "system's (FTPS only).")


def connection(_context, name, scheme='ftp', host=None, port=21, user=None,
               password_file=None, directory='/', tls=False, ca_file=None,
               connections=4):
    if tls:
        if scheme == 'file':
            raise ConfigurationError(
                f'cds:connection {name!r}: tls does not apply to "file"')
        scheme = 'ftps'
    if ca_file and scheme != 'ftps':
        raise ConfigurationError(
            f'cds:connection {name!r}: ca_file needs tls')
    if scheme in ('ftp', 'ftps'):
        missing = [attribute for attribute, value in [
            ('host', host), ('user', user), ('password_file', password_file)]
            if not value]
        if missing:
            raise ConfigurationError(
                f'cds:connection {name!r} needs {", ".join(missing)}')
    settings = ConnectionSettings(
        name=name, scheme=scheme, host=host, port=port, user=user,
        password_file=password_file, directory=directory, ca_file=ca_file,
        connections=connections)
    # Registered like any utility, so that two connections of the same
    # name are reported as a conflict.
    zope.component.zcml.utility(
        _context, provides=IConnectionSettings, component=settings,
        name=name)
