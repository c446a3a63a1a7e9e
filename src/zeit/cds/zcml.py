"""The ZCML directive ``<cds:connection>``: a named CDS partner."""
import zope.component.zcml
import zope.configuration.fields
import zope.interface
import zope.schema
from zope.configuration.exceptions import ConfigurationError

from zeit.cds import connection as connections
from zeit.cds.interfaces import IConnection
from zeit.cds.interfaces import IConnectionSettings
from zeit.cds.interfaces import SettingsError

# The order of the action that checks and registers a connection: after
# every action of order 0, which is where <utility> registers the
# factories. A site may name a scheme before the <utility> of its factory,
# or in a file included later; by this order all of them are there.
AFTER_FACTORIES = 1


class IConnectionDirective(IConnectionSettings):
    """Declare how to reach one CDS partner: the settings of
    IConnectionSettings, and the options the factory of the scheme
    declares (``ca_file`` and ``verify`` for ftps). There is deliberately
    no attribute for a password: it is read from ``password_file``."""

    # The options of the scheme's factory, taken as text and checked
    # against its declaration once every factory is registered.
    zope.interface.taggedValue('keyword_arguments', True)

    name = zope.schema.TextLine(
        title='Name', description='How runs and cds-export refer to it.')

    # Not required, unlike the setting's field: omitted, it is not passed
    # on, and a server's directory defaults to "/", while a folder of this
    # machine ("file") must be named (see connection.checked).
    directory = zope.schema.TextLine(
        title=IConnectionSettings['directory'].title, required=False,
        description=IConnectionSettings['directory'].description)

    tls = zope.configuration.fields.Bool(
        title='Use TLS', required=False, default=False,
        description='Explicit TLS: short for the scheme ftps.')


def connection(_context, name, tls=False, **attributes):
    if 'password' in attributes:
        raise ConfigurationError(
            f'cds:connection {name!r}: there is no password attribute; '
            'name the file it is in with password_file')
    settings = {key: attributes.pop(key) for key in list(attributes)
                if key in IConnectionSettings}
    # Registered like any utility, so that two connections of the same
    # name are reported as a conflict.
    _context.action(
        discriminator=('utility', IConnection, name),
        callable=register, args=(_context, name, tls, settings, attributes),
        order=AFTER_FACTORIES)


def register(context, name, tls, settings, options):
    """Check the connection against its scheme's factory and register
    it; each failure is a ConfigurationError naming the connection."""
    try:
        settings['scheme'] = connections.scheme_of(settings['scheme'], tls)
        declared = connections.checked(
            settings, options, name=name, context=context)
    except SettingsError as e:
        raise ConfigurationError(f'cds:connection {name!r}: {e}') from None
    if connections.logs_in(connections.factory_for(declared.scheme)):
        needed = connections.LOGIN + (
            ('password_file',) if connections.needs_password(declared)
            else ())
        missing = [key for key in needed if not getattr(declared, key)]
        if missing:
            raise ConfigurationError(
                f'cds:connection {name!r} needs {", ".join(missing)}')
    zope.component.zcml.handler(
        'registerUtility', declared, IConnection, name, context.info)
