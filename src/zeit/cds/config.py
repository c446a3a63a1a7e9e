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
    tls = yes
    ca-file = /etc/ssl/certs/partner-a-ca.pem

Instead of host, port, user, dir, password-file and the TLS keys, a
section may name a connection declared in a site's ZCML::

    [partner-b]
    spool = /var/spool/zeit.cds/partner-b
    zcml = /srv/zeit.cms/etc/site.zcml
    connection = partner-b
"""
import configparser
import dataclasses
import os

from zeit.cds.interfaces import ConfigurationError

PASSWORD_VARIABLE = 'CDS_PASSWORD'


def _port(value):
    port = _integer('port', value)
    if not 1 <= port <= 65535:
        raise ConfigurationError(f'port {port} is out of range (1-65535)')
    return port


def _connections(value):
    connections = _integer('connections', value)
    if not 1 <= connections <= 16:
        raise ConfigurationError(
            f'connections {connections} is out of range (1-16)')
    return connections


def _seconds(value):
    seconds = _integer('break-lock-older-than', value)
    if seconds < 0:
        raise ConfigurationError('break-lock-older-than must not be negative')
    return seconds


def _flag(value):
    if isinstance(value, bool):
        return value
    try:
        return {'yes': True, 'true': True, 'on': True, '1': True,
                'no': False, 'false': False, 'off': False,
                '0': False}[value.lower()]
    except KeyError:
        raise ConfigurationError(
            f'{value!r} is neither yes nor no') from None


def _integer(key, value):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f'{key} must be a whole number, not {value!r}') from None


# The keys of a config file section, each with its conversion.
KEYS = {
    'spool': str,
    'host': str,
    'port': _port,
    'user': str,
    'dir': str,
    'password-file': str,
    'logfile': str,
    'break-lock-older-than': _seconds,
    'connections': _connections,
    'tls': _flag,
    'ca-file': str,
    'insecure-skip-verify': _flag,
    'zcml': str,
    'connection': str,
}

# What a ZCML connection declares itself.
CONNECTION_KEYS = ('host', 'port', 'user', 'dir', 'password-file', 'tls',
                   'ca-file', 'insecure-skip-verify')


@dataclasses.dataclass
class Settings:
    """Everything one run needs; ``password`` is never shown."""

    spool: str
    host: str = None
    user: str = None
    password: str = dataclasses.field(default=None, repr=False)
    port: int = 21
    dir: str = '/'
    logfile: str = None
    break_lock_older_than: int = None
    connections: int = None  # as the connection says, or the default
    tls: bool = False
    ca_file: str = None
    insecure_skip_verify: bool = False
    zcml: str = None
    connection: str = None


def read_section(path, section=None):
    """The settings in ``section`` of the INI file ``path``, converted.

    Without ``section`` the file must have exactly one.
    """
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding='utf-8') as f:
            parser.read_file(f)
    except OSError as e:
        raise ConfigurationError(
            f'Cannot read config file {path}: {e.strerror}') from e
    except configparser.Error as e:
        raise ConfigurationError(
            f'Config file {path} is not valid: '
            f'{str(e).splitlines()[0]}') from e
    if section is None:
        if len(parser.sections()) != 1:
            raise ConfigurationError(
                f'Config file {path} has sections '
                f'{", ".join(parser.sections()) or "(none)"}: '
                'choose one with --section')
        section = parser.sections()[0]
    if not parser.has_section(section):
        raise ConfigurationError(
            f'Config file {path} has no section [{section}]')
    values = {}
    for key, value in parser.items(section):
        if key not in KEYS:
            raise ConfigurationError(
                f'Config file {path}, section [{section}]: '
                f'unknown key {key!r}')
        values[key] = KEYS[key](value)
    return values


def settings(values):
    """Settings from ``values`` (config keys to converted values), with
    the password read from its file or the environment."""
    _require(values, 'spool')
    spool = values['spool']
    if not os.path.isdir(spool):
        what = 'not a directory' if os.path.exists(spool) else 'missing'
        raise ConfigurationError(f'Spool {spool} is {what}')
    common = dict(spool=spool, logfile=values.get('logfile'),
                  break_lock_older_than=values.get('break-lock-older-than'),
                  connections=values.get('connections'))
    if values.get('zcml') or values.get('connection'):
        return _connection_settings(values, common)
    _require(values, 'host')
    _require(values, 'user')
    tls = values.get('tls', False)
    for key in ('ca-file', 'insecure-skip-verify'):
        if values.get(key) and not tls:
            raise ConfigurationError(f'{key} needs tls')
    if values.get('ca-file') and values.get('insecure-skip-verify'):
        raise ConfigurationError(
            'ca-file and insecure-skip-verify contradict each other')
    return Settings(
        host=values['host'], user=values['user'],
        password=read_password(values.get('password-file')),
        port=values.get('port', 21), dir=values.get('dir', '/'), tls=tls,
        ca_file=values.get('ca-file'),
        insecure_skip_verify=values.get('insecure-skip-verify', False),
        **common)


def _connection_settings(values, common):
    _require(values, 'zcml')
    _require(values, 'connection')
    clashing = [key for key in CONNECTION_KEYS if key in values]
    if clashing:
        raise ConfigurationError(
            f'The ZCML connection declares {", ".join(clashing)} itself')
    return Settings(zcml=values['zcml'], connection=values['connection'],
                    **common)


def _require(values, key):
    if not values.get(key):
        raise ConfigurationError(
            f'No {key} given: use --{key} or the config key {key!r}')


def read_password(path):
    """The password from the file ``path``, else from CDS_PASSWORD."""
    if path is None:
        try:
            return os.environ[PASSWORD_VARIABLE]
        except KeyError:
            raise ConfigurationError(
                'No password: use --password-file or set '
                f'{PASSWORD_VARIABLE}') from None
    try:
        with open(path, encoding='utf-8') as f:
            return f.read().rstrip('\r\n')
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, 'strerror', None) or 'not UTF-8 text'
        raise ConfigurationError(
            f'Cannot read password file {path}: {reason}') from e
