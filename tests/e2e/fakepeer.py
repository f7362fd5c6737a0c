"""A minimal SMTP next hop for queue tests: every RCPT gets the same
reply (e.g. "451 4.7.1 greylisted" or "550 5.1.1 no such user"), so a
test decides how the queue's attempts end without a second ternd."""
import socket
import threading


class FakePeer(threading.Thread):
    """A scripted SMTP server on 127.0.0.1 for the cases no real peer can
    play: one session at a time, each handed to session(sock) of the
    subclass; errors that end a session are kept in self.errors."""

    ERRORS = (OSError,)

    def __init__(self, backlog=16, addr="127.0.0.1", port=0):
        super().__init__(daemon=True)
        self.srv = socket.socket()
        if port:
            self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind((addr, port))
        self.srv.listen(backlog)
        self.port = self.srv.getsockname()[1]
        self.errors = []
        self.stop = False

    def run(self):
        self.srv.settimeout(0.2)
        while not self.stop:
            try:
                s, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                s.settimeout(10)
                self.session(s)
            except self.ERRORS as e:
                self.errors.append(repr(e))
            finally:
                s.close()

    def session(self, s):
        raise NotImplementedError

    def close(self):
        self.stop = True
        self.srv.close()
        self.join(5)


class ReplyPeer(FakePeer):
    def __init__(self, rcpt_reply):
        super().__init__()
        self.rcpt_reply = rcpt_reply.encode() if isinstance(rcpt_reply, str) else rcpt_reply
        self.rcpts = 0

    def session(self, s):
        f = s.makefile("rb")
        s.sendall(b"220 peer.test ESMTP\r\n")
        for line in f:
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                s.sendall(b"250-peer.test\r\n250 ENHANCEDSTATUSCODES\r\n")
            elif verb in (b"MAIL", b"RSET", b"NOOP"):
                s.sendall(b"250 2.0.0 ok\r\n")
            elif verb == b"RCPT":
                self.rcpts += 1
                s.sendall(self.rcpt_reply + b"\r\n")
            elif verb == b"QUIT":
                s.sendall(b"221 2.0.0 bye\r\n")
                return
            else:
                s.sendall(b"503 5.5.1 no valid recipients\r\n")
