"""README.txt and the doctests are documentation too: docutils renders
each without a warning."""
import glob
import io
import os
import subprocess
import tempfile
import unittest

import docutils.core

import zeit.cds
import zeit.cds.testing

PACKAGE = os.path.dirname(zeit.cds.__file__)
# The checkout's root, where README.txt and CHANGES.txt live.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(PACKAGE)))


def warnings_of(path):
    """What docutils warns of (or worse) when it renders ``path``."""
    stream = io.StringIO()
    with open(path, encoding='utf-8') as f:
        docutils.core.publish_doctree(
            f.read(), source_path=path, settings_overrides={
                'report_level': 2,  # warnings and worse
                'halt_level': 5,  # never stop: report them all
                'warning_stream': stream,
            })
    return stream.getvalue()


class ReadmeTest(unittest.TestCase):

    def test_very_verbose_runs_show_why_tests_were_skipped(self):
        # As README.txt says of the tests with real FTP servers.
        folder = tempfile.mkdtemp(prefix='cds-no-servers-')
        self.addCleanup(zeit.cds.testing.remove_tree, folder)
        env = zeit.cds.testing.child_environment({'CDS_FTP_SERVERS': folder})
        env.pop('CI', None)
        result = subprocess.run(
            [os.path.join(ROOT, 'bin', 'test'), '-vvv', '-t',
             'VsftpdTest.test_names'], env=env, cwd=ROOT,
            capture_output=True, text=True, timeout=120)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertRegex(result.stdout, r'\(skipped: vsftpd not found at ')


class RenderTest(unittest.TestCase):

    def documents(self):
        found = [os.path.join(ROOT, name)
                 for name in ['README.txt', 'CHANGES.txt']]
        found += sorted(glob.glob(os.path.join(PACKAGE, '*.txt')))
        return found

    def test_every_document_renders_without_a_warning(self):
        documents = self.documents()
        self.assertIn(os.path.join(PACKAGE, 'export.txt'), documents)
        for path in documents:
            with self.subTest(os.path.relpath(path, ROOT)):
                self.assertTrue(os.path.exists(path), path)
                self.assertEqual('', warnings_of(path))

    def test_a_broken_document_is_noticed(self):
        folder = tempfile.mkdtemp(prefix='cds-docs-')
        self.addCleanup(zeit.cds.testing.remove_tree, folder)
        broken = os.path.join(folder, 'broken.txt')
        with open(broken, 'w') as f:
            f.write('A longer title\n=====\n\n== ==\n0  a\n')
        warnings = warnings_of(broken)
        self.assertIn('Title underline too short', warnings)
        self.assertIn('Malformed table', warnings)
