"""A scripted milter for test_milter.py, written with pymilter (Debian
python3-milter: libmilter's own protocol code, so tern talks to the
implementation rspamd and OpenDKIM were built against).

    milterpeer.py SOCKET BEHAVIOUR LOGFILE

SOCKET is libmilter's form (inet:PORT@127.0.0.1).  Every callback and
the macros it saw are appended to LOGFILE as one line each, so a test
can tell what the milter was sent.  BEHAVIOUR picks what it answers.
"""

import sys
import time

import Milter

SOCKET, BEHAVIOUR, LOGFILE = sys.argv[1], sys.argv[2], sys.argv[3]
MACROS = ("i", "j", "{daemon_name}", "{client_addr}", "{client_name}",
          "{auth_authen}", "{mail_addr}", "{rcpt_addr}", "{tls_version}", "_")


def note(line):
    with open(LOGFILE, "a") as f:
        f.write(line + "\n")


class Peer(Milter.Base):
    def __init__(self):
        self.data = b""
        self.mails = 0

    def macros(self):
        out = []
        for m in MACROS:
            v = self.getsymval(m)
            if v is not None:
                out.append(f"{m}={v}")
        return " ".join(out)

    def connect(self, hostname, family, hostaddr):
        note(f"connect host={hostname} addr={hostaddr[0]} {self.macros()}")
        if BEHAVIOUR == "reject_connect":
            return Milter.REJECT
        return Milter.CONTINUE

    def hello(self, name):
        note(f"helo {name} {self.macros()}")
        return Milter.CONTINUE

    def envfrom(self, f, *args):
        note(f"mail {f} {self.macros()}")
        self.mails += 1
        self.data = b""
        if BEHAVIOUR == "accept_first_mail" and self.mails == 1:
            return Milter.ACCEPT
        if BEHAVIOUR == "tempfail_mail":
            return Milter.TEMPFAIL
        if BEHAVIOUR == "hang_mail":
            time.sleep(30)
        return Milter.CONTINUE

    def envrcpt(self, to, *args):
        note(f"rcpt {to} {self.macros()}")
        if BEHAVIOUR == "reject_rcpt" and "claire" in to:
            self.setreply("550", "5.7.1", "Claire takes no mail from milters")
            return Milter.REJECT
        return Milter.CONTINUE

    def header(self, name, value):
        note(f"header {name}: {value}")
        return Milter.CONTINUE

    def eoh(self):
        note("eoh")
        return Milter.CONTINUE

    def body(self, chunk):
        self.data += chunk
        if BEHAVIOUR == "skip_body":
            return Milter.SKIP
        return Milter.CONTINUE

    def eom(self):
        note(f"eom body={len(self.data)} {self.macros()}")
        b = BEHAVIOUR
        if b == "discard":
            return Milter.DISCARD
        if b == "reject_eom":
            self.setreply("554", "5.7.1", "Looks like spam to me")
            return Milter.REJECT
        if b.startswith("addheader") or b in ("accept_first_mail",
                                               "noreply", "skip_body"):
            self.addheader("X-Milter", b.split(":", 1)[1] if ":" in b
                           else "added")
            self.addheader("X-Milter-Macros", self.macros())
        if b == "chgheader":
            self.chgheader("Subject", 1, "changed by the milter")
            self.chgheader("X-Drop", 1, "")
        if b == "replbody":
            self.replacebody(b"the milter's body\r\nline two\r\n")
        if b == "addrcpt":
            self.addrcpt("<claire@example.org>")
            self.addrcpt("<nobody@example.org>")
        if b == "delrcpt":
            self.delrcpt("<claire@example.org>")
        if b == "quarantine":
            self.quarantine("suspicious")
        if b == "chgfrom":
            self.chgfrom("<bounces@example.net>")
        if b == "hang_eom":
            time.sleep(30)
        return Milter.ACCEPT


class QuietPeer(Peer):
    """Asks not to be answered for headers, end of header and body
    (SMFIP_NR_HDR, NR_EOH, NR_BODY): tern must not wait for replies."""

    @Milter.noreply
    def header(self, name, value):
        return Peer.header(self, name, value)

    @Milter.noreply
    def eoh(self):
        return Peer.eoh(self)

    @Milter.noreply
    def body(self, chunk):
        return Peer.body(self, chunk)


def main():
    Milter.factory = QuietPeer if BEHAVIOUR == "noreply" else Peer
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.CHGBODY |
                     Milter.ADDRCPT | Milter.DELRCPT | Milter.QUARANTINE |
                     Milter.CHGFROM)
    note("ready")
    Milter.runmilter("peer", SOCKET, 60)


if __name__ == "__main__":
    main()
