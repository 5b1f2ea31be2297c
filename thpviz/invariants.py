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
"""

from __future__ import annotations

import numpy as np

from .model.events import ThpvizDefect
from .model.memmap import KIND_ZERO
from .model.mm import Pmd

STATE_VIOLATIONS = ("pin-lost", "rmap-broken")
EVENT_VIOLATIONS = ("leak", "stray-write", "bug")
VIOLATIONS = ("pin-lost", "rmap-broken", "leak", "stray-write", "bug")


def pin_lost(world) -> list[str]:
    out = []
    for pin in world.pins.values():
        if not pin.active:
            continue
        mm = world.mms[pin.owner]
        if not mm.alive:
            continue
        live = ~pin.excused
        if not live.any():
            continue
        cur = world.lookup(mm, pin.vas[live])
        bad = cur != pin.pfns[live]
        if bad.any():
            i = int(np.nonzero(bad)[0][0])
            va = int(pin.vas[live][i])
            now = int(cur[i])
            out.append(
                f"{pin.name}: device holds {world.mem.name(pin.pfns[live][i])}, "
                f"{mm.name} maps {world.mem.name(now) if now >= 0 else 'nothing'} at "
                f"{mm.describe(va, va + 1)} ({int(bad.sum())} subpage(s))"
            )
    return out


def _mapped_runs(world):
    """Every present, non-zero-page mapping as (mm, vma, addrs, pfns)."""
    mem, nr = world.mem, world.nr
    for mm in world.alive_mms():
        for ext, entry in mm.pt.items():
            base = ext * nr
            if isinstance(entry, Pmd):
                if mem.kind[entry.head] == KIND_ZERO:
                    continue
                pf = np.arange(entry.head, entry.head + nr)
            else:
                pf = entry.pfn
            present = (pf >= 0) & (mem.kind[np.maximum(pf, 0)] != KIND_ZERO)
            if not present.any():
                continue
            for vma in mm.vmas_in(base, base + nr):
                lo, hi = max(vma.start, base) - base, min(vma.end, base + nr) - base
                m = present[lo:hi]
                if m.any():
                    yield mm, vma, base + np.arange(lo, hi)[m], pf[lo:hi][m]


def rmap_broken(world) -> list[str]:
    """Vectorised form of :meth:`World.rmap_walk` over all mappings: a
    mapping is reachable iff the anon_vma in ``page->mapping`` is linked to the
    VMA that maps it."""
    mem = world.mem
    out = []
    for mm, vma, addrs, p in _mapped_runs(world):
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


# --------------------------------------------------------------- consistency
class _Census:
    """What the page tables and the pins say, counted once per check."""

    def __init__(self, world):
        mem = world.mem
        size = mem.size
        self.size = size
        self.pte = np.zeros(size, dtype=np.int64)
        self.pmd = np.zeros(size, dtype=np.int64)
        for mm in world.alive_mms():
            for entry in mm.pt.values():
                if isinstance(entry, Pmd):
                    self.pmd[entry.head] += 1
                else:
                    np.add.at(self.pte, entry.pfn[entry.pfn >= 0], 1)
        self.pins = np.zeros(size, dtype=np.int64)
        self.refs = np.zeros(size, dtype=np.int64)
        for pin in world.pins.values():
            if pin.active:
                np.add.at(self.pins if pin.kind == "pin" else self.refs, pin.pfns, 1)
        self.real = mem.kind[:size] != KIND_ZERO
        self.pf = np.arange(size)
        self.head = mem.head[:size]
        self.starts = self.pf[(self.head == self.pf) & self.real]


def rule_pin_bookkeeping(world, c: _Census) -> None:
    """Per-frame ``pins``/``refs`` equal the active pins and references."""
    mem, real = world.mem, c.real
    if not np.array_equal(c.pins[real], mem.pins[: c.size][real]):
        raise ThpvizDefect("per-frame pin bookkeeping disagrees with the pins held")
    if not np.array_equal(c.refs[real], mem.refs[: c.size][real]):
        raise ThpvizDefect("per-frame reference bookkeeping disagrees with the references held")


def rule_mapcount(world, c: _Census) -> None:
    """``_mapcount`` = PTE mappings (+1 while PageDoubleMap is set)."""
    mem, real = world.mem, c.real
    dm = mem.double_map[: c.size][c.head].astype(np.int64)
    want = (c.pte + dm)[real]
    got = mem.mapcount[: c.size][real]
    if not np.array_equal(got, want):
        bad = c.pf[real][got != want][0]
        raise ThpvizDefect(
            f"_mapcount of {mem.name(bad)} is {mem.mapcount[bad]}, page tables say {c.pte[bad] + dm[bad]}"
        )


def rule_compound_mapcount(world, c: _Census) -> None:
    """compound (entire) mapcount = PMD mappings."""
    mem = world.mem
    if not np.array_equal(mem.cmc[c.starts], c.pmd[c.starts]):
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
    seg = np.add.reduceat(contrib, starts) if len(starts) else np.zeros(0, np.int64)
    expect = seg + c.pmd[starts]
    if not np.array_equal(mem.refcount[starts], expect):
        i = int(np.nonzero(mem.refcount[starts] != expect)[0][0])
        h = int(starts[i])
        raise ThpvizDefect(
            f"page_count of {mem.name(h)} is {mem.refcount[h]}, mappings and pins say {expect[i]}"
        )
    tails = c.real & (c.head != c.pf)
    if mem.refcount[: c.size][tails].any():
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
    for mm, vma, addrs, p in _mapped_runs(world):
        heads = mem.head[p]
        idx = mem.index[heads] + (p - heads)
        if (idx != vma.linear_page_index(addrs)).any():
            raise ThpvizDefect(f"page index disagrees with the VMA offset in {mm.name}")


def rule_anon_exclusive(world, c: _Census) -> None:
    """PageAnonExclusive (5.19+) only on a page one mapping maps: a PMD-mapped
    THP with an exclusive head has exactly one PMD and no PTE mapping; a
    PTE-mapped exclusive subpage has at most one PTE."""
    mem = world.mem
    excl = mem.anon_exclusive[: c.size]
    if excl.any() and not world.era.has_anon_exclusive:
        raise ThpvizDefect(f"PageAnonExclusive set in era {world.era.id}, which has none")
    for h in c.starts[excl[c.starts] & (mem.cmc[c.starts] > 0)]:
        n = int(mem.nr[h])
        if mem.cmc[h] != 1 or c.pte[h : h + n].any():
            raise ThpvizDefect(f"{mem.name(h)} is marked exclusive but mapped more than once")
    pmd_mapped = mem.cmc[c.head] > 0
    bad = excl & ~pmd_mapped & c.real & (c.pte > 1)
    if bad.any():
        raise ThpvizDefect(f"{mem.name(int(np.nonzero(bad)[0][0]))} is marked exclusive but mapped twice")


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
    per_mm = {}
    for mm in world.alive_mms():
        cnt = np.zeros(c.size, dtype=np.int64)
        for entry in mm.pt.values():
            if isinstance(entry, Pmd):
                cnt[entry.head] += 1
            else:
                p = entry.pfn[entry.pfn >= 0]
                np.add.at(cnt, mem.head[p], 1)
        per_mm[mm.id] = cnt
    for h in c.starts[mem.nr[c.starts] > 1]:
        h = int(h)
        ids = [int(mem.slot_mm[h]), int(mem.slot_mm2[h])]
        cnts = [int(mem.slot_count[h]), int(mem.slot_count2[h])]
        for i, n in zip(ids, cnts):
            if i == 0:
                if n:
                    raise ThpvizDefect(f"free owner slot of {mem.name(h)} counts {n} mappings")
                continue
            have = per_mm.get(i)
            if have is None or n > have[h] or n <= 0:
                raise ThpvizDefect(f"owner slot of {mem.name(h)} says mm {i} maps it {n} times")
        if ids[0] and ids[0] == ids[1]:
            raise ThpvizDefect(f"both owner slots of {mem.name(h)} name mm {ids[0]}")
        mappers = [i for i, cnt in per_mm.items() if cnt[h] > 0]
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
