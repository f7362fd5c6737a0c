"""
An independent parser of the Received trace field, written from the
grammars (RFC 5322 3.6.7 and 3.3, RFC 5321 4.4), not from the code that
writes it: the tests judge tern's field by what the RFCs allow, so a
change in tern's format that stays valid passes, and an invalid one fails.

    Stamp         = From-domain By-domain Opt-info [CFWS] ";" FWS date-time
    From-domain   = "FROM" FWS Extended-Domain
    By-domain     = CFWS "BY" FWS Extended-Domain
    Extended-Domain = Domain / ( Domain FWS "(" TCP-info ")" )
                    / ( address-literal FWS "(" TCP-info ")" )
    TCP-info      = address-literal / ( Domain FWS address-literal )
    Opt-info      = [Via] [With] [ID] [For] [Additional-Registered-Clauses]
    Via = CFWS "VIA" FWS Link        With = CFWS "WITH" FWS Protocol
    ID  = CFWS "ID" FWS ( Atom / msg-id )
    For = CFWS "FOR" FWS ( Path / Mailbox )

Comments (CFWS) may stand between any two tokens; the one right after the
from clause's value is its TCP-info when it has that shape.  parse()
raises ReceivedError with the reason when the field breaks the grammar.
"""

import datetime
import ipaddress
import re

ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
ATOM_RE = re.compile(rf"[{ATEXT}]+")
DOT_ATOM_RE = re.compile(rf"[{ATEXT}]+(?:\.[{ATEXT}]+)*")
# RFC 5321 4.1.2 sub-domain = Let-dig [Ldh-str]; a U-label (RFC 6531:
# UTF8SMTP Received fields may carry them) is any run of non-ASCII letters,
# digits and hyphens that neither starts nor ends with a hyphen
SUB_DOMAIN_RE = re.compile(r"(?:[A-Za-z0-9\u0080-\U0010ffff]"
                           r"(?:[A-Za-z0-9\u0080-\U0010ffff-]*"
                           r"[A-Za-z0-9\u0080-\U0010ffff])?)")
DOMAIN_RE = re.compile(rf"{SUB_DOMAIN_RE.pattern}(?:\.{SUB_DOMAIN_RE.pattern})*")
# RFC 5322 3.6.4 msg-id = "<" id-left "@" id-right ">"
MSG_ID_RE = re.compile(rf"<{DOT_ATOM_RE.pattern}@"
                       rf"(?:{DOT_ATOM_RE.pattern}|\[[\x21-\x5a\x5e-\x7e]*\])>")
CLAUSES = ("from", "by", "via", "with", "id", "for")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
          "Oct", "Nov", "Dec")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DATE_RE = re.compile(
    r"(?:(?P<dow>[A-Za-z]{3})\s*,\s*)?(?P<day>\d{1,2})\s+(?P<mon>[A-Za-z]{3})\s+"
    r"(?P<year>\d{4,})\s+(?P<h>\d\d):(?P<m>\d\d)(?::(?P<s>\d\d))?\s+"
    r"(?P<zs>[+-])(?P<zh>\d\d)(?P<zm>\d\d)")


class ReceivedError(AssertionError):
    pass


def is_domain(s):
    """RFC 5321 Domain: dot-separated sub-domains, each at most 63 octets."""
    return (DOMAIN_RE.fullmatch(s) is not None and len(s.encode()) <= 255 and
            all(len(lb.encode()) <= 63 for lb in s.split(".")))


def is_address_literal(s):
    """RFC 5321 4.1.3: [IPv4], [IPv6:...] or [tag:dcontent]."""
    if not (s.startswith("[") and s.endswith("]")):
        return False
    inner = s[1:-1]
    if inner.lower().startswith("ipv6:"):
        try:
            ipaddress.IPv6Address(inner[5:])
            return True
        except ValueError:
            return False
    if ":" in inner:        # General-address-literal = Standardized-tag ":" 1*dcontent
        tag, _, content = inner.partition(":")
        return (re.fullmatch(r"[A-Za-z0-9-]*[A-Za-z0-9]", tag) is not None and
                re.fullmatch(r"[\x21-\x5a\x5e-\x7e]+", content) is not None)
    try:
        ipaddress.IPv4Address(inner)
        return True
    except ValueError:
        return False


def is_mailbox(s):
    """RFC 5321 Mailbox = Local-part "@" ( Domain / address-literal )."""
    local, at, dom = s.rpartition("@")
    if not at or not local:
        return False
    local_ok = (re.fullmatch(r'"(?:[^"\\\r\n]|\\[\x20-\x7e])*"', local) or
                re.fullmatch(rf"[{ATEXT}\u0080-\U0010ffff]+"
                             rf"(?:\.[{ATEXT}\u0080-\U0010ffff]+)*", local))
    return bool(local_ok) and (is_domain(dom) or is_address_literal(dom))


def _tokens(text):
    """(kind, value) pairs: comment, angle, literal, quoted, word, semi."""
    i, n, out = 0, len(text), []
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
        elif ch == "(":
            depth, j, buf = 1, i + 1, []
            while j < n and depth:
                c = text[j]
                if c == "\\" and j + 1 < n:
                    buf.append(text[j:j + 2])
                    j += 2
                    continue
                depth += (c == "(") - (c == ")")
                if depth:
                    buf.append(c)
                j += 1
            if depth:
                raise ReceivedError(f"unclosed comment in {text!r}")
            out.append(("comment", "".join(buf)))
            i = j
        elif ch == "<":
            j = text.find(">", i)
            if j < 0:
                raise ReceivedError(f"unclosed '<' in {text!r}")
            out.append(("angle", text[i:j + 1]))
            i = j + 1
        elif ch == "[":
            j = text.find("]", i)
            if j < 0:
                raise ReceivedError(f"unclosed '[' in {text!r}")
            out.append(("literal", text[i:j + 1]))
            i = j + 1
        elif ch == '"':
            m = re.compile(r'"(?:[^"\\]|\\.)*"').match(text, i)
            if not m:
                raise ReceivedError(f"unclosed quoted string in {text!r}")
            # a quoted local part and its @domain are one word
            m2 = re.compile(r'"(?:[^"\\]|\\.)*"@[^\s();<>]+').match(text, i)
            m = m2 or m
            out.append(("word", m.group(0)))
            i = m.end()
        elif ch == ";":
            out.append(("semi", ";"))
            i += 1
        elif ch in ")>]":
            raise ReceivedError(f"stray {ch!r} at {i} in {text!r}")
        else:
            m = re.compile(r'[^\s();<>\["]+(?:\[[^\]]*\])?').match(text, i)
            out.append(("word", m.group(0)))
            i = m.end()
    return out


def parse_date(text):
    """RFC 5322 3.3 date-time (comments removed by the caller); an aware
    datetime.  The day of the week, when present, must be the date's."""
    m = DATE_RE.fullmatch(text.strip())
    if not m:
        raise ReceivedError(f"not an RFC 5322 date-time: {text!r}")
    if m["mon"] not in MONTHS:
        raise ReceivedError(f"bad month in {text!r}")
    tz = datetime.timedelta(hours=int(m["zh"]), minutes=int(m["zm"]))
    if int(m["zm"]) > 59:
        raise ReceivedError(f"bad zone in {text!r}")
    try:
        d = datetime.datetime(int(m["year"]), MONTHS.index(m["mon"]) + 1,
                              int(m["day"]), int(m["h"]), int(m["m"]),
                              int(m["s"] or 0), tzinfo=datetime.timezone(
                                  -tz if m["zs"] == "-" else tz))
    except ValueError as e:
        raise ReceivedError(f"bad date-time {text!r}: {e}") from None
    if m["dow"] is not None and m["dow"] != DAYS[d.weekday()]:
        raise ReceivedError(f"{text!r}: {d.date()} is not a {m['dow']}")
    return d


class Received:
    """A parsed Received field: .clauses is [(name, value, [comments])] in
    field order, .date the date-time; .get(name) -> (value, comments)."""

    def __init__(self, clauses, date, raw):
        self.clauses, self.date, self.raw = clauses, date, raw

    def get(self, name):
        for n, v, c in self.clauses:
            if n == name:
                return v, c
        return None

    def value(self, name):
        c = self.get(name)
        return c[0] if c else None

    def tcp_info(self):
        """The from clause's TCP-info: (domain or None, address-literal),
        or None when its first comment is not one."""
        v = self.get("from")
        if not v or not v[1]:
            return None
        words = v[1][0].split()
        if len(words) == 1 and is_address_literal(words[0]):
            return None, words[0]
        if len(words) == 2 and is_domain(words[0]) and is_address_literal(words[1]):
            return words[0], words[1]
        return None

    def __repr__(self):
        return f"Received({self.raw!r})"


def _check_value(name, kind, value, field):
    ok = {
        "from": lambda: kind in ("word", "literal") and (
            is_domain(value) or is_address_literal(value)),
        "by": lambda: kind in ("word", "literal") and (
            is_domain(value) or is_address_literal(value)),
        "via": lambda: kind == "word" and ATOM_RE.fullmatch(value),
        "with": lambda: kind == "word" and ATOM_RE.fullmatch(value),
        "id": lambda: (kind == "word" and ATOM_RE.fullmatch(value)) or (
            kind == "angle" and MSG_ID_RE.fullmatch(value)),
        "for": lambda: (kind == "angle" and is_mailbox(value[1:-1])) or (
            kind == "word" and is_mailbox(value)),
    }[name]
    if not ok():
        raise ReceivedError(f"{name} clause: {value!r} is not what RFC 5321 "
                            f"4.4 allows there, in {field!r}")


def parse(field):
    """Parse one Received field (name included, folded or not)."""
    raw = field
    m = re.match(r"(?i)received[ \t]*:", field)
    if not m:
        raise ReceivedError(f"not a Received field: {field!r}")
    body = re.sub(r"\r\n(?=[ \t])", "", field[m.end():])
    toks = _tokens(body)
    semis = [i for i, t in enumerate(toks) if t[0] == "semi"]
    if len(semis) != 1:
        raise ReceivedError(f"want exactly one ';' before the date: {field!r}")
    stamp, date_toks = toks[:semis[0]], toks[semis[0] + 1:]
    # the date: its comments dropped (CFWS), the rest re-joined
    date_text = " ".join(v for k, v in date_toks if k != "comment")
    date = parse_date(date_text.replace(" ,", ","))
    clauses, i, last = [], 0, -1
    while i < len(stamp):
        kind, v = stamp[i]
        if kind == "comment":
            if not clauses:
                raise ReceivedError(f"comment before the from clause: {field!r}")
            clauses[-1][2].append(v)
            i += 1
            continue
        name = v.lower()
        if kind != "word" or name not in CLAUSES:
            raise ReceivedError(f"{v!r} is no Received clause name, in {field!r}")
        order = CLAUSES.index(name)
        if order <= last:
            raise ReceivedError(f"clause {name!r} out of RFC 5321 order (or "
                                f"repeated), in {field!r}")
        if (not clauses and name != "from") or (len(clauses) == 1 and name != "by"):
            raise ReceivedError(f"a Received field starts 'from ... by ...': "
                                f"{field!r}")
        last = order
        if i + 1 >= len(stamp) or stamp[i + 1][0] == "comment":
            raise ReceivedError(f"clause {name!r} without a value, in {field!r}")
        vkind, value = stamp[i + 1]
        _check_value(name, vkind, value, field)
        clauses.append((name, value, []))
        i += 2
    if len(clauses) < 2:
        raise ReceivedError(f"no from and by clauses: {field!r}")
    return Received([(n, v, tuple(c)) for n, v, c in clauses], date, raw)
