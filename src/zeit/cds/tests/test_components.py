"""The components against their interfaces, and their wiring in ZCML."""
import os
import tempfile
import unittest

import gocept.filestore.filestore
import zope.component
import zope.component.testing
import zope.configuration.xmlconfig
import zope.interface
from zope.interface.verify import verifyClass
from zope.interface.verify import verifyObject

import zeit.cds.main
import zeit.cds.testing
from zeit.cds.interfaces import IExporter
from zeit.cds.interfaces import IImporter
from zeit.cds.interfaces import IRemoteTarget
from zeit.cds.interfaces import IRemoteTargetFactory
from zeit.cds.interfaces import ISpool
from zeit.cds.interfaces import ISummary
from zeit.cds.targets.ftp import FTPTarget
from zeit.cds.spool import FileStoreSpool
from zeit.cds.run.report import Summary
from zeit.cds.exporter import Exporter
from zeit.cds.importer import Importer


def ftp_target(server, **kw):
    return FTPTarget(host=server.host, port=server.port,
                     user=zeit.cds.testing.USER,
                     password=zeit.cds.testing.PASSWORD, **kw)


class SpoolTestCase(unittest.TestCase):
    """A test with a fresh spool folder in ``self.store``."""

    def setUp(self):
        super().setUp()
        self.store_dir = tempfile.mkdtemp(prefix='cds-spool-')
        self.addCleanup(zeit.cds.testing.remove_tree, self.store_dir)
        self.store = zeit.cds.testing.make_spool(self.store_dir, {})

    def spool_files(self, section):
        return sorted(os.listdir(os.path.join(self.store_dir, section)))


class ExportTestCase(SpoolTestCase):
    """A test with the ``files`` waiting in the spool, an FTP server, and
    the log lines in ``self.log``."""

    layer = zeit.cds.testing.FTP_LAYER
    files = {}

    def setUp(self):
        super().setUp()
        zeit.cds.testing.make_spool(self.store_dir, self.files)
        self.log = zeit.cds.testing.LogCapture()
        self.addCleanup(self.log.uninstall)


class InterfaceTest(SpoolTestCase):

    def test_filestore_spool_provides_ISpool(self):
        verifyObject(ISpool, FileStoreSpool(self.store))

    def test_ftp_target_provides_IRemoteTarget(self):
        verifyClass(IRemoteTarget, FTPTarget)
        verifyObject(IRemoteTarget, FTPTarget(
            host='localhost', user='u', password='p'))

    def test_ftp_target_class_is_a_target_factory(self):
        verifyObject(IRemoteTargetFactory, FTPTarget)

    def test_exporter_provides_IExporter(self):
        target = FTPTarget(host='localhost', user='u', password='p')
        verifyObject(IExporter, Exporter(FileStoreSpool(self.store), target))

    def test_importer_provides_IImporter(self):
        target = FTPTarget(host='localhost', user='u', password='p')
        verifyObject(IImporter, Importer(FileStoreSpool(self.store), target))

    def test_summary_provides_ISummary(self):
        verifyObject(ISummary, Summary())

    def test_target_never_shows_its_password(self):
        target = FTPTarget(host='h', user='u', password='s3cret')
        self.assertNotIn('s3cret', repr(target))
        self.assertNotIn('s3cret', target.description)


class RegistryTestCase(SpoolTestCase):
    """A test with an empty global registry of its own."""

    def setUp(self):
        super().setUp()
        zope.component.testing.setUp(self)
        self.addCleanup(zope.component.testing.tearDown, self)


class ConfigureZCMLTest(RegistryTestCase):

    def setUp(self):
        super().setUp()
        zope.configuration.xmlconfig.file(
            'configure.zcml', package=zeit.cds)

    def test_spool_adapts_a_filestore(self):
        self.assertIsInstance(ISpool(self.store), FileStoreSpool)

    def test_ftp_scheme_names_the_ftp_factory(self):
        self.assertIs(
            zope.component.getUtility(IRemoteTargetFactory, name='ftp'),
            FTPTarget)

    def test_exporter_adapts_spool_and_target(self):
        target = FTPTarget(host='localhost', user='u', password='p')
        exporter = zope.component.getMultiAdapter(
            (ISpool(self.store), target), IExporter)
        self.assertIsInstance(exporter, Exporter)

    def test_importer_adapts_spool_and_target(self):
        target = FTPTarget(host='localhost', user='u', password='p')
        importer = zope.component.getMultiAdapter(
            (ISpool(self.store), target), IImporter)
        self.assertIsInstance(importer, Importer)


class MainConfiguresOnceTest(RegistryTestCase):

    layer = zeit.cds.testing.FTP_LAYER

    def test_export_loads_configure_zcml_when_nothing_is_registered(self):
        self.assertIsNone(
            zope.component.queryUtility(IRemoteTargetFactory, name='ftp'))
        zeit.cds.main.ensure_configured()
        self.assertIs(
            zope.component.getUtility(IRemoteTargetFactory, name='ftp'),
            FTPTarget)
        # A second call does not load it again (that would conflict).
        zeit.cds.main.ensure_configured()


@zope.component.adapter(gocept.filestore.interfaces.IFileStore)
class RecordingSpool(FileStoreSpool):
    """A site's own spool: records that it was used."""

    used = []

    def waiting(self):
        self.used.append(self.path)
        return super().waiting()


@zope.interface.provider(IRemoteTargetFactory)
class RecordingTarget(FTPTarget):
    """A site's own remote target: records that it was used."""

    used = []

    def connect(self):
        self.used.append(self.directory)
        super().connect()


class SwappedPartsTest(RegistryTestCase):
    """main.export uses whatever spool and target the site registered."""

    layer = zeit.cds.testing.FTP_LAYER

    def setUp(self):
        super().setUp()
        zope.configuration.xmlconfig.string('''
            <configure xmlns="http://namespaces.zope.org/zope">
              <include package="zeit.cds" />
              <includeOverrides package="zeit.cds.tests"
                                file="overrides.zcml" />
            </configure>''')
        RecordingSpool.used[:] = []
        RecordingTarget.used[:] = []

    def test_main_export_uses_the_registered_spool_and_target(self):
        server = self.layer.server
        zeit.cds.testing.make_spool(self.store_dir, {'a-file': b'A'})
        zeit.cds.main.export(self.store_dir, server.host, server.port,
                             zeit.cds.testing.USER,
                             zeit.cds.testing.PASSWORD, '/')
        self.assertEqual([self.store_dir], RecordingSpool.used)
        self.assertEqual(['/'], RecordingTarget.used)
        self.assertEqual(['a-file'], os.listdir(server.root))
        self.assertEqual(['a-file'], self.spool_files('cur'))

    def test_main_import_uses_the_registered_spool_and_target(self):
        server = self.layer.server
        with open(os.path.join(server.root, 'b-file'), 'wb') as f:
            f.write(b'B')
        zeit.cds.main.import_(self.store_dir, server.host, server.port,
                              zeit.cds.testing.USER,
                              zeit.cds.testing.PASSWORD, '/')
        self.assertEqual(['/'], RecordingTarget.used)
        self.assertEqual([], os.listdir(server.root))
        self.assertEqual(['b-file'], self.spool_files('new'))
