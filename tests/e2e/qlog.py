"""Read tern's log-structured queue (docs/queue.md, "The log") the way
spool_open replays it, for the tests: an independent reader written from
the format's description, not from logspool.c.

    live(queue_dir) -> {qid: {"env": bytes, "data": bytes, "held": bool}}

Segments are read in number order; in each, records until a zero length
word, the end of the file, or the first torn or bad record (the rest of
that segment is not read)."""
import struct
from pathlib import Path

MAGIC = b"TERNQLOG"
SEG_HEAD = 32
MSG, ENV, REMOVE, HOLD, RELEASE = 1, 2, 3, 4, 5
F_HELD = 1


def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_T = _table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _T[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def records(buf, verify=True):
    """(type, flags, id, env, data) of each good record of one segment;
    verify=False skips the checksums (pure Python: slow on a big queue)."""
    if len(buf) < SEG_HEAD or buf[:8] != MAGIC or \
            struct.unpack_from("<I", buf, 28)[0] != crc32c(buf[:28]):
        return
    off = SEG_HEAD
    while off + 8 <= len(buf):
        body, crc = struct.unpack_from("<II", buf, off)
        if body == 0 or body < 12 or off + 8 + body > len(buf):
            return
        b = buf[off + 8:off + 8 + body]
        if verify and crc32c(b) != crc:
            return
        typ, flags, zero, qid = struct.unpack_from("<BBHQ", b, 0)
        if typ == MSG:
            (envlen,) = struct.unpack_from("<I", b, 12)
            env, data = b[16:16 + envlen], b[16 + envlen:]
        else:
            env, data = b[12:], b""
        yield typ, flags, f"{qid:016x}", env, data
        off += 8 + body


def live(queue_dir, verify=True):
    seg = Path(queue_dir) / "seg"
    out = {}
    if not seg.is_dir():
        return out
    for p in sorted(seg.iterdir()):
        try:
            buf = p.read_bytes()
        except FileNotFoundError:
            continue        # freed by a running ternd meanwhile
        for typ, flags, qid, env, data in records(buf, verify):
            if typ == MSG:
                out[qid] = {"env": env, "data": data,
                            "held": bool(flags & F_HELD)}
            elif qid not in out:
                continue
            elif typ == ENV:
                out[qid]["env"] = env
            elif typ in (HOLD, RELEASE):
                out[qid]["held"] = typ == HOLD
            elif typ == REMOVE:
                del out[qid]
    return out
