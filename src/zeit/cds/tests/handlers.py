"""pyftpdlib handlers that misbehave on purpose, as real servers do.

The troubles hit files whose name contains "b.xml".
"""
import pyftpdlib.handlers


class NoMLSDHandler(pyftpdlib.handlers.FTPHandler):
    """An older server: MLSD is an unknown command."""

    proto_cmds = {name: info for name, info
                  in pyftpdlib.handlers.FTPHandler.proto_cmds.items()
                  if name != 'MLSD'}


class ShortSizeHandler(pyftpdlib.handlers.FTPHandler):
    """Reports one byte less than a file has, as after a cut transfer."""

    def ftp_SIZE(self, path):
        self.respond(f'213 {max(self.fs.getsize(path) - 1, 0)}')


class CutDataHandler(pyftpdlib.handlers.FTPHandler):
    """Cuts the data connection of uploads of b.xml after 64 KiB, and
    reports the transfer complete, as a confused server would."""

    class dtp_handler(pyftpdlib.handlers.DTPHandler):

        def handle_read(self):
            super().handle_read()
            if (self.tot_bytes_received > 65536 and not self._closed
                    and 'b.xml' in self.file_obj.name):
                self.handle_close()

        handle_read_event = handle_read


class DropControlOnceHandler(pyftpdlib.handlers.FTPHandler):
    """Hangs up the control connection at the first upload of b.xml."""

    dropped = False

    def ftp_STOR(self, file, mode='w'):
        if 'b.xml' in file and not type(self).dropped:
            type(self).dropped = True
            self.close()
            return None
        return super().ftp_STOR(file, mode)


class GoneHandler(pyftpdlib.handlers.FTPHandler):
    """The server goes away at the upload of b.xml and stays away."""

    gone = False

    def handle(self):
        if type(self).gone:
            self.respond('421 Service not available.')
            self.close_when_done()
            return
        super().handle()

    def ftp_STOR(self, file, mode='w'):
        if 'b.xml' in file:
            type(self).gone = True
            self.close()
            return None
        return super().ftp_STOR(file, mode)


class DiskFullHandler(pyftpdlib.handlers.FTPHandler):
    """The disk is full for b.xml."""

    def ftp_STOR(self, file, mode='w'):
        if 'b.xml' in file:
            self.respond('552 Disk full.')
            return None
        return super().ftp_STOR(file, mode)


class PausingHandler(pyftpdlib.handlers.FTPHandler):
    """Holds the whole server at the first upload of b.xml: it sets the
    Event ``paused`` and waits until the test sets the Event ``go`` (both
    given to the handler class by the test)."""

    paused = None
    go = None

    def ftp_STOR(self, file, mode='w'):
        if 'b.xml' in file and not type(self).paused.is_set():
            type(self).paused.set()
            type(self).go.wait(timeout=30)
        return super().ftp_STOR(file, mode)


class DropOnBHandler(pyftpdlib.handlers.FTPHandler):
    """Hangs up the control connection at every upload of b.xml."""

    def ftp_STOR(self, file, mode='w'):
        if 'b.xml' in file:
            self.close()
            return None
        return super().ftp_STOR(file, mode)
