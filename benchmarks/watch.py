"""Latency of ``cds-export --watch`` beside cron and lftp (issue 15).

Run from a checkout after ``python3 bootstrap.py``::

    bin/py benchmarks/watch.py [--seconds 60] [--rate 20]
                               [--delay-ms 0 --delay-ms 5]
                               [--tool watch --tool cron --tool lftp]
                               [--idle-seconds 10] [--memory-files 10000]
                               [--mode latency --mode idle --mode memory]
                               [--json FILE]

``latency``: a writer drops files into the spool's ``new`` as zeit.cms
does (written in ``tmp``, moved to ``new``) at ``--rate`` files per
second for ``--seconds``; the server (``server.py --arrivals``) notes
when each becomes visible, complete, under its final name. The table
shows p50, p99 and the maximum of landing → visible for

- ``watch``: ``cds-export --watch`` (started before the writer, ready
  when it tells so through NOTIFY_SOCKET, as to systemd);
- ``lftp``: ``lftp mirror -R`` of ``new`` run in a loop, one second
  between two runs (lftp uploads under the final name: visible at the
  end of its upload);
- ``cron``: ``cds-export`` every 60 s, simulated: a file waits until
  the next minute (ticks at whole minutes from the writer's start), plus
  the time of one real run (the whole process, from cron's exec to its
  end) over the files a minute brings; each file is counted as visible
  at the end of that run.

Each at 0 ms and 5 ms per reply (``--delay-ms``; the server holds back
every reply, as on a WAN).

``idle``: the CPU a watcher uses while nothing arrives, in % of one core
over ``--idle-seconds``. ``memory``: its RSS after 100, 1,000 and
``--memory-files`` files (``--memory-rate`` per second, a partner taking
them off the server after every few hundred, as the CDS does).

The machine may be shared: the numbers are noisy; run it more than once.
"""
import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

# bench.py beside this file: its server, processes and checks.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

SIZE = 4 * bench.KiB
CRON_PERIOD = 60
LFTP_PAUSE = 1
# Files dropped between two looks at the memory.
MEMORY_CHUNK = 450
# Seconds the idle measurement waits after the watcher is ready.
SETTLE = 2
TIMEOUT = 120


class Writer:
    """Drops files into ``spool``'s new: written in tmp, moved to new."""

    def __init__(self, spool, prefix):
        self.spool = spool
        self.prefix = prefix
        self.landed = {}
        self._data = os.urandom(SIZE)

    def drop(self, count, rate=None):
        """Drop ``count`` files, ``rate`` per second (None: at once)."""
        start = time.monotonic()
        for i in range(count):
            if rate:
                pause = start + i / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            name = f'{self.prefix}-{len(self.landed):06d}.xml'
            path = os.path.join(self.spool, 'tmp', name)
            with open(path, 'wb') as f:
                f.write(self._data)
            os.rename(path, os.path.join(self.spool, 'new', name))
            self.landed[name] = time.time()


def arrivals(path):
    """The arrivals the server noted: name -> first time, and how many
    names arrived more than once."""
    found, twice = {}, 0
    with open(path) as f:
        for line in f:
            stamp, _, name = line.rstrip('\n').partition(' ')
            if name in found:
                twice += 1
            else:
                found[name] = float(stamp)
    return found, twice


def wait_for_arrivals(path, names, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found, _ = arrivals(path)
        if set(names) <= set(found):
            return
        time.sleep(0.05)
    found, _ = arrivals(path)
    missing = sorted(set(names) - set(found))
    raise bench.RunFailed(f'{len(missing)} files never arrived '
                          f'(e.g. {missing[0]})')


def percentiles(latencies):
    """p50, p99 and max of ``latencies`` (seconds), in milliseconds."""
    cuts = statistics.quantiles(latencies, n=100, method='inclusive')
    return {'p50_ms': cuts[49] * 1000, 'p99_ms': cuts[98] * 1000,
            'max_ms': max(latencies) * 1000, 'files': len(latencies)}


class Harness:
    """Servers, spools and clients of one benchmark; leaves nothing."""

    def __init__(self, args):
        self.args = args
        self.processes = bench.Processes()
        self.password = secrets.token_urlsafe(16)
        self.env = dict(
            os.environ, CDS_BENCH_PASSWORD=self.password,
            CDS_PASSWORD=self.password,
            PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.tmp = None

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix='cds-watch-bench-')
        return self

    def __exit__(self, *exc_info):
        self.processes.end_all()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def folder(self, name):
        path = tempfile.mkdtemp(prefix=f'{name}-', dir=self.tmp)
        return path

    @contextlib.contextmanager
    def server(self, delay_ms):
        root = self.folder('root')
        noted = os.path.join(self.folder('arrivals'), 'arrivals')
        open(noted, 'w').close()
        server = bench.Server(self.processes, root, delay_ms, self.env,
                              os.path.join(self.tmp, 'server.log'),
                              arrivals=noted)
        try:
            yield server, root, noted
        finally:
            server.stop()

    def spool(self):
        path = os.path.join(self.folder('spool'), 'spool')
        bench.make_spool(path)
        return path

    def cds(self, direction, port, spool, *options):
        return [sys.executable, '-c',
                f'from zeit.cds.cli import {direction}_main; '
                f'{direction}_main()', '-q', '--spool', spool,
                '--host', '127.0.0.1', '--port', str(port),
                '--user', bench.USER, '--dir', '/', *options]

    @contextlib.contextmanager
    def watcher(self, port, spool):
        """``cds-export --watch``, ready (READY=1) within the block."""
        address = os.path.join(self.folder('notify'), 'notify')
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(address)
            sock.settimeout(TIMEOUT)
            log = open(os.path.join(self.tmp, 'watcher.log'), 'a')
            process = self.processes.start(
                self.cds('export', port, spool, '--watch'),
                env=dict(self.env, NOTIFY_SOCKET=address),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            try:
                while sock.recv(4096) != b'READY=1':
                    pass
                yield process
            finally:
                process.send_signal(signal.SIGTERM)
                code = process.wait(TIMEOUT)
                self.processes.finished(process)
                log.close()
                if code != 0:
                    raise bench.RunFailed(f'the watcher ended with {code}')

    # --- latency ------------------------------------------------------

    def latency(self, tool, delay_ms):
        files = int(self.args.rate * self.args.seconds)
        with self.server(delay_ms) as (server, root, noted):
            spool = self.spool()
            writer = Writer(spool, tool)
            if tool == 'watch':
                with self.watcher(server.port, spool):
                    writer.drop(files, self.args.rate)
                    wait_for_arrivals(noted, writer.landed)
                bench.check_empty(os.path.join(spool, 'new'), "spool's new")
            elif tool == 'lftp':
                with self.lftp_loop(server.port, spool, root):
                    writer.drop(files, self.args.rate)
                    wait_for_arrivals(noted, writer.landed)
            else:
                return self.cron(server, spool, writer, files)
            found, twice = arrivals(noted)
        if twice:
            raise bench.RunFailed(f'{twice} files arrived twice')
        return percentiles([found[name] - landed
                            for name, landed in writer.landed.items()])

    @contextlib.contextmanager
    def lftp_loop(self, port, spool, root):
        script = os.path.join(self.folder('lftp'), 'lftp.script')
        with open(os.open(script, os.O_WRONLY | os.O_CREAT, 0o600),
                  'w') as f:
            f.write(bench.LFTP_SCRIPT.format(
                user=bench.USER, password=self.password, port=port,
                mirror=f'mirror -R {bench._q(os.path.join(spool, "new"))} '
                       '/'))
        home = self.folder('home')
        stop = threading.Event()
        failures = []

        def loop():
            while not stop.is_set():
                process = self.processes.start(
                    ['lftp', '-f', script], env=dict(self.env, HOME=home),
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE)
                _, errors = process.communicate()
                self.processes.finished(process)
                if process.returncode:
                    failures.append(errors.decode(errors='replace'))
                stop.wait(LFTP_PAUSE)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(TIMEOUT)
        if failures:
            raise bench.RunFailed(f'lftp failed: {failures[0][-500:]}')

    def cron(self, server, spool, writer, files):
        """One real run over a minute's files; the schedule simulated."""
        per_tick = min(files, int(self.args.rate * CRON_PERIOD))
        writer.drop(per_tick)
        seconds, _, _, code = bench.measured(
            self.processes, self.cds('export', server.port, spool),
            env=self.env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, timeout=TIMEOUT, sample_rss=False)
        if code != 0:
            raise bench.RunFailed(f'cds-export ended with {code}')
        bench.check_empty(os.path.join(spool, 'new'), "spool's new")
        # The files land at the writer's pace from second 0; cron runs at
        # every whole minute.
        latencies = []
        for i in range(files):
            landed = i / self.args.rate
            tick = (landed // CRON_PERIOD + 1) * CRON_PERIOD
            latencies.append(tick - landed + seconds)
        result = percentiles(latencies)
        result['run_seconds'] = seconds
        result['run_files'] = per_tick
        return result

    # --- idle CPU and memory ----------------------------------------

    def idle(self):
        with self.server(0) as (server, root, noted):
            spool = self.spool()
            with self.watcher(server.port, spool) as process:
                # Its first burst, which comes at once, is no idling.
                time.sleep(SETTLE)
                before = cpu_seconds(process.pid)
                started = time.monotonic()
                time.sleep(self.args.idle_seconds)
                used = cpu_seconds(process.pid) - before
                wall = time.monotonic() - started
        return {'idle_seconds': wall, 'cpu_seconds': used,
                'cpu_percent': 100 * used / wall}

    def memory(self):
        with self.server(0) as (server, root, noted):
            spool = self.spool()
            writer = Writer(spool, 'memory')
            with self.watcher(server.port, spool) as process:
                result = {}
                while len(writer.landed) < self.args.memory_files:
                    writer.drop(min(MEMORY_CHUNK if writer.landed else 100,
                                    self.args.memory_files
                                    - len(writer.landed)),
                                rate=self.args.memory_rate)
                    wait_for_arrivals(noted, writer.landed)
                    # The partner takes the files, as the CDS does: the
                    # directory the watcher lists stays small.
                    for name in set(os.listdir(root)) & set(writer.landed):
                        os.remove(os.path.join(root, name))
                    if len(writer.landed) in (100, 1000,
                                              self.args.memory_files):
                        result[f'rss_after_{len(writer.landed)}'] = vm_rss(
                            process.pid)
        values = list(result.values())
        result['growth'] = values[-1] - values[0]
        return result


def cpu_seconds(pid):
    """User and system CPU seconds of process ``pid``."""
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rpartition(')')[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def vm_rss(pid):
    """The resident set size of process ``pid``, in bytes."""
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * bench.KiB
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--mode', action='append',
                        choices=('latency', 'idle', 'memory'))
    parser.add_argument('--tool', action='append',
                        choices=('watch', 'cron', 'lftp'))
    parser.add_argument('--seconds', type=float, default=60,
                        help='how long the writer writes (default 60)')
    parser.add_argument('--rate', type=float, default=20,
                        help='files per second (default 20)')
    parser.add_argument('--delay-ms', type=float, action='append',
                        help='ms per reply (default: 0 and 5)')
    parser.add_argument('--idle-seconds', type=float, default=10)
    parser.add_argument('--memory-files', type=int, default=10000)
    parser.add_argument('--memory-rate', type=float, default=500,
                        help='files per second for the memory mode')
    parser.add_argument('--json', metavar='FILE')
    args = parser.parse_args(argv)
    modes = args.mode or ['latency', 'idle', 'memory']
    tools = args.tool or ['watch', 'cron', 'lftp']
    if 'lftp' in tools and shutil.which('lftp') is None:
        tools.remove('lftp')
        print('lftp is not installed: left out', file=sys.stderr)
    results = {}
    try:
        with Harness(args) as harness:
            if 'latency' in modes:
                for delay in args.delay_ms or [0, 5]:
                    for tool in tools:
                        key = f'{tool} {delay:g} ms'
                        print(f'[{time.strftime("%H:%M:%S")}] {key}',
                              file=sys.stderr, flush=True)
                        results[key] = harness.latency(tool, delay)
            if 'idle' in modes:
                results['idle'] = harness.idle()
            if 'memory' in modes:
                results['memory'] = harness.memory()
    finally:
        # What was measured, also when a later part failed.
        print(table(results, args))
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(results, f, indent=2)


def table(results, args):
    lines = [f'landing -> visible, {args.rate:g} files/s for '
             f'{args.seconds:g} s, {SIZE // bench.KiB} KiB each',
             f'{"tool, delay per reply":24} {"p50 ms":>9} {"p99 ms":>9} '
             f'{"max ms":>9} {"files":>6}']
    for key, result in results.items():
        if key in ('idle', 'memory'):
            continue
        lines.append(f'{key:24} {result["p50_ms"]:9.1f} '
                     f'{result["p99_ms"]:9.1f} {result["max_ms"]:9.1f} '
                     f'{result["files"]:6}')
        if 'run_seconds' in result:
            lines.append(f'{"":24} (one cron run over '
                         f'{result["run_files"]} files: '
                         f'{result["run_seconds"]:.2f} s)')
    if 'idle' in results:
        idle = results['idle']
        lines.append(f'idle watcher: {idle["cpu_percent"]:.2f} % of a core '
                     f'over {idle["idle_seconds"]:.0f} s')
    if 'memory' in results:
        memory = dict(results['memory'])
        growth = memory.pop('growth')
        lines.append('watcher RSS: ' + ', '.join(
            f'{value / bench.MiB:.1f} MiB {key.replace("_", " ")} files'
            for key, value in memory.items())
            + f' (growth {growth / bench.MiB:+.2f} MiB)')
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
