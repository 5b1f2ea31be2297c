"""Canonical fingerprints of world states, so the search visits each state
once.

Two states get one fingerprint when one is the other with its *names*
changed, and names are all that is dropped:

* **process names** -- the live processes are listed in a canonical order
  (sorted by a name-free signature; processes that tie are tried in every
  order and the smallest encoding wins), and an exited process is forgotten;
* **pin names** -- active pins are listed sorted by their contents (owner by
  canonical position, kind, write, addresses, what they hold); released pins
  are forgotten;
* **pfns** -- the page frame numbers the engine allocated; pages are
  renumbered in the order a walk of the page tables (processes in canonical
  order, extents in address order) and then of the pins first meets them,
  keeping each compound page's frames contiguous; freed pages are forgotten;
* **mm ids**, **anon_vma ids** -- renumbered in the same walk (an anon_vma no
  VMA links and no live page points at is forgotten);
* **contents** -- ``MemMap.data`` (a version stamp of each frame's contents)
  and ``MemMap.writer`` (who wrote it last) are dropped: no era rule and no
  invariant reads them; they feed only ``dma_read``'s report ("N subpages
  differ") and the diagrams.  So two states that differ only in contents take
  the same decisions and raise the same violations on every continuation;
  only the text of a ``dma_read`` event could differ.  (If a rule ever reads
  contents, move these two fields out of the DROP list below;
  ``tests/test_explore.py`` checks the claim on random traces.)
* bookkeeping that only makes fresh names or display names (the clock, the
  mm and page serials, ``MemMap.origin``, ``MemMap.serial``, the step log).

Everything else is encoded exactly: every ``MemMap`` field (iterated from
``MemMap._FIELDS``, so a field the engine adds later is covered without
edits; only the fields named in :data:`MEMMAP_KINDS` are renamed or
dropped), every field of every ``Mm``, ``Vma``, ``Pmd``/``PteTable``,
``AnonVma`` and ``Pin`` (iterated from their dataclass fields or slots), the
virtual addresses, and any attribute of the world this module does not know.

Why this is exact for the verdicts (the fault decisions and violations of
every step).  The engine is *equivariant* under these renamings: no rule
compares two pfns, mm ids or anon_vma ids other than for equality (a compound page's frames are compared only against its own
head, which the renumbering keeps contiguous), new objects always get fresh
names, and a statement names only processes, regions and pins.  So if
``fingerprint(S) == fingerprint(T)``, there is a bijection ``r`` of those
names with ``r(S) == T``, and for every continuation ``c`` the run of ``c``
from ``S`` and the run of ``r(c)`` from ``T`` take the same fault decisions
and report the same violations, step by step.  Anything a verdict can depend
on is in the encoding; anything dropped is a name or contents.  (The fingerprint is a
128-bit BLAKE2b digest of the encoding: a collision is astronomically
unlikely, not impossible.)

For a search over several eras at once (``--differ``), the worlds are encoded
*jointly*: one process order and one pin order for all of them, since a
continuation names the same processes and pins in every era.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools

import numpy as np

from ..model.mm import Pmd

PFN, AVID, MMID, DROP = "pfn", "avid", "mmid", "drop"

#: MemMap fields that hold names (renamed) or display-only bookkeeping
#: (dropped); every other field is encoded as it is, frame by frame
MEMMAP_KINDS = {
    "head": PFN,
    "mapping": AVID,
    "writer": DROP,  # contents: see "Contents" in the module docstring
    "slot_mm": MMID,  # 6.15 folio owner slots: an mm id, 0 for a free slot
    "slot_mm2": MMID,
    "data": DROP,  # contents
    "origin": DROP,  # MemMap.name only: which THP a split page came from
    "serial": DROP,  # MemMap.name only: H1, p7...
    "freed": DROP,  # freed pages are not encoded at all
}
#: MemMap attributes that are allocation bookkeeping, not page state
MEMMAP_SKIP = frozenset({"size", "capacity", "thp_serial", "small_serial"})
#: world attributes encoded by hand below, or names/bookkeeping
WORLD_SKIP = frozenset({"era", "mem", "mms", "anon_vmas", "pins", "clock", "mm_serial", "huge_zero_pfn",
                        "zero_pfn", "log"})
MM_SKIP = frozenset({"name", "id", "vmas", "pt"})
PIN_SKIP = frozenset({"name", "owner", "pfns", "active"})
ANON_VMA_IDS = {"id", "root", "parent"}
VMA_IDS = {"anon_vma", "avcs"}
_LIVE = 1 << 40  # canonical mm ids live here, far from any raw value


def fingerprint(worlds) -> bytes:
    """The 16-byte canonical fingerprint of one world, or of several worlds
    that one trace drove under different eras (encoded jointly)."""
    return hashlib.blake2b(canonical(worlds)[0], digest_size=16).digest()


def encoding(worlds) -> bytes:
    """The canonical encoding (see the module docstring)."""
    return canonical(worlds)[0]


def canonical(worlds) -> tuple[bytes, list[str], list[str]]:
    """(encoding, live process names in canonical order, active pin names in
    canonical order): position i of one state's lists corresponds to
    position i of any state with the same encoding."""
    if not isinstance(worlds, (list, tuple)):
        worlds = [worlds]
    names = [n for n, m in worlds[0].mms.items() if m.alive]
    if len(names) >= 2:
        sigs = {n: tuple(_proc_signature(w, w.mms[n]) for w in worlds) for n in names}
        names.sort(key=sigs.__getitem__)
        groups = [list(g) for _, g in itertools.groupby(names, key=sigs.__getitem__)]
        if len(groups) < len(names):
            best: tuple[bytes, list[str], list[str]] | None = None
            for combo in itertools.product(*(itertools.permutations(g) for g in groups)):
                got = _encode_order(worlds, [n for part in combo for n in part])
                if best is None or got[0] < best[0]:
                    best = got
            assert best is not None  # every group has at least one ordering
            return best
    return _encode_order(worlds, names)


# --------------------------------------------------------------------- helpers
def _val(v):
    """A plain value for ``repr``: arrays as bytes, dicts as sorted items."""
    if isinstance(v, np.ndarray):
        return (v.dtype.str, v.tobytes())
    if isinstance(v, dict):
        return tuple(sorted((k, _val(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return tuple(_val(x) for x in v)
    return v


_ATTRS: dict = {}


def _attr_names(obj) -> tuple[str, ...]:
    """The state attributes of an object: dataclass fields, else slots, else
    its instance dict (sorted)."""
    t = type(obj)
    got = _ATTRS.get(t)
    if got is None:
        if dataclasses.is_dataclass(obj):
            got = tuple(f.name for f in dataclasses.fields(obj))
        elif getattr(t, "__slots__", None):
            got = tuple(t.__slots__)
        else:
            return tuple(sorted(vars(obj)))
        _ATTRS[t] = got
    return got


_PLANS: dict = {}


def _plan(obj, skip) -> tuple[str, ...]:
    key = (type(obj), skip)
    got = _PLANS.get(key)
    if got is None:
        got = tuple(k for k in _attr_names(obj) if k not in skip)
        if type(obj) in _ATTRS:
            _PLANS[key] = got
    return got


def _proc_signature(world, mm) -> tuple:
    """A name-free summary of a process, used only to order processes (the
    encoding itself does not depend on how good it is)."""
    vmas = tuple((v.start, v.end, v.pgoff, v.write, v.dontcopy, v.huge, len(v.avcs)) for v in mm.vmas)
    pt: list[tuple] = []
    for ext in sorted(mm.pt):
        e = mm.pt[ext]
        if isinstance(e, Pmd):
            pt.append((ext, 0, bool(e.write)))
        else:
            pt.append((ext, 1, (e.pfn >= 0).tobytes(), e.write.tobytes()))
    pins = sum(1 for p in world.pins.values() if p.active and p.owner == mm.name)
    return vmas, tuple(pt), tuple(sorted(mm.regions.items())), pins


class _World:
    """One world's renaming under a given process order."""

    def __init__(self, world, order) -> None:
        self.w = world
        mem = world.mem
        self.order = order
        self.pos = {n: i for i, n in enumerate(order)}
        self.mm_idx = {world.mms[n].id: i for i, n in enumerate(order)}
        self.pfn_map = np.full(mem.size, -1, dtype=np.int64)
        self.head = mem.head
        self.nr = mem.nr
        self.pages: list[int] = []
        self.next = 0
        self._page(world.huge_zero_pfn)
        self._page(world.zero_pfn)
        for n in order:
            pt = world.mms[n].pt
            for ext in sorted(pt):
                e = pt[ext]
                if isinstance(e, Pmd):
                    self._page(e.head)
                else:
                    self._frames(e.pfn)
        self._pin_keys: dict = {}

    def _page(self, h) -> None:
        h = int(h)
        if self.pfn_map[h] >= 0:
            return
        n = int(self.nr[h])
        self.pfn_map[h:h + n] = np.arange(self.next, self.next + n)
        self.next += n
        self.pages.append(h)

    def _frames(self, pf: np.ndarray) -> None:
        heads = self.head[pf[pf >= 0]]
        new = heads[self.pfn_map[heads] < 0]
        if len(new):
            for h in dict.fromkeys(new.tolist()):
                self._page(h)

    def pfns(self, a: np.ndarray) -> np.ndarray:
        return np.where(a >= 0, self.pfn_map[np.maximum(a, 0)], -1)

    def pin_key(self, name: str) -> tuple:
        """What a pin is, with pfns the page-table walk did not meet as -1
        (the pin order must not depend on pfn numbering yet)."""
        got = self._pin_keys.get(name)
        if got is None:
            pin = self.w.pins[name]
            owner = self.w.mms.get(pin.owner)
            o = self.pos[pin.owner] if owner is not None and owner.alive else -1
            rest = tuple(_val(getattr(pin, k)) for k in _plan(pin, PIN_SKIP))
            got = self._pin_keys[name] = (o, rest, self.pfns(pin.pfns).tobytes())
        return got


def _encode_order(worlds, order) -> tuple[bytes, list[str], list[str]]:
    ws = [_World(w, order) for w in worlds]
    # one pin order for every world
    active = [n for n, p in worlds[0].pins.items() if p.active]
    if len(active) > 1:
        active.sort(key=lambda n: tuple(cw.pin_key(n) for cw in ws))
    out = [repr(len(order)).encode()]
    for cw in ws:
        out.append(b"|W|")
        _encode_world(cw, active, out)
    return b"\x00".join(out), list(order), active


def _encode_world(cw: _World, pin_order, out: list) -> None:
    w, mem = cw.w, cw.w.mem
    # the rest of the pages: pinned pages no page table maps
    for n in pin_order:
        cw._frames(w.pins[n].pfns)
    # anon_vmas: renumbered in walk order (VMAs, then pages, then ancestors)
    av_map: dict[int, int] = {}
    av_list: list[int] = []

    def av(i):
        if i is None or i < 0:
            return -1
        c = av_map.get(i)
        if c is None:
            c = av_map[i] = len(av_list)
            av_list.append(i)
        return c

    pfn_map = cw.pfn_map
    # processes: their own fields, VMAs, page tables
    for n in cw.order:
        mm = w.mms[n]
        vrows = []
        for v in mm.vmas:
            row = []
            for k in _attr_names(v):
                x = getattr(v, k)
                if k == "anon_vma":
                    row.append(av(x))
                elif k == "avcs":
                    row.append(tuple(av(y) for y in x))
                else:
                    row.append(x)
            vrows.append(tuple(row))
        out.append(repr((tuple(_val(getattr(mm, k)) for k in _plan(mm, MM_SKIP)), vrows)).encode())
        pt = mm.pt
        for ext in sorted(pt):
            e = pt[ext]
            if isinstance(e, Pmd):
                row = [ext, "pmd"]
                for k in _attr_names(e):
                    x = getattr(e, k)
                    row.append(int(pfn_map[x]) if k == "head" else _val(x))
                out.append(repr(row).encode())
            else:
                out.append(repr(ext).encode())
                for k in _attr_names(e):
                    x = getattr(e, k)
                    out.append(cw.pfns(x).tobytes() if k == "pfn" else _val(x)[1] if isinstance(x, np.ndarray)
                               else repr(_val(x)).encode())
    # pins
    for n in pin_order:
        o, rest, _ = cw.pin_key(n)
        out.append(repr((o, rest)).encode() + cw.pfns(w.pins[n].pfns).tobytes())
    # the struct page array, frames in canonical order
    idx = np.flatnonzero(pfn_map >= 0)
    frames = idx[np.argsort(pfn_map[idx])]
    for h in cw.pages:
        av(int(mem.mapping[h]))
    plan = _memmap_plan(mem)
    for k, kind in plan:
        a = getattr(mem, k)[frames]
        if kind == PFN:
            a = cw.pfns(a)
        elif kind == AVID:
            a = _rename(a, av)
        elif kind == MMID:
            a = _mm_ids(a, cw.mm_idx)
        out.append(a.tobytes())
    for k in _memmap_scalars(mem):
        out.append(repr(_val(getattr(mem, k))).encode())
    # anon_vmas that something refers to, with their ancestry renamed
    i = 0
    while i < len(av_list):
        a = w.anon_vmas[av_list[i]]
        for k in _attr_names(a):
            if k in ANON_VMA_IDS:
                av(getattr(a, k))
        i += 1
    out.append(repr([tuple(av(getattr(a, k)) if k in ANON_VMA_IDS else getattr(a, k) for k in _attr_names(a))
                     for a in (w.anon_vmas[o] for o in av_list)]).encode())
    # whatever else the world holds
    out.append(repr(tuple(_val(getattr(w, k)) for k in _plan_world(w))).encode())


_MEMMAP_PLANS: dict = {}


def _memmap_plan(mem) -> tuple:
    """(field, kind) for every per-frame array of the memmap: the fields of
    ``MemMap._FIELDS`` in order, then any other array attribute; fields of
    kind DROP left out, other unknown fields of kind None (as they are)."""
    names = tuple(f[0] for f in type(mem)._FIELDS)
    key = (type(mem), names, len(vars(mem)))
    plan = _MEMMAP_PLANS.get(key)
    if plan is None:
        extra = tuple(k for k, v in vars(mem).items()
                      if k not in names and k not in MEMMAP_SKIP and isinstance(v, np.ndarray))
        plan = _MEMMAP_PLANS[key] = tuple((k, MEMMAP_KINDS.get(k)) for k in names + extra
                                          if MEMMAP_KINDS.get(k) != DROP)
    return plan


def _memmap_scalars(mem) -> tuple:
    key = ("scalars", type(mem), len(vars(mem)))
    got = _MEMMAP_PLANS.get(key)
    if got is None:
        names = {f[0] for f in type(mem)._FIELDS}
        got = _MEMMAP_PLANS[key] = tuple(k for k, v in vars(mem).items()
                                         if k not in names and k not in MEMMAP_SKIP
                                         and k not in MEMMAP_KINDS and not isinstance(v, np.ndarray))
    return got


def _plan_world(w) -> tuple:
    key = ("world", type(w), len(vars(w)))
    got = _MEMMAP_PLANS.get(key)
    if got is None:
        got = _MEMMAP_PLANS[key] = tuple(sorted(k for k in vars(w) if k not in WORLD_SKIP))
    return got


def _rename(a: np.ndarray, name) -> np.ndarray:
    """Apply ``name`` (id -> canonical id) to the non-negative values of ``a``."""
    return np.array([name(x) if x >= 0 else x for x in a.tolist()], dtype=np.int64)


def _mm_ids(a: np.ndarray, live: dict) -> np.ndarray:
    """mm ids: a live process's becomes its canonical position, an exited
    one's a rank of first appearance; 0 and negative markers stay (mm ids
    start at 1)."""
    dead: dict = {}
    out = []
    for x in a.tolist():
        if x <= 0:
            out.append(x)
        elif x in live:
            out.append(_LIVE + live[x])
        else:
            out.append(2 * _LIVE + dead.setdefault(x, len(dead)))
    return np.array(out, dtype=np.int64)
