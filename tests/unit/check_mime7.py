#!/usr/bin/python3
"""check_mime7.py DIR NAME: check a 7-bit conversion that
tests/unit/test_mime7.c wrote.

DIR/NAME.orig is the 8-bit message, DIR/NAME.out what mime_plan_7bit()
made of it.  Independently of the C code, with Python's email package
(policies compat32 and default): the output is 7-bit (no octet >= 0x80,
no NUL) with lines of at most 998 octets; both parse to the same tree of
content types; every leaf decodes (get_payload(decode=True)) to the same
octets; every header field but Content-Transfer-Encoding (and the
MIME-Version / Content-Type a non-MIME message gains) is the same, in the
same order.  Prints what failed and exits 1, or exits 0 silently.
"""
import email
import email.policy
import os
import sys

FAILS = []
ADDED = {"content-transfer-encoding", "mime-version", "content-type"}


def check(cond, what):
    if not cond:
        FAILS.append(what)
    return cond


def seven_bit(raw):
    bad = [i for i, b in enumerate(raw) if b >= 0x80 or b == 0]
    check(not bad, "octet >= 0x80 or NUL at offset %s" % bad[:3])
    for n, line in enumerate(raw.split(b"\n")):
        line = line[:-1] if line.endswith(b"\r") else line
        check(len(line) <= 998, "line %d has %d octets" % (n + 1, len(line)))


def leaves(msg):
    """(path, content type, part) for every part, containers included."""
    out = []

    def walk(part, path):
        out.append((path, part.get_content_type(), part))
        if part.is_multipart():
            for i, sub in enumerate(part.get_payload()):
                walk(sub, path + "/%d" % i)

    walk(msg, "")
    return out


def fields(part, added_ok):
    return [(k.lower(), str(v)) for k, v in part.items()
            if k.lower() not in (ADDED if added_ok else
                                 {"content-transfer-encoding"})]


def compare(orig_raw, out_raw, policy, label):
    a = email.message_from_bytes(orig_raw, policy=policy)
    b = email.message_from_bytes(out_raw, policy=policy)
    la, lb = leaves(a), leaves(b)
    if not check(len(la) == len(lb), "%s: %d parts, converted %d" %
                 (label, len(la), len(lb))):
        return
    for (pa, ta, xa), (pb, tb, xb) in zip(la, lb):
        where = "%s part %r" % (label, pa or "/")
        # a part that was not MIME may gain MIME-Version and Content-Type
        added_ok = xa.get("mime-version") is None and \
            xa.get("content-type") is None
        check(ta == tb or (added_ok and ta == "text/plain"),
              "%s: type %s, converted %s" % (where, ta, tb))
        check(fields(xa, added_ok) == fields(xb, added_ok),
              "%s: header fields differ" % where)
        if xa.is_multipart():
            check(xb.is_multipart(), "%s: no longer multipart" % where)
            continue
        da, db = xa.get_payload(decode=True), xb.get_payload(decode=True)
        check(da == db, "%s: decoded payload differs: %r... vs %r..." %
              (where, (da or b"")[:40], (db or b"")[:40]))


def main():
    d, name = sys.argv[1], sys.argv[2]
    with open(os.path.join(d, name + ".orig"), "rb") as f:
        orig = f.read()
    with open(os.path.join(d, name + ".out"), "rb") as f:
        out = f.read()
    seven_bit(out)
    compare(orig, out, email.policy.compat32, "compat32")
    compare(orig, out, email.policy.default, "default")
    for what in FAILS:
        print("check_mime7 %s: %s" % (name, what))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
