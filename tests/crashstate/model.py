"""
crashstate model: what a power cut may leave on disk, from a trace.

The trace (tests/crashstate/shim.c) lists, in the order the kernel applied
them, the file-system calls ternd made beneath its state_dir.  This module
replays it against a model of a file system that promises only what
POSIX and Linux promise, and hands out, for any point of the trace, the
on-disk states a power cut at that point could leave.

The rules (conservative: where ext4 promises more, the model assumes less):

  R1  A call changes nothing on disk until it is made durable; until then
      it is pending: it may or may not have reached the disk.
  R2  Data: each write(), pwrite(), ftruncate() to a file is one pending
      data operation.  Any subset of a file's pending data operations may
      have reached the disk (applied in call order), and a write may be
      torn: only its first part on disk.  A file's data never leaks into
      another file (data=ordered: no stale blocks).
  R3  Names: each create, mkdir, link, unlink and rename is one pending
      name operation.  Operations on the same name (directory, entry) reach
      the disk in call order: a later one only if every earlier one did.
      Otherwise they are independent, even in the same directory.  A rename
      is atomic: both of its names change together, or neither
      (RENAME_EXCHANGE too).
  R4  fsync/fdatasync(file) makes durable the data operations on that file
      recorded before the call began.  It does NOT make the file's name
      durable.
  R5  fsync(directory D) makes durable the name operations that add or
      remove an entry of D and were recorded before the call began; a
      rename only through the directory of its new name (for an exchange,
      either directory).  Making an operation durable makes the earlier
      operations on its names durable too (R3).
  R6  syncfs() and sync() make every operation recorded before they began
      durable.
  R7  A name that leads nowhere durable (its directory's own entry was
      never made durable) is unreachable: the subtree is not there.
  R8  A call that failed changed nothing (the shim records only successes);
      sync_file_range makes nothing durable.

Counting: at a crash point, the states are every choice, per pending
operation, of lost / kept (/ torn, for a write) that R3 allows.  Up to
`limit` of them are enumerated; beyond that `sample` are drawn with a fixed
seed, and the report says which.
"""
import hashlib
import os
import random
import re
from urllib.parse import unquote


class Trace:
    """The parsed records of one recorded run."""

    def __init__(self, prefix):
        self.records = []
        with open(prefix + ".data", "rb") as f:
            self.data = f.read()
        with open(prefix + ".log", "r", encoding="ascii") as f:
            for line in f:
                parts = line.split()
                seq, tid, op = int(parts[0]), int(parts[1]), parts[2]
                pos, kw = [], {}
                for p in parts[3:]:
                    if "=" in p and not p.startswith("/"):
                        k, v = p.split("=", 1)
                        kw[k] = v
                    else:
                        pos.append(os.path.normpath(unquote(p)))
                self.records.append((seq, tid, op, pos, kw))
        self.records.sort(key=lambda r: r[0])

    def count(self, op, **kw):
        return sum(1 for r in self.records if r[2] == op and
                   all(r[4].get(k) == v for k, v in kw.items()))


# Files beneath state_dir that are not tern's durability promise: the
# users database (SQLite's own journal and WAL files, and its crash safety
# are SQLite's; ternd only reads it) and the Unix sockets made by bind().
IGNORE = re.compile(r"^(tern\.db(-wal|-shm|-journal)?|control\.sock|public(/.*)?)$")


class Op:
    """One pending operation.  kind: 'w' write, 't' truncate, 'n' names."""
    __slots__ = ("seq", "kind", "mid", "off", "data", "length", "assign",
                 "force_dirs", "durable")

    def __init__(self, seq, kind):
        self.seq, self.kind, self.durable = seq, kind, False
        self.mid = self.off = self.data = self.length = None
        self.assign = ()          # ((dir mid, name, mid or None), ...)
        self.force_dirs = ()

    def keys(self):
        return [(d, n) for d, n, _m in self.assign]


class Model:
    """Replays a trace; state_at(k) gives the crash states after record k."""

    def __init__(self, root, base, ignore=None):
        """root: the state_dir's real path.  base: [(relpath, ino, kind,
        bytes)] of everything in it when the recording started ('' is the
        root itself), all of it durable.  ignore: a compiled regex of
        relative paths outside the model (see IGNORE)."""
        self.root = os.path.normpath(root)
        self.ignore = ignore
        self.ignored = 0          # records about ignored paths
        self.ignored_inos = set()
        self.next_mid = 0
        self.kind = {}            # mid -> 'f' | 'd'
        self.vol = {}             # dir mid -> {name: mid}: what the process sees
        self.ino = {}             # real inode -> mid (the current one)
        self.image = {}           # durable base: mid -> bytes | {name: mid}
        self.base_size = {}       # file mid -> its length (image: no trailing zeros)
        self.ops = []             # every op, in seq order
        self.syncs = {}           # begin seq -> (kind, mid)
        self.unmodelled = 0       # records the model could not place
        by_path = {}
        for rel, ino, kind, data in sorted(base, key=lambda b: b[0].count("/")
                                           if b[0] else -1):
            mid = self._new(kind)
            self.ino[ino] = mid
            by_path[rel] = mid
            if kind == "f":
                self.image[mid] = data.rstrip(b"\0")
                self.base_size[mid] = len(data)
            else:
                self.image[mid] = {}
            if rel == "":
                self.root_mid = mid
                continue
            parent, name = os.path.split(rel)
            pmid = by_path[parent]
            self.image[pmid][name] = mid
            self.vol[pmid][name] = mid

    def _new(self, kind):
        mid = self.next_mid
        self.next_mid += 1
        self.kind[mid] = kind
        if kind == "d":
            self.vol[mid] = {}
        return mid

    # -- paths in the process's view --
    def _split(self, path):
        if path != self.root and not path.startswith(self.root + "/"):
            return None
        rel = os.path.relpath(path, self.root)
        return [] if rel == "." else rel.split("/")

    def lookup(self, path):
        comps = self._split(path)
        if comps is None:
            return None
        mid = self.root_mid
        for c in comps:
            if self.kind.get(mid) != "d" or c not in self.vol[mid]:
                return None
            mid = self.vol[mid][c]
        return mid

    def parent(self, path):
        """-> (dir mid, name) or None"""
        d, name = os.path.split(path)
        dmid = self.lookup(d)
        if dmid is None or self.kind[dmid] != "d":
            return None
        return dmid, name

    # -- building ops --
    def _names(self, seq, assign, force_dirs):
        op = Op(seq, "n")
        op.assign = tuple(assign)
        op.force_dirs = tuple(force_dirs)
        for d, n, m in assign:
            if m is None:
                self.vol[d].pop(n, None)
            else:
                self.vol[d][n] = m
        self.ops.append(op)

    def _is_ignored(self, pos, kw):
        """Records about IGNORE's paths; an inode-only record (write, trunc,
        sync) by the inode its open was given (inode numbers are reused, so
        every traced open or mkdir sets or clears its inode's mark)."""
        if self.ignore is None:
            return False
        if not pos:
            return "ino" in kw and int(kw["ino"]) in self.ignored_inos
        hit = False
        for p in pos:
            comps = self._split(p)
            if comps is not None and self.ignore.search("/".join(comps)):
                hit = True
        if "ino" in kw:
            (self.ignored_inos.add if hit else self.ignored_inos.discard)(
                int(kw["ino"]))
        return hit

    def feed(self, rec, data):
        seq, _tid, op, pos, kw = rec
        if self._is_ignored(pos, kw):
            self.ignored += 1
            return
        fn = getattr(self, "_r_" + op, None)
        if fn is None or fn(seq, pos, kw, data) is False:
            self.unmodelled += 1

    def _r_ack(self, seq, pos, kw, data):
        return None

    def _r_ctl_ok(self, seq, pos, kw, data):
        return None

    def _r_dropped(self, seq, pos, kw, data):
        return None                            # a planted missing sync

    def _r_open(self, seq, pos, kw, data):
        path, ino = pos[0], int(kw["ino"])
        if kw.get("tmpfile") == "1":
            self.ino[ino] = self._new("f")      # never named: never on disk
            return None
        if kw["created"] == "1":
            p = self.parent(path)
            if p is None:
                return False
            mid = self._new("f")
            self.ino[ino] = mid
            self._names(seq, [(p[0], p[1], mid)], [p[0]])
        else:
            mid = self.lookup(path)
            if mid is None:
                return False
            self.ino[ino] = mid
        if kw["trunc"] == "1":
            t = Op(seq, "t")
            t.mid, t.length = mid, 0
            self.ops.append(t)
        return None

    def _r_write(self, seq, pos, kw, data):
        mid = self.ino.get(int(kw["ino"]))
        if mid is None:
            return False
        o = Op(seq, "w")
        o.mid, o.off = mid, int(kw["off"])
        doff, n = int(kw["doff"]), int(kw["len"])
        o.data = data[doff:doff + n]
        self.ops.append(o)
        return None

    def _r_trunc(self, seq, pos, kw, data):
        mid = self.ino.get(int(kw["ino"]))
        if mid is None:
            return False
        t = Op(seq, "t")
        t.mid, t.length = mid, int(kw["len"])
        self.ops.append(t)
        return None

    def _r_mkdir(self, seq, pos, kw, data):
        p = self.parent(pos[0])
        if p is None:
            return False
        mid = self._new("d")
        self.ino[int(kw["ino"])] = mid
        self.image[mid] = {}               # an empty directory, if it is reached
        self._names(seq, [(p[0], p[1], mid)], [p[0]])
        return None

    def _r_link(self, seq, pos, kw, data):
        mid, p = self.lookup(pos[0]), self.parent(pos[1])
        if mid is None or p is None:
            return False
        self._names(seq, [(p[0], p[1], mid)], [p[0]])
        return None

    def _r_unlink(self, seq, pos, kw, data):
        p = self.parent(pos[0])
        if p is None or p[1] not in self.vol[p[0]]:
            return False
        self._names(seq, [(p[0], p[1], None)], [p[0]])
        return None

    def _r_rename(self, seq, pos, kw, data):
        po, pn = self.parent(pos[0]), self.parent(pos[1])
        if po is None or pn is None:
            return False
        a = self.vol[po[0]].get(po[1])
        if a is None:
            return False
        if int(kw["flags"]) & 2:               # RENAME_EXCHANGE
            b = self.vol[pn[0]].get(pn[1])
            self._names(seq, [(po[0], po[1], b), (pn[0], pn[1], a)],
                        [po[0], pn[0]])
        else:
            self._names(seq, [(po[0], po[1], None), (pn[0], pn[1], a)],
                        [pn[0]])
        return None

    def _r_sync_begin(self, seq, pos, kw, data):
        kind = kw["kind"]
        mid = None if kind in ("syncfs", "sync") else self.ino.get(int(kw["ino"]))
        if mid is None and kind not in ("syncfs", "sync"):
            return False
        self.syncs[seq] = (kind, mid)
        return None

    def _r_sync_end(self, seq, pos, kw, data):
        b = int(kw["begin"])
        if b not in self.syncs:
            return False
        kind, mid = self.syncs.pop(b)
        if kw["ret"] != "0":
            return None                        # R8: proves nothing
        for op in self.ops:
            if op.seq >= b:
                break
            if op.durable:
                continue
            if kind in ("syncfs", "sync"):
                self._force(op)
            elif self.kind[mid] == "f":
                if op.kind in "wt" and op.mid == mid:
                    op.durable = True
            elif op.kind == "n" and mid in op.force_dirs:
                self._force(op)
        return None

    def _force(self, op):
        """R5: an op made durable drags the earlier ops on its names."""
        if op.durable:
            return
        op.durable = True
        if op.kind != "n":
            return
        keys = set(op.keys())
        for o in self.ops:
            if o.seq >= op.seq:
                break
            if not o.durable and o.kind == "n" and keys & set(o.keys()):
                self._force(o)

    # -- crash states --
    def pending(self):
        """The ops not yet durable that can matter: data of files that have,
        or may get, a name."""
        named = set()
        for m in self.image.values():
            if isinstance(m, dict):
                named.update(m.values())
        for o in self.ops:
            if o.kind == "n":
                named.update(m for _d, _n, m in o.assign if m is not None)
        return [o for o in self.ops if not o.durable and
                (o.kind == "n" or o.mid in named)]

    def choices(self, pend, limit, sample, rng):
        """-> (list of {op: 'keep'|'torn'} choices, exhaustive?)"""
        out = []

        def options(o):
            if o.kind == "w" and len(o.data) >= 2:
                return ("lost", "keep", "torn")
            return ("lost", "keep")

        def dfs(i, cut, chosen):
            if len(out) > limit:
                return
            if i == len(pend):
                out.append(dict(chosen))
                return
            o = pend[i]
            keys = o.keys() if o.kind == "n" else []
            blocked = any(k in cut for k in keys)
            for opt in options(o):
                if opt != "lost" and blocked:
                    continue
                newcut = cut
                if opt == "lost" and keys:
                    newcut = cut | set(keys)
                if opt != "lost":
                    chosen[o.seq] = opt
                dfs(i + 1, newcut, chosen)
                chosen.pop(o.seq, None)

        dfs(0, frozenset(), {})
        if len(out) <= limit:
            return out, True
        out = []
        for _ in range(sample):
            cut, chosen = set(), {}
            for o in pend:
                keys = o.keys() if o.kind == "n" else []
                opts = options(o)
                if any(k in cut for k in keys):
                    opts = ("lost",)
                opt = rng.choice(opts)
                if opt == "lost":
                    cut.update(keys)
                else:
                    chosen[o.seq] = opt
            out.append(chosen)
        return out, False

    def materialise(self, chosen):
        """The image for one choice: {relpath: (bytes | None (a dir), mid,
        size)} of what is reachable from the root.  A file's bytes leave
        out the zeros a truncate (or a write past the end) put after its
        last written octet; size is its length with them (the log queue's
        segments are 64 MiB, nearly all of it never written: copying them
        whole for every write made this the slowest step of a run)."""
        img = dict(self.image)
        size = dict(self.base_size)
        for o in self.ops:
            opt = "keep" if o.durable else chosen.get(o.seq)
            if opt is None:
                continue
            if o.kind == "n":
                for d, n, m in o.assign:
                    ent = dict(img.get(d, {}))
                    if m is None:
                        ent.pop(n, None)
                    else:
                        ent[n] = m
                    img[d] = ent
                continue
            cur = img.get(o.mid, b"")
            end = size.get(o.mid, len(cur))
            if o.kind == "t":
                img[o.mid] = cur[:o.length]
                size[o.mid] = o.length
                continue
            data = o.data if opt == "keep" else o.data[:max(1, (len(o.data) // 2) & ~511 or len(o.data) // 2)]
            if len(cur) < o.off:
                cur = cur + b"\0" * (o.off - len(cur))
            img[o.mid] = cur[:o.off] + data + cur[o.off + len(data):]
            size[o.mid] = max(end, o.off + len(data))
        tree = {}

        def walk(mid, rel):
            for name, child in sorted(img.get(mid, {}).items()):
                r = f"{rel}/{name}" if rel else name
                if self.kind[child] == "d":
                    tree[r] = (None, child, 0)
                    walk(child, r)
                else:
                    v = img.get(child, b"")
                    v = v if isinstance(v, bytes) else b""
                    tree[r] = (v, child, max(size.get(child, len(v)), len(v)))
        walk(self.root_mid, "")
        return tree


# id(data) -> (data, its sha256): most states share their files' contents
# with the durable image (the same bytes objects), and the log queue's
# segments are 64 MiB each, so hashing every file of every state again
# took 80 % of a run.  The entry holds data, so its id is not reused.
_DIGESTS = {}


def _data_digest(data):
    hit = _DIGESTS.get(id(data))
    if hit is not None and hit[0] is data:
        return hit[1]
    d = hashlib.sha256(data).digest()
    if len(data) >= 65536:                 # small ones are cheap to redo
        if len(_DIGESTS) >= 4096:
            _DIGESTS.clear()
        _DIGESTS[id(data)] = (data, d)
    return d


def tree_digest(tree):
    h = hashlib.sha256()
    for rel in sorted(tree):
        data, mid, n = tree[rel]
        h.update(rel.encode() + b"\0")
        h.update(b"D" if data is None else
                 b"F%d:%d:" % (mid, n) + _data_digest(data))
    return h.hexdigest()


def write_tree(tree, dest):
    """Materialise a tree under dest (which exists); hard links stay links."""
    first = {}
    for rel in sorted(tree, key=lambda r: r.count("/")):
        data, mid, n = tree[rel]
        p = os.path.join(dest, rel)
        if data is None:
            os.mkdir(p, 0o700)
        elif mid in first:
            os.link(first[mid], p)
        else:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, data)
                if n > len(data):
                    os.ftruncate(fd, n)     # the zeros, as a hole
            finally:
                os.close(fd)
            first[mid] = p


def rng_for(seed):
    return random.Random(seed)
