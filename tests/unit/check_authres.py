#!/usr/bin/python3
"""Read an Authentication-Results header tern built, with Python's email
package and the authres module (Debian python3-authres), and compare with
what was meant.

Usage: check_authres.py DIR NAME
  DIR/NAME.hdr   the header field, CRLF line ends, folded
  DIR/NAME.want  lines: "id\\tID", "res\\tMETHOD\\tRESULT\\tREASON",
                 "prop\\tPTYPE\\tPROPERTY\\tVALUE" (in order)
Exit 0 when both readers agree with the want file.

check_authres.py DIR gen: the other direction.  Writes DIR/genN.hdr,
headers that authres itself makes (versions, comments, quoted reasons),
and DIR/genN.want in the same format, for tern's parser to read.

Two gaps of authres 1.2.0 are bridged, both within RFC 8601 2.2: it keeps
the quoted-pairs of a quoted-string value as written ("a \\"b\\"" comes
back with its backslashes), so they are decoded here; and it takes only a
token as the authserv-id, though the grammar allows a quoted-string, so a
quoted id is read here and a token put in its place for authres.  A
third: it reads ASCII only, even inside a quoted-string (RFC 6532 allows
UTF-8 there), so non-ASCII characters become "?" on both sides before it
reads (the email package still reads the real text).
"""
import email
import email.policy
import re
import sys

import authres


def fail(msg):
    print(f"check_authres: {msg}", file=sys.stderr)
    sys.exit(1)


def ascii_only(v):
    return "".join(c if ord(c) < 128 else "?" for c in v)


def unquote(v):
    return re.sub(r"\\(.)", r"\1", v)


def main(d, name):
    raw = open(f"{d}/{name}.hdr", "rb").read().decode("utf-8")
    want = [l.split("\t") for l in
            open(f"{d}/{name}.want", encoding="utf-8").read().splitlines()]
    if not raw.endswith("\r\n") or "\n" in raw.replace("\r\n", ""):
        fail("line ends are not all CRLF")
    # the email package: one field, named right, no defects
    msg = email.message_from_string(raw + "\r\nbody\r\n",
                                    policy=email.policy.default)
    if msg.defects or list(msg.keys()) != ["Authentication-Results"]:
        fail(f"email package: {msg.defects} {list(msg.keys())}")
    value = str(msg.get("Authentication-Results"))
    authserv_id = None
    m = re.match(r'\s*"((?:[^"\\]|\\.)*)"', value)
    if m:
        authserv_id = unquote(m.group(1))
        value = "quoted-id" + value[m.end():]
    value = ascii_only(value)
    want = [[ascii_only(f) for f in w] for w in want]
    hdr = authres.AuthenticationResultsHeader.parse(
        "Authentication-Results: " + value)
    got = [["id", authserv_id or hdr.authserv_id]]
    for r in hdr.results:
        got.append(["res", r.method, r.result, unquote(r.reason or "")])
        for p in r.properties:
            got.append(["prop", p.type, p.name, unquote(p.value)])
    if got != want:
        fail(f"{name}: got {got}, want {want}")


def generate(d):
    import authres.dmarc
    headers = [
        authres.AuthenticationResultsHeader(
            authserv_id="mx.example.org", version=1, results=[
                authres.DKIMAuthenticationResult(
                    result="pass", header_d="example.com",
                    header_i="@example.com", header_a="rsa-sha256"),
                authres.SPFAuthenticationResult(
                    result="fail", smtp_mailfrom="a@example.net",
                    reason="not permitted"),
                authres.dmarc.DMARCAuthenticationResult(
                    result="fail", result_comment="p=reject",
                    header_from="example.net", policy="reject")]),
        authres.AuthenticationResultsHeader(authserv_id="mx.example.org"),
        authres.AuthenticationResultsHeader(
            authserv_id="relay.example", results=[
                authres.DKIMAuthenticationResult(
                    result="neutral", result_comment="no key",
                    header_d="example.com", header_d_comment="the signer",
                    reason="key not found", reason_comment="dns")]),
    ]
    for n, h in enumerate(headers):
        text = str(h)
        want = [["id", h.authserv_id]]
        for r in h.results:
            want.append(["res", r.method, r.result, r.reason or ""])
            for p in r.properties:
                want.append(["prop", p.type, p.name, p.value])
        with open(f"{d}/gen{n}.hdr", "w", encoding="utf-8") as f:
            f.write(text + "\r\n")
        with open(f"{d}/gen{n}.want", "w", encoding="utf-8") as f:
            f.write("".join("\t".join(w) + "\n" for w in want))


if __name__ == "__main__":
    if sys.argv[2] == "gen":
        generate(sys.argv[1])
    else:
        main(sys.argv[1], sys.argv[2])
