"""Benchmark of cds-export over SFTP against OpenSSH's ``sftp -b`` and
``lftp mirror -R --parallel=4 sftp://`` (issue 14), on a real local sshd.

Run as root from a checkout after ``python3 bootstrap.py`` and
``bash .ci/ftp-servers.sh .ftp-servers``::

    CDS_FTP_SERVERS=$PWD/.ftp-servers bin/py benchmarks/sftp.py \\
        [--quick] [--repeat 5] [--remote-dir DIR] [--json FILE]

sshd runs as the tests run it (``zeit.cds.tests.sshd``), with a key
login. Every run is a whole process, timed from start to end (its SSH
handshake included) for every tool alike; its peak RSS is sampled from
/proc (for ``sftp``, the ``ssh`` child that does the crypto is not
counted). Each run uploads into a fresh remote folder, and its result is
verified before it counts. The table shows medians, then the targets of
issue 14.

zeit.cds asks the server to fsync every file before the rename
(``fsync@openssh.com``); ``sftp`` and ``lftp`` do not. The remote
folders are on /dev/shm by default, as bench.py keeps the FTP server's
files, where that costs nothing; with ``--remote-dir`` on a disk it costs
a disk flush per file. The spools are on disk, in the system's temporary
folder.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

# bench.py lies beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import KiB  # noqa: E402
from bench import SHM  # noqa: E402
from bench import MiB  # noqa: E402
from bench import Processes  # noqa: E402
from bench import _size  # noqa: E402
from bench import RunFailed  # noqa: E402
from bench import check_files  # noqa: E402
from bench import make_spool  # noqa: E402
from bench import measured  # noqa: E402
from bench import write_source  # noqa: E402

from zeit.cds.tests import sshd  # noqa: E402
from zeit.cds.tests.realservers import ensure_account  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(os.path.dirname(HERE), 'bin')
# files, size; and the sizes of --quick.
WORKLOADS = [(2000, 4 * KiB, 200, 4 * KiB), (1, 256 * MiB, 1, 16 * MiB)]
TOOLS = ('cds-export', 'cds-export-1', 'sftp-b', 'lftp-p4')
TIMEOUT = 600


class Bench:

    def __init__(self, server, scratch, remote_dir):
        self.server = server
        self.scratch = scratch
        self.remote_dir = remote_dir
        self.processes = Processes()
        self.runs = 0

    def ssh_options(self):
        return ['-o', f'UserKnownHostsFile={self.server.known_hosts}',
                '-o', 'BatchMode=yes', '-i', self.server.client_key]

    def fresh_remote(self):
        self.runs += 1
        # A new name: an aborted run may have left its folder behind.
        path = tempfile.mkdtemp(prefix='cds-bench-', dir=self.remote_dir)
        os.chmod(path, 0o755)
        os.chown(path, *ensure_account())
        return path

    def argv(self, tool, source, remote):
        server = self.server
        if tool.startswith('cds-export'):
            spool = os.path.join(self.scratch, f'spool-{self.runs}')
            make_spool(spool, source)
            return [sys.executable, os.path.join(BIN, 'cds-export'),
                    '--protocol', 'sftp', '--host', server.host,
                    '--port', str(server.port), '--user', server.user,
                    '--key-file', server.client_key,
                    '--known-hosts', server.known_hosts,
                    '--spool', spool, '--dir', remote, '-q'] + (
                        ['--connections', '1'] if tool.endswith('-1')
                        else [])
        if tool == 'sftp-b':
            batch = os.path.join(self.scratch, 'batch')
            with open(batch, 'w') as f:
                f.write(f'lcd {source}\ncd {remote}\nput *\n')
            return ['sftp', '-q', '-b', batch, '-P', str(server.port),
                    *self.ssh_options(), f'{server.user}@{server.host}']
        if tool == 'lftp-p4':
            connect = ' '.join(['ssh', '-a', '-x', *self.ssh_options()])
            return ['lftp', '-c', '; '.join([
                f'set sftp:connect-program "{connect}"',
                f'open -u {server.user}, -p {server.port} '
                f'sftp://{server.host}',
                f'mirror -R --parallel=4 {source} {remote}'])]
        raise ValueError(tool)

    def run(self, tool, source):
        remote = self.fresh_remote()
        argv = self.argv(tool, source, remote)
        # The full path: the peak RSS is sampled while it runs that file.
        argv[0] = shutil.which(argv[0])
        log = os.path.join(self.scratch, 'log')
        with open(log, 'wb') as out:
            wall, rss, cpu, code = measured(
                self.processes, argv, env=dict(os.environ), stdout=out,
                stderr=subprocess.STDOUT, timeout=TIMEOUT)
        if code != 0:
            with open(log, 'rb') as f:
                raise RunFailed(f'{tool} exited {code}: '
                                f'{f.read()[-500:].decode(errors="replace")}')
        check_files(source, remote, tool)
        shutil.rmtree(remote)
        return wall, rss


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--remote-dir', default=SHM,
                        help='where the remote folders are made (default '
                        f'{SHM}, as bench.py keeps the server\'s files)')
    parser.add_argument('--json')
    args = parser.parse_args(argv)
    server = sshd.OpenSSH()
    reason = server.unavailable()
    if reason:
        raise SystemExit(reason)
    server.start()
    scratch = tempfile.mkdtemp(prefix='cds-sftp-bench-')
    results = []
    try:
        bench = Bench(server, scratch, args.remote_dir)
        for files, size, quick_files, quick_size in WORKLOADS:
            if args.quick:
                files, size = quick_files, quick_size
            name = f'{files:,} x {_size(size)}'
            source = os.path.join(scratch, f'source-{files}-{size}')
            write_source(_Workload(files, size), source)
            for _ in range(args.repeat):
                # Interleaved: a slow moment of the machine hits all.
                for tool in TOOLS:
                    wall, rss = bench.run(tool, source)
                    results.append(dict(workload=name, files=files,
                                        size=size, tool=tool,
                                        seconds=wall, rss=rss))
    finally:
        bench.processes.end_all()
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print(report(results))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)


class _Workload:
    """What bench.write_source needs of a workload."""

    def __init__(self, files, size):
        self.files = files
        self.size = size


def report(results):
    runs = {}
    for result in results:
        runs.setdefault((result['workload'], result['tool']), []).append(
            result)
    medians = {key: statistics.median(run['seconds'] for run in found)
               for key, found in runs.items()}
    lines = ['| tool | workload | median s | MB/s | peak RSS MiB | '
             'x sftp -b | x lftp -P4 |', '|---|---|---:|---:|---:|---:|---:|']
    for (workload, tool), found in runs.items():
        median = medians[workload, tool]
        total = found[0]['files'] * found[0]['size']
        rss = max(run['rss'] for run in found) / MiB
        lines.append(
            f'| {tool} | {workload} | {median:.3f} | '
            f'{total / median / 1e6:.1f} | {rss:.1f} | '
            f'{median / medians[workload, "sftp-b"]:.2f} | '
            f'{median / medians[workload, "lftp-p4"]:.2f} |')
    many, big = dict.fromkeys(result['workload'] for result in results)
    cds_rss = max(run['rss'] for (workload, tool), found in runs.items()
                  if tool.startswith('cds') for run in found) / MiB
    lines += ['', 'Targets of issue 14 (cds-export, 4 connections):']
    for text, value, bound in [
            (f'{many}: time / sftp -b <= 0.5',
             medians[many, 'cds-export'] / medians[many, 'sftp-b'], 0.5),
            (f'{many}: time / lftp -P4 <= 0.8',
             medians[many, 'cds-export'] / medians[many, 'lftp-p4'], 0.8),
            (f'{big}: time / sftp -b <= 1/0.9 (throughput >= 0.9x)',
             medians[big, 'cds-export'] / medians[big, 'sftp-b'], 1 / 0.9),
            ('peak RSS MiB <= 60', cds_rss, 60)]:
        verdict = 'met' if value <= bound else 'NOT met'
        lines.append(f'- {text}: {value:.2f}, {verdict}')
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
