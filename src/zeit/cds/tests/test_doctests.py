import doctest
import unittest

import zeit.cds.testing

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def set_up(test):
    test.globs['ftp_server'] = zeit.cds.testing.FTP_LAYER.server


def doctest_suite(filename, layer):
    suite = doctest.DocFileSuite(
        filename, package='zeit.cds', optionflags=FLAGS, setUp=set_up)
    suite.layer = layer
    return suite


def test_suite():
    return unittest.TestSuite([
        doctest_suite('export.txt', zeit.cds.testing.FUNCTIONAL_LAYER),
        doctest_suite('import.txt', zeit.cds.testing.FUNCTIONAL_LAYER),
    ])
