"""Era ``6.15``: large folios know their owners; PTE-mapped THPs are reused.

Commits (v6.15, David Hildenbrand):

* 6af8cb80d3a9 "mm/rmap: basic MM owner tracking for large folios
  (!hugetlb)" (CONFIG_MM_ID): every large folio keeps two (mm id, mappings
  of that mm) slots and a "maybe mapped shared" bit, updated by
  ``folio_add_large_mapcount`` / ``folio_sub_large_mapcount`` on every map and
  unmap (the algorithm is in :meth:`thpviz.model.world.World._slots_change`).
  Exact for up to two mms; with three or more the bit can stay set after
  only one mm is left.
* 1da190f4d0a6 "mm: Copy-on-Write (COW) reuse support for PTE-mapped THP":
  ``__wp_can_reuse_large_anon_folio`` reuses a non-exclusive subpage of a
  PTE-mapped large folio iff the large mapcount is above 1, the bit is
  clear, and every reference is a mapping (large mapcount == refcount: no
  pins, no GUP references, no swap cache); the page is then marked exclusive.
  The anon_vma is not moved (that came after 6.15).  The same test serves
  unshare faults.

And two changes from before 6.15 that are not about COW, but change which
page a later fault maps -- one from v6.13 (Dev Jain):

* 1ced09e0331f "mm: allocate THP on hugezeropage wp-fault": a write or
  unshare fault on the huge zero PMD (``do_huge_pmd_wp_page`` ->
  ``do_huge_zero_wp_pmd``) maps a new, exclusive, writable THP by PMD
  instead of splitting the PMD and faulting on the small zero page (5.8 to
  6.12); the split is only the fallback when the allocation fails.  Seen on
  the Linux 6.18 host (docs/live-lab.md: a read, then a write, gives one
  fault and a PMD-mapped THP).

and one from v6.14 (Qi Zheng):

* 6375e95f381e "mm: pgtable: reclaim empty PTE page in madvise(MADV_DONTNEED)"
  (with CONFIG_PT_RECLAIM, which x86-64 supports from 4817f70c25b6; that the
  option is on is observed on the 6.18 host, not read from a Kconfig): a
  MADV_DONTNEED that empties a PTE table over its whole 2 MiB range, inside
  one VMA, frees the table, so the next fault there can map a new THP by PMD
  where 6.12 fills the empty table with 4 KiB pages.  Seen on the 6.18 host.

PMD, order-0, fork, GUP and unsharing are otherwise 6.12's (the 6.0/6.2
mprotect upgrades included).  The live lab on this project's Linux 6.18
host judges this era (nothing between 6.15 and 6.18 is known to change
these decisions).
"""

from __future__ import annotations

import numpy as np

from .base import WpBatch, pte_fault_cost
from .v6_12 import Era612


class Era615(Era612):
    id = "6.15"
    title = ("large folios: per-folio mapcounts, two owner slots and a 'maybe mapped shared' bit; "
             "PTE-mapped reuse by folio; includes the 6.0/6.2 mprotect write-upgrade")
    kernel = "v6.15 .. (Linux 6.18 observed)"
    commits: tuple[tuple[str, str], ...] = (
        ("6af8cb80d3a9", "mm/rmap: basic MM owner tracking for large folios (!hugetlb)"),
        ("1da190f4d0a6", "mm: Copy-on-Write (COW) reuse support for PTE-mapped THP"),
        ("64fe24a3e05e", "mm/mprotect: try avoiding write faults for exclusive anonymous pages when changing protection"),
        ("c27f479ef542", "mm/huge_memory: try avoiding write faults when changing PMD protection"),
        ("1ced09e0331f", "mm: allocate THP on hugezeropage wp-fault"),
        ("6375e95f381e", "mm: pgtable: reclaim empty PTE page in madvise(MADV_DONTNEED)"),
    )
    counters = Era612.counters | {"maybe_shared"}
    tracks_mm_ids = True
    huge_zero_wp_thp = True
    dontneed_frees_pte_table = True

    def do_wp_page_thp(self, world, mm, h, subs, unshare=False):
        """Exclusive subpages reuse.  For the others the answer of
        ``__wp_can_reuse_large_anon_folio`` cannot change within one run of
        faults: a reuse changes no counter, and a copy lowers the large
        mapcount and the refcount together (keeping them equal or not) while
        the faulting mm still maps the rest of the run, so neither the bit
        nor "large mapcount > 1" turns in favour of reuse."""
        mem = world.mem
        excl = mem.anon_exclusive[h + subs]
        lmc = world.large_mapcount(h)
        ok = lmc > 1 and not mem.maybe_shared[h] and lmc == int(mem.refcount[h])
        by_folio = ~excl & ok
        reuse = excl | by_folio
        k = len(subs)
        side = 1 + (np.asarray(subs) != 0)
        return WpBatch(reuse, np.zeros(k, np.bool_), by_folio, None, pte_fault_cost(~reuse, 3, side, side))
