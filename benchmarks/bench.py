"""Benchmarks of zeit.cds against lftp, curl and a plain ftplib loop
(issues 9 and 17).

Run from a checkout after ``python3 bootstrap.py``::

    bin/py benchmarks/bench.py [--quick] [--workload NAME ...]
                               [--tool NAME ...] [--repeat 5]
                               [--delay-ms MS] [--json FILE] [...]

(``--help`` lists every option, the workloads and the tools.)

Every workload is built in a temporary spool (``tmp``, ``new``, ``cur``)
and a fresh directory on a pyftpdlib server that runs in a process of
its own (``server.py``). Every run of a tool is a process of its own
too, so that its peak RSS can be read; the Python clients time only
their transfer (``clients.py``), lftp and curl are timed as whole processes.
With ``--server vsftpd`` the server is Debian's vsftpd instead, as the
interoperability tests run it. Each run's result is verified (every file
there, with its size and, up to 64 KiB, its content; nothing left over)
so that a broken run cannot look fast. The table shows medians; the
targets of issues 9 and 17 follow it.
"""
import argparse
import collections
import dataclasses
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
USER = 'bench'
# Files up to this size are compared byte by byte after each run.
COMPARED_SIZE = 64 * KiB
# "The same" peak RSS for 1 GiB as for 4 KiB: within this much.
RSS_TOLERANCE = 2 * MiB
SHM = '/dev/shm'


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    direction: str          # 'export' or 'import'
    files: int
    size: int
    quick_files: int
    quick_size: int
    tools: tuple
    delay_ms: float = 0.0

    def sized(self, quick):
        if quick:
            return dataclasses.replace(
                self, files=self.quick_files, size=self.quick_size)
        return self

    @property
    def total(self):
        return self.files * self.size

    def describe(self):
        return (f'{self.files:,} x {_size(self.size)}, {self.direction}, '
                f'{self.delay_ms:g} ms per reply')


# The tools: 'cds' is zeit.cds.main.export (import_), the façade
# zeit.cms calls; 'cds-cli' the console script cds-export (cds-import)
# with its defaults, 'cds-cli-1' the same with --connections 1; 'ftplib'
# the baseline loop; 'lftp' mirror, 'lftp-p4' mirror --parallel=4;
# 'curl-p4' curl uploading 4 files at once (no lock, no temporary names:
# what the wire allows).
EXPORT_TOOLS = ('cds', 'cds-cli', 'cds-cli-1', 'ftplib', 'lftp', 'lftp-p4',
                'curl-p4')
WORKLOADS = {w.name: w for w in [
    # One 4 KiB file: the peak RSS to hold the 1 GiB one's against.
    Workload('tiny-1', 'export', 1, 4 * KiB, 1, 4 * KiB,
             ('cds', 'cds-cli', 'ftplib')),
    Workload('wan-300', 'export', 300, 4 * KiB, 60, 4 * KiB, EXPORT_TOOLS,
             delay_ms=5.0),
    Workload('files-2000', 'export', 2000, 4 * KiB, 300, 4 * KiB,
             EXPORT_TOOLS),
    Workload('large-256m', 'export', 1, 256 * MiB, 1, 32 * MiB,
             EXPORT_TOOLS),
    Workload('large-1g', 'export', 1, GiB, 1, 128 * MiB,
             ('cds', 'cds-cli', 'ftplib', 'lftp-p4')),
    Workload('import-2000', 'import', 2000, 4 * KiB, 300, 4 * KiB,
             ('cds', 'cds-cli', 'cds-cli-1', 'ftplib', 'lftp-p4')),
    Workload('files-20000', 'export', 20000, 4 * KiB, 3000, 4 * KiB,
             ('cds', 'cds-cli', 'ftplib', 'lftp-p4')),
]}

LABELS = {
    ('export', 'cds'): 'zeit.cds export()',
    ('export', 'cds-cli'): 'cds-export',
    ('export', 'cds-cli-1'): 'cds-export -c 1',
    ('export', 'ftplib'): 'ftplib loop+lock',
    ('export', 'lftp'): 'lftp mirror -R',
    ('export', 'lftp-p4'): 'lftp -R -P4',
    ('export', 'curl-p4'): 'curl, 4 parallel',
    ('import', 'cds'): 'zeit.cds import_()',
    ('import', 'cds-cli'): 'cds-import',
    ('import', 'cds-cli-1'): 'cds-import -c 1',
    ('import', 'ftplib'): 'ftplib loop+lock',
    ('import', 'lftp-p4'): 'lftp -P4 --Remove',
}
TOOL_NAMES = sorted({tool for w in WORKLOADS.values() for tool in w.tools})


class RunFailed(Exception):
    """A run did not complete, or its result was wrong."""


@dataclasses.dataclass
class Result:
    workload: Workload
    tool: str
    seconds: list = dataclasses.field(default_factory=list)
    rss: list = dataclasses.field(default_factory=list)
    replies: list = dataclasses.field(default_factory=list)
    setup: list = dataclasses.field(default_factory=list)
    cpu: list = dataclasses.field(default_factory=list)
    server_cpu: list = dataclasses.field(default_factory=list)
    failure: str = None
    skipped: str = None

    @property
    def label(self):
        return LABELS[self.workload.direction, self.tool]

    @property
    def ok(self):
        return bool(self.seconds) and not self.failure and not self.skipped

    @property
    def median(self):
        return statistics.median(self.seconds) if self.ok else None

    def as_dict(self):
        return {
            'workload': self.workload.name, 'tool': self.tool,
            'label': self.label, 'files': self.workload.files,
            'size': self.workload.size, 'delay_ms': self.workload.delay_ms,
            'seconds': self.seconds, 'peak_rss_bytes': self.rss,
            'replies': self.replies, 'setup_seconds': self.setup,
            'cpu_seconds': self.cpu, 'server_cpu_seconds': self.server_cpu,
            'failure': self.failure,
            'skipped': self.skipped,
        }


# --- the processes this harness starts --------------------------------

class Processes:
    """Every process the harness starts, so that all of them end with it."""

    def __init__(self):
        self._running = set()

    def start(self, argv, **kwargs):
        # A session of its own: Ctrl-C reaches the harness only, which
        # then ends its children itself.
        process = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self._running.add(process)
        return process

    def finished(self, process):
        self._running.discard(process)

    def end_all(self):
        for process in list(self._running):
            end(process)
            self.finished(process)


def end(process, grace=10):
    """End ``process`` (by its PID), politely first."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def measured(processes, argv, *, env, stdout, stderr, timeout,
             sample_rss=True):
    """Run ``argv`` to its end: (wall seconds, peak RSS bytes or 0, CPU
    seconds, exit code).

    The peak RSS is sampled from /proc while the program runs, since
    the rusage of a child counts the RSS of the harness it was forked
    from (Linux carries the high-water mark across execve).
    """
    started = time.perf_counter()
    process = processes.start(argv, env=env, stdin=subprocess.DEVNULL,
                              stdout=stdout, stderr=stderr)
    watchdog = threading.Timer(timeout, process.kill)
    sampler = PeakSampler(process.pid, argv[0])
    watchdog.start()
    if sample_rss:
        sampler.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        watchdog.cancel()
        if sample_rss:
            sampler.stop()
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    processes.finished(process)
    cpu = usage.ru_utime + usage.ru_stime
    return wall, sampler.peak, cpu, process.returncode


class PeakSampler(threading.Thread):
    """Reads VmHWM of process ``pid`` every few milliseconds, once it
    runs ``executable`` (before, it is still a copy of the harness)."""

    INTERVAL = 0.01

    def __init__(self, pid, executable):
        super().__init__(daemon=True)
        self._proc = f'/proc/{pid}'
        self._executable = os.path.realpath(executable)
        self._stopping = threading.Event()
        self.peak = 0

    def run(self):
        while not self._stopping.wait(self.INTERVAL):
            self.peak = max(self.peak, self._sample())

    def _sample(self):
        try:
            if os.readlink(f'{self._proc}/exe') != self._executable:
                return 0
            return vm_hwm(f'{self._proc}/status')
        except OSError:
            return 0

    def stop(self):
        self._stopping.set()
        self.join()


def vm_hwm(status_path):
    """The peak RSS (VmHWM) from a /proc/PID/status file, in bytes."""
    with open(status_path) as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) * KiB
    return 0


class Server:
    """benchmarks/server.py in a process of its own."""

    name = 'pyftpdlib'
    user = USER
    # The folder the server's sessions start in, as they see it.
    directory = '/'

    def __init__(self, processes, root, delay_ms, env, log_path,
                 arrivals=None):
        self.root = root
        self.password = env['CDS_BENCH_PASSWORD']
        self._log = open(log_path, 'w+')
        self._process = processes.start(
            [sys.executable, os.path.join(HERE, 'server.py'), '--root', root,
             '--user', USER, '--delay-ms', str(delay_ms)]
            + (['--arrivals', arrivals] if arrivals else []),
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, text=True)
        self._processes = processes
        self.port = int(self._answer('port'))

    def _answer(self, keyword):
        line = self._process.stdout.readline()
        word, _, value = line.partition(' ')
        if word != keyword:
            self._log.seek(0)
            raise RunFailed(f'FTP server: expected {keyword!r}, got '
                            f'{line!r}; its stderr: {self._log.read()}')
        return value

    def counters(self):
        """The replies the server has sent so far, and its CPU seconds."""
        self._process.stdin.write('count\n')
        self._process.stdin.flush()
        replies, cpu = self._answer('count').split()
        return int(replies), float(cpu)

    def stop(self):
        try:
            self._process.stdin.close()
            self._process.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            end(self._process)
        self._process.stdout.close()
        self._processes.finished(self._process)
        self._log.close()

    def hand_over(self, path):
        """Make the folder ``path`` in the root the sessions' own."""


class Vsftpd:
    """Debian's vsftpd on 127.0.0.1 and free ports, started and stopped
    as the interoperability tests do (zeit.cds.tests.realservers: run as
    root, with $CDS_FTP_SERVERS pointing to the unpacked servers). Its
    sessions log in as a system account and start in ``/``; it cannot
    hold back its replies, and counts none."""

    name = 'vsftpd'

    def __init__(self, server_tmp):
        from zeit.cds.tests import realservers
        self._realservers = realservers
        # Its configuration and root folder go where the server's files
        # of the benchmark go, which its sessions must pass through.
        for folder in (server_tmp, os.path.dirname(server_tmp)):
            os.chmod(folder, 0o711)
        tempfile.tempdir, before = server_tmp, tempfile.tempdir
        try:
            self._server = realservers.Vsftpd().start()
        finally:
            tempfile.tempdir = before
        self.port = self._server.port
        self.user = self._server.user
        self.password = self._server.password
        self.root = self.directory = self._server.root

    @staticmethod
    def unavailable():
        """Why vsftpd cannot run here, or None."""
        try:
            from zeit.cds.tests import realservers
        except ImportError as e:
            return f'the test environment is missing: {e}'
        return realservers.Vsftpd().unavailable()

    def counters(self):
        """No replies counted; the CPU seconds of the server and of the
        sessions it has reaped."""
        with open(f'/proc/{self._server._process.pid}/stat') as f:
            fields = f.read().rpartition(')')[2].split()
        ticks = sum(int(value) for value in fields[11:15])
        return None, ticks / os.sysconf('SC_CLK_TCK')

    def stop(self):
        self._server.stop()

    def hand_over(self, path):
        uid, gid = self._realservers.ensure_account()
        for folder, _, files in os.walk(path):
            for name in [folder] + [os.path.join(folder, f) for f in files]:
                os.chown(name, uid, gid)


# --- ports -------------------------------------------------------------
#
# Every file travels on a data connection of its own, to a port the server
# binds with bind(port 0). The side that closes a TCP connection first
# keeps it in TIME_WAIT for 60 s; for a download that is the server. Once
# some 14,000 such sockets hold the ephemeral ports (32768-60999 here),
# each bind(port 0) of the server takes milliseconds instead of
# microseconds, and a run is slowed by the runs before it. (Sockets that
# the client closed first, as after an upload, do not count.) So before
# each run the harness waits, at most SETTLE_SECONDS, until bind(port 0)
# is quick again and, before a download, until the downloads of the last
# TIME_WAIT_SECONDS and the run's own stay below DOWNLOADS_LIMIT.

SETTLE_SECONDS = 75
TIME_WAIT_SECONDS = 62
DOWNLOADS_LIMIT = 10000
BIND_LIMIT = 200e-6


class Ports:
    """Keeps the server's data ports quick for the next run."""

    def __init__(self):
        self._downloads = collections.deque()   # (monotonic time, files)

    def downloaded(self, files):
        self._downloads.append((time.monotonic(), files))

    def recent_downloads(self):
        expired = time.monotonic() - TIME_WAIT_SECONDS
        while self._downloads and self._downloads[0][0] < expired:
            self._downloads.popleft()
        return sum(files for _, files in self._downloads)

    def settle(self, downloads):
        """Wait until the server's data ports come quickly, with room for
        ``downloads`` more; the seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < SETTLE_SECONDS:
            crowded = (downloads and self.recent_downloads() + downloads
                       > DOWNLOADS_LIMIT)
            if not crowded and bind_seconds() < BIND_LIMIT:
                break
            time.sleep(1)
        return time.monotonic() - started


def bind_seconds(probes=20):
    """The time one listening socket on 127.0.0.1, port 0, takes."""
    started = time.perf_counter()
    for _ in range(probes):
        with socket.socket() as probe:
            probe.bind(('127.0.0.1', 0))
            probe.listen(1)
    return (time.perf_counter() - started) / probes


# --- workloads on disk ------------------------------------------------

def file_names(workload):
    width = len(str(workload.files))
    return [f'article-{i:0{width}d}.xml' for i in range(workload.files)]


def write_source(workload, folder):
    """The workload's files, written once; each run links them."""
    os.makedirs(folder)
    block = os.urandom(MiB)
    for name in file_names(workload):
        with open(os.path.join(folder, name), 'wb') as f:
            if workload.size <= MiB:
                f.write(os.urandom(workload.size))
                continue
            for offset in range(0, workload.size, MiB):
                f.write(block[:workload.size - offset])


def link_files(source, folder):
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(source):
        os.link(os.path.join(source, name), os.path.join(folder, name))


def make_spool(path, source=None):
    """A gocept.filestore spool: tmp, new, cur; ``source``'s files in new."""
    for section in ('tmp', 'new', 'cur'):
        os.makedirs(os.path.join(path, section))
    if source is not None:
        link_files(source, os.path.join(path, 'new'))


def check_files(source, folder, what):
    """Every file of ``source`` is in ``folder`` with its size (and its
    content when small), and nothing else is."""
    expected = {e.name: e.stat().st_size for e in os.scandir(source)}
    found = {e.name: e.stat().st_size for e in os.scandir(folder)}
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    wrong = sorted(name for name in set(expected) & set(found)
                   if expected[name] != found[name])
    problems = []
    if missing:
        problems.append(f'{len(missing)} missing (e.g. {missing[0]})')
    if extra:
        problems.append(f'{len(extra)} unexpected (e.g. {extra[0]})')
    if wrong:
        name = wrong[0]
        problems.append(f'{len(wrong)} of the wrong size (e.g. {name}: '
                        f'{found[name]} of {expected[name]} bytes)')
    for name in sorted(set(expected) & set(found)):
        if name in wrong or expected[name] > COMPARED_SIZE:
            continue
        if _read(source, name) != _read(folder, name):
            problems.append(f'content of {name} differs')
            break
    if problems:
        raise RunFailed(f'{what}: ' + '; '.join(problems))


def check_empty(folder, what):
    left = sorted(os.listdir(folder))
    if left:
        raise RunFailed(f'{what}: {len(left)} files left (e.g. {left[0]})')


def _read(folder, name):
    with open(os.path.join(folder, name), 'rb') as f:
        return f.read()


# --- the tools --------------------------------------------------------

class Bench:
    """Runs the workloads; a context manager that leaves nothing behind."""

    def __init__(self, args, lftp, curl):
        self.args = args
        self.lftp = lftp
        self.curl = curl
        self.processes = Processes()
        self.ports = Ports()
        self.password = secrets.token_urlsafe(16)
        self.python_env = dict(
            os.environ, CDS_BENCH_PASSWORD=self.password,
            PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.tmp = self.server_tmp = None
        self.cds = None
        self._runs = 0

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix='cds-bench-', dir=self.args.tmpdir)
        self.server_tmp = tempfile.mkdtemp(
            prefix='cds-bench-server-', dir=self.args.server_tmpdir)
        home = os.path.join(self.tmp, 'home')
        os.makedirs(home)
        # lftp reads and writes its files under HOME: a clean one.
        self.lftp_env = dict(
            os.environ, HOME=home, XDG_CONFIG_HOME=home,
            XDG_DATA_HOME=home, XDG_CACHE_HOME=home)
        self.cds = probe_cds(self.python_env)
        return self

    def __exit__(self, *exc_info):
        self.processes.end_all()
        for folder in (self.tmp, self.server_tmp):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def skip_reason(self, workload, tool):
        if self.args.server == 'vsftpd' and workload.delay_ms:
            return 'vsftpd cannot hold back its replies'
        if tool.startswith('lftp') and not self.lftp:
            return 'lftp is not installed'
        if tool == 'curl-p4' and not self.curl:
            return 'curl is not installed'
        offers = self.cds[workload.direction]
        script = 'cds-' + workload.direction
        if tool == 'cds' and not offers['api']:
            return 'zeit.cds.main has no import_ (yet)'
        if tool.startswith('cds-cli') and not offers['cli']:
            return f'zeit.cds has no console script {script} (yet)'
        if tool == 'cds-cli-1' and not offers['connections']:
            return f'{script} has no --connections (yet)'
        return None

    def workload(self, workload, tools):
        """Measure ``tools`` on ``workload``: {tool: Result}."""
        results = {tool: Result(workload, tool) for tool in tools}
        for result in results.values():
            result.skipped = self.skip_reason(workload, result.tool)
        active = [r for r in results.values() if not r.skipped]
        if not active:
            return results
        folder = os.path.join(self.tmp, workload.name)
        server_folder = os.path.join(self.server_tmp, workload.name)
        os.makedirs(folder)
        os.makedirs(server_folder)
        # Where the files start from, so that each run links them.
        source = os.path.join(
            folder if workload.direction == 'export' else server_folder,
            'source')
        self._say(f'{workload.name}: writing {workload.files:,} files')
        write_source(workload, source)
        server = self._server(workload, server_folder, folder)
        self.python_env['CDS_BENCH_PASSWORD'] = server.password
        root = server.root
        try:
            # Round-robin over the tools, so that a slow phase of the
            # machine does not fall on one tool only.
            for repeat in range(self.args.repeat):
                for result in active:
                    if result.failure:
                        continue
                    self._say(f'{workload.name}: {result.label} '
                              f'({repeat + 1}/{self.args.repeat})')
                    try:
                        self._run(result, server, source, root, folder)
                    except RunFailed as e:
                        result.failure = str(e)
                        self._say(f'  FAILED: {e}')
        finally:
            server.stop()
            shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(server_folder, ignore_errors=True)
        return results

    def _server(self, workload, server_folder, folder):
        if self.args.server == 'vsftpd':
            return Vsftpd(server_folder)
        root = os.path.join(server_folder, 'root')
        os.makedirs(root)
        return Server(self.processes, root, workload.delay_ms,
                      self.python_env, os.path.join(folder, 'server.log'))

    def _run(self, result, server, source, root, folder):
        self._runs += 1
        run = os.path.join(folder, f'run-{self._runs:04d}')
        remote = f'/run-{self._runs:04d}'
        remote_path = os.path.join(root, remote.lstrip('/'))
        os.makedirs(run)
        try:
            if result.workload.direction == 'export':
                os.makedirs(remote_path)
                make_spool(os.path.join(run, 'spool'), source)
            else:
                link_files(source, remote_path)
                make_spool(os.path.join(run, 'spool'))
                os.makedirs(os.path.join(run, 'dest'))
            server.hand_over(remote_path)
            setup = None
            argv, env, timed_inside = self._command(
                result, server, os.path.join(server.directory, remote[1:]),
                run)
            # Nothing of the last run is still being written back, nor
            # holding the ports this one needs.
            os.sync()
            downloads = (result.workload.files
                         if result.workload.direction == 'import' else 0)
            waited = self.ports.settle(downloads)
            if waited >= 5:
                self._say(f'  waited {waited:.0f} s for TIME_WAIT sockets '
                          'of earlier runs to expire')
            replies_before, server_before = server.counters()
            with open(os.path.join(run, 'stdout'), 'w+') as out, \
                    open(os.path.join(run, 'stderr'), 'w+') as err:
                try:
                    wall, rss, cpu, code = measured(
                        self.processes, argv, env=env, stdout=out,
                        stderr=err, timeout=self.args.timeout,
                        sample_rss=not timed_inside)
                finally:
                    self.ports.downloaded(downloads)
                out.seek(0)
                err.seek(0)
                output, errors = out.read(), err.read()
            replies, server_cpu = server.counters()
            if replies is not None:
                replies -= replies_before
            server_cpu -= server_before
            if code != 0:
                raise RunFailed(f'exit code {code}: {errors.strip()[-2000:]}')
            if timed_inside:
                # Exact, from inside (the sampler could not tell the
                # client from the harness: both run the same python).
                report = json.loads(output)
                wall, rss = report['seconds'], report['peak_rss']
                cpu, setup = report['cpu'], report['setup']
            self._verify(result, source, remote_path, run, errors)
        finally:
            shutil.rmtree(run, ignore_errors=True)
            shutil.rmtree(remote_path, ignore_errors=True)
        result.seconds.append(wall)
        result.rss.append(rss)
        result.replies.append(replies)
        result.cpu.append(cpu)
        result.server_cpu.append(server_cpu)
        if setup is not None:
            result.setup.append(setup)

    def _command(self, result, server, remote, run):
        """(argv, env, whether the process reports its own time)."""
        tool, direction = result.tool, result.workload.direction
        port = server.port
        spool = os.path.join(run, 'spool')
        if tool.startswith('lftp'):
            parallel = ' --parallel=4' if tool == 'lftp-p4' else ''
            local = os.path.join(spool, 'new') if direction == 'export' \
                else os.path.join(run, 'dest')
            if direction == 'export':
                mirror = f'mirror -R{parallel} {_q(local)} {_q(remote)}'
            else:
                mirror = (f'mirror --Remove-source-files{parallel} '
                          f'{_q(remote)} {_q(local)}')
            script = os.path.join(run, 'lftp.script')
            with open(os.open(script, os.O_WRONLY | os.O_CREAT, 0o600),
                      'w') as f:
                f.write(LFTP_SCRIPT.format(
                    user=server.user, password=server.password, port=port,
                    mirror=mirror))
            return [self.lftp, '-f', script], self.lftp_env, False
        if tool == 'curl-p4':
            return self._curl(server, remote, run), self.lftp_env, False
        command = {'cds': f'api-{direction}', 'cds-cli': f'cli-{direction}',
                   'cds-cli-1': f'cli-{direction}',
                   'ftplib': f'ftplib-{direction}'}[tool]
        argv = [sys.executable, os.path.join(HERE, 'clients.py'), command,
                '--port', str(port), '--user', server.user, '--dir', remote]
        if tool == 'ftplib' and direction == 'import':
            argv += ['--dest', os.path.join(run, 'dest')]
        else:
            argv += ['--spool', spool]
        if tool == 'cds-cli-1':
            argv += ['--connections', '1']
        return argv, self.python_env, True

    def _curl(self, server, remote, run):
        """curl's command line: every file of the spool's new uploaded,
        four at a time, with the login in a config file (never in argv)."""
        new = os.path.join(run, 'spool', 'new')
        config = os.path.join(run, 'curl.config')
        with open(os.open(config, os.O_WRONLY | os.O_CREAT, 0o600),
                  'w') as f:
            f.write(f'user = "{server.user}:{server.password}"\n')
            for name in sorted(os.listdir(new)):
                f.write(f'upload-file = {_q(os.path.join(new, name))}\n'
                        # %2F: the path is absolute, not below the
                        # folder the session starts in.
                        f'url = "ftp://127.0.0.1:{server.port}/%2F'
                        f'{remote[1:]}/"\n')
        return [self.curl, '--silent', '--show-error', '--parallel',
                '--parallel-max', '4', '--config', config]

    def _verify(self, result, source, remote_path, run, errors):
        tool, direction = result.tool, result.workload.direction
        spool = os.path.join(run, 'spool')
        if tool.startswith('cds') and errors.strip():
            # zeit.cds returns None when it fails; its ERROR lines tell.
            raise RunFailed(f'zeit.cds logged: {errors.strip()[-2000:]}')
        if direction == 'export':
            check_files(source, remote_path, 'on the server')
            if tool.startswith('cds'):
                check_empty(os.path.join(spool, 'new'), "spool's new")
                check_files(source, os.path.join(spool, 'cur'),
                            "spool's cur")
        else:
            check_empty(remote_path, 'on the server')
            if tool.startswith('cds'):
                check_files(source, os.path.join(spool, 'new'),
                            "spool's new")
                check_empty(os.path.join(spool, 'tmp'), "spool's tmp")
            else:
                check_files(source, os.path.join(run, 'dest'), 'downloaded')

    def _say(self, message):
        if not self.args.silent:
            print(f'[{time.strftime("%H:%M:%S")}] {message}', file=sys.stderr,
                  flush=True)


# lftp with its defaults, except: no TLS attempt (the server has none, and
# zeit.cds does not try either), no endless retries, and an exit code.
LFTP_SCRIPT = """\
set cmd:fail-exit yes
set ftp:ssl-allow no
set net:max-retries 2
set net:timeout 60
open -u {user},{password} -p {port} ftp://127.0.0.1
{mirror}
quit
"""


def _q(path):
    if '"' in path:
        raise SystemExit(f'cannot quote {path!r} for lftp')
    return f'"{path}"'


def _size(n):
    for unit, factor in (('GiB', GiB), ('MiB', MiB), ('KiB', KiB)):
        if n >= factor and n % factor == 0:
            return f'{n // factor} {unit}'
    return f'{n} B'


def probe_cds(env):
    """What this zeit.cds offers: import_, connections settings."""
    output = subprocess.run(
        [sys.executable, os.path.join(HERE, 'clients.py'), 'probe'],
        env=env, stdout=subprocess.PIPE, check=True, text=True).stdout
    return json.loads(output)


# --- the report -------------------------------------------------------

def table(results):
    header = ('tool', 'workload', 'wall s', '±%', 'files/s', 'MB/s',
              'RSS MiB', 'repl/file', 'CPU s', 'CPU ms/f', 'srv CPU',
              'x ftplib', 'x lftp-P4', 'x curl-P4')
    rows = []
    notes = []
    by_workload = {}
    for result in results:
        by_workload.setdefault(result.workload.name, {})[result.tool] = result
    skipped = {}
    for result in results:
        w = result.workload
        if result.skipped:
            skipped.setdefault((result.label, result.skipped), []).append(
                w.name)
            continue
        if not result.ok:
            rows.append((result.label, w.name, 'FAILED')
                        + ('',) * (len(header) - 3))
            notes.append(f'{result.label} on {w.name} FAILED: '
                         f'{result.failure}')
            continue
        median = result.median
        spread = (max(result.seconds) - min(result.seconds)) / 2 / median
        others = by_workload[w.name]
        rows.append((
            result.label, w.name, f'{median:.3f}', f'{100 * spread:.0f}',
            f'{w.files / median:,.0f}', f'{w.total / median / 1e6:,.1f}',
            f'{max(result.rss) / MiB:.1f}',
            _per_file(result.replies, w.files),
            f'{statistics.median(result.cpu):.3f}',
            f'{1000 * statistics.median(result.cpu) / w.files:.3f}',
            f'{statistics.median(result.server_cpu):.3f}',
            _ratio(median, others.get('ftplib')),
            _ratio(median, others.get('lftp-p4')),
            _ratio(median, others.get('curl-p4')),
        ))
    for (label, why), names in skipped.items():
        notes.append(f'{label} skipped ({", ".join(names)}): {why}')
    widths = [max(len(str(row[i])) for row in rows + [header])
              for i in range(len(header))]
    lines = []
    for n, row in enumerate([header] + rows):
        cells = [str(cell).ljust(width) if i < 2 else str(cell).rjust(width)
                 for i, (cell, width) in enumerate(zip(row, widths))]
        lines.append('  '.join(cells).rstrip())
        if n == 0:
            lines.append('  '.join('-' * width for width in widths))
    return '\n'.join(lines), notes


def _ratio(median, other):
    if other is None or not other.ok:
        return 'n.a.'
    return f'{median / other.median:.2f}'


@dataclasses.dataclass
class Target:
    text: str
    verdict: str
    detail: str = ''


def targets(results):
    """The targets of issues 9 and 17, judged on this run's medians, as
    (heading, [Target]) pairs. (Issue 17's start-up target is judged by
    ``startup.py``.)

    zeit.cds "with default settings" is the console script with its
    defaults where the package has one, else zeit.cds.main's function.
    """
    found = {(r.workload.name, r.tool): r for r in results}

    def get(workload, tool):
        result = found.get((workload, tool))
        return result if result is not None and result.ok else None

    def cds(workload):
        return get(workload, 'cds-cli') or get(workload, 'cds')

    def target(text, ours, theirs, judge, detail):
        if ours is None or theirs is None:
            return Target(text, 'n.a.')
        return Target(text, 'PASS' if judge(ours, theirs) else 'FAIL',
                      f'{ours.label}: {detail(ours, theirs)}')

    def times(limit):
        return dict(
            judge=lambda a, b: a.median <= limit * b.median,
            detail=lambda a, b: (f'{a.median:.3f} s / {b.median:.3f} s = '
                                 f'{a.median / b.median:.2f}x'))

    def throughput(result):
        return f'{result.workload.total / result.median / 1e6:.0f} MB/s'

    def peak(result):
        return f'{max(result.rss) / MiB:.1f} MiB'

    def cpu(result):
        return statistics.median(result.cpu)

    lftps = [r for r in (get('large-256m', 'lftp'),
                         get('large-256m', 'lftp-p4')) if r]
    fastest_lftp = min(lftps, key=lambda r: r.median) if lftps else None
    issue_9 = [
        target('wan-300: zeit.cds export <= 0.8x lftp --parallel=4',
               cds('wan-300'), get('wan-300', 'lftp-p4'), **times(0.8)),
        target('files-2000: zeit.cds export <= 1.0x lftp --parallel=4',
               cds('files-2000'), get('files-2000', 'lftp-p4'),
               **times(1.0)),
        target('large-256m: zeit.cds throughput >= the faster lftp',
               cds('large-256m'), fastest_lftp,
               judge=lambda a, b: a.median <= b.median,
               detail=lambda a, b: f'{throughput(a)} vs {throughput(b)}'),
        target('large-256m: zeit.cds export peak RSS <= 40 MiB',
               cds('large-256m'), cds('large-256m'),
               judge=lambda a, _: max(a.rss) <= 40 * MiB,
               detail=lambda a, _: peak(a)),
        target('large-1g: zeit.cds export peak RSS <= 40 MiB',
               cds('large-1g'), cds('large-1g'),
               judge=lambda a, _: max(a.rss) <= 40 * MiB,
               detail=lambda a, _: peak(a)),
        target(f'large-1g: peak RSS the same as for 4 KiB (tiny-1), '
               f'within {RSS_TOLERANCE // MiB} MiB',
               cds('large-1g'), cds('tiny-1'),
               judge=lambda a, b: max(a.rss) - max(b.rss) <= RSS_TOLERANCE,
               detail=lambda a, b: f'{peak(a)} vs {peak(b)}'),
        target('import-2000: zeit.cds import <= 1.0x the ftplib loop '
               'with lock', cds('import-2000'), get('import-2000', 'ftplib'),
               **times(1.0)),
        target('files-20000: <= 1.1x per file the time of files-2000',
               cds('files-20000'), cds('files-2000'),
               judge=lambda a, b: (a.median / b.median
                                   <= 1.1 * a.workload.files
                                   / b.workload.files),
               detail=lambda a, b: (
                   f'{a.median / b.median:.2f}x the time for '
                   f'{a.workload.files / b.workload.files:g}x the files')),
    ]
    issue_17 = [
        target('files-2000: zeit.cds export <= 0.9x lftp --parallel=4',
               cds('files-2000'), get('files-2000', 'lftp-p4'),
               **times(0.9)),
        target('files-2000 (moonshot): zeit.cds export <= 1.0x curl, 4 '
               'parallel', cds('files-2000'), get('files-2000', 'curl-p4'),
               **times(1.0)),
        target('large-256m: zeit.cds export <= 1.1x the faster lftp',
               cds('large-256m'), fastest_lftp, **times(1.1)),
        target('large-256m: zeit.cds client CPU <= 2x the ftplib loop\'s',
               cds('large-256m'), get('large-256m', 'ftplib'),
               judge=lambda a, b: cpu(a) <= 2 * cpu(b),
               detail=lambda a, b: (f'{cpu(a):.3f} s / {cpu(b):.3f} s = '
                                    f'{cpu(a) / cpu(b):.2f}x')),
        target('wan-300: zeit.cds export <= 0.5x lftp --parallel=4',
               cds('wan-300'), get('wan-300', 'lftp-p4'), **times(0.5)),
        target('import-2000: zeit.cds import <= 0.6x the ftplib loop '
               'with lock', cds('import-2000'), get('import-2000', 'ftplib'),
               **times(0.6)),
    ]
    return [('Targets of issue 9', issue_9),
            ('Targets of issue 17', issue_17)]


def server_tmpdir(tmpdir, workloads):
    """/dev/shm when it holds the largest workload twice over (its
    source and one run's upload), else ``tmpdir``."""
    needed = 2 * max(w.total for w in workloads) + 64 * MiB
    try:
        stat = os.statvfs(SHM)
    except OSError:
        return tmpdir
    if os.access(SHM, os.W_OK) and stat.f_bavail * stat.f_frsize > needed:
        return SHM
    return tmpdir


def filesystem(path):
    """The type of the file system ``path`` is on, e.g. 'ext4'."""
    path = os.path.realpath(path)
    best, kind = '', '?'
    with open('/proc/mounts') as f:
        for line in f:
            _, mount, fstype = line.split()[:3]
            inside = path == mount or path.startswith(mount.rstrip('/') + '/')
            if inside and len(mount) >= len(best):
                best, kind = mount, fstype
    return kind


def versions(lftp, server):
    parts = [f'Python {platform.python_version()}']
    if server == 'pyftpdlib':
        import pyftpdlib
        parts.append(f'pyftpdlib {pyftpdlib.__ver__}')
    else:
        parts.append(f"Debian's {server}")
    parts.append(f'{os.cpu_count()} cores')
    if lftp:
        first = subprocess.run([lftp, '--version'], stdout=subprocess.PIPE,
                               text=True).stdout.splitlines()[0]
        parts.append(' '.join(first.replace('|', ' ').split()[:3]))
    return ', '.join(parts)


# --- command line -----------------------------------------------------

def _per_file(counts, files):
    if None in counts:
        return 'n.a.'
    return f'{statistics.median(counts) / files:.2f}'


def parse_args(argv):
    epilog = 'Workloads (full size; --quick shrinks them):\n' + '\n'.join(
        f'  {w.name:12} {w.describe()}; tools: {", ".join(w.tools)}'
        for w in WORKLOADS.values())
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true',
                        help='smaller workloads, 1 repeat: a smoke run')
    parser.add_argument('--workload', action='append',
                        choices=list(WORKLOADS), metavar='NAME',
                        help='only this workload (repeatable)')
    parser.add_argument('--tool', action='append', choices=TOOL_NAMES,
                        metavar='NAME', help='only this tool (repeatable): '
                        + ', '.join(TOOL_NAMES))
    parser.add_argument('--repeat', type=int,
                        help='runs per tool and workload; the table shows '
                        'the median (default 5, with --quick 1)')
    parser.add_argument('--server', choices=('pyftpdlib', 'vsftpd'),
                        default='pyftpdlib',
                        help="the FTP server: pyftpdlib's stock server "
                        "(default), or Debian's vsftpd as the "
                        'interoperability tests run it (as root, with '
                        '$CDS_FTP_SERVERS set)')
    parser.add_argument('--delay-ms', type=float,
                        help='hold back every server reply this long, for '
                        'all workloads (default: wan-300 5, the others 0)')
    parser.add_argument('--tmpdir', help='where the spools are built '
                        '(default: the system temporary folder)')
    parser.add_argument('--server-tmpdir', help="where the server's files "
                        'are (default: /dev/shm when it has room, so that '
                        "the server's disk does not add noise; else "
                        'as --tmpdir)')
    parser.add_argument('--timeout', type=float, default=900,
                        help='seconds before a run is killed (default 900)')
    parser.add_argument('--json', metavar='FILE',
                        help='also write every measurement to FILE')
    parser.add_argument('--silent', action='store_true',
                        help='no progress lines on stderr')
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 5
    if args.repeat < 1:
        parser.error('--repeat must be at least 1')
    if args.server == 'vsftpd' and (why := Vsftpd.unavailable()):
        parser.error(why)
    return args


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    started = time.monotonic()
    lftp = shutil.which('lftp')
    curl = shutil.which('curl')
    workloads = []
    for name in args.workload or WORKLOADS:
        workload = WORKLOADS[name].sized(args.quick)
        if args.delay_ms is not None:
            workload = dataclasses.replace(workload, delay_ms=args.delay_ms)
        workloads.append(workload)
    if args.server_tmpdir is None:
        args.server_tmpdir = server_tmpdir(args.tmpdir, workloads)
    results = []
    try:
        with Bench(args, lftp, curl) as bench:
            for workload in workloads:
                tools = [t for t in workload.tools
                         if not args.tool or t in args.tool]
                results.extend(bench.workload(workload, tools).values())
    except KeyboardInterrupt:
        print('Interrupted; the processes and folders it made are gone.',
              file=sys.stderr)
        return 130
    elapsed = time.monotonic() - started

    print(f'zeit.cds benchmarks{" (--quick)" if args.quick else ""}: '
          f'median of {args.repeat} run(s); {versions(lftp, args.server)}')
    spools = args.tmpdir or tempfile.gettempdir()
    print(f'Spools in {spools} ({filesystem(spools)}), the server\'s files in '
          f'{args.server_tmpdir} ({filesystem(args.server_tmpdir)}).')
    for workload in workloads:
        print(f'  {workload.name:12} {workload.describe()}')
    print()
    text, notes = table(results)
    print(text)
    print()
    print(textwrap.fill(
        'wall s: the Python clients (zeit.cds\'s function and console '
        'script, the ftplib loops) time their transfer inside their '
        'process (imports and ZCML excluded); lftp and curl are timed '
        'as whole processes. ±%: half the range of the runs. MB = 10^6 bytes. '
        'RSS: the largest peak (VmHWM) of the runs. repl/file: server '
        'replies per file, the fixed ones (login, lock, listing) spread '
        'over the files. CPU s: the CPU time (user + system) of the '
        "client over the same span as wall s, and per file (CPU ms/f); "
        "srv CPU: the server's.", 79))
    setups = {}
    for result in results:
        setups.setdefault(result.label, []).extend(result.setup)
    if any(setups.values()):
        print(textwrap.fill(
            'Setup before the timed part (imports, ZCML), median: '
            + ', '.join(f'{label} {statistics.median(values):.3f} s'
                        for label, values in setups.items() if values)
            + '.', 79))
    for note in notes:
        print(f'- {note}')
    print()
    for heading, judged in targets(results):
        print(heading + (' (--quick: smaller workloads, only indicative)'
                         if args.quick else '') + ':')
        for target in judged:
            detail = f'  ({target.detail})' if target.detail else ''
            print(f'  {target.verdict:4}  {target.text}{detail}')
        print()
    print(f'Took {elapsed:.0f} s.')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'quick': args.quick, 'repeat': args.repeat,
                       'versions': versions(lftp, args.server), 'seconds': elapsed,
                       'results': [r.as_dict() for r in results]}, f,
                      indent=1)
    return 1 if any(r.failure for r in results) else 0


if __name__ == '__main__':
    sys.exit(main())
