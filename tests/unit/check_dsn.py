#!/usr/bin/python3
"""check_dsn.py DIR NAME: check the DSN that tests/unit/test_bounce.c wrote.

DIR/NAME.eml is the DSN, DIR/NAME.orig the original message it reports
on, DIR/NAME.json what the C test expects.  The DSN is parsed with
Python's email package (policy.default) and checked independently of the
C code: a multipart/report with the right report-type and exactly three
parts of the expected types; the delivery-status fields per message and
per recipient; the original returned byte for byte (or its header section
only, for headers-only returns); injected header names absent everywhere;
every line CRLF-terminated and at most 998 octets.  Prints what failed and
exits 1, or exits 0 silently.
"""
import email
import email.message
import email.parser
import email.policy
import json
import os
import sys

FAILS = []

# RFC 3464 2.2 and 2.3: the only fields a block may hold (no extensions
# are written), and the only headers of the DSN and of its parts
PER_MESSAGE = {"original-envelope-id", "reporting-mta", "dsn-gateway",
               "received-from-mta", "arrival-date"}
PER_RCPT = {"original-recipient", "final-recipient", "action", "status",
            "remote-mta", "diagnostic-code", "last-attempt-date",
            "final-log-id", "will-retry-until"}
TOP = {"from", "to", "subject", "date", "message-id", "auto-submitted",
       "mime-version", "content-type", "content-transfer-encoding"}
PART = {"content-description", "content-type", "content-transfer-encoding"}


def check(cond, what):
    if not cond:
        FAILS.append(what)
    return cond


def unescape(s):
    """Text the bytes parser kept as surrogate escapes, back to UTF-8."""
    return s.encode("utf-8", "surrogateescape").decode("utf-8")


def norm(v):
    return " ".join(str(v).split())


def header_section(orig):
    """The original's header section, as the DSN must return it."""
    if orig.startswith(b"\r\n"):
        return b""
    i = orig.find(b"\r\n\r\n")
    if i < 0:
        return orig if orig.endswith(b"\r\n") or not orig else orig + b"\r\n"
    return orig[:i + 2]


def raw_parts(data, boundary):
    """Split the raw DSN at its delimiters: (preamble, [part bodies])."""
    segs = data.split(b"\r\n--" + boundary.encode())
    check(segs[-1] == b"--\r\n", "closing delimiter ends the message")
    parts = []
    for seg in segs[1:-1]:
        check(seg.startswith(b"\r\n"), "delimiter line ends in CRLF")
        head, sep, body = seg[2:].partition(b"\r\n\r\n")
        check(sep, "part has a header and a body")
        parts.append((head, body))
    return segs[0], parts


def blocks(body):
    """Blocks of a (global-)delivery-status body, as header mappings."""
    hp = email.parser.HeaderParser(policy=email.policy.default)
    out = []
    for b in body.split(b"\r\n\r\n"):
        if b.strip():
            out.append(hp.parsestr(b.decode("utf-8") + "\r\n\r\n"))
    return out


def check_lines(data, ascii_only):
    check(data.endswith(b"\r\n"), "DSN ends in CRLF")
    for n, line in enumerate(data.split(b"\r\n")[:-1]):
        check(b"\n" not in line and b"\r" not in line,
              f"line {n + 1}: bare CR or LF")
        check(len(line) <= 998, f"line {n + 1}: {len(line)} octets")
        if ascii_only:
            check(max(line, default=0) < 0x80, f"line {n + 1}: 8-bit octet")


def all_names(msg):
    names = [k.lower() for k in msg.keys()]
    if msg.is_multipart():
        for p in msg.get_payload():
            names += all_names(p)
    return names


def check_only(msg, allowed, where):
    for k in msg.keys():
        check(k.lower() in allowed, f"{where}: unexpected field {k}")


def check_fields(got, want, where):
    for k, v in want.items():
        if v is None:
            check(got.get(k) is None, f"{where}: {k} must be absent")
        else:
            check(got.get(k) is not None and norm(got[k]) == norm(v),
                  f"{where}: {k} = {got.get(k)!r}, want {v!r}")


def check_top(msg, exp):
    check(msg.get_content_type() == "multipart/report", "multipart/report")
    check(msg.get_param("report-type") == exp["report_type"],
          f"report-type {msg.get_param('report-type')}")
    check(norm(msg["Subject"]) == exp["subject"], f"Subject {msg['Subject']}")
    to = msg["To"].addresses
    check(len(to) == 1 and unescape(to[0].addr_spec) == exp["to"], f"To {msg['To']}")
    check(msg["From"].addresses[0].username == "MAILER-DAEMON", "From")
    check(msg["From"].addresses[0].domain == exp["host"], "From domain")
    check(str(msg["Auto-Submitted"]) == "auto-replied", "Auto-Submitted")
    check(str(msg["MIME-Version"]) == "1.0", "MIME-Version")
    check(msg["Date"] is not None and msg["Date"].datetime is not None,
          "Date parses")
    check(str(msg["Message-ID"]) == exp["message_id"], "Message-ID")
    check(not msg.defects, f"defects {msg.defects}")
    check_only(msg, TOP, "DSN header")
    parts = msg.get_payload()
    check(isinstance(parts, list) and len(parts) == 3,
          "exactly three parts")
    for i, p in enumerate(parts if isinstance(parts, list) else []):
        check_only(p, PART, f"part {i + 1} header")
        check(not p.defects, f"part {i + 1} defects {p.defects}")
    return parts


def check_status(parts, raw, exp):
    ds_type = "message/" + exp["report_type"]
    check(parts[1].get_content_type() == ds_type,
          f"part 2 is {parts[1].get_content_type()}")
    bl = blocks(raw[1][1])
    check(len(bl) == 1 + len(exp["rcpts"]),
          f"{len(bl)} status blocks, want {1 + len(exp['rcpts'])}")
    if exp["report_type"] == "delivery-status":
        # Python's own view of message/delivery-status: one sub-message
        # per block
        pl = parts[1].get_payload()
        check(len(pl) == len(bl), "email package sees the same blocks")
    if len(bl) != 1 + len(exp["rcpts"]):
        return
    check_only(bl[0], PER_MESSAGE, "per-message")
    check_fields(bl[0], exp["per_message"], "per-message")
    for i, want in enumerate(exp["rcpts"]):
        check_only(bl[1 + i], PER_RCPT, f"recipient {i + 1}")
        check_fields(bl[1 + i], want, f"recipient {i + 1}")


def check_return(parts, raw, orig, exp):
    check(parts[2].get_content_type() == exp["part3_type"],
          f"part 3 is {parts[2].get_content_type()}")
    got = raw[2][1]
    if exp["hdrs_only"]:
        want = header_section(orig)
        if exp.get("part3_max") is not None:
            check(len(got) <= exp["part3_max"] and want.startswith(got),
                  "cut headers are a prefix that fits")
            want = got
        check(got == want, "part 3 is the original's header section")
        body = orig[len(header_section(orig)):]
        if body.strip():
            check(body.strip() not in got, "no body in a headers-only DSN")
    else:
        want = orig if orig.endswith(b"\r\n") or not orig else orig + b"\r\n"
        check(got == want, "part 3 is the original, byte for byte")
        sub = parts[2].get_payload()[0]
        check(isinstance(sub, email.message.Message), "part 3 parses")


def check_text(parts, raw, exp):
    check(parts[0].get_content_type() == "text/plain", "part 1 text/plain")
    text = norm(raw[0][1].decode("utf-8"))
    for s in exp.get("text_contains", []):
        check(norm(s) in text, f"text part mentions {s!r}")


def main():
    d, name = sys.argv[1], sys.argv[2]
    with open(os.path.join(d, name + ".json"), encoding="utf-8") as f:
        exp = json.load(f)
    with open(os.path.join(d, name + ".eml"), "rb") as f:
        data = f.read()
    with open(os.path.join(d, name + ".orig"), "rb") as f:
        orig = f.read()
    msg = email.message_from_bytes(data, policy=email.policy.default)
    check_lines(data, exp["ascii_only"])
    parts = check_top(msg, exp)
    boundary = msg.get_boundary()
    check(boundary is not None and boundary.encode() not in orig,
          "boundary absent from the original")
    _, raw = raw_parts(data, boundary)
    if check(len(parts) == 3 and len(raw) == 3, "three raw parts"):
        check_text(parts, raw, exp)
        check_status(parts, raw, exp)
        check_return(parts, raw, orig, exp)
    names = all_names(msg)
    for bad in exp.get("absent_headers", []):
        check(bad.lower() not in names, f"header {bad} was injected")
        for line in data.split(b"\r\n"):
            check(not line.lower().startswith(bad.lower().encode()),
                  f"a line starts with {bad}")
    for f in FAILS:
        print(f"check_dsn {name}: {f}")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
