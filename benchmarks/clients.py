"""The Python clients bench.py measures, one per process.

Each run imports what it needs first (zeit.cds also loads its ZCML),
then times only the transfer, and prints one line of JSON: the
transfer's ``seconds`` and ``cpu`` seconds, the ``setup`` seconds before
it, and its own ``peak_rss`` (VmHWM, bytes). The password comes from
$CDS_BENCH_PASSWORD, never from argv. The server is on 127.0.0.1.

    python clients.py probe
    python clients.py api-export    --port P --user U --dir D --spool S
    python clients.py api-import    --port P --user U --dir D --spool S
    python clients.py cli-export    --port P --user U --dir D --spool S [--connections N]
    python clients.py cli-import    --port P --user U --dir D --spool S [--connections N]
    python clients.py ftplib-export --port P --user U --dir D --spool S
    python clients.py ftplib-import --port P --user U --dir D --dest DIR

``api-*`` call ``zeit.cds.main.export`` and ``import_``, the façade
zeit.cms calls; ``cli-*`` call the console scripts ``cds-export`` and
``cds-import`` (from the package's entry points) with their defaults,
quietly (``-q``). ``probe`` tells which of them this zeit.cds has.

The ftplib loops are the fair baselines: one connection, the CDS lock
(``write`` for export, ``read`` for import), ftplib's ordinary
``storbinary``/``retrbinary``, and no more than the job needs.
"""
import time

# Whatever happens before the timed part (imports, ZCML) is reported as
# "setup", from here.
LOADED = time.perf_counter()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import ftplib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

HOST = '127.0.0.1'
WRITE_LOCK = 'write'
READ_LOCK = 'read'
LOCK_CONTENT = b'zeit.cds benchmark baseline\n'
SCRIPTS = {'export': 'cds-export', 'import': 'cds-import'}


def _password():
    return os.environ['CDS_BENCH_PASSWORD']


# --- the baselines ------------------------------------------------------

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
    ftp.storbinary('STOR ' + WRITE_LOCK, io.BytesIO(LOCK_CONTENT))
    for name in sorted(os.listdir(new)):
        with open(os.path.join(new, name), 'rb') as f:
            ftp.storbinary('STOR ' + name, f)
    ftp.delete(WRITE_LOCK)
    ftp.quit()


def ftplib_import(args):
    """STOR the ``read`` lock, then RETR and DELE every other file."""
    ftp = _ftp(args)
    ftp.storbinary('STOR ' + READ_LOCK, io.BytesIO(LOCK_CONTENT))
    for name in sorted(ftp.nlst()):
        if name in (READ_LOCK, WRITE_LOCK, '.', '..'):
            continue
        with open(os.path.join(args.dest, name), 'wb') as f:
            ftp.retrbinary('RETR ' + name, f.write)
        ftp.delete(name)
    ftp.delete(READ_LOCK)
    ftp.quit()


# --- zeit.cds -----------------------------------------------------------

def _script(name):
    """The function behind the console script ``name``, or None."""
    from importlib import metadata
    for entry in metadata.entry_points(group='console_scripts', name=name):
        if entry.module.startswith('zeit.cds'):
            return entry.load()
    return None


def _call_script(name, argv):
    """Run the console script ``name`` with ``argv``: its exit code."""
    script = _script(name)
    saved, sys.argv = sys.argv, [name] + argv
    try:
        script()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (e.code is not None)
    finally:
        sys.argv = saved
    return 0


def _script_options(name):
    """The help text of the console script ``name``, or None."""
    if _script(name) is None:
        return None
    help_text = io.StringIO()
    with contextlib.redirect_stdout(help_text), \
            contextlib.redirect_stderr(io.StringIO()):
        _call_script(name, ['--help'])
    return help_text.getvalue()


def probe(args):
    """What this zeit.cds offers, for each direction: the façade's
    function, the console script, and its ``--connections`` option."""
    import zeit.cds.main

    found = {}
    for direction, function in (('export', 'export'), ('import', 'import_')):
        options = _script_options(SCRIPTS[direction])
        found[direction] = {
            'api': hasattr(zeit.cds.main, function),
            'cli': options is not None,
            'connections': options is not None
            and '--connections' in options,
        }
    return found


def _api(function_name):
    def run(args):
        import zeit.cds.main

        # Part of every real run, but not of the transfer: ZCML is loaded.
        zeit.cds.main.ensure_configured()
        function = getattr(zeit.cds.main, function_name)
        started = _clocks()
        function(args.spool, HOST, args.port, args.user, _password(),
                 args.dir)
        return started, _clocks()
    return run


def _cli(direction):
    def run(args):
        import zeit.cds.main

        zeit.cds.main.ensure_configured()
        argv = ['--spool', args.spool, '--host', HOST,
                '--port', str(args.port), '--user', args.user,
                '--dir', args.dir, '-q']
        if args.connections is not None:
            argv += ['--connections', str(args.connections)]
        os.environ['CDS_PASSWORD'] = _password()
        started = _clocks()
        code = _call_script(SCRIPTS[direction], argv)
        ended = _clocks()
        if code:
            sys.exit(f'{SCRIPTS[direction]} ended with exit code {code}')
        return started, ended
    return run


# --- running one --------------------------------------------------------

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
    'api-export': _api('export'),
    'api-import': _api('import_'),
    'cli-export': _cli('export'),
    'cli-import': _cli('import'),
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
    # zeit.cds logs each step at INFO; only its warnings and errors are
    # shown (on stderr, which bench.py reads when it verifies a run).
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
