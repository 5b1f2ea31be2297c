"""Era ``4.5``: the THP refcounting redesign as released in Linux 4.5.

Commits: 53f9263baba6 "mm: rework mapcount accounting to enable 4k mapping of
THPs" (compound_mapcount, PageDoubleMap), ddc58f27f9ee "mm: drop tail page
refcounting", eef1b3ba053a "thp: implement split_huge_pmd()", e9b61f19858a
"thp: reintroduce split_huge_page()", and 1f25fe20a76a "mm, thp: adjust
conditions when we can reuse the page on WP fault" -- the commit Alex
Williamson's bisection pointed at
(https://lore.kernel.org/all/20160428102051.17d1c728@t450s.home/).

Rules (eras.md section 2, thread.md section 2(b)):

* A THP can be mapped by PMDs and PTEs at once.  ``split_huge_pmd`` splits one
  PMD into PTEs and never fails; ``split_huge_page`` splits the page itself
  and fails with -EBUSY while the page is pinned.
* ``do_huge_pmd_wp_page`` reuses iff ``page_mapcount(head) == 1`` **and**
  ``page_count(head) == 1``.  Every mapping holds a reference, so a count of
  one proves the PMD is the only mapping -- but a GUP pin also holds one, so
  a pinned THP is always copied (2 MB): the vfio regression.
* ``do_wp_page`` on a PTE-mapped THP subpage: ``reuse_swap_page`` refuses any
  PageTransCompound page, so the subpage is always copied (4 KiB).
* Order-0 pages: ``page_mapcount <= 1`` as before.
"""

from __future__ import annotations

from . import counters as C
from .base import Era, PmdDecision, WpBatch, pmd_fault_cost, thp_subpage_cost

COUNTERS_45 = frozenset(
    {"page_count", "page_mapcount", "mapcount", "total_mapcount", "compound_mapcount", "double_map",
     "mapping"}
)


class Era45(Era):
    id = "4.5"
    title = "redesign as released: PMD reuse needs page_mapcount==1 and page_count==1; reuse_swap_page refuses THP subpages"
    kernel = "v4.5 .. v4.6-rc7"
    commits: tuple[tuple[str, str], ...] = (
        ("53f9263baba6", "mm: rework mapcount accounting to enable 4k mapping of THPs"),
        ("ddc58f27f9ee", "mm: drop tail page refcounting"),
        ("1f25fe20a76a", "mm, thp: adjust conditions when we can reuse the page on WP fault"),
    )
    counters = COUNTERS_45

    def do_huge_pmd_wp_page(self, world, mm, h, unshare=False):
        mem = world.mem
        mapcount = C.page_mapcount(mem, h)
        reuse = mapcount == 1 and C.page_count(mem, h) == 1
        # __page_mapcount reads the head's _mapcount, then compound_mapcount
        # and PageDoubleMap in page[1]; && reads page_count (the head's
        # refcount) only when the mapcount is 1
        reads = 3 + (mapcount == 1)
        return PmdDecision(reuse=reuse, cost=pmd_fault_cost(mem, h, reuse, reads, frozenset({0, 1})))

    def do_wp_page_thp(self, world, mm, h, subs, unshare=False):
        # reuse_swap_page(): PageTransCompound -> false, for every subpage,
        # before any counter is read
        n = int(world.mem.nr[h])
        k = len(subs)
        return WpBatch.copies_then_reuse(k, k, cost=thp_subpage_cost(h, subs, k, 0, False, n))
