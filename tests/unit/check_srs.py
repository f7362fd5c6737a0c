#!/usr/bin/python3
"""Cross-check tern's SRS addresses with postsrsd and Python's SRS module.

Usage: check_srs.py DIR NAME   (reads DIR/NAME.tsv, written by test_srs:
"fwd<TAB>sender<TAB>tern's SRS0 at srs.example" and
"fwd1<TAB>SRS0 address<TAB>tern's SRS1 of it at hop2.example", all made
with the secret "tern-test-secret" and the real clock)

Both independent implementations get the same secret:
- postsrsd 1.10 (Debian postsrsd, libsrs2's algorithm): two instances on
  free loopback ports, for the domains srs.example and hop2.example,
  queried over their TCP table protocol ("get ADDR" -> "200 RESULT").
- pysrs 1.0.4 (Debian python3-srs): SRS.Guarded.Guarded.

Both directions are checked:
1. theirs of ours: each forwards the same sender, which must give tern's
   address octet for octet (postsrsd makes SRS0 only), and each reverses
   tern's address back to the sender.
2. ours of theirs: each makes addresses (and spoiled ones: a changed
   hash, a lower-cased copy, "+" as separator) and `test_srs --reverse`
   (TERN_TEST_SRS_BIN) must give their verdict: the original, or
   bad_hash for a changed hash.

Prints the agreement counts per implementation; exits 0 when every case
agrees.  A missing package fails the check (scripts/deps.sh installs
them).
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

SECRET = "tern-test-secret"
POSTSRSD = "/usr/sbin/postsrsd"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Postsrsd:
    """One postsrsd for one SRS domain, on loopback ports of its own."""

    def __init__(self, secret_file, domain):
        self.fport, self.rport = free_port(), free_port()
        self.proc = subprocess.Popen(
            [POSTSRSD, "-s" + secret_file, "-d" + domain, "-l127.0.0.1",
             "-4", "-f%d" % self.fport, "-r%d" % self.rport, "-A"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.rport), 1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("postsrsd did not start")

    def ask(self, port, addr):
        with socket.create_connection(("127.0.0.1", port), 5) as s:
            s.sendall(("get %s\n" % addr).encode())
            r = s.recv(4096).decode().strip()
        code, _, rest = r.partition(" ")
        return rest if code == "200" else None

    def forward(self, addr):
        return self.ask(self.fport, addr)

    def reverse(self, addr):
        return self.ask(self.rport, addr)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def tern_reverse(addrs):
    out = subprocess.run([os.environ["TERN_TEST_SRS_BIN"], "--reverse"] +
                         addrs, check=True, capture_output=True,
                         text=True).stdout.splitlines()
    return [tuple(line.split("\t", 1)) for line in out]


class Tally:
    def __init__(self):
        self.n = {}

    def check(self, impl, what, got, want):
        a, d = self.n.get(impl, (0, 0))
        if got == want:
            self.n[impl] = (a + 1, d)
        else:
            self.n[impl] = (a, d + 1)
            print("DISAGREE %s %s: got %r want %r" % (impl, what, got, want))

    def report(self):
        bad = 0
        for impl, (a, d) in sorted(self.n.items()):
            print("check_srs: %s agree=%d disagree=%d" % (impl, a, d))
            bad += d
        return bad


def spoil_hash(a):
    """The same address with the first hash character changed."""
    i = 5
    c = "B" if a[i] != "B" else "C"
    return a[:i] + c + a[i + 1:]


def theirs_of_ours(cases, ps, ps2, srs, t):
    for kind, sender, ours in cases:
        if kind == "fwd":
            t.check("postsrsd", "forward " + sender, ps.forward(sender), ours)
            t.check("postsrsd", "reverse " + ours, ps.reverse(ours), sender)
            t.check("pysrs", "forward " + sender,
                    srs.forward(sender, "srs.example"), ours)
            t.check("pysrs", "reverse " + ours, srs.reverse(ours), sender)
        else:
            t.check("pysrs", "forward " + sender,
                    srs.forward(sender, "hop2.example"), ours)
            t.check("pysrs", "reverse " + ours, srs.reverse(ours), sender)
            t.check("postsrsd", "reverse " + ours, ps2.reverse(ours), sender)


def ours_of_theirs(cases, ps, srs, t):
    made = []  # (impl, address, want status, want result)
    for kind, sender, _ in cases:
        if kind != "fwd":
            continue
        for impl, a in (("postsrsd", ps.forward(sender)),
                        ("pysrs", srs.forward(sender, "srs.example"))):
            made.append((impl, a, "ok", sender))
            made.append((impl, a.lower(), "ok", sender.lower()))
            made.append((impl, "SRS0+" + a[5:], "ok", sender))
            made.append((impl, spoil_hash(a), "bad_hash", ""))
            hop = srs.forward(a, "srs.example")  # pysrs: SRS1 of theirs
            made.append(("pysrs", hop, "ok", a))
            made.append(("pysrs", spoil_hash(hop), "bad_hash", ""))
    got = tern_reverse([m[1] for m in made])
    for (impl, a, st, res), g in zip(made, got):
        t.check(impl, "tern reverse " + a, g, (st, res))


def main(d, name):
    missing = [p for p in (POSTSRSD,) if not os.path.exists(p)]
    try:
        from SRS.Guarded import Guarded
    except ImportError:
        missing.append("python3-srs")
    if missing:
        print("FAIL: missing %s (scripts/deps.sh installs postsrsd and "
              "python3-srs)" % ", ".join(missing))
        return 1
    cases = [tuple(line.rstrip("\n").split("\t"))
             for line in open(os.path.join(d, name + ".tsv"))]
    srs = Guarded(secret=SECRET, maxage=21, hashlength=4, separator="=",
                  alwaysrewrite=True)
    with tempfile.TemporaryDirectory() as tmp:
        sf = os.path.join(tmp, "secret")
        with open(sf, "w") as f:
            f.write(SECRET + "\n")
        ps = Postsrsd(sf, "srs.example")
        ps2 = Postsrsd(sf, "hop2.example")
        try:
            t = Tally()
            theirs_of_ours(cases, ps, ps2, srs, t)
            ours_of_theirs(cases, ps, srs, t)
        finally:
            ps.stop()
            ps2.stop()
    return 1 if t.report() else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
