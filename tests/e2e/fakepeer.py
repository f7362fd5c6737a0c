"""A minimal SMTP next hop for queue tests: every RCPT gets the same
reply (e.g. "451 4.7.1 greylisted" or "550 5.1.1 no such user"), so a
test decides how the queue's attempts end without a second ternd."""
import socket
import threading


class ReplyPeer(threading.Thread):
    def __init__(self, rcpt_reply):
        super().__init__(daemon=True)
        self.rcpt_reply = rcpt_reply.encode() if isinstance(rcpt_reply, str) else rcpt_reply
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.rcpts = 0
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
            except OSError:
                pass
            s.close()

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

    def close(self):
        self.stop = True
        self.srv.close()
