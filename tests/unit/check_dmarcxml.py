#!/usr/bin/python3
"""Judge a DMARC aggregate report test_dmarcrep built (DIR NAME).

NAME.xml: valid against dmarc_rua.xsd (xmllint), and its values equal
those listed in NAME.expect ("path=value" lines, path as for
ElementTree.findtext; "records=N" counts <record>; "sum=N" adds the
counts).  NAME.eml: a report mail: Subject per RFC 7489 7.2.1.1, one
application/gzip part whose file name is NAME.filename, which gunzips
to a document that validates and holds NAME.expect's values too.
"""
import email
import email.policy
import gzip
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
XSD = os.path.join(HERE, "dmarc_rua.xsd")


def fail(msg):
    print("check_dmarcxml: " + msg, file=sys.stderr)
    sys.exit(1)


def check_xml(data, expect_path, where):
    tmp = where + ".checked.xml"
    with open(tmp, "wb") as f:
        f.write(data)
    r = subprocess.run(["xmllint", "--noout", "--schema", XSD, tmp],
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail("%s does not validate: %s" % (where, r.stderr.strip()))
    root = ET.fromstring(data)
    with open(expect_path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            k, v = line.split("=", 1)
            if k == "records":
                got = str(len(root.findall("record")))
            elif k == "sum":
                got = str(sum(int(c.text) for c in root.iter("count")))
            else:
                got = root.findtext(k)
            if got != v:
                fail("%s: %s is %r, want %r" % (where, k, got, v))


def check_mail(path, expect, fname_path):
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    subj = " ".join(str(msg["Subject"]).split())
    if not subj.startswith("Report Domain: ") or " Submitter: " not in subj \
            or " Report-ID: <" not in subj:
        fail("subject %r is not the form of 7.2.1.1" % subj)
    with open(fname_path, encoding="utf-8") as f:
        want_name = f.read().strip()
    parts = [p for p in msg.walk() if p.get_content_type() == "application/gzip"]
    if len(parts) != 1:
        fail("%d application/gzip parts" % len(parts))
    if parts[0].get_filename() != want_name:
        fail("file name %r, want %r" % (parts[0].get_filename(), want_name))
    check_xml(gzip.decompress(parts[0].get_content()), expect, path)


def main():
    d, name = sys.argv[1], sys.argv[2]
    base = os.path.join(d, name)
    if os.path.exists(base + ".eml"):
        check_mail(base + ".eml", base + ".expect", base + ".filename")
    else:
        with open(base + ".xml", "rb") as f:
            check_xml(f.read(), base + ".expect", base + ".xml")


main()
