"""How long the console script takes when it has nothing to do, from its
start to its exit (issue 17), beside what bounds it from below.

Run from a checkout after ``python3 bootstrap.py``::

    bin/py benchmarks/startup.py [--rounds 20]

The rounds are interleaved: each runs every command once, so that the
machine's moods fall on all of them alike. The table shows the median
and the fastest wall time of each, and the median CPU time (user +
system) of the process.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(os.path.dirname(HERE), 'bin')
# Issue 17: cds-export with nothing waiting, from start to exit.
TARGET_SECONDS = 0.12
# What every run of the console script imports that is not zeit.cds's
# own: the settings' schema, the component registry and the ZCML loader
# (with the XML reader it makes), the spool, the FTP client, the option
# parser and logging.
LIBRARIES = ('argparse, logging, ftplib, xml.sax.expatreader, zope.schema,'
             ' zope.component, zope.configuration.xmlconfig,'
             ' gocept.filestore.filestore')


def commands(spool, remote):
    return {
        'cds-export, nothing waiting': [
            os.path.join(BIN, 'cds-export'), '--protocol', 'file',
            '--dir', remote, '--spool', spool, '-q'],
        'cds-export --help': [os.path.join(BIN, 'cds-export'), '--help'],
        'its libraries alone': [os.path.join(BIN, 'py'), '-c',
                                f'import {LIBRARIES}'],
        'the interpreter alone': [os.path.join(BIN, 'py'), '-c', 'pass'],
    }


def timed(command):
    """The wall and CPU seconds of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime
                  - before.ru_utime - before.ru_stime)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        spool, remote = os.path.join(tmp, 'spool'), os.path.join(tmp, 'cds')
        for folder in ('tmp', 'new', 'cur'):
            os.makedirs(os.path.join(spool, folder))
        os.mkdir(remote)
        runs = commands(spool, remote)
        times = {label: [] for label in runs}
        for _ in range(args.rounds):
            for label, command in runs.items():
                times[label].append(timed(command))
    print(f'{args.rounds} rounds, interleaved; seconds\n')
    print(f'{"":30}  {"median":>7}  {"fastest":>7}  {"CPU":>7}')
    for label, measured in times.items():
        wall = [w for w, _ in measured]
        cpu = [c for _, c in measured]
        print(f'{label:30}  {statistics.median(wall):7.3f}  '
              f'{min(wall):7.3f}  {statistics.median(cpu):7.3f}')
    nothing = statistics.median(
        w for w, _ in times['cds-export, nothing waiting'])
    verdict = 'PASS' if nothing <= TARGET_SECONDS else 'FAIL'
    print(f'\nTarget of issue 17:\n  {verdict}  cds-export with nothing '
          f'waiting <= {TARGET_SECONDS} s  ({nothing:.3f} s)')


if __name__ == '__main__':
    sys.exit(main())
