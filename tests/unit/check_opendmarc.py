#!/usr/bin/python3
"""Cross-check tern's DMARC verdicts (test_dmarc --dump) with OpenDMARC.

Usage: check_opendmarc.py DIR NAME   (reads DIR/NAME.tsv; prints a table)
   or: check_opendmarc.py --tsv FILE

libopendmarc (Debian libopendmarc2) is driven offline through ctypes: the
Public Suffix List is the same Debian file, the record tern's lookup chose
is handed to opendmarc_policy_store_dmarc() with the domain it came from,
the SPF and DKIM results with opendmarc_policy_store_spf()/_dkim(), and
opendmarc_get_policy_to_enforce() gives the policy.  OpenDMARC does not
apply pct (its manual says so) and knows no local overrides, so tern's
policy before both is what is compared.

Policy discovery itself (no record, several records, DNS failures) is not
driven: opendmarc_policy_query_dmarc() asks the live resolver, and its test
hook opendmarc_dns_fake_record() holds one answer per name and cannot say
NXDOMAIN, SERVFAIL or "two records"; those rows are listed as not driven.

Exit status 0 when every disagreement is one of EXPECTED below (each is
explained by the RFC there), 1 otherwise.
"""
import ctypes
import sys

PSL = b"/usr/share/publicsuffix/public_suffix_list.dat"

# row name -> why tern and OpenDMARC 1.4.2 differ, by the RFC
STRICT_BUG = ("OpenDMARC 1.4.2 bug: with a PSL loaded, strict mode falls back "
              "to the organisational domain after the exact match fails "
              "(trusteddomainproject/OpenDMARC #268, fixed by #354); RFC 7489 "
              "3.1.1/3.1.2: strict alignment needs the same name")
STEP6 = ("OpenDMARC refuses the record (bad or missing p/sp) and applies "
         "nothing; RFC 7489 6.6.3 step 6: with a valid rua URI the receiver "
         "SHOULD act as if p=none was published (the disposition is none "
         "either way; tern still reports dmarc=fail and records it)")
BADVAL = ("OpenDMARC refuses the whole record for one bad value, so a domain "
          "publishing p=reject gets no policy; RFC 7489 6.3: syntax errors in "
          "the remainder of the record SHOULD be discarded in favour of "
          "default values (pct=100, adkim=r)")
EXPECTED = {
    "3.1.1 dkim strict, d= a subdomain": STRICT_BUG,
    "3.1.2 spf strict, bounce subdomain": STRICT_BUG,
    "3.2 *.ck: the public suffix itself":
        "OpenDMARC makes shop.ck the organisational domain of mail.shop.ck; "
        "the PSL rule *.ck makes shop.ck itself a public suffix, so RFC 7489 "
        "3.2 step 4 adds one label: mail.shop.ck, and d=shop.ck (a public "
        "suffix, which nobody can sign for as an organisation) is not aligned",
    "RFC 9091 np for a nonexistent subdomain":
        "np= is RFC 9091 (2021); OpenDMARC 1.4.2 ignores it and applies sp",
    "6.6.3 step 6 bad p with rua: p=none": STEP6,
    "6.6.3 step 6 p missing with rua: p=none": STEP6,
    "6.6.3 step 6 bad sp with rua: p=none": STEP6,
    "6.3 bad pct ignored: 100": BADVAL,
    "6.3 bad adkim ignored: relaxed": BADVAL,
}

NOT_DRIVEN_WHY = {"1": "no record at either name", "2": "several records",
                  "4": "DNS temporary failure", "5": "From not a domain"}

POLICY = {15: ("pass", None), 16: ("fail", "reject"),
          17: ("fail", "quarantine"), 18: ("fail", "none"),
          14: ("none", None)}


class LibInit(ctypes.Structure):
    # OPENDMARC_LIB_T of dmarc.h (libopendmarc-dev 1.4.2), MAXPATHLEN 4096
    _fields_ = [("tld_type", ctypes.c_int),
                ("tld_source_file", ctypes.c_ubyte * 4096),
                ("nscount", ctypes.c_int),
                ("nsaddr_list", ctypes.c_ubyte * (16 * 3))]


def load():
    lib = ctypes.CDLL("libopendmarc.so.2")
    vp, cp, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    lib.opendmarc_policy_connect_init.restype = vp
    lib.opendmarc_policy_connect_init.argtypes = [cp, i]
    lib.opendmarc_policy_store_from_domain.argtypes = [vp, cp]
    lib.opendmarc_policy_store_dmarc.argtypes = [vp, cp, cp, cp]
    lib.opendmarc_policy_store_spf.argtypes = [vp, cp, i, i, cp]
    lib.opendmarc_policy_store_dkim.argtypes = [vp, cp, cp, i, cp]
    lib.opendmarc_get_policy_to_enforce.argtypes = [vp]
    lib.opendmarc_policy_connect_shutdown.argtypes = [vp]
    init = LibInit()
    init.tld_type = 1  # OPENDMARC_TLD_TYPE_MOZILLA: the PSL format
    ctypes.memmove(init.tld_source_file, PSL, len(PSL))
    if lib.opendmarc_policy_library_init(ctypes.byref(init)) != 0:
        raise SystemExit("opendmarc_policy_library_init failed")
    return lib


def opendmarc_verdict(lib, row):
    (name, frm, spf, dkim, record, at_org, org) = row[:7]
    ctx = lib.opendmarc_policy_connect_init(b"192.0.2.1", 4)
    try:
        if lib.opendmarc_policy_store_from_domain(ctx, frm.encode()) != 0:
            return ("permerror", None)
        st = lib.opendmarc_policy_store_dmarc(
            ctx, record.encode(), frm.encode(),
            org.encode() if at_org == "1" else None)
        if st != 0:
            return ("permerror", None)  # a record it will not use
        if spf != "-":
            ok = not spf.startswith("-")
            lib.opendmarc_policy_store_spf(ctx, spf.lstrip("-").encode(),
                                           1 if ok else 2, 1, None)
        if dkim != "-":
            for d in dkim.split(","):
                ok = not d.startswith("-")
                lib.opendmarc_policy_store_dkim(
                    ctx, d.lstrip("-").encode(), b"sel", 1 if ok else 2, None)
        return POLICY.get(lib.opendmarc_get_policy_to_enforce(ctx),
                          ("?", None))
    finally:
        lib.opendmarc_policy_connect_shutdown(ctx)


def main(argv):
    path = argv[2] if argv[1] == "--tsv" else f"{argv[1]}/{argv[2]}.tsv"
    rows = [l.rstrip("\n").split("\t") for l in open(path, encoding="utf-8")
            if l.strip()]
    lib = load()
    agree, differ, not_driven, unexpected = 0, [], [], []
    for row in rows:
        name, result, policy, why = row[0], row[7], row[8], row[12]
        ours = (result, policy if result == "fail" else None)
        if row[4] == "-" and why != "3":
            not_driven.append((name, NOT_DRIVEN_WHY.get(why, why)))
            continue
        theirs = opendmarc_verdict(lib, row)
        if theirs == ours:
            agree += 1
            continue
        differ.append((name, ours, theirs))
        if name not in EXPECTED:
            unexpected.append(name)
    print(f"opendmarc: {len(rows)} cases, {agree} agree, "
          f"{len(differ)} disagree, {len(not_driven)} not driven")
    for name, ours, theirs in differ:
        print(f"  DISAGREE {name}: tern {ours} opendmarc {theirs}")
        print(f"    {EXPECTED.get(name, 'UNEXPLAINED')}")
    for name, why in not_driven:
        print(f"  not driven: {name} ({why})")
    gone = [n for n in EXPECTED if n not in [d[0] for d in differ]]
    for n in gone:
        print(f"  expected disagreement no longer seen: {n}")
    return 1 if unexpected or gone else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
