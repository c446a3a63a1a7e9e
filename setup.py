from setuptools import find_namespace_packages
from setuptools import setup


def read(name):
    with open(name, encoding='utf-8') as f:
        return f.read()


setup(
    name='zeit.cds',
    version='0.2.dev0',
    description='Carries zeit.cms articles between a spool and the '
                'Content Drehscheibe (CDS) over FTP',
    long_description=read('README.txt') + '\n\n' + read('CHANGES.txt'),
    license='ZPL-2.1',
    python_requires='>=3.11',
    package_dir={'': 'src'},
    packages=find_namespace_packages('src', include=['zeit.*']),
    include_package_data=True,
    package_data={'zeit.cds': ['*.zcml', '*.txt']},
    zip_safe=False,
    entry_points={
        'console_scripts': [
            'cds-export = zeit.cds.cli:export_main',
            'cds-import = zeit.cds.cli:import_main',
            'cds-server = zeit.cds.server:main',
            'cds-demo = zeit.cds.demo:demo_main',
            'cds-check = zeit.cds.monitoring.check:main',
        ],
    },
    install_requires=[
        'asyncssh',  # the sftp target
        'bcrypt',  # asyncssh: keys in OpenSSH's format with a passphrase
        'gocept.filestore',
        'inotify_simple',  # --watch: files arriving in the spool's new/
        'nagiosplugin',  # cds-check
        'prometheus_client',  # --metrics-file
        'pyftpdlib >= 2.0',
        'tqdm',
        'pyOpenSSL',  # pyftpdlib's TLS_FTPHandler (cds-server --tls)
        'trustme',  # zeit.cds.server.make_certificate (cds-server --tls)
        'zc.lockfile',
        'zope.component',
        'zope.configuration',
        'zope.event',
        'zope.interface',
    ],
    extras_require={
        'test': [
            'cryptography',  # zeit.cds.testing loads trustme's certificates
            'docutils',  # README.txt and the doctests must render
            'hypothesis',  # property-based tests (tests/test_properties.py)
            'twisted',  # its FTP server in the interop tests
            'zope.testing',
            'zope.testrunner',
        ],
    },
)
