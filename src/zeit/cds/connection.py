"""Connection settings: how to reach one CDS partner, checked against the
factory of its scheme, and the one place that makes a target of them.

ZCML (``zeit.cds.zcml``), config files and the command line
(``zeit.cds.config``) all end here, in ``checked``.
"""
import os

import zope.component
import zope.interface
import zope.schema
import zope.schema.fieldproperty
from zope.schema.interfaces import ValidationError

from zeit.cds import values
from zeit.cds.interfaces import IConnection
from zeit.cds.interfaces import IConnectionSettings
from zeit.cds.interfaces import IRemoteTargetFactory
from zeit.cds.interfaces import SettingsError

PASSWORD_VARIABLE = 'CDS_PASSWORD'

# ``tls`` is the short form of this scheme, in ZCML and on the command line.
TLS_SCHEME = 'ftps'

# The settings every factory is called with (see IRemoteTargetFactory);
# the others are the run's (scheme, connections) or read here (the
# password file).
TARGET_ARGUMENTS = ('host', 'port', 'user', 'directory', 'timeout')

# What a connection of a factory that logs in needs (IRemoteTargetFactory
# .login); a password too, from wherever the caller takes it.
LOGIN = ('host', 'user')
# The settings that only a factory that logs in takes.
LOGIN_SETTINGS = ('host', 'port', 'user', 'password_file')


@zope.interface.implementer(IConnection)
class ConnectionSettings:
    """The settings of one connection; a setting not given has its field's
    default. Each value is validated by its field when it is set."""

    zope.schema.fieldproperty.createFieldProperties(IConnectionSettings)

    def __init__(self, name=None, options=None, **settings):
        self.name = name
        self.options = dict(options or {})
        for key, value in settings.items():
            if key not in IConnectionSettings:
                raise TypeError(f'{key!r} is not a connection setting')
            setattr(self, key, value)

    def __repr__(self):
        shown = [('name', self.name)] + [
            (key, getattr(self, key))
            for key in zope.schema.getFieldNamesInOrder(IConnectionSettings)]
        shown += sorted(self.options.items())
        return 'ConnectionSettings({})'.format(
            ', '.join(f'{key}={value!r}' for key, value in shown))

    def target(self, password=None):
        factory = factory_for(self.scheme)
        if password is None and self.password_file:
            password = read_password(self.password_file)
        arguments = {key: getattr(self, key) for key in TARGET_ARGUMENTS}
        if self.port is None:
            del arguments['port']  # The factory knows its usual port.
        return factory(password=password, **arguments, **self.options)


def known_schemes():
    """The names of the registered IRemoteTargetFactory utilities."""
    return sorted(name for name, _ in
                  zope.component.getUtilitiesFor(IRemoteTargetFactory))


def factory_for(scheme, spelled='scheme'):
    """The IRemoteTargetFactory named ``scheme``; SettingsError naming it
    and the known ones (the setting ``spelled`` so) when there is none."""
    factory = zope.component.queryUtility(IRemoteTargetFactory, name=scheme)
    if factory is None:
        raise SettingsError(
            f'unknown {spelled} {scheme!r}; known: '
            f'{", ".join(known_schemes()) or "none"}')
    return factory


def options_of(factory):
    """The fields of the options only ``factory`` takes, by name."""
    declared = getattr(factory, 'options', None)
    if declared is None:
        return {}
    return dict(zope.schema.getFieldsInOrder(declared))


def logs_in(factory):
    return getattr(factory, 'login', True)


def needs_password(settings):
    """Whether the connection ``settings`` (a ConnectionSettings) logs
    in with a password: its factory logs in, and none of the options it
    takes instead of a password (SFTP's key file) is given."""
    factory = factory_for(settings.scheme)
    instead = getattr(factory, 'instead_of_password', ())
    return logs_in(factory) and not any(
        settings.options.get(key) for key in instead)


def scheme_of(scheme, tls, spell=str):
    """The scheme meant by ``scheme`` and the short form ``tls``."""
    if tls and scheme not in (None, IConnectionSettings['scheme'].default,
                              TLS_SCHEME):
        raise SettingsError(
            f'tls does not apply to {spell("scheme")} {scheme}')
    if tls:
        return TLS_SCHEME
    return scheme or IConnectionSettings['scheme'].default


def checked(settings, options, *, name=None, spell=str,
            context=values.WorkingDirectory()):
    """The ConnectionSettings of ``settings`` (IConnectionSettings fields
    to values, the scheme among them) and ``options`` (names to values of
    the options of some scheme).

    The scheme must be registered, and each of ``options`` one that its
    factory declares; its field converts it when it is text (relative
    paths start at ``context``) and validates it. ``spell(name)`` is how
    the caller's user writes a setting, for the messages. Raises
    SettingsError.
    """
    scheme = settings.get('scheme') or IConnectionSettings['scheme'].default
    factory = factory_for(scheme, spell('scheme'))
    declared = options_of(factory)
    converted = {}
    for key, value in options.items():
        if key not in declared:
            raise SettingsError(_not_for(spell, key, scheme))
        converted[key] = values.converted(
            declared[key], value, spell(key), context)
    if not logs_in(factory):
        for key in LOGIN_SETTINGS:
            if settings.get(key) is not None:
                raise SettingsError(
                    f'{spell(key)} does not apply to {spell("scheme")} '
                    f'{scheme}: it logs in to no server')
        # Not the default "/", a server's top: here it would be the root
        # of this machine, whose files an import would take away.
        if settings.get('directory') is None:
            raise SettingsError(
                f'{spell("scheme")} {scheme} needs {spell("directory")}: '
                'the folder of the CDS share')
    try:
        return ConnectionSettings(name=name, options=converted, **settings)
    except ValidationError as e:
        key = e.field.__name__
        raise SettingsError(values.in_words(
            spell(key), e.field, settings[key], e)) from None


def _not_for(spell, key, scheme):
    """That the option ``key`` does not apply to ``scheme``, and which
    schemes it does apply to."""
    takers = [name for name in known_schemes()
              if key in options_of(factory_for(name))]
    needs = ' or '.join('tls' if name == TLS_SCHEME
                        else f'{spell("scheme")} {name}' for name in takers)
    return (f'{spell(key)} does not apply to {spell("scheme")} {scheme}'
            + (f'; it needs {needs}' if needs else ''))


def read_password(path):
    """The password from the file ``path``, else from CDS_PASSWORD; an
    empty one is a SettingsError (a file not filled in yet, a variable
    set to nothing), not a login to try."""
    if path is None:
        try:
            password = os.environ[PASSWORD_VARIABLE]
        except KeyError:
            raise SettingsError(
                'No password: use --password-file or set '
                f'{PASSWORD_VARIABLE}') from None
        where = f'the environment variable {PASSWORD_VARIABLE}'
    else:
        password = read_secret(path, 'password')
        where = f'the password file {path}'
    if not password:
        raise SettingsError(f'Empty password in {where}')
    if '\n' in password or '\r' in password:
        # A login sends it in one line; not a refusal of the server's.
        raise SettingsError(f'The password in {where} has more than one '
                            'line')
    return password


def read_secret(path, what):
    """The ``what`` (a password, a passphrase) in the file ``path``."""
    try:
        with open(path, encoding='utf-8') as f:
            return f.read().rstrip('\r\n')
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, 'strerror', None) or 'not UTF-8 text'
        raise SettingsError(
            f'Cannot read {what} file {path}: {reason}') from e
