"""The factory of SFTP targets, registered as ``sftp`` in configure.zcml.

It imports ``zeit.cds.targets.sftp``, and with it asyncssh, only when it
makes a target: asyncssh would add 22 MiB of memory and 0.4 s to the start
of every run, FTP runs included (measured on the development machine).
"""
import zope.interface

from zeit.cds.interfaces import IRemoteTargetFactory
from zeit.cds.interfaces import ISFTPOptions


@zope.interface.provider(IRemoteTargetFactory)
def make_sftp_target(**settings):
    """A new, unconnected SFTPTarget (see zeit.cds.targets.sftp for the
    settings it takes)."""
    # Here, not at the top: see above.
    from zeit.cds.targets.sftp import SFTPTarget
    return SFTPTarget(**settings)


# See IRemoteTargetFactory.
make_sftp_target.options = ISFTPOptions
make_sftp_target.login = True
make_sftp_target.instead_of_password = ('key_file',)
