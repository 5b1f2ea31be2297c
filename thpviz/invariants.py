"""Invariants checked after every step.

Violations a scenario can expect (DESIGN.md):

``pin-lost``     a pin or GUP reference points at page X while its owner's page
                 table maps another page (or nothing) at the same address, and
                 the owner did not unmap, discard or move that address itself.
``rmap-broken``  a present PMD or PTE that the rmap walk from its page's
                 ``page->mapping`` cannot reach.
``leak``         and ``bug`` are events raised while the step runs
                 (:mod:`thpviz.model.world`, the era modules).

Counter consistency is different: a mismatch is a defect of thpviz and raises
:class:`~thpviz.model.events.ThpvizDefect`.
"""

from __future__ import annotations

import numpy as np

from .model.events import ThpvizDefect
from .model.memmap import KIND_ZERO
from .model.mm import Pmd

STATE_VIOLATIONS = ("pin-lost", "rmap-broken")
EVENT_VIOLATIONS = ("leak", "bug")
VIOLATIONS = ("pin-lost", "rmap-broken", "leak", "bug")


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


def rmap_broken(world) -> list[str]:
    """Vectorised form of :meth:`World.rmap_walk` over all mappings: a
    mapping is reachable iff the anon_vma in ``page->mapping`` is linked to the
    VMA that maps it (and the page's index agrees with the VMA's offset, so
    ``vma_address`` finds it -- checked as an internal invariant)."""
    mem, nr = world.mem, world.nr
    out = []
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
                if not m.any():
                    continue
                p = pf[lo:hi][m]
                heads = mem.head[p]
                idx = mem.index[heads] + (p - heads)
                addrs = base + np.arange(lo, hi)[m]
                if (idx != vma.linear_page_index(addrs)).any():
                    raise ThpvizDefect(f"page index disagrees with the VMA offset in {mm.name}")
                ok = np.isin(mem.mapping[heads], np.array(vma.avcs, dtype=np.int64))
                if not ok.all():
                    i = int(np.nonzero(~ok)[0][0])
                    av = int(mem.mapping[heads[i]])
                    out.append(
                        f"{mm.name} maps {mem.name(p[i])} at {mm.describe(int(addrs[i]), int(addrs[i]) + 1)}"
                        f" but page->mapping is av{av}, not linked to that VMA "
                        f"({int((~ok).sum())} entr{'y' if (~ok).sum() == 1 else 'ies'})"
                    )
    return out


def check_counters(world) -> None:
    """Internal consistency: refcount = PMD maps + PTE maps + pins on the
    head, tails hold no references, ``_mapcount`` = PTE maps (+1 with
    PageDoubleMap), compound mapcount = PMD maps, PageDoubleMap only while a
    PMD maps the page.  Raises ThpvizDefect."""
    mem = world.mem
    size = mem.size
    pte = np.zeros(size, dtype=np.int64)
    pmd = np.zeros(size, dtype=np.int64)
    for mm in world.alive_mms():
        for entry in mm.pt.values():
            if isinstance(entry, Pmd):
                pmd[entry.head] += 1
            else:
                p = entry.pfn[entry.pfn >= 0]
                np.add.at(pte, p, 1)
    pins = np.zeros(size, dtype=np.int64)
    for pin in world.pins.values():
        if pin.active:
            np.add.at(pins, pin.pfns, 1)
    real = mem.kind[:size] != KIND_ZERO
    if not np.array_equal(pins[real], mem.pins[:size][real]):
        raise ThpvizDefect("per-frame pin bookkeeping disagrees with the pins held")
    pf = np.arange(size)
    head = mem.head[:size]
    is_start = (head == pf) & real
    starts = pf[is_start]
    dm = mem.double_map[:size][head]
    if not np.array_equal(mem.mapcount[:size][real], (pte + dm)[real]):
        bad = pf[real][mem.mapcount[:size][real] != (pte + dm)[real]][0]
        raise ThpvizDefect(
            f"_mapcount of {mem.name(bad)} is {mem.mapcount[bad]}, page tables say {pte[bad] + dm[bad]}"
        )
    if not np.array_equal(mem.cmc[starts], pmd[starts]):
        raise ThpvizDefect("compound_mapcount disagrees with the PMDs that map the page")
    if (mem.double_map[starts] & (mem.cmc[starts] < 1)).any():
        raise ThpvizDefect("PageDoubleMap set on a page no PMD maps")
    # reduceat sums each page's frames up to the next page start; the zero
    # pages in between are masked out
    contrib = np.where(real, pte + pins, 0)
    seg = np.add.reduceat(contrib, starts) if len(starts) else np.zeros(0, np.int64)
    expect = seg + pmd[starts]
    if not np.array_equal(mem.refcount[starts], expect):
        i = int(np.nonzero(mem.refcount[starts] != expect)[0][0])
        h = int(starts[i])
        raise ThpvizDefect(
            f"page_count of {mem.name(h)} is {mem.refcount[h]}, mappings and pins say {expect[i]}"
        )
    tails = real & (head != pf)
    if mem.refcount[:size][tails].any():
        raise ThpvizDefect("a tail page holds references")
    if not np.array_equal(mem.refcount[starts] == 0, mem.freed[starts]):
        raise ThpvizDefect("freed flag disagrees with the refcount")


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
