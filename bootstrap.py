"""Set up this buildout: a virtualenv in .venv with zc.buildout, then bin/.

Usage: python3 bootstrap.py [buildout arguments]

Safe to run again: an existing .venv is reused.
"""
import os
import subprocess
import sys
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, '.venv')
BUILDOUT_REQUIREMENTS = [
    'zc.buildout == 6.0.1',
    'zc.recipe.egg == 6.0.0',
    'zc.recipe.testrunner == 5.0',
]


def main(args):
    if sys.version_info < (3, 11):
        sys.exit('zeit.cds needs Python 3.11 or newer')
    python = os.path.join(VENV, 'bin', 'python')
    if not os.path.exists(python):
        venv.EnvBuilder(with_pip=True).create(VENV)
    subprocess.run(
        [python, '-m', 'pip', 'install', '--quiet',
         '--disable-pip-version-check'] + BUILDOUT_REQUIREMENTS,
        check=True)
    subprocess.run(
        [os.path.join(VENV, 'bin', 'buildout'), '-c',
         os.path.join(HERE, 'buildout.cfg')] + args,
        check=True, cwd=HERE)
    # Compiled here, once: a run that may not write bytecode (a service
    # account's, or with PYTHONDONTWRITEBYTECODE set) would compile every
    # module of zeit.cds again, which costs as much as the run itself
    # when nothing waits. (The eggs are compiled when installed.)
    subprocess.run(
        [python, '-m', 'compileall', '-q', os.path.join(HERE, 'src')],
        check=True)


if __name__ == '__main__':
    main(sys.argv[1:])
