"""The Python clients bench.py measures, one per process.

Each run imports what it needs first (zeit.cds also loads its ZCML),
then times only the transfer, and prints one line of JSON: the transfer's
``seconds`` and ``cpu`` seconds, the ``setup`` seconds before it, and
its own ``peak_rss`` (VmHWM, bytes). The password comes from $CDS_BENCH_PASSWORD, never from
argv. The server is on 127.0.0.1.

    python clients.py probe
    python clients.py cds-export    --port P --user U --dir D --spool S [--connections N]
    python clients.py cds-import    --port P --user U --dir D --spool S [--connections N]
    python clients.py ftplib-export --port P --user U --dir D --spool S
    python clients.py ftplib-import --port P --user U --dir D --dest DIR

The ftplib loops are the fair baselines: one connection, the CDS lock
(``write`` for export, ``read`` for import), ftplib's ordinary
``storbinary``/``retrbinary``, and no more than the job needs.
"""
import time

# Whatever happens before the timed part (imports, ZCML) is reported as
# "setup", from here.
LOADED = time.perf_counter()

import argparse  # noqa: E402
import ftplib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

HOST = '127.0.0.1'
WRITE_LOCK = 'write'
READ_LOCK = 'read'
LOCK_CONTENT = b'zeit.cds benchmark baseline\n'


def _password():
    return os.environ['CDS_BENCH_PASSWORD']


def _ftp(args):
    ftp = ftplib.FTP(timeout=60, encoding='utf-8')
    ftp.connect(HOST, args.port)
    ftp.login(args.user, _password())
    ftp.cwd(args.dir)
    return ftp


def ftplib_export(args):
    """STOR the ``write`` lock, STOR every file of ``new`` under its
    final name, DELE the lock."""
    new = os.path.join(args.spool, 'new')
    ftp = _ftp(args)
    ftp.storbinary('STOR ' + WRITE_LOCK, _BytesReader(LOCK_CONTENT))
    for name in sorted(os.listdir(new)):
        with open(os.path.join(new, name), 'rb') as f:
            ftp.storbinary('STOR ' + name, f)
    ftp.delete(WRITE_LOCK)
    ftp.quit()


def ftplib_import(args):
    """STOR the ``read`` lock, then RETR and DELE every other file."""
    ftp = _ftp(args)
    ftp.storbinary('STOR ' + READ_LOCK, _BytesReader(LOCK_CONTENT))
    for name in sorted(ftp.nlst()):
        if name in (READ_LOCK, WRITE_LOCK, '.', '..'):
            continue
        with open(os.path.join(args.dest, name), 'wb') as f:
            ftp.retrbinary('RETR ' + name, f.write)
        ftp.delete(name)
    ftp.delete(READ_LOCK)
    ftp.quit()


class _BytesReader:
    """Just enough of a file for storbinary."""

    def __init__(self, data):
        self._data = data

    def read(self, size=-1):
        data, self._data = self._data, b''
        return data


def _registered(adapted):
    """The factory registered for (ISpool, IRemoteTarget) providing the
    interface named ``adapted`` (IExporter, IImporter), or None."""
    import zope.component
    import zeit.cds.interfaces as interfaces
    import zeit.cds.main

    provided = getattr(interfaces, adapted, None)
    if provided is None:
        return None
    zeit.cds.main.ensure_configured()
    return zope.component.getSiteManager().adapters.lookup(
        (interfaces.ISpool, interfaces.IRemoteTarget), provided)


def _connections_setting(function_name, adapted):
    """How this zeit.cds takes a number of connections for ``function_name``
    of zeit.cds.main: 'keyword', 'setting' (an attribute of the registered
    exporter or importer), or None (it does not)."""
    import inspect

    import zeit.cds.main

    function = getattr(zeit.cds.main, function_name, None)
    if function is None:
        return None
    if 'connections' in inspect.signature(function).parameters:
        return 'keyword'
    if hasattr(_registered(adapted), 'connections'):
        return 'setting'
    return None


def probe(args):
    import zeit.cds.main

    return {
        'import_': hasattr(zeit.cds.main, 'import_'),
        'export_connections': _connections_setting('export', 'IExporter'),
        'import_connections': _connections_setting('import_', 'IImporter'),
    }


def _cds_run(args, function_name, adapted):
    import zeit.cds.main

    kwargs = {}
    if args.connections is not None:
        how = _connections_setting(function_name, adapted)
        if how == 'keyword':
            kwargs['connections'] = args.connections
        elif how == 'setting':
            # The registered component's own setting, in this process only.
            _registered(adapted).connections = args.connections
        else:
            sys.exit('this zeit.cds has no connections setting')
    # Part of every real run, but not of the transfer: ZCML is loaded.
    zeit.cds.main.ensure_configured()
    function = getattr(zeit.cds.main, function_name)
    started = _clocks()
    function(args.spool, HOST, args.port, args.user, _password(), args.dir,
             **kwargs)
    return started, _clocks()


def cds_export(args):
    return _cds_run(args, 'export', 'IExporter')


def cds_import(args):
    return _cds_run(args, 'import_', 'IImporter')


def _timed(function):
    def run(args):
        started = _clocks()
        function(args)
        return started, _clocks()
    return run


def _clocks():
    return time.perf_counter(), time.process_time()


def _peak_rss():
    """This process's peak RSS (VmHWM) in bytes: its own, unlike the
    rusage the parent sees, which counts the parent's from before exec."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) * 1024
    return 0


COMMANDS = {
    'probe': probe,
    'cds-export': cds_export,
    'cds-import': cds_import,
    'ftplib-export': _timed(ftplib_export),
    'ftplib-import': _timed(ftplib_import),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('command', choices=sorted(COMMANDS))
    parser.add_argument('--port', type=int)
    parser.add_argument('--user')
    parser.add_argument('--dir', default='/')
    parser.add_argument('--spool')
    parser.add_argument('--dest')
    parser.add_argument('--connections', type=int)
    args = parser.parse_args(argv)
    # zeit.cds logs each step at INFO; only its errors are shown (on
    # stderr, which bench.py prints when a run fails).
    logging.basicConfig(level=logging.WARNING, format='%(message)s')
    result = COMMANDS[args.command](args)
    if isinstance(result, tuple):
        (started, cpu_started), (ended, cpu_ended) = result
        result = {'seconds': ended - started, 'setup': started - LOADED,
                  'cpu': cpu_ended - cpu_started, 'peak_rss': _peak_rss()}
    json.dump(result, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
