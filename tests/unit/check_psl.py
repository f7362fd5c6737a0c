#!/usr/bin/python3
"""Cross-check tern's organisational domains with libpsl (Debian libpsl5).

Usage: check_psl.py DIR NAME   (reads DIR/NAME.tsv: name, tern's
organisational domain or "-" when the name is not a domain name, and 1
when tern finds the name to be a public suffix itself)

libpsl 0.21 is loaded through ctypes with the same Debian list file;
psl_registrable_domain() is its organisational domain (NULL for a public
suffix).  One difference is expected and explained: libpsl counts the base
of a wildcard rule as a public suffix too ("kobe.jp" for "*.kobe.jp"),
while the publicsuffix.org algorithm matches "*.kobe.jp" only against
names with one more label, so "kobe.jp" falls under the rule "jp" and is a
registrable domain.  Those names are counted apart.  Exit 0 when every
other name agrees.
"""
import ctypes
import sys

PSL = "/usr/share/publicsuffix/public_suffix_list.dat"


def wildcard_bases():
    rules, bases = set(), set()
    for line in open(PSL, encoding="utf-8"):
        r = line.split()[0] if line.split() else ""
        if not r or r.startswith("//"):
            continue
        if r.startswith("*."):
            bases.add(r[2:])
        elif not r.startswith("!"):
            rules.add(r)
    return bases - rules


def main(d, name):
    lib = ctypes.CDLL("libpsl.so.5")
    lib.psl_load_file.restype = ctypes.c_void_p
    lib.psl_load_file.argtypes = [ctypes.c_char_p]
    lib.psl_registrable_domain.restype = ctypes.c_char_p
    lib.psl_registrable_domain.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    ctx = lib.psl_load_file(PSL.encode())
    if not ctx:
        sys.exit("check_psl: libpsl cannot load " + PSL)
    bases = wildcard_bases()
    agree, base_diff, bad = 0, 0, []
    for line in open(f"{d}/{name}.tsv", encoding="utf-8"):
        n, org, ps = line.rstrip("\n").split("\t")
        theirs = lib.psl_registrable_domain(ctx, n.encode())
        theirs = theirs.decode() if theirs else None
        ours = None if org == "-" or ps == "1" else org
        if ours == theirs:
            agree += 1
        elif theirs is None and n in bases:
            base_diff += 1
        else:
            bad.append((n, ours, theirs))
    print(f"libpsl: {agree} names agree, {base_diff} wildcard bases differ "
          f"as explained, {len(bad)} disagree")
    for n, ours, theirs in bad[:20]:
        print(f"  DISAGREE {n}: tern {ours} libpsl {theirs}")
    return 1 if bad or agree < 1000 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
