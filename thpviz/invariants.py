"""Invariants checked after every step.

Violations a scenario can expect (DESIGN.md):

``pin-lost``     a pin or GUP reference points at page X while its owner's page
                 table maps another page (or nothing) at the same address, and
                 the owner did not unmap, discard or move that address itself.
``rmap-broken``  a present PMD or PTE that the rmap walk from its page's
                 ``page->mapping`` cannot reach.
``leak``, ``stray-write`` and ``bug`` are events raised while the step
                 runs (:mod:`thpviz.model.faults`, :mod:`thpviz.model.gup`,
                 the era modules).

Counter consistency is different: a mismatch is a defect of thpviz and raises
:class:`~thpviz.model.events.ThpvizDefect`.  :func:`check_counters` runs one
rule after another (:data:`CONSISTENCY_RULES`); each rule is a small function
so that a test can corrupt one thing and see exactly that rule fire.

Two ways to check.  :func:`check` looks at the whole world: it counts every
page-table entry and pin (a :class:`_Census`) and compares every struct
page.  :class:`ScopedChecker` is what the runner uses after each statement: it
keeps that census up to date from what each statement changed (the world's
undo journal, :mod:`thpviz.model.txn`) and runs the same rules on a census
restricted to the pages the statement touched -- whose counters, flags or
mappings changed, or that a changed page table or pin refers to -- and
re-derives the state violations only for the processes, page tables and pins
that changed.  Given a consistent world before the statement, the two give
the same violations and raise the same defects
(``tests/test_properties.py`` checks it over random statement sequences).
"""

from __future__ import annotations

import numpy as np

from .model.arrays import squeeze_runs, uniq, uniq_counts
from .model.events import ThpvizDefect
from .model.memmap import DISPLAY_FIELDS, KIND_ZERO, Hidden, copy_into
from .model.mm import Pmd, PteTable

STATE_VIOLATIONS = ("pin-lost", "rmap-broken")
EVENT_VIOLATIONS = ("leak", "stray-write", "bug")
VIOLATIONS = ("pin-lost", "rmap-broken", "leak", "stray-write", "bug")


def _pin_lost_one(world, pin) -> str | None:
    """The pin-lost message of one pin, or None."""
    if not pin.active:
        return None
    mm = world.mms[pin.owner]
    if not mm.alive:
        return None
    live = ~pin.excused
    if not live.any():
        return None
    cur = world.lookup(mm, pin.vas[live])
    bad = cur != pin.pfns[live]
    if not bad.any():
        return None
    i = int(np.nonzero(bad)[0][0])
    va = int(pin.vas[live][i])
    now = int(cur[i])
    return (
        f"{pin.name}: device holds {world.mem.name(pin.pfns[live][i])}, "
        f"{mm.name} maps {world.mem.name(now) if now >= 0 else 'nothing'} at "
        f"{mm.describe(va, va + 1)} ({int(bad.sum())} subpage(s))"
    )


def pin_lost(world) -> list[str]:
    out = []
    for pin in world.pins.values():
        msg = _pin_lost_one(world, pin)
        if msg:
            out.append(msg)
    return out


def _entry_runs(world, mm, ext, entry):
    """The present, non-zero-page mappings of one page-table entry, one run
    per VMA it overlaps: (mm, vma, addrs, pfns)."""
    mem, nr = world.mem, world.nr
    base = ext * nr
    if isinstance(entry, Pmd):
        if mem.kind[entry.head] == KIND_ZERO:
            return
        pf = np.arange(entry.head, entry.head + nr)
    else:
        pf = entry.pfn
    present = (pf >= 0) & (mem.kind[np.maximum(pf, 0)] != KIND_ZERO)
    if not present.any():
        return
    for vma in mm.vmas_in(base, base + nr):
        lo, hi = max(vma.start, base) - base, min(vma.end, base + nr) - base
        m = present[lo:hi]
        if m.any():
            yield mm, vma, base + np.arange(lo, hi)[m], pf[lo:hi][m]


def _mapped_runs(world):
    """Every present, non-zero-page mapping as (mm, vma, addrs, pfns)."""
    for mm in world.alive_mms():
        for ext, entry in mm.pt.items():
            yield from _entry_runs(world, mm, ext, entry)


def _rmap_runs_broken(world, runs) -> list[str]:
    mem = world.mem
    out = []
    for mm, vma, addrs, p in runs:
        heads = mem.head[p]
        ok = np.isin(mem.mapping[heads], np.array(vma.avcs, dtype=np.int64))
        if not ok.all():
            i = int(np.nonzero(~ok)[0][0])
            av = int(mem.mapping[heads[i]])
            bad = int((~ok).sum())
            out.append(
                f"{mm.name} maps {mem.name(p[i])} at {mm.describe(int(addrs[i]), int(addrs[i]) + 1)}"
                f" but page->mapping is av{av}, not linked to that VMA "
                f"({bad} entr{'y' if bad == 1 else 'ies'})"
            )
    return out


def rmap_broken(world) -> list[str]:
    """Vectorised form of :meth:`World.rmap_walk` over all mappings: a
    mapping is reachable iff the anon_vma in ``page->mapping`` is linked to the
    VMA that maps it."""
    return _rmap_runs_broken(world, _mapped_runs(world))


# --------------------------------------------------------------- consistency
class _Census:
    """What the page tables and the pins say about a set of frames.

    Arrays are aligned with ``pf`` (the frames looked at: every frame of the
    world for the full check, whole pages for a scoped one): ``pte`` PTE
    mappings of each frame, ``pmd`` PMD mappings (at a head), ``pins`` and
    ``refs`` active pins and references, ``real`` not a zero page, ``head``
    its head.  ``starts`` are the heads of real pages among them and
    ``start_pos`` their positions in ``pf``."""

    def __init__(self, world):
        mem = world.mem
        size = mem.size
        self.world = world
        self.size = size
        self.pte = np.zeros(size, dtype=np.int64)
        self.pmd = np.zeros(size, dtype=np.int64)
        for mm in world.alive_mms():
            for entry in mm.pt.values():
                if isinstance(entry, Pmd):
                    self.pmd[entry.head] += 1
                else:
                    _scatter(self.pte, entry.pfn[entry.pfn >= 0], 1)
        self.pins = np.zeros(size, dtype=np.int64)
        self.refs = np.zeros(size, dtype=np.int64)
        for pin in world.pins.values():
            if pin.active:
                _scatter(self.pins if pin.kind == "pin" else self.refs, pin.pfns, 1)
        self.real = mem.kind[:size] != KIND_ZERO
        self.pf = np.arange(size)
        self.head = mem.head[:size]
        self.starts = self.pf[(self.head == self.pf) & self.real]
        self.start_pos = self.starts
        self._runs = None
        self._counts = None

    @classmethod
    def of_frames(cls, world, pf, pte, pmd, pins, refs, runs, mm_counts) -> "_Census":
        """A census of the whole pages ``pf`` (sorted) only."""
        c = cls.__new__(cls)
        mem = world.mem
        c.world = world
        c.size = mem.size
        c.pf = pf
        c.pte, c.pmd, c.pins, c.refs = pte, pmd, pins, refs
        c.real = mem.kind[pf] != KIND_ZERO
        c.head = mem.head[pf].astype(np.int64)
        at_head = (c.head == pf) & c.real
        c.starts = pf[at_head]
        c.start_pos = np.flatnonzero(at_head)
        c._runs = runs
        c._counts = mm_counts
        return c

    def mapped_runs(self):
        """The mappings :func:`rule_index` looks at."""
        if self._runs is None:
            return _mapped_runs(self.world)
        return self._runs

    def mm_counts(self, heads: np.ndarray) -> dict:
        """mm id -> entries of that mm mapping each of ``heads`` (a PMD on the
        head, a PTE on any of its frames), for every live mm."""
        if self._counts is not None:
            return self._counts(self.world, heads)
        world = self.world
        mem = world.mem
        out = {}
        for mm in world.alive_mms():
            cnt = np.zeros(self.size, dtype=np.int64)
            for entry in mm.pt.values():
                if isinstance(entry, Pmd):
                    cnt[entry.head] += 1
                else:
                    p = entry.pfn[entry.pfn >= 0]
                    _scatter(cnt, mem.head[p], 1)
            out[mm.id] = cnt[heads]
        return out


def _scatter(arr: np.ndarray, idx: np.ndarray, value: int) -> None:
    """``np.add.at(arr, idx, value)``, as a bincount over the span when the
    indexes are dense (a THP's frames)."""
    n = len(idx)
    if n == 0:
        return
    if n < 64:
        np.add.at(arr, idx, value)
        return
    lo, hi = int(idx.min()), int(idx.max())
    if hi - lo < 4 * n:
        arr[lo : hi + 1] += (np.bincount(idx - lo, minlength=hi - lo + 1) * value).astype(arr.dtype)
    else:
        np.add.at(arr, idx, value)


def rule_pin_bookkeeping(world, c: _Census) -> None:
    """Per-frame ``pins``/``refs`` equal the active pins and references."""
    mem, real = world.mem, c.real
    if not np.array_equal(c.pins[real], mem.pins[c.pf][real]):
        raise ThpvizDefect("per-frame pin bookkeeping disagrees with the pins held")
    if not np.array_equal(c.refs[real], mem.refs[c.pf][real]):
        raise ThpvizDefect("per-frame reference bookkeeping disagrees with the references held")


def rule_mapcount(world, c: _Census) -> None:
    """``_mapcount`` = PTE mappings (+1 while PageDoubleMap is set)."""
    mem, real = world.mem, c.real
    dm = mem.double_map[c.head].astype(np.int64)
    want = (c.pte + dm)[real]
    got = mem.mapcount[c.pf][real]
    if not np.array_equal(got, want):
        i = int(np.flatnonzero(got != want)[0])
        bad = int(c.pf[real][i])
        raise ThpvizDefect(
            f"_mapcount of {mem.name(bad)} is {mem.mapcount[bad]}, page tables say {want[i]}"
        )


def rule_compound_mapcount(world, c: _Census) -> None:
    """compound (entire) mapcount = PMD mappings."""
    mem = world.mem
    if not np.array_equal(mem.cmc[c.starts], c.pmd[c.start_pos]):
        raise ThpvizDefect("compound_mapcount disagrees with the PMDs that map the page")


def rule_double_map(world, c: _Census) -> None:
    """PageDoubleMap only on a page a PMD maps, and only in eras that have it."""
    mem = world.mem
    dm = mem.double_map[c.starts]
    if (dm & (mem.cmc[c.starts] < 1)).any():
        raise ThpvizDefect("PageDoubleMap set on a page no PMD maps")
    if dm.any() and not world.era.has_double_map:
        raise ThpvizDefect(f"PageDoubleMap set in era {world.era.id}, which has none")


def rule_refcount(world, c: _Census) -> None:
    """refcount of a page = its PMD and PTE mappings + pins (each weighted
    as the era takes them) + other GUP references; tails hold none."""
    mem = world.mem
    starts = c.starts
    weight = world.pin_weight(c.head)
    contrib = np.where(c.real, c.pte + c.pins * weight + c.refs, 0)
    seg = np.add.reduceat(contrib, c.start_pos) if len(starts) else np.zeros(0, np.int64)
    expect = seg + c.pmd[c.start_pos]
    got = mem.refcount[starts]
    if not np.array_equal(got, expect):
        i = int(np.nonzero(got != expect)[0][0])
        h = int(starts[i])
        raise ThpvizDefect(
            f"page_count of {mem.name(h)} is {mem.refcount[h]}, mappings and pins say {expect[i]}"
        )
    tails = c.real & (c.head != c.pf)
    if mem.refcount[c.pf][tails].any():
        raise ThpvizDefect("a tail page holds references")


def rule_freed(world, c: _Census) -> None:
    """A page is freed exactly when its refcount is zero (so a freed page is
    never mapped or pinned)."""
    mem = world.mem
    if not np.array_equal(mem.refcount[c.starts] == 0, mem.freed[c.starts]):
        raise ThpvizDefect("freed flag disagrees with the refcount")
    for pin in world.pins.values():
        if pin.active and (mem.freed[pin.pfns] & (mem.kind[pin.pfns] != KIND_ZERO)).any():
            raise ThpvizDefect(f"pin {pin.name} holds a freed page")


def rule_index(world, c: _Census) -> None:
    """``page->index`` agrees with the offset of every VMA that maps the page
    (so ``vma_address`` finds it)."""
    mem = world.mem
    for mm, vma, addrs, p in c.mapped_runs():
        heads = mem.head[p]
        idx = mem.index[heads] + (p - heads)
        if (idx != vma.linear_page_index(addrs)).any():
            raise ThpvizDefect(f"page index disagrees with the VMA offset in {mm.name}")


def rule_anon_exclusive(world, c: _Census) -> None:
    """PageAnonExclusive (5.19+) only on a page one mapping maps: a PMD-mapped
    THP with an exclusive head has exactly one PMD and no PTE mapping; a
    PTE-mapped exclusive subpage has at most one PTE."""
    mem = world.mem
    excl = mem.anon_exclusive[c.pf]
    if excl.any() and not world.era.has_anon_exclusive:
        raise ThpvizDefect(f"PageAnonExclusive set in era {world.era.id}, which has none")
    pick = excl[c.start_pos] & (mem.cmc[c.starts] > 0)
    for h, p in zip(c.starts[pick].tolist(), c.start_pos[pick].tolist()):
        n = int(mem.nr[h])
        if mem.cmc[h] != 1 or c.pte[p : p + n].any():
            raise ThpvizDefect(f"{mem.name(h)} is marked exclusive but mapped more than once")
    pmd_mapped = mem.cmc[c.head] > 0
    bad = excl & ~pmd_mapped & c.real & (c.pte > 1)
    if bad.any():
        raise ThpvizDefect(f"{mem.name(int(c.pf[np.nonzero(bad)[0][0]]))} is marked exclusive but mapped twice")


def rule_mm_slots(world, c: _Census) -> None:
    """6.15 owner slots: only in 6.15; a slot names a live mm and counts no
    more mappings than that mm has; a clear "maybe mapped shared" bit means
    one mm maps every mapping of the folio (no false "exclusive")."""
    mem = world.mem
    slots = np.concatenate([mem.slot_mm[c.starts], mem.slot_mm2[c.starts]])
    if not world.era.tracks_mm_ids:
        if slots.any() or mem.maybe_shared[c.starts].any():
            raise ThpvizDefect(f"folio owner slots used in era {world.era.id}, which has none")
        return
    large = c.starts[mem.nr[c.starts] > 1]
    if len(large) == 0:
        return
    per_mm = c.mm_counts(large)
    for k, h in enumerate(large.tolist()):
        ids = [int(mem.slot_mm[h]), int(mem.slot_mm2[h])]
        cnts = [int(mem.slot_count[h]), int(mem.slot_count2[h])]
        for i, n in zip(ids, cnts):
            if i == 0:
                if n:
                    raise ThpvizDefect(f"free owner slot of {mem.name(h)} counts {n} mappings")
                continue
            have = per_mm.get(i)
            if have is None or n > have[k] or n <= 0:
                raise ThpvizDefect(f"owner slot of {mem.name(h)} says mm {i} maps it {n} times")
        if ids[0] and ids[0] == ids[1]:
            raise ThpvizDefect(f"both owner slots of {mem.name(h)} name mm {ids[0]}")
        mappers = [i for i, cnt in per_mm.items() if cnt[k] > 0]
        if not mem.maybe_shared[h] and len(mappers) > 1:
            raise ThpvizDefect(f"{mem.name(h)} is mapped by {len(mappers)} mms but not marked maybe shared")


def rule_has_pinned(world, c: _Census) -> None:
    """An mm that took a FOLL_PIN has ``has_pinned`` set (5.8+)."""
    if not world.era.foll_pin:
        return
    for pin in world.pins.values():
        if pin.kind == "pin" and pin.active and not world.mms[pin.owner].has_pinned:
            raise ThpvizDefect(f"{pin.owner} holds FOLL_PIN {pin.name} but has_pinned is clear")


CONSISTENCY_RULES = (
    rule_pin_bookkeeping, rule_mapcount, rule_compound_mapcount, rule_double_map, rule_refcount,
    rule_freed, rule_index, rule_anon_exclusive, rule_mm_slots, rule_has_pinned,
)


def check_counters(world, rules=CONSISTENCY_RULES) -> None:
    """Internal consistency of the struct page counters, flags and owner
    slots with the page tables and pins.  Raises ThpvizDefect."""
    c = _Census(world)
    for rule in rules:
        rule(world, c)


def check(world) -> dict[str, list[str]]:
    """State violations present now, with details; raises ThpvizDefect on an
    internal inconsistency."""
    check_counters(world)
    out = {}
    lost = pin_lost(world)
    if lost:
        out["pin-lost"] = lost
    broken = rmap_broken(world)
    if broken:
        out["rmap-broken"] = broken
    return out


# ------------------------------------------------------------ scoped check
#: fields that a page's name or its rmap verdict depends on
_RENAMING = frozenset({"head", "nr", "kind", "serial", "origin", "mapping"})


def _whole_pages(mem, heads: np.ndarray) -> np.ndarray:
    """Every frame of the pages whose heads are ``heads`` (sorted, unique)."""
    n = mem.nr[heads].astype(np.int64)
    total = int(n.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.cumsum(n) - n
    return np.arange(total, dtype=np.int64) - np.repeat(starts - heads, n)


class ScopedChecker(Hidden):
    """The invariant check of one world, statement by statement (see the
    module docstring).  Attach it with :func:`scoped_checker`; the world
    tells it what each committed statement changed (``absorb``), and
    :meth:`check` returns what :func:`check` would."""

    def __init__(self, world):
        world.commit()
        mem = world.mem
        cap = mem.capacity
        self.pte = np.zeros(cap, dtype=np.int32)
        self.pmd = np.zeros(cap, dtype=np.int32)
        self.pins = np.zeros(cap, dtype=np.int32)
        self.refs = np.zeros(cap, dtype=np.int32)
        # scratch: 1 + position of a frame in the current scope, else 0 (kept
        # all zero between uses, so its pages are only touched where used)
        self._scope = np.zeros(cap, dtype=np.int32)
        self._shared = False
        self._reset()
        #: 6.15: head -> {mm id: entries of that mm mapping the page}
        self.mmc: dict | None = {} if world.era.tracks_mm_ids else None
        for mm in world.alive_mms():
            for entry in mm.pt.values():
                self._add(mem, entry, 1, mm.id)
        for pin in world.pins.values():
            if pin.active:
                self._pin(mem, pin, 1)
        self.rmap: dict[str, dict[int, list]] = {}
        self.lost: dict[str, str | None] = {}
        #: a page's frames changed heads: the owner counts are rebuilt
        self.reheaded = False
        # the first check derives every state violation
        self.mm_vmas.update(world.mms)
        self.pins_changed.update(world.pins)
        self.frames.append(mem.page_starts())
        world._t.listeners.append(self)

    def _reset(self) -> None:
        self.frames: list = []
        self.mms: set = set()
        self.mm_vmas: set = set()
        self.tables: dict = {}
        self.pins_changed: set = set()
        self.renamed: list = []
        self.reindexed = False

    # -- the census, kept up to date ------------------------------------------
    def _grow(self, cap: int) -> None:
        if len(self.pte) >= cap:
            return
        for name in ("pte", "pmd", "pins", "refs"):
            a = getattr(self, name)
            b = np.zeros(cap, dtype=a.dtype)
            copy_into(b, a, len(a), 0, 4096)
            setattr(self, name, b)
        self._scope = np.zeros(cap, dtype=np.int32)

    def _touch(self, mem, frames: np.ndarray) -> None:
        """Put the pages of ``frames`` in scope (their heads, with runs of
        one page collapsed)."""
        if len(frames) == 0:
            return
        self.frames.append(squeeze_runs(mem.head[frames]))

    def _owners(self, mem, mm_id, pfns: np.ndarray, sign: int) -> None:
        """6.15: count ``pfns`` (mapped or unmapped by mm ``mm_id``) for the
        pages they belong to."""
        if self.mmc is None or mm_id is None or len(pfns) == 0:
            return
        heads, counts = uniq_counts(mem.head[pfns])
        for h, n in zip(heads.tolist(), counts.tolist()):
            per = self.mmc.setdefault(h, {})
            v = per.get(mm_id, 0) + sign * n
            if v:
                per[mm_id] = v
            else:
                per.pop(mm_id, None)

    def _add(self, mem, entry, sign: int, mm_id: int | None) -> None:
        if entry is None:
            return
        if type(entry) is Pmd:
            self.pmd[entry.head] += sign
            h = mem.head[entry.head : entry.head + 1]
            self.frames.append(h)
            self._owners(mem, mm_id, h, sign)
        else:
            p = entry.pfn[entry.pfn >= 0]
            _scatter(self.pte, p, sign)
            self._touch(mem, p)
            self._owners(mem, mm_id, p, sign)

    def _pin(self, mem, pin, sign: int) -> None:
        _scatter(self.pins if pin.kind == "pin" else self.refs, pin.pfns, sign)
        self._touch(mem, pin.pfns)

    def _delta(self, mem, old, new, mm_id: int | None) -> None:
        if type(old) is PteTable and type(new) is PteTable:
            d = np.flatnonzero(old.pfn != new.pfn)
            if len(d) == 0:
                return
            a, b = old.pfn[d], new.pfn[d]
            a, b = a[a >= 0], b[b >= 0]
            _scatter(self.pte, a, -1)
            _scatter(self.pte, b, 1)
            self._touch(mem, a)
            self._touch(mem, b)
            self._owners(mem, mm_id, a, -1)
            self._owners(mem, mm_id, b, 1)
            return
        self._add(mem, old, -1, mm_id)
        self._add(mem, new, 1, mm_id)

    def absorb(self, world, txn) -> None:
        """Count what a committed statement changed."""
        if self._shared:
            self._unshare()
        mem = world.mem
        self._grow(mem.capacity)
        journal, start = txn.mem or {}, txn.mem_start
        old_size = start[0] if start is not None else mem.size
        n = mem.chunk
        for name, chunks in journal.items():
            counted = name not in DISPLAY_FIELDS
            if not counted and name not in _RENAMING:
                continue
            live = mem.__dict__[name]
            for c, old in chunks.items():
                base = c * n
                d = np.flatnonzero(old != live[base : base + len(old)])
                if len(d) == 0:
                    continue
                d += base
                if counted:
                    self._touch(mem, d)
                if name in _RENAMING or name == "index":
                    existing = d[d < old_size]
                    if len(existing):
                        if name in _RENAMING:
                            self.renamed.append(existing)
                        if name in ("index", "head"):
                            self.reindexed = True
                        if name in ("head", "nr"):
                            self.reheaded = True
        for name, saved in txn.mms.items():
            mm = world.mms.get(name)
            old_pt = saved.pt if saved is not None and saved.alive else {}
            new_pt = mm.pt if mm is not None and mm.alive else {}
            self.mms.add(name)
            if (saved is None or saved.alive != mm.alive or saved.n_regions != len(mm.regions)
                    or [(v.start, v.end, v.pgoff, v.anon_vma, v.avcs) for v in saved.vmas]
                    != [(v.start, v.end, v.pgoff, v.anon_vma, v.avcs) for v in mm.vmas]):
                self.mm_vmas.add(name)
            tables = self.tables.setdefault(name, set())
            for k in old_pt.keys() | new_pt.keys():
                o, e = old_pt.get(k), new_pt.get(k)
                if o is e:
                    continue
                self._delta(mem, o, e, mm.id if mm is not None else None)
                tables.add(k)
        for name, saved in txn.pins.items():
            pin = world.pins.get(name)
            if saved is not None and saved.active:
                self._pin(mem, saved, -1)
            if pin is not None and pin.active:
                self._pin(mem, pin, 1)
            self.pins_changed.add(name)

    def cloned(self, src, dst) -> None:
        """Give the clone a checker of its own that shares this one's census
        and caches until either changes them (a search clones a world for
        every statement it tries)."""
        new = ScopedChecker.__new__(ScopedChecker)
        for name in ("pte", "pmd", "pins", "refs", "_scope", "mmc", "rmap", "lost", "reheaded", "reindexed"):
            setattr(new, name, getattr(self, name))
        new.frames = list(self.frames)
        new.mms, new.mm_vmas = set(self.mms), set(self.mm_vmas)
        new.tables = {k: set(v) for k, v in self.tables.items()}
        new.pins_changed = set(self.pins_changed)
        new.renamed = list(self.renamed)
        new._shared = self._shared = True
        dst._t.listeners.append(new)

    def _unshare(self) -> None:
        """Copy what :meth:`cloned` shared, before changing it."""
        self._shared = False
        self.pte, self.pmd, self.pins, self.refs = (a.copy() for a in (self.pte, self.pmd, self.pins, self.refs))
        self._scope = np.zeros(len(self._scope), dtype=np.int32)
        self.rmap = {k: dict(v) for k, v in self.rmap.items()}
        self.lost = dict(self.lost)
        if self.mmc is not None:
            self.mmc = {k: dict(v) for k, v in self.mmc.items()}

    # -- checking -----------------------------------------------------------------
    def _runs(self, world):
        """The mappings rule_index must look at: those of changed page tables
        (every table of a process whose VMAs changed), or all of them when an
        existing page's index or head changed."""
        if self.reindexed:
            return None
        out = []
        for name, exts in self.tables.items():
            mm = world.mms.get(name)
            if mm is None or not mm.alive:
                continue
            keys = mm.pt.keys() if name in self.mm_vmas else exts
            for ext in keys:
                e = mm.pt.get(ext)
                if e is not None:
                    out.extend(_entry_runs(world, mm, ext, e))
        for name in self.mm_vmas:
            if name in self.tables:
                continue
            mm = world.mms.get(name)
            if mm is not None and mm.alive:
                for ext, e in mm.pt.items():
                    out.extend(_entry_runs(world, mm, ext, e))
        return out

    def _mm_counts(self, world, heads: np.ndarray) -> dict:
        """mm id -> entries of that mm mapping each of ``heads``, for every
        live mm (from the owner counts kept by :meth:`absorb`)."""
        if self.mmc is None:
            return self._mm_counts_scan(world, heads)
        k = len(heads)
        out = {mm.id: [0] * k for mm in world.alive_mms()}
        for i, h in enumerate(heads.tolist()):
            for mid, n in self.mmc.get(h, {}).items():
                out[mid][i] = n
        return out

    def _mm_counts_scan(self, world, heads: np.ndarray) -> dict:
        mem = world.mem
        scope = self._scope
        fr = _whole_pages(mem, heads)
        which = np.repeat(np.arange(1, len(heads) + 1, dtype=np.int32), mem.nr[heads].astype(np.int64))
        scope[fr] = which
        try:
            out = {}
            k = len(heads)
            for mm in world.alive_mms():
                cnt = np.zeros(k + 1, dtype=np.int64)
                for entry in mm.pt.values():
                    if type(entry) is Pmd:
                        cnt[scope[entry.head]] += 1
                    else:
                        q = scope[entry.pfn[entry.pfn >= 0]]
                        if len(q):
                            cnt += np.bincount(q, minlength=k + 1)
                out[mm.id] = cnt[1:]
            return out
        finally:
            scope[fr] = 0

    def _census(self, world) -> _Census:
        mem = world.mem
        if self.frames:
            # heads gathered when the changes were absorbed; a page split
            # since has its frames' new heads in scope too (head changed)
            heads = uniq(np.concatenate(self.frames))
            heads = uniq(mem.head[heads])
            heads = heads[mem.kind[heads] != KIND_ZERO].astype(np.int64)
        else:
            heads = np.zeros(0, dtype=np.int64)
        pf = _whole_pages(mem, heads)
        return _Census.of_frames(
            world, pf, self.pte[pf].astype(np.int64), self.pmd[pf].astype(np.int64),
            self.pins[pf].astype(np.int64), self.refs[pf].astype(np.int64), self._runs(world), self._mm_counts,
        )

    def check_counters(self, world, rules=CONSISTENCY_RULES) -> None:
        """The consistency rules on the pages changed since the last check."""
        c = self._census(world)
        for rule in rules:
            rule(world, c)

    def _renamed_tables(self, world) -> set:
        """(process, extent) of every entry mapping a frame whose name or
        ``page->mapping`` changed."""
        out: set = set()
        if not self.renamed:
            return out
        mem = world.mem
        fr = self.renamed + [_whole_pages(mem, uniq(np.concatenate([mem.head[f] for f in self.renamed]))
                                          .astype(np.int64))]
        mask = self._scope
        for f in fr:
            mask[f] = 1
        try:
            for mm in world.alive_mms():
                for ext, e in mm.pt.items():
                    if type(e) is Pmd:
                        hit = bool(mask[e.head : e.head + world.nr].any())
                    else:
                        hit = bool(mask[e.pfn[e.pfn >= 0]].any())
                    if hit:
                        out.add((mm.name, ext))
        finally:
            for f in fr:
                mask[f] = 0
        return out

    def check(self, world) -> dict[str, list[str]]:
        """What :func:`check` returns for ``world``; raises ThpvizDefect on an
        internal inconsistency of the pages the statements since the last
        check touched."""
        if self._shared:
            self._unshare()
        try:
            if self.reheaded and self.mmc is not None:
                # a page was split: count every page's owners again
                self.mmc = {}
                mem = world.mem
                for mm in world.alive_mms():
                    for entry in mm.pt.values():
                        if type(entry) is Pmd:
                            self._owners(mem, mm.id, mem.head[entry.head : entry.head + 1], 1)
                        else:
                            self._owners(mem, mm.id, entry.pfn[entry.pfn >= 0], 1)
            self.reheaded = False
            self.check_counters(world)
            out = {}
            lost = self._pin_lost(world)
            if lost:
                out["pin-lost"] = lost
            broken = self._rmap_broken(world)
            if broken:
                out["rmap-broken"] = broken
            return out
        finally:
            self._reset()

    def _pin_lost(self, world) -> list[str]:
        cache = self.lost
        everything = bool(self.renamed)
        for name in [k for k in cache if k not in world.pins]:
            del cache[name]
        out = []
        for name, pin in world.pins.items():
            if everything or name in self.pins_changed or pin.owner in self.mms or name not in cache:
                cache[name] = _pin_lost_one(world, pin)
            msg = cache[name]
            if msg:
                out.append(msg)
        return out

    def _rmap_broken(self, world) -> list[str]:
        cache = self.rmap
        redo = self._renamed_tables(world)
        for name in self.mms | self.mm_vmas:
            mm = world.mms.get(name)
            if mm is None or not mm.alive:
                cache.pop(name, None)
                continue
            if name in self.mm_vmas or name not in cache:
                cache[name] = {}
                redo.update((name, ext) for ext in mm.pt)
            else:
                per = cache[name]
                for ext in self.tables.get(name, ()):
                    per.pop(ext, None)
                    if ext in mm.pt:
                        redo.add((name, ext))
        for name, ext in redo:
            mm = world.mms[name]
            cache.setdefault(name, {})[ext] = _rmap_runs_broken(world, _entry_runs(world, mm, ext, mm.pt[ext]))
        out: list[str] = []
        for mm in world.alive_mms():
            per = cache.setdefault(mm.name, {})
            for ext, e in mm.pt.items():
                msgs = per.get(ext)
                if msgs is None:
                    msgs = per[ext] = _rmap_runs_broken(world, _entry_runs(world, mm, ext, e))
                out.extend(msgs)
        return out


def scoped_checker(world) -> ScopedChecker:
    """The world's :class:`ScopedChecker` (attached on first use)."""
    for listener in world._t.listeners:
        if type(listener) is ScopedChecker:
            return listener
    return ScopedChecker(world)
