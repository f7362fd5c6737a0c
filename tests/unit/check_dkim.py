#!/usr/bin/python3
"""check_dkim: the independent side of test_dkim's cross cases.

    check_dkim.py DIR NAME

DIR/NAME.json says what to do:
  {"op": "verify", "keys": {"sel._domainkey.dom": "v=DKIM1; ..."}}
      dkimpy (Debian python3-dkim) verifies every DKIM-Signature of
      DIR/NAME.eml, one verdict per signature ("pass" or "fail") written
      to DIR/NAME.verdict, space separated, top signature first.
  {"op": "sign", "key": PATH, "alg": "rsa-sha256" | "ed25519-sha256",
   "canon": "relaxed/simple", "length": bool, "selector": S, "domain": D,
   "headers": [names] (optional)}
      dkimpy signs DIR/NAME.eml; the signed message goes to
      DIR/NAME.signed.
  {"op": "opendkim", "key": PATH, "selector": S, "domain": D}
      OpenDKIM's opendkim-testmsg signs DIR/NAME.eml (offline: it reads
      the key file); the result goes to DIR/NAME.signed.

Exit 0 when the operation ran, 1 (with a message) when it could not.
"""
import json
import re
import subprocess
import sys

import dkim


def verify(path, keys):
    msg = open(path + ".eml", "rb").read()
    n = len(re.findall(rb"(?im)^dkim-signature\s*:", msg))
    verdicts = []

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        rec = keys.get(name.rstrip("."))
        return rec.encode() if rec is not None else None

    for i in range(n):
        d = dkim.DKIM(msg, minkey=1024)
        try:
            ok = d.verify(idx=i, dnsfunc=dnsfunc)
        except dkim.DKIMException:
            ok = False
        verdicts.append("pass" if ok else "fail")
    open(path + ".verdict", "w").write(" ".join(verdicts))


def sign(path, c):
    msg = open(path + ".eml", "rb").read()
    key = open(c["key"], "rb").read()
    if c["alg"] == "ed25519-sha256":
        key = key.strip()
    h, b = c["canon"].split("/")
    kw = {}
    if c.get("headers"):
        kw["include_headers"] = [x.encode() for x in c["headers"]]
    sig = dkim.sign(msg, c["selector"].encode(), c["domain"].encode(), key,
                    canonicalize=(h.encode(), b.encode()),
                    signature_algorithm=c["alg"].encode(),
                    length=c.get("length", False), **kw)
    open(path + ".signed", "wb").write(sig + msg)


def opendkim(path, c):
    msg = open(path + ".eml", "rb").read()
    r = subprocess.run(["opendkim-testmsg", "-C", "-d", c["domain"], "-s",
                        c["selector"], "-k", c["key"]], input=msg,
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        sys.exit("opendkim-testmsg: %r" % r.stderr)
    open(path + ".signed", "wb").write(r.stdout)


def main():
    d, name = sys.argv[1], sys.argv[2]
    path = d + "/" + name
    c = json.load(open(path + ".json"))
    if c["op"] == "verify":
        verify(path, c["keys"])
    elif c["op"] == "sign":
        sign(path, c)
    elif c["op"] == "opendkim":
        opendkim(path, c)
    else:
        sys.exit("unknown op")


if __name__ == "__main__":
    main()
