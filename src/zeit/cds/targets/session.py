"""ftplib's FTP session with fewer round trips.

Over a long distance every reply the client waits for costs a round
trip. Where the protocol allows, commands are sent together and their
replies read afterwards (pipelining, RFC 959 section 4.2): a transfer's
PASV and STOR or RETR, and the SIZE or RNFR/RNTO commands of a batch.
"""
import ftplib
import socket


class Session(ftplib.FTP):

    def send_all(self, commands):
        """Send ``commands`` in one write, as one would type them."""
        for command in commands:
            # As ftplib.FTP.putline: a line break would start a command
            # the caller never meant.
            if '\r' in command or '\n' in command:
                raise ftplib.error_perm(
                    f'501 a line break in {command.split()[0]} refused')
        self.sock.sendall(''.join(
            f'{command}\r\n' for command in commands).encode(self.encoding))

    def pipeline(self, commands):
        """Send ``commands`` at once and read their replies in order.

        Returns each reply, or the ftplib error the server answered it
        with; a broken connection raises.
        """
        self.send_all(commands)
        replies = []
        for _ in commands:
            try:
                replies.append(self.getresp())
            except (ftplib.error_perm, ftplib.error_temp) as e:
                replies.append(e)
        return replies

    def ntransfercmd(self, cmd, rest=None):
        """ftplib's, with PASV (or EPSV) and ``cmd`` sent together."""
        if rest is not None or not self.passiveserver:
            return super().ntransfercmd(cmd, rest)
        passive = 'EPSV' if self.af == socket.AF_INET6 else 'PASV'
        self.send_all([passive, cmd])
        try:
            reply = self.getresp()
        except ftplib.Error:
            # ``cmd`` is refused too, for want of a data connection.
            self._skip_reply()
            raise
        if passive == 'EPSV':
            host, port = ftplib.parse229(reply, self.sock.getpeername())
        else:
            host, port = ftplib.parse227(reply)
        if not self.trust_server_pasv_ipv4_address:
            # As ftplib: the address a server names is not to be trusted.
            host = self.sock.getpeername()[0]
        conn = socket.create_connection(
            (host, port), self.timeout, source_address=self.source_address)
        try:
            reply = self.getresp()
            if reply[0] == '2':
                reply = self.getresp()
            if reply[0] != '1':
                raise ftplib.error_reply(reply)
        except BaseException:
            conn.close()
            raise
        size = ftplib.parse150(reply) if reply[:3] == '150' else None
        return conn, size

    def _skip_reply(self):
        try:
            self.getresp()
        except ftplib.Error:
            pass
