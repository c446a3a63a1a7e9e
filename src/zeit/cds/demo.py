"""cds-demo: the quick start. It starts the embedded CDS server (FTP, or
SFTP with ``--protocol sftp``) on a free port, makes a sample spool,
exports it, imports what the server offers, tells what happened and where
the files are, and stops the server.

Everything lives in one new folder (``--folder``, or a new one in the
system's temporary folder), which is left for a look afterwards.
"""
import argparse
import logging
import os
import secrets
import sys
import tempfile


import zeit.cds.main
from zeit.cds.interfaces import CDSError
from zeit.cds.interfaces import IExporter
from zeit.cds.interfaces import IImporter
from zeit.cds.server import EmbeddedServer
from zeit.cds.sftpserver import EmbeddedSFTPServer
from zeit.cds.targets.ftp import FTPTarget
from zeit.cds.targets.sftp import SFTPTarget
from zeit.cds.spool import make_spool

ARTICLES = {
    'politik-2026-11-24.xml': '<article><title>Politik</title></article>\n',
    'wirtschaft-2026-11-24.xml':
        '<article><title>Wirtschaft</title></article>\n',
    'Kultur und Gesellschaft.xml':
        '<article><title>Kultur</title></article>\n',
}
OFFERED = {
    'agentur-0001.xml': '<article><title>Von der Agentur</title></article>\n',
    'agentur-0002.xml': '<article><title>Noch eine Meldung</title>'
                        '</article>\n',
}


def prepare(folder):
    """The demo's folders: two spools and the server's root."""
    paths = {name: os.path.join(folder, name) for name in
             ('export-spool', 'import-spool', 'cds-server')}
    make_spool(paths['export-spool'], {
        name: text.encode() for name, text in ARTICLES.items()})
    make_spool(paths['import-spool'], {})
    for directory in ('incoming', 'outgoing'):
        os.makedirs(os.path.join(paths['cds-server'], directory),
                    exist_ok=True)
    for name, text in OFFERED.items():
        path = os.path.join(paths['cds-server'], 'outgoing', name)
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)
    return paths


def run(interface, spool_path, target):
    return zeit.cds.main.transfer(interface, spool_path, target).run()


def embedded_server(protocol, root, password):
    """The embedded server for ``protocol``, not started."""
    if protocol == 'sftp':
        return EmbeddedSFTPServer(root, 'demo', password)
    return EmbeddedServer(root, 'demo', password)


def targets(protocol, server, password, folder):
    """A function of a directory that makes a target for it on the
    running ``server``; for SFTP, with a known_hosts file in ``folder``
    that trusts the server's host key."""
    login = dict(host=server.host, port=server.port, user='demo',
                 password=password)
    if protocol == 'ftp':
        return lambda directory: FTPTarget(directory=directory, **login)
    known_hosts = os.path.join(folder, 'known_hosts')
    with open(known_hosts, 'w', encoding='ascii') as f:
        f.write(server.known_hosts_line + '\n')
    print(f'Its host key is {server.fingerprint}, trusted through '
          f'{known_hosts}')
    return lambda directory: SFTPTarget(
        directory=directory, known_hosts=known_hosts, **login)


def listing(path):
    return ', '.join(sorted(os.listdir(path))) or '(empty)'


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='cds-demo',
        # The module's first paragraph, without its reST literals' marks.
        description=__doc__.split('\n\n')[0].replace('``', ''))
    parser.add_argument('--folder', help='where to put everything')
    parser.add_argument('--protocol', choices=('ftp', 'sftp'),
                        default='ftp',
                        help='what the embedded server speaks (default ftp)')
    args = parser.parse_args(argv)
    folder = args.folder or tempfile.mkdtemp(prefix='cds-demo-')
    os.makedirs(folder, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format='    %(message)s',
                        stream=sys.stdout)
    # The server's own chatter would drown the story.
    logging.getLogger('pyftpdlib').setLevel(logging.WARNING)
    paths = prepare(folder)
    password = secrets.token_urlsafe(16)
    with embedded_server(args.protocol, paths['cds-server'],
                         password) as server:
        print(f'Started the embedded CDS server at {args.protocol}://'
              f'{server.host}:{server.port}/ (root {paths["cds-server"]})')
        target = targets(args.protocol, server, password, folder)
        print()
        try:
            print('Exporting the sample spool to /incoming:')
            exported = run(IExporter, paths['export-spool'],
                           target('/incoming'))
            print('\nImporting what the server offers in /outgoing:')
            imported = run(IImporter, paths['import-spool'],
                           target('/outgoing'))
        except CDSError as e:
            print(f'The demo failed: {e}', file=sys.stderr)
            return 1
    print(f'''
Stopped the server. What happened:
  Exported {exported}.
  Imported {imported}.
Where the files are now:
  {paths["cds-server"]}/incoming: {listing(os.path.join(
        paths["cds-server"], "incoming"))}
  {paths["export-spool"]}/cur: {listing(os.path.join(
        paths["export-spool"], "cur"))}
  {paths["import-spool"]}/new: {listing(os.path.join(
        paths["import-spool"], "new"))}
  {paths["cds-server"]}/outgoing: {listing(os.path.join(
        paths["cds-server"], "outgoing"))}

Next: bin/cds-server, bin/cds-export and bin/cds-import --help.''')
    return 0


def demo_main():
    sys.exit(main())
