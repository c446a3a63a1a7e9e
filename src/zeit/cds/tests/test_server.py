"""The certificate cds-server makes for itself (``--tls`` without
``--certfile``), served by pyftpdlib and checked by the FTPS target."""
import datetime
import ipaddress
import os
import stat
import tempfile

import cryptography.x509

import zeit.cds.testing
from zeit.cds.interfaces import TLSError
from zeit.cds.server import make_certificate
from zeit.cds.tests.test_ftps import FTPSTestCase


class MakeCertificateTest(FTPSTestCase):
    """The certificate a TLS server makes for itself, when it was given
    none, with the CA file for its clients."""

    def setUp(self):
        super().setUp()
        self.folder = tempfile.mkdtemp(prefix='cds-cert-')
        self.addCleanup(zeit.cds.testing.remove_tree, self.folder)

    def server(self, certificate):
        handler = type('Handler', (zeit.cds.testing.TLSHandler,), {
            'certfile': certificate.certfile,
            'keyfile': certificate.keyfile})
        return super().server(zeit.cds.testing.RecordingServerThread,
                              handler)

    def test_files(self):
        certificate = make_certificate(self.folder)
        self.assertEqual(
            (os.path.join(self.folder, 'cert.pem'),
             os.path.join(self.folder, 'key.pem'),
             os.path.join(self.folder, 'ca.pem')), certificate)
        self.assertEqual(['ca.pem', 'cert.pem', 'key.pem'],
                         sorted(os.listdir(self.folder)))
        self.assertEqual(
            0o600, stat.S_IMODE(os.stat(certificate.keyfile).st_mode))
        with open(certificate.keyfile, 'rb') as f:
            self.assertIn(b'PRIVATE KEY', f.read())

    def test_for_the_hosts_and_days_given(self):
        certificate = make_certificate(
            self.folder, hosts=['cds.example.org', '10.0.0.1'], days=30)
        with open(certificate.certfile, 'rb') as f:
            cert = cryptography.x509.load_pem_x509_certificate(f.read())
        names = cert.extensions.get_extension_for_class(
            cryptography.x509.SubjectAlternativeName).value
        self.assertEqual(['cds.example.org'], names.get_values_for_type(
            cryptography.x509.DNSName))
        self.assertEqual([ipaddress.ip_address('10.0.0.1')],
                         names.get_values_for_type(
                             cryptography.x509.IPAddress))
        # Valid from an hour ago, for clocks a little behind.
        self.assertEqual(
            datetime.timedelta(days=30, hours=1),
            cert.not_valid_after_utc - cert.not_valid_before_utc)

    def test_clients_trust_it_through_the_ca_file(self):
        certificate = make_certificate(self.folder)
        server = self.server(certificate)
        for host in ['localhost', '127.0.0.1']:
            target = self.connected(server, host=host,
                                    ca_file=certificate.ca_file)
            zeit.cds.testing.upload(target, 'a.xml', b'A')
            target.close()
        self.assertEqual(b'A', self.remote('a.xml', server))

    def test_nobody_else_trusts_it(self):
        server = self.server(make_certificate(self.folder))
        with self.assertRaises(TLSError):
            self.connected(server, ca_file=None)
        with self.assertRaises(TLSError):
            self.connected(server, ca_file=self.layer.ca_file)

    def test_only_for_the_given_hosts(self):
        certificate = make_certificate(self.folder, hosts=['cds.example.org'])
        with self.assertRaises(TLSError) as raised:
            self.connected(self.server(certificate),
                           ca_file=certificate.ca_file)
        self.assertIn('Hostname mismatch', str(raised.exception))

    def test_replaces_existing_files(self):
        first = make_certificate(self.folder)
        with open(first.ca_file, 'rb') as f:
            first_ca = f.read()
        os.chmod(first.keyfile, 0o644)
        second = make_certificate(self.folder)
        with open(second.ca_file, 'rb') as f:
            self.assertNotEqual(first_ca, f.read())
        self.assertEqual(
            0o600, stat.S_IMODE(os.stat(second.keyfile).st_mode))
        self.assertEqual(3, len(os.listdir(self.folder)))
