"""Settings of a run: from an INI file with one section per CDS target,
overridden by the command line, checked before anything is touched.

Example::

    [partner-a]
    spool = /var/spool/zeit.cds/partner-a
    host = cds.partner-a.example
    port = 21
    user = zeit
    dir = /incoming
    password-file = /etc/zeit.cds/partner-a.password
    logfile = /var/log/zeit.cds/partner-a.log
    break-lock-older-than = 3600
    connections = 4
    timeout = 60
    tls = yes
    ca-file = /etc/ssl/certs/partner-a-ca.pem

Instead of the connection's settings, a section may name a connection
declared in a site's ZCML::

    [partner-b]
    spool = /var/spool/zeit.cds/partner-b
    zcml = /srv/zeit.cms/etc/site.zcml
    connection = partner-b

The keys are not listed here: they are the fields of ICommandLineSettings,
of IConnectionSettings and of the options each registered target factory
declares (``IRemoteTargetFactory.options``), each written with hyphens,
and ``tls``. The command line has one option per key.
"""
import configparser
import dataclasses
import os

import zope.schema

from zeit.cds import connection
from zeit.cds import values
from zeit.cds.interfaces import ICommandLineSettings
from zeit.cds.interfaces import IConnectionSettings
from zeit.cds.interfaces import SettingsError
from zeit.cds.zcml import IConnectionDirective

# Keys that are not their field's name with hyphens: shorter, or older.
SPELLINGS = {'directory': 'dir', 'scheme': 'protocol',
             'verify': 'insecure-skip-verify'}

# Keys that say the opposite of their field: insecure-skip-verify = yes
# sets verify to False.
INVERTED = {'verify'}

# A ZCML connection declares these itself; the command line may still
# choose how many connections a run opens.
RUN_CHOICES = {'connections'}


@dataclasses.dataclass(frozen=True)
class Key:
    """A key of the config file and its command-line option."""

    key: str      # as written: 'dir', 'password-file'
    name: str     # the field's name: 'directory', 'password_file'
    field: zope.schema.interfaces.IField
    kind: str     # 'run', 'connection', or the scheme whose option it is

    @property
    def inverted(self):
        return self.name in INVERTED


def spell(name):
    """How the config file and the command line write the setting
    ``name``."""
    return SPELLINGS.get(name, name.replace('_', '-'))


def keys():
    """Every key, by its spelling: the run's, the connection's, ``tls``,
    and the options of every registered target factory."""
    found = {}

    def add(fields, kind):
        for name, field in fields:
            found.setdefault(spell(name), Key(spell(name), name, field, kind))

    add(zope.schema.getFieldsInOrder(ICommandLineSettings), 'run')
    add(zope.schema.getFieldsInOrder(IConnectionSettings), 'connection')
    add([('tls', IConnectionDirective['tls'])], 'connection')
    for scheme in connection.known_schemes():
        factory = connection.factory_for(scheme)
        add(connection.options_of(factory).items(), scheme)
    return found


def converted(key, value):
    """``value`` (text, or a command-line flag's True) for ``key``."""
    return values.converted(key.field, value, key.key)


def read_section(path, section=None):
    """The name of the section and its settings, converted: ``section`` of
    the INI file ``path``.

    Without ``section`` the file must have exactly one.
    """
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding='utf-8') as f:
            parser.read_file(f)
    except OSError as e:
        raise SettingsError(
            f'Cannot read config file {path}: {e.strerror}') from e
    except configparser.Error as e:
        raise SettingsError(
            f'Config file {path} is not valid: {_ini_error(e)}') from e
    if section is None:
        if len(parser.sections()) != 1:
            raise SettingsError(
                f'Config file {path} has sections '
                f'{", ".join(parser.sections()) or "(none)"}: '
                'choose one with --section')
        section = parser.sections()[0]
    if not parser.has_section(section):
        raise SettingsError(
            f'Config file {path} has no section [{section}]')
    known = keys()
    found = {}
    for key, value in parser.items(section):
        where = f'Config file {path}, section [{section}]'
        if key == 'password':
            raise SettingsError(
                f'{where}: there is no key password; name the file it is '
                'in with password-file')
        if key not in known:
            raise SettingsError(f'{where}: unknown key {key!r}')
        try:
            found[key] = converted(known[key], value)
        except SettingsError as e:
            raise SettingsError(f'{where}: {e}') from None
    return section, found


def _ini_error(error):
    """What configparser's ``error`` says, in one line with its line
    number (not the line: it may hold a password)."""
    if isinstance(error, configparser.MissingSectionHeaderError):
        return f'line {error.lineno}: a key before the first [section]'
    if isinstance(error, configparser.ParsingError):
        lineno = error.errors[0][0]
        return f'line {lineno}: neither a [section] nor a key = value'
    # DuplicateSectionError and the like name the line themselves.
    return str(error).splitlines()[0]


class Settings:
    """Everything one run needs; ``password`` is never shown.

    The fields of ICommandLineSettings; ``connections``, the number of
    connections the command line chose (None: the connection's);
    ``remote``, the ConnectionSettings the command line gave (None with
    ``zcml``); ``password``, for ``remote``; ``section``, the config file's
    section (None without).
    """

    section = None

    zope.schema.fieldproperty.createFieldProperties(ICommandLineSettings)

    def __init__(self, remote=None, password=None, connections=None,
                 **settings):
        self.remote = remote
        self.password = password
        self.connections = connections
        for name, value in settings.items():
            setattr(self, name, value)

    def __repr__(self):
        shown = [(name, getattr(self, name)) for name in
                 zope.schema.getFieldNamesInOrder(ICommandLineSettings)]
        shown += [('connections', self.connections), ('remote', self.remote)]
        return 'Settings({})'.format(
            ', '.join(f'{name}={value!r}' for name, value in shown))


def settings(given):
    """Settings from ``given`` (keys to converted values), with the
    password read from its file or the environment."""
    _require(given, 'spool')
    spool = given['spool']
    # A typo in a cron line must not "succeed" forever on a new folder.
    if not given.get('prepare') and not os.path.isdir(
            os.path.join(spool, 'new')):
        what = ('missing' if not os.path.exists(spool)
                else 'not a directory' if not os.path.isdir(spool)
                else 'not a spool (it has no new/)')
        raise SettingsError(
            f'Spool {spool} is {what}: check the path, or create it with '
            "--prepare (config key 'prepare')")
    known = keys()
    run = {known[key].name: value for key, value in given.items()
           if known[key].kind == 'run'}
    run['connections'] = given.get('connections')
    if given.get('zcml') or given.get('connection'):
        _require(given, 'zcml')
        _require(given, 'connection')
        clashing = [key for key in given if known[key].kind != 'run'
                    and known[key].name not in RUN_CHOICES]
        if clashing:
            raise SettingsError(
                f'The ZCML connection declares {", ".join(clashing)} '
                'itself')
        return Settings(**run)
    scheme = connection.scheme_of(given.get('protocol'), given.get('tls'),
                                  spell)
    common, options = {'scheme': scheme}, {}
    for key, value in given.items():
        found = known[key]
        if found.kind == 'connection' and found.name in IConnectionSettings:
            common.setdefault(found.name, value)
        elif found.kind not in ('run', 'connection'):
            if found.inverted:
                value = not value
            # A flag at its default is no choice: "tls = no" is no TLS,
            # "insecure-skip-verify = no" no choice of FTPS.
            if value != found.field.default:
                options[found.name] = value
    remote = connection.checked(common, options, spell=spell)
    password = None
    logs_in = connection.logs_in(connection.factory_for(remote.scheme))
    if logs_in:
        for key in connection.LOGIN:
            _require(given, key)
    if logs_in and (connection.needs_password(remote)
                    or given.get('password-file')
                    or connection.PASSWORD_VARIABLE in os.environ):
        # Besides a key, where one is given: the server may want both.
        password = connection.read_password(given.get('password-file'))
    return Settings(remote=remote, password=password, **run)


def _require(given, key):
    if not given.get(key):
        raise SettingsError(
            f'No {key} given: use --{key} or the config key {key!r}')
