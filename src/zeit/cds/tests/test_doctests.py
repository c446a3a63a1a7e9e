import doctest
import unittest

import zope.component.testing

import zeit.cds.testing

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def give_server(test):
    test.globs['ftp_server'] = zeit.cds.testing.FTP_LAYER.server


def with_empty_registry(test):
    zope.component.testing.setUp(test)
    give_server(test)


def doctest_suite(filename, layer=None, set_up=give_server,
                  tear_down=None):
    suite = doctest.DocFileSuite(
        filename, package='zeit.cds', optionflags=FLAGS, setUp=set_up,
        tearDown=tear_down)
    if layer is not None:
        suite.layer = layer
    return suite


def test_suite():
    return unittest.TestSuite([
        doctest_suite('export.txt', zeit.cds.testing.FUNCTIONAL_LAYER),
        # The guide loads its own ZCML, as a site would.
        doctest_suite('zcml.txt', zeit.cds.testing.FTP_LAYER,
                      with_empty_registry, zope.component.testing.tearDown),
        doctest_suite('import.txt', zeit.cds.testing.FUNCTIONAL_LAYER),
        # Its own server: cds-server's SFTP server.
        doctest_suite('sftp.txt', zeit.cds.testing.ZCML_LAYER, set_up=None),
        # No server at all: the CDS in memory.
        doctest_suite('testing.txt', set_up=zope.component.testing.setUp,
                      tear_down=zope.component.testing.tearDown),
    ])
