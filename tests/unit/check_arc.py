#!/usr/bin/python3
"""check_arc: the independent side of test_arc's cross cases.

    check_arc.py DIR NAME

DIR/NAME.json says what to do:
  {"op": "verify", "keys": {"sel._domainkey.dom": "v=DKIM1; ..."}}
      dkimpy (Debian python3-dkim) validates the ARC chain of
      DIR/NAME.eml; its chain validation status goes to DIR/NAME.verdict:
      "pass", "fail", "none", or "ended" (dkimpy's None: the newest seal
      says cv=fail), then a space and its reason.
  {"op": "seal", "key": PATH, "selector": S, "domain": D, "srv_id": ID,
   "t": SECONDS}
      dkimpy adds an ARC set to DIR/NAME.eml (rsa-sha256: dkimpy 1.1
      seals nothing else), from the Authentication-Results of srv_id in
      it; the sealed message goes to DIR/NAME.signed.

Exit 0 when the operation ran, 1 (with a message) when it could not.
"""
import json
import sys

import dkim


def verify(path, keys):
    msg = open(path + ".eml", "rb").read()

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        rec = keys.get(name.rstrip("."))
        return rec.encode() if rec is not None else None

    cv, _results, reason = dkim.arc_verify(msg, dnsfunc=dnsfunc)
    word = "ended" if cv is None else cv.decode()
    open(path + ".verdict", "w").write(word + " " + reason)


def seal(path, c):
    msg = open(path + ".eml", "rb").read()
    key = open(c["key"], "rb").read()
    sig = dkim.arc_sign(msg, c["selector"].encode(), c["domain"].encode(),
                        key, c["srv_id"].encode(), timestamp=c["t"])
    if not sig:
        sys.exit("dkimpy sealed nothing (no Authentication-Results of %s?)"
                 % c["srv_id"])
    open(path + ".signed", "wb").write(b"".join(sig) + msg)


def main():
    d, name = sys.argv[1], sys.argv[2]
    path = d + "/" + name
    c = json.load(open(path + ".json"))
    if c["op"] == "verify":
        verify(path, c["keys"])
    elif c["op"] == "seal":
        seal(path, c)
    else:
        sys.exit("unknown op")


if __name__ == "__main__":
    main()
