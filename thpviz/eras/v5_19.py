"""Era ``5.19``: PageAnonExclusive -- reliable pins on anonymous memory.

Commits (v5.19, David Hildenbrand's "COW fixes part 2: reliable GUP pins of
anonymous pages"; placement in modern-eras.md §0):

* 6c287605fd56 "mm: remember exclusively mapped anonymous pages with
  PG_anon_exclusive": set on a new anonymous page or THP, on a COW copy, on
  reuse and on unshare; for a PMD-mapped THP on the head, copied to every
  subpage when the PMD is split; cleared only by fork (and KSM/swap, not
  modelled).  A write fault on an exclusive page reuses it at once.
* c89357e27f20 "mm: support GUP-triggered unsharing of anonymous pages"
  (FAULT_FLAG_UNSHARE) and a7f226604170 "mm/gup: trigger FAULT_FLAG_UNSHARE
  when R/O-pinning a possibly shared anonymous page": a read-only FOLL_PIN of
  an anonymous page that is not exclusive first takes an unshare fault --
  the same decision as a write fault, but the entry stays read-only.
* fork (fb3d824d1a46 "mm/rmap: split page_dup_rmap() into
  page_dup_file_rmap() and page_try_dup_anon_rmap()", same series): an
  exclusive page that may be pinned cannot be shared -- the child gets a
  copy (a pinned PMD is split first); any other page loses its exclusive
  mark and is shared.  ``copy_present_pte`` now takes its own reference
  before that check, so an order-0 page looks pinned one reference earlier
  than in 5.9-5.18.

Write-fault rules (``do_huge_pmd_wp_page`` and ``do_wp_page``, read in the
6.1 tree, which has the same shape): exclusive -> reuse; otherwise reuse
(``page_move_anon_rmap``, mark exclusive) only if the folio refcount is 1;
otherwise a PMD is split and the fault falls back to its PTE, and a PTE is
copied.  For a PTE-mapped THP subpage the refcount is the folio's, so it is
reused only as the folio's last mapping.  The anon_vma reuse rule at fork is
still ``degree < 2`` (2555283eb40d came with 6.0).
"""

from __future__ import annotations

import numpy as np

from .base import PmdDecision, WpBatch, pmd_fault_cost, pte_fault_cost
from .v5_18 import Era518


def exclusive_or_refcount_batch(world, h: int, subs: np.ndarray):
    """Closed form for PTE faults on THP ``h`` decided by "exclusive, or the
    folio refcount is 1": exclusive subpages reuse without changing a counter;
    the j-th non-exclusive one sees the refcount lowered by the j copies before
    it, so only ``j == R - 1`` can reuse (and then moves and marks)."""
    mem = world.mem
    excl = mem.anon_exclusive[h + subs]
    reuse = excl.copy()
    last = np.zeros(len(subs), dtype=np.bool_)
    non = np.nonzero(~excl)[0]
    j = int(mem.refcount[h]) - 1
    if 0 <= j < len(non):
        last[non[j]] = True
    return reuse | last, last


class Era519(Era518):
    id = "5.19"
    title = "PageAnonExclusive; R/O pins unshare; fork shares only non-exclusive or unpinned pages"
    kernel = "v5.19"
    commits: tuple[tuple[str, str], ...] = (
        ("6c287605fd56", "mm: remember exclusively mapped anonymous pages with PG_anon_exclusive"),
        ("c89357e27f20", "mm: support GUP-triggered unsharing of anonymous pages"),
        ("a7f226604170", "mm/gup: trigger FAULT_FLAG_UNSHARE when R/O-pinning a possibly shared anonymous page"),
        ("fb3d824d1a46", "mm/rmap: split page_dup_rmap() into page_dup_file_rmap() and page_try_dup_anon_rmap()"),
    )
    counters = Era518.counters | {"anon_exclusive"}
    has_anon_exclusive = True
    unshare_ro_pins = True

    # -- fork: page_try_dup_anon_rmap ------------------------------------------
    def copy_huge_pmd(self, world, mm, h):
        mem = world.mem
        if not mem.anon_exclusive[h]:
            return "share"
        if self.needs_cow_for_dma(world, mm, np.array([h]))[0]:
            return "split"
        mem.w.anon_exclusive[h] = False
        return "share"

    def copy_pte_range(self, world, mm, pfns):
        """``copy_present_pte`` takes its reference (``get_page``) before
        ``page_try_dup_anon_rmap`` asks ``page_needs_cow_for_dma``, so an
        order-0 page counts one more reference than in 5.9-5.18: 1022
        vmsplice references on a mapped page look pinned (the threshold
        observed on Linux 6.18, docs/live-lab.md)."""
        mem = world.mem
        excl = mem.anon_exclusive[pfns]
        copy = excl & self.needs_cow_for_dma(world, mm, pfns, extra=1)
        mem.w.anon_exclusive[pfns[excl & ~copy]] = False
        return copy

    # -- write and unshare faults ----------------------------------------------
    def do_huge_pmd_wp_page(self, world, mm, h, unshare=False):
        mem = world.mem
        cost = pmd_fault_cost(mem, h, True, 2, frozenset({0}))
        if mem.anon_exclusive[h]:
            return PmdDecision(reuse=True, cost=cost)
        if int(mem.refcount[h]) == 1:
            return PmdDecision(reuse=True, move=True, exclusive=True, cost=cost)
        return PmdDecision(reuse=False, fallback=True, cost=cost)

    def do_wp_page_order0(self, world, mm, pfns, unshare=False):
        mem = world.mem
        excl = mem.anon_exclusive[pfns]
        by_count = ~excl & (mem.refcount[pfns] == 1)
        reuse = excl | by_count
        return WpBatch(reuse, by_count, by_count, None, pte_fault_cost(~reuse, 2, 1, 1))

    def do_wp_page_thp(self, world, mm, h, subs, unshare=False):
        reuse, by_count = exclusive_or_refcount_batch(world, h, subs)
        side = 1 + (np.asarray(subs) != 0)
        return WpBatch(reuse, by_count, by_count, None, pte_fault_cost(~reuse, 2, side, side))
