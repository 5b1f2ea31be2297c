"""Era ``5.18``: the PMD path reuses only an unreferenced THP.

Commits (v5.18, David Hildenbrand's "COW fixes part 1"):

* 3bff7e3f1f16 "mm/huge_memory: streamline COW logic in
  do_huge_pmd_wp_page()": reuse iff the folio refcount is 1, otherwise split
  the PMD and fall back to PTE level, which will copy.  This closes the THP
  side of CVE-2020-29374 -- and loses the pin of a pinned THP whose PMD is
  write-protected, as 4.5 did, until 5.19.
* 55c62fa7c533 "mm/huge_memory: remove stale page_trans_huge_mapcount()",
  03104c2c5db8 "mm/swapfile: remove stale reuse_swap_page()".

Everything else as 5.9.  No ``page_move_anon_rmap`` on reuse [derived: the
call came back with PageAnonExclusive in 5.19].
"""

from __future__ import annotations

from .base import PmdDecision, pmd_fault_cost
from .v5_9 import Era59


class Era518(Era59):
    id = "5.18"
    title = "PMD reuse needs the folio refcount == 1, else split + PTE fallback"
    kernel = "v5.18"
    commits: tuple[tuple[str, str], ...] = (
        ("3bff7e3f1f16", "mm/huge_memory: streamline COW logic in do_huge_pmd_wp_page()"),
        ("55c62fa7c533", "mm/huge_memory: remove stale page_trans_huge_mapcount()"),
        ("03104c2c5db8", "mm/swapfile: remove stale reuse_swap_page()"),
    )
    counters = Era59.counters - {"page_trans_huge_mapcount"}

    def do_huge_pmd_wp_page(self, world, mm, h, unshare=False):
        mem = world.mem
        reuse = int(mem.refcount[h]) == 1
        return PmdDecision(reuse=reuse, fallback=not reuse, cost=pmd_fault_cost(mem, h, True, 1, frozenset({0})))
