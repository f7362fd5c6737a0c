#!/usr/bin/python3
"""
check_spf.py: pyspf (Debian python3-spf), an independent SPF
implementation, evaluates every case of spf_cases.json with its DNS
answered from the case's zone, offline.  The same file drives tern's
evaluator in test_spf.c, so the two sides cannot drift.

A case's "result" is RFC 7208's answer (and tern's).  pyspf must give it,
unless the case records pyspf's different answer in "pyspf" together with
"why" (the RFC section that decides it); then pyspf must give exactly that,
so a change on either side shows.  Prints one line per disagreement and a
summary; exits 1 when a case does not go as recorded.

Usage: check_spf.py [DIR [NAME]]  (the t_pycheck.h convention; unused)
"""
import json
import os
import sys

import spf

HERE = os.path.dirname(os.path.abspath(__file__))


def zone_of(doc, case):
    zone = {k: dict(v) for k, v in doc["zones"][case["zone"]].items()}
    for name, types in case.get("add", {}).items():
        zone.setdefault(name.lower(), {}).update(types)
    return {k.lower(): v for k, v in zone.items()}


def make_lookup(zone):
    def lookup(name, qtype, strict=True, timeout=None):
        name = name.lower().rstrip(".")
        rrs = zone.get(name)
        if rrs is None:
            return []  # NXDOMAIN
        if qtype in rrs.get("TEMP", []):
            raise spf.TempError("DNS timeout for %s %s" % (name, qtype))
        out = []
        for v in rrs.get(qtype, []):
            if qtype == "TXT":
                v = [s.encode() for s in v]
            elif qtype == "MX":
                v = (v[0], v[1])
            out.append(((name, qtype), v))
        return out
    return lookup


def run(doc, case):
    spf.DNSLookup = make_lookup(zone_of(doc, case))
    sender = case["sender"]
    q = spf.query(i=case["ip"], s=sender, h=case.get("helo", "helo.example"),
                  receiver=case.get("receiver", "receiver.example"),
                  querytime=0)
    if case.get("identity") == "helo":
        q.d = case["helo"]
    res, _, exp = q.check()
    return res, exp


def main():
    with open(os.path.join(HERE, "spf_cases.json")) as f:
        doc = json.load(f)
    agree = disagree = bad = 0
    for case in doc["cases"]:
        res, exp = run(doc, case)
        want = case.get("pyspf", case["result"])
        ok = res == want
        if ok and case.get("exp") and exp != case["exp"]:
            ok = False
        if not ok:
            bad += 1
            print("UNEXPECTED %s: pyspf %s (%r), recorded %s" %
                  (case["name"], res, exp, want))
        elif "pyspf" in case:
            disagree += 1
            print("DISAGREE %s: RFC/tern %s, pyspf %s: %s" %
                  (case["name"], case["result"], res, case["why"]))
        else:
            agree += 1
    print("pyspf: cases=%d agree=%d disagree_explained=%d unexpected=%d" %
          (len(doc["cases"]), agree, disagree, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
