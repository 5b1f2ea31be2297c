"""Era ``6.12``: 6.1 plus the PMD write-upgrade, folio counters, no
PageDoubleMap -- judged live.

Changes over 6.1 (read in Debian's 6.12.117 tree, checked against that
kernel booted under QEMU; research notes kernel-6.12.md):

* c27f479ef542 "mm/huge_memory: try avoiding write faults when changing PMD
  protection" (v6.2): ``change_huge_pmd`` maps an exclusive anonymous PMD
  writable when mprotect makes the VMA writable.
* ``can_change_pte_writable`` no longer needs a dirty PTE for private
  anonymous memory (Nadav Amit's "mm/mprotect: allow clean exclusive anon
  pages to be writable", in the same v6.2 series; mainline id not verified),
  and 5436d6556937 (v6.4) carries the PMD's dirty bit over to the PTEs of a
  split again.
* 84209e87c696 "mm/gup: reliable R/O long-term pinning in COW mappings"
  (v6.2; id from a quote, unverified): a read-only long-term pin of the zero
  page in a private mapping unshares it -- the pin lands on a new anonymous
  page, mapped read-only.
* Hugh Dickins' "mm,thp,rmap: simplify compound page mapcount handling"
  (v6.2): PageDoubleMap and its +1 on every subpage are gone; a subpage's
  ``_mapcount`` counts its PTEs only.  The folio keeps ``_entire_mapcount``
  and (from 6.10, 05c5323b2a34) ``_large_mapcount``.  ``page_mapcount`` and
  ``total_mapcount`` no longer exist as functions; thpviz answers them with
  the same quantities (``folio_precise_page_mapcount``, ``folio_mapcount``).
* ``wp_can_reuse_anon_folio`` refuses every large folio: a PTE-mapped THP
  subpage that is not exclusive is always copied, even as the last mapping.
"""

from __future__ import annotations

import numpy as np

from .base import WpBatch, pte_fault_cost
from .v6_1 import Era61


class Era612(Era61):
    id = "6.12"
    title = ("6.1 plus the PMD mprotect write-upgrade and a PTE upgrade that needs only an exclusive page; "
             "still no reuse of non-exclusive PTE-mapped large folios")
    kernel = "v6.12 (Debian 6.12.117, long-term)"
    commits: tuple[tuple[str, str], ...] = (
        ("c27f479ef542", "mm/huge_memory: try avoiding write faults when changing PMD protection"),
        ("5436d6556937", "mm/huge_memory: revert the partial revert of the dirty carry-over at PMD split"),
        ("84209e87c696", "mm/gup: reliable R/O long-term pinning in COW mappings (id unverified)"),
        ("05c5323b2a34", "mm: track mapcount of large folios in single value"),
    )
    counters = (Era61.counters - {"double_map"}) | {"large_mapcount"}
    has_double_map = False
    split_keeps_dirty = True
    mprotect_upgrade_pte = "exclusive"
    mprotect_upgrade_pmd = True
    unshare_zero_page = True

    def do_wp_page_thp(self, world, mm, h, subs, unshare=False):
        # PageAnonExclusive -> reuse; wp_can_reuse_anon_folio: large -> false
        reuse = world.mem.anon_exclusive[h + subs].copy()
        k = len(subs)
        side = 1 + (np.asarray(subs) != 0)
        return WpBatch(reuse, np.zeros(k, np.bool_), np.zeros(k, np.bool_), None,
                       pte_fault_cost(~reuse, 1, side, side))
