"""The one settings model: IConnectionSettings, what ZCML, config files and
the command line derive from it, and the options a factory declares."""
import argparse
import logging
import os
import tempfile
import unittest

import zope.component
import zope.component.testing
import zope.configuration.xmlconfig
import zope.interface
import zope.schema
from zope.configuration.exceptions import ConfigurationError
from zope.interface.verify import verifyObject

import zeit.cds
import zeit.cds.interfaces
from zeit.cds import cli
from zeit.cds import config
from zeit.cds import connection
from zeit.cds import values
from zeit.cds.connection import ConnectionSettings
from zeit.cds.interfaces import ICommandLineSettings
from zeit.cds.interfaces import IConnection
from zeit.cds.interfaces import IConnectionSettings
from zeit.cds.interfaces import IFTPSOptions
from zeit.cds.interfaces import IRemoteTargetFactory
from zeit.cds.interfaces import ISFTPOptions
from zeit.cds.interfaces import SettingsError
from zeit.cds.run.transfer import Transfer
from zeit.cds.targets.folder import FileTarget
from zeit.cds.targets.ftp import FTPTarget
from zeit.cds.targets.ftps import FTPSTarget
from zeit.cds.targets.sftpfactory import make_sftp_target
from zeit.cds.zcml import IConnectionDirective


class IShelfOptions(zope.interface.Interface):
    """The options of a site's own kind of target."""

    shelf = zope.schema.Int(title='Shelf', min=1, default=1,
                            description='Which shelf of the folder.')


@zope.interface.provider(IRemoteTargetFactory)
class ShelfTarget(FileTarget):
    """A site's own kind of target: a folder, with an option of its own."""

    options = IShelfOptions

    def __init__(self, *, shelf=1, **common):
        super().__init__(**common)
        self.shelf = shelf


class RegistryTestCase(unittest.TestCase):
    """zeit.cds's configure.zcml in a registry of the test's own."""

    def setUp(self):
        super().setUp()
        zope.component.testing.setUp(self)
        self.addCleanup(zope.component.testing.tearDown, self)
        zope.configuration.xmlconfig.file('configure.zcml', package=zeit.cds)
        self.folder = tempfile.mkdtemp(prefix='cds-settings-')
        self.addCleanup(os.rmdir, self.folder)


class ModelTest(unittest.TestCase):
    """Each default is written once, in the field."""

    def test_a_connection_has_the_defaults_of_the_fields(self):
        settings = ConnectionSettings()
        for name, field in zope.schema.getFieldsInOrder(IConnectionSettings):
            self.assertEqual(field.default, getattr(settings, name), name)
        # No port: each factory has its protocol's usual one.
        self.assertEqual(('ftp', None, '/', 4, 60), (
            settings.scheme, settings.port, settings.directory,
            settings.connections, settings.timeout))

    def test_a_run_opens_as_many_connections_as_the_model_says(self):
        self.assertEqual(IConnectionSettings['connections'].default,
                         Transfer.connections)

    def test_the_directive_adds_only_a_name_and_the_short_form_tls(self):
        self.assertTrue(IConnectionDirective.extends(IConnectionSettings))
        self.assertEqual(
            {'name', 'tls'},
            set(IConnectionDirective.names()) - set(IConnectionSettings))

    def test_values_are_validated_when_set(self):
        with self.assertRaises(zope.schema.ValidationError):
            ConnectionSettings(port=70000)
        with self.assertRaises(zope.schema.ValidationError):
            ConnectionSettings(timeout=0)
        with self.assertRaises(TypeError):
            ConnectionSettings(password='secret')

    def test_the_password_is_no_setting(self):
        self.assertNotIn('password', IConnectionSettings)
        verifyObject(IConnection, ConnectionSettings(name='a'))

    def test_factories_declare_their_options(self):
        self.assertIs(IFTPSOptions, FTPSTarget.options)
        self.assertIsNone(FTPTarget.options)
        self.assertIsNone(FileTarget.options)
        self.assertFalse(FileTarget.login)
        self.assertIs(ISFTPOptions, make_sftp_target.options)
        self.assertEqual(('key_file',), make_sftp_target.instead_of_password)
        for factory in (FTPTarget, FTPSTarget, FileTarget, make_sftp_target):
            verifyObject(IRemoteTargetFactory, factory)

    def test_the_old_name_of_the_error_is_kept_for_a_while(self):
        self.assertIs(SettingsError, zeit.cds.interfaces.ConfigurationError)


class ValuesTest(unittest.TestCase):
    """Text converted by its field; errors that name the key."""

    def assertRefused(self, message, field, text, key):
        with self.assertRaises(SettingsError) as raised:
            values.converted(field, text, key)
        self.assertEqual(message, str(raised.exception))

    def test_numbers(self):
        port = IConnectionSettings['port']
        self.assertEqual(2121, values.converted(port, '2121', 'port'))
        self.assertRefused('port 70000 is out of range (1-65535)',
                           port, '70000', 'port')
        self.assertRefused("port must be a whole number, not 'ftp'",
                           port, 'ftp', 'port')
        self.assertRefused('timeout 0 is out of range (1-86400)',
                           IConnectionSettings['timeout'], '0', 'timeout')
        # Not taken up to where no clock can count it (an OverflowError).
        self.assertRefused(
            'timeout 99999999999999999999 is out of range (1-86400)',
            IConnectionSettings['timeout'], '99999999999999999999',
            'timeout')
        self.assertRefused(
            'break-lock-older-than must be at least 0, not -1',
            ICommandLineSettings['break_lock_older_than'], '-1',
            'break-lock-older-than')

    def test_flags_take_the_words_of_config_files_and_zcml(self):
        verify = IFTPSOptions['verify']
        for text, expected in [('yes', True), ('on', True), ('TRUE', True),
                               ('1', True), ('no', False), ('off', False),
                               ('f', False)]:
            self.assertIs(expected, values.converted(verify, text, 'v'))
        self.assertIs(True, values.converted(verify, True, 'v'))
        self.assertRefused("tls: 'yes please' is neither yes nor no",
                           verify, 'yes please', 'tls')

    def test_relative_paths_start_in_the_working_directory(self):
        self.assertEqual(
            os.path.join(os.getcwd(), 'ca.pem'),
            values.converted(IFTPSOptions['ca_file'], 'ca.pem', 'ca-file'))

    def test_other_mistakes(self):
        self.assertRefused(
            "host: 'a\\nb' is not valid (constraint not satisfied)",
            IConnectionSettings['host'], 'a\nb', 'host')


class KeysTest(RegistryTestCase):
    """Config keys and command-line options, derived from the fields."""

    def test_every_field_is_a_key(self):
        keys = config.keys()
        for interface in (ICommandLineSettings, IConnectionSettings,
                          IFTPSOptions):
            for name in interface:
                self.assertEqual(name, keys[config.spell(name)].name)

    def test_every_key_of_before_is_kept(self):
        self.assertLessEqual(
            {'spool', 'host', 'port', 'user', 'dir', 'password-file',
             'logfile', 'break-lock-older-than', 'connections', 'tls',
             'ca-file', 'insecure-skip-verify', 'zcml', 'connection'},
            set(config.keys()))
        self.assertEqual('directory', config.keys()['dir'].name)
        self.assertEqual('scheme', config.keys()['protocol'].name)

    def test_a_new_option_is_declared_once(self):
        # By a factory: a config key, an option of the command line, a
        # setting its connections pass on.
        zope.component.provideUtility(ShelfTarget, name='shelf')
        self.assertEqual('shelf', config.keys()['shelf'].kind)
        args = cli.parser('export').parse_args(['--shelf', '3'])
        self.assertEqual('3', args.shelf)
        remote = config.settings({
            'spool': self.folder, 'prepare': True, 'protocol': 'shelf',
            'dir': self.folder, 'shelf': 3}).remote
        self.assertEqual(3, remote.target().shelf)


class PasswordBesidesAKeyTest(RegistryTestCase):

    def settings(self, **given):
        return config.settings({
            'spool': self.folder, 'prepare': True, 'protocol': 'sftp',
            'host': 'cds.example', 'user': 'zeit', 'key-file': '/key',
            **given})

    def test_from_the_environment_as_from_a_file(self):
        # The server may ask for both.
        os.environ['CDS_PASSWORD'] = 'from the environment'
        self.addCleanup(os.environ.pop, 'CDS_PASSWORD')
        self.assertEqual('from the environment', self.settings().password)
        path = os.path.join(self.folder, 'password')
        with open(path, 'w') as f:
            f.write('from the file\n')
        self.addCleanup(os.remove, path)
        self.assertEqual('from the file',
                         self.settings(**{'password-file': path}).password)

    def test_none_without_either(self):
        os.environ.pop('CDS_PASSWORD', None)
        self.assertIsNone(self.settings().password)


class CheckedTest(RegistryTestCase):
    """ConnectionSettings checked against the factory of their scheme."""

    def assertRefused(self, message, settings, options=None, **kw):
        with self.assertRaises(SettingsError) as raised:
            connection.checked(settings, options or {}, **kw)
        self.assertEqual(message, str(raised.exception))

    def test_unknown_scheme_names_the_known_ones(self):
        self.assertRefused(
            "unknown scheme 'scp'; known: file, ftp, ftps, sftp",
            {'scheme': 'scp'})
        self.assertRefused(
            "unknown protocol 'scp'; known: file, ftp, ftps, sftp",
            {'scheme': 'scp'}, spell=config.spell)

    def test_options_reach_their_scheme_only(self):
        self.assertRefused(
            'ca_file does not apply to scheme ftp; it needs tls',
            {'scheme': 'ftp'}, {'ca_file': '/ca.pem'})
        self.assertRefused(
            'insecure-skip-verify does not apply to protocol file; it needs '
            'tls', {'scheme': 'file'}, {'verify': False}, spell=config.spell)
        zope.component.provideUtility(ShelfTarget, name='shelf')
        self.assertRefused(
            'shelf does not apply to scheme ftps; it needs scheme shelf',
            {'scheme': 'ftps'}, {'shelf': 2})
        self.assertRefused('shelf must be at least 1, not 0',
                           {'scheme': 'shelf'}, {'shelf': '0'})

    def test_a_scheme_that_logs_in_nowhere_takes_no_login(self):
        for key, value in [('host', 'cds.example'), ('port', 21),
                           ('user', 'zeit'), ('password_file', '/pw')]:
            self.assertRefused(
                f'{key} does not apply to scheme file: it logs in to no '
                'server', {'scheme': 'file', 'directory': '/srv/cds',
                           key: value}, {})
        self.assertRefused(
            'password-file does not apply to protocol file: it logs in to '
            'no server', {'scheme': 'file', 'directory': '/srv/cds',
                          'password_file': '/pw'}, {}, spell=config.spell)

    def test_a_host_must_be_a_name_that_can_be_looked_up(self):
        self.assertRefused(
            "host: 'cds..example' is not valid (not a name or address that "
            "can be looked up)", {'scheme': 'ftp', 'host': 'cds..example'})
        for host in ('cds.example', 'münchen.example', '::1', '127.0.0.1'):
            self.assertEqual(host, connection.checked(
                {'scheme': 'ftp', 'host': host}, {}).host)

    def test_a_folder_is_never_the_default_root(self):
        # "/" is a server's top, but this machine's root for "file": an
        # import would take its files away.
        self.assertRefused('scheme file needs directory: the folder of the '
                           'CDS share', {'scheme': 'file'}, {})
        self.assertRefused('protocol file needs dir: the folder of the '
                           'CDS share', {'scheme': 'file'}, {},
                           spell=config.spell)
        self.assertEqual('/', connection.checked(
            {'scheme': 'file', 'directory': '/'}, {}).directory)

    def test_the_target_gets_the_common_settings_and_its_options(self):
        settings = connection.checked(
            {'scheme': 'ftps', 'host': 'cds.example', 'user': 'zeit',
             'timeout': 5}, {'verify': 'no'})
        self.assertEqual({'verify': False}, settings.options)
        target = settings.target(password='secret')
        self.assertIsInstance(target, FTPSTarget)
        self.assertEqual(('cds.example', 21, 'zeit', '/', 5, False), (
            target.host, target.port, target.user, target.directory,
            target.timeout, target.verify))

    def test_a_folder_takes_the_timeout_and_ignores_it(self):
        settings = connection.checked(
            {'scheme': 'file', 'directory': self.folder, 'timeout': 5}, {})
        self.assertEqual(self.folder, settings.target().directory)

    def test_tls_is_short_for_ftps(self):
        self.assertEqual('ftps', connection.scheme_of(None, True))
        self.assertEqual('ftps', connection.scheme_of('ftp', True))
        self.assertEqual('ftp', connection.scheme_of(None, False))
        with self.assertRaises(SettingsError) as raised:
            connection.scheme_of('file', True)
        self.assertEqual('tls does not apply to scheme file',
                         str(raised.exception))

    def test_a_scheme_gone_by_the_run_is_named(self):
        settings = connection.checked(
            {'scheme': 'file', 'directory': '/srv/cds'}, {})
        zope.component.getGlobalSiteManager().unregisterUtility(
            provided=IRemoteTargetFactory, name='file')
        with self.assertRaises(SettingsError) as raised:
            settings.target()
        self.assertEqual("unknown scheme 'file'; known: ftp, ftps, sftp",
                         str(raised.exception))


class ZCMLTest(RegistryTestCase):
    """<cds:connection> with open schemes, checked when executed."""

    def load(self, directives):
        zope.configuration.xmlconfig.string(f'''
        <configure xmlns="http://namespaces.zope.org/zope"
                   xmlns:cds="http://namespaces.zeit.de/cds">
          <include package="zeit.cds" file="meta.zcml" />
          {directives}
        </configure>''')

    def assertRefused(self, message, directives):
        with self.assertRaises(ConfigurationError) as raised:
            self.load(directives)
        self.assertEqual(message, str(raised.exception).splitlines()[0])
        self.assertIsNone(
            zope.component.queryUtility(IConnection, 'partner'))

    def test_a_folder_must_be_named_a_server_directory_need_not(self):
        # Left out, "/" would be this machine's root for "file".
        self.assertRefused(
            "cds:connection 'partner': scheme file needs directory: the "
            'folder of the CDS share', '<cds:connection name="partner" '
            'scheme="file" />')
        self.load('<cds:connection name="partner" host="cds.example" '
                  'user="zeit" password_file="/pw" />')
        self.assertEqual('/', zope.component.getUtility(
            IConnection, 'partner').directory)

    def test_a_site_registers_a_scheme_after_naming_it(self):
        self.load(f'''
          <cds:connection name="partner" scheme="shelf" shelf="2"
                          directory="{self.folder}" />
          <utility component="{__name__}.ShelfTarget"
                   provides="zeit.cds.interfaces.IRemoteTargetFactory"
                   name="shelf" />''')
        declared = zope.component.getUtility(IConnection, 'partner')
        self.assertEqual({'shelf': 2}, declared.options)
        target = declared.target()
        self.assertIsInstance(target, ShelfTarget)
        self.assertEqual((2, self.folder), (target.shelf, target.directory))

    def test_the_check_runs_after_every_registration(self):
        context = zope.configuration.xmlconfig.string(f'''
        <configure xmlns="http://namespaces.zope.org/zope"
                   xmlns:cds="http://namespaces.zeit.de/cds">
          <include package="zeit.cds" file="meta.zcml" />
          <cds:connection name="partner" scheme="file" directory="/" />
          <utility component="{__name__}.ShelfTarget"
                   provides="zeit.cds.interfaces.IRemoteTargetFactory"
                   name="shelf" />
        </configure>''', execute=False)
        orders = {action['discriminator'][1]: action['order']
                  for action in context.actions
                  if action['discriminator'] is not None}
        self.assertLess(orders[IRemoteTargetFactory], orders[IConnection])

    def test_sftp_with_a_key_needs_no_password_file(self):
        self.load('''
          <cds:connection name="partner" scheme="sftp" host="h" user="u"
                          key_file="/etc/cds/id_ed25519"
                          known_hosts="/etc/cds/known_hosts" />''')
        declared = zope.component.getUtility(IConnection, 'partner')
        self.assertEqual(
            {'key_file': '/etc/cds/id_ed25519',
             'known_hosts': '/etc/cds/known_hosts'}, declared.options)
        self.assertIsNone(declared.port)

    def test_sftp_without_a_key_needs_a_password_file(self):
        self.assertRefused(
            "cds:connection 'partner' needs password_file",
            '<cds:connection name="partner" scheme="sftp" host="h" '
            'user="u" />')

    def test_unknown_scheme_lists_the_known_ones(self):
        self.assertRefused(
            "cds:connection 'partner': unknown scheme 'scp'; known: file, "
            "ftp, ftps, sftp",
            '<cds:connection name="partner" scheme="scp" host="h" '
            'user="u" password_file="/pw" />')

    def test_an_option_of_another_scheme_is_refused(self):
        self.assertRefused(
            "cds:connection 'partner': ca_file does not apply to scheme "
            "file; it needs tls",
            f'<cds:connection name="partner" scheme="file" '
            f'directory="{self.folder}" ca_file="/ca.pem" />')
        self.assertRefused(
            "cds:connection 'partner': bogus does not apply to scheme ftp",
            '<cds:connection name="partner" host="h" user="u" '
            'password_file="/pw" bogus="1" />')

    def test_options_are_converted_by_their_field(self):
        self.load('''
          <cds:connection name="partner" scheme="ftps" host="h" user="u"
                          password_file="/pw" verify="no" timeout="7" />''')
        declared = zope.component.getUtility(IConnection, 'partner')
        self.assertEqual((7, {'verify': False}),
                         (declared.timeout, declared.options))

    def test_options_are_validated_by_their_field(self):
        self.assertRefused(
            "cds:connection 'partner': verify: 'maybe' is neither yes nor "
            "no",
            '<cds:connection name="partner" tls="true" host="h" user="u" '
            'password_file="/pw" verify="maybe" />')

    def test_relative_paths_start_at_the_zcml_file(self):
        site = os.path.join(self.folder, 'site.zcml')
        with open(site, 'w') as f:
            f.write('''
            <configure xmlns="http://namespaces.zope.org/zope"
                       xmlns:cds="http://namespaces.zeit.de/cds">
              <include package="zeit.cds" file="meta.zcml" />
              <cds:connection name="partner" tls="true" host="h" user="u"
                              password_file="pw" ca_file="ca.pem" />
            </configure>''')
        self.addCleanup(os.remove, site)
        zope.configuration.xmlconfig.file(site)
        declared = zope.component.getUtility(IConnection, 'partner')
        self.assertEqual(
            (os.path.join(self.folder, 'pw'),
             {'ca_file': os.path.join(self.folder, 'ca.pem')}),
            (declared.password_file, declared.options))

    def test_timeout_must_be_positive(self):
        with self.assertRaises(ConfigurationError) as raised:
            self.load('<cds:connection name="partner" scheme="file" '
                      'directory="/" timeout="0" />')
        self.assertIn("Invalid value for 'timeout'", str(raised.exception))

    def test_tls_is_for_ftp_only(self):
        self.assertRefused(
            "cds:connection 'partner': tls does not apply to scheme file",
            '<cds:connection name="partner" scheme="file" directory="/" '
            'tls="true" />')


class LogFileTest(unittest.TestCase):
    """The log file is reopened when logrotate moved it away: a long run
    does not go on writing into the moved file."""

    def test_a_moved_log_file_is_reopened(self):
        folder = tempfile.mkdtemp(prefix='cds-log-')
        self.addCleanup(zeit.cds.testing.remove_tree, folder)
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        self.addCleanup(setattr, root, 'handlers', handlers)
        self.addCleanup(root.setLevel, level)
        logfile = os.path.join(folder, 'cds.log')
        cli.set_up_logging(
            argparse.Namespace(verbose=False, quiet=True), logfile)
        added = [handler for handler in root.handlers
                 if handler not in handlers]
        for handler in added:
            self.addCleanup(handler.close)
            if not isinstance(handler, logging.FileHandler):
                root.removeHandler(handler)  # the console's
        log = logging.getLogger('zeit.cds.tests')
        log.warning('before the rotation')
        os.rename(logfile, logfile + '.1')
        log.warning('after the rotation')
        with open(logfile + '.1') as f:
            self.assertIn('WARNING before the rotation', f.read())
        with open(logfile) as f:
            self.assertEqual(['WARNING after the rotation'],
                             [line.split(' ', 2)[2]
                              for line in f.read().splitlines()])
