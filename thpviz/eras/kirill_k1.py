"""Era ``kirill-k1``: Kirill Shutemov's proposal in the thread.

Source: https://lore.kernel.org/all/20160429005106.GB2847@node.shutemov.name/
(known only from quotes in Alex's reply
https://lore.kernel.org/all/20160428204542.5f2053f7@ul30vt.home/).  Never
merged.

Rule: 4.5, except that ``do_huge_pmd_wp_page`` reuses iff
``total_mapcount(head) == 1`` -- every PMD and PTE mapping of any part of the
THP together -- with no ``page_count`` test, so pins no longer force a copy
on the PMD path.  ``reuse_swap_page`` is untouched, so a PTE-mapped THP
subpage is still always copied; that is Andrea's objection in
https://lore.kernel.org/all/20160429163444.GM11700@redhat.com/.
"""

from __future__ import annotations

from . import counters as C
from .base import PmdDecision, pmd_fault_cost
from .v4_5 import Era45


class EraKirillK1(Era45):
    id = "kirill-k1"
    title = "Kirill's proposal: PMD reuse iff total_mapcount==1; PTE path as 4.5"
    kernel = "4.5 + thread patch (not merged)"
    commits: tuple[tuple[str, str], ...] = (("20160429005106.GB2847@node.shutemov.name", "thread message: total_mapcount() == 1 in do_huge_pmd_wp_page"),)

    def do_huge_pmd_wp_page(self, world, mm, h, unshare=False):
        mem = world.mem
        # total_mapcount: compound_mapcount, every subpage's _mapcount,
        # PageDoubleMap
        n = int(mem.nr[h])
        reuse = C.total_mapcount(mem, h) == 1
        return PmdDecision(reuse=reuse, cost=pmd_fault_cost(mem, h, reuse, n + 2, None))
