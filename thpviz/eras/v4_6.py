"""Era ``4.6``: the merged fix, 6d0a07edd17c "mm: thp: calculate the mapcount
correctly for THP pages during WP faults" (Andrea Arcangeli, 2016-05-12,
Cc: stable 4.5), posted as
https://lore.kernel.org/all/1462547040-1737-2-git-send-email-aarcange@redhat.com/
and reviewed by Kirill.  Valid until the 5.8 changes.

Rules:

* ``page_trans_huge_mapcount(page, &total)`` takes ``compound_head``; it
  returns ``max(mc) - DM + cmc`` -- the most mappers any one subpage has --
  and stores ``total_mapcount`` in ``*total``.
* ``do_huge_pmd_wp_page`` reuses iff the returned value is 1 (pins are
  ignored again); never moves the anon_vma.
* ``do_wp_page``: ``reuse_swap_page(page, &total)`` reuses iff the value is
  <= 1 and no longer refuses THP subpages; ``page_move_anon_rmap`` runs on
  ``compound_head(old_page)`` only when ``total == 1`` -- the "two counts"
  answer to Kirill's counterexample
  (https://lore.kernel.org/all/20160502152307.GA12310@redhat.com/).
* ``page_mapcount`` and ``total_mapcount`` are unchanged.

Decision (thpviz): this era includes Kirill's follow-up 0798d3c022dc "mm:
thp: avoid false positive VM_BUG_ON_PAGE in page_move_anon_rmap()"
(https://lore.kernel.org/all/1464253620-106404-1-git-send-email-kirill.shutemov@linux.intel.com/,
Fixes: 6d0a07edd17c; posted after v4.6 was released, merged for v4.7 and
tagged for 4.5 stable).  Without it a CONFIG_DEBUG_VM kernel trips an address
check when the single remaining mapping of a PTE-mapped THP is a tail
subpage; the check was wrong, not the behaviour, so the era does not report
``bug`` there.
"""

from __future__ import annotations

from . import counters as C
from .base import Era, PmdDecision, ThpBatch, max_based_batch, pmd_fault_cost, thp_subpage_cost
from .v4_5 import COUNTERS_45


class Era46(Era):
    id = "4.6"
    title = "merged fix: max-based count for reuse, total_mapcount==1 to move the anon_vma, compound_head"
    kernel = "v4.6 .. v5.7 (and 4.5.y stable)"
    commits = (
        ("6d0a07edd17c", "mm: thp: calculate the mapcount correctly for THP pages during WP faults"),
        ("0798d3c022dc", "mm: thp: avoid false positive VM_BUG_ON_PAGE in page_move_anon_rmap()"),
    )
    counters = COUNTERS_45 | {"page_trans_huge_mapcount"}

    def do_huge_pmd_wp_page(self, mem, h):
        # page_trans_huge_mapcount: every subpage's _mapcount, PageDoubleMap
        # and compound_mapcount
        n = int(mem.nr[h])
        reuse = C.page_trans_huge_mapcount(mem, h)[0] == 1
        return PmdDecision(reuse=reuse, cost=pmd_fault_cost(mem, h, reuse, n + 2, None))

    def do_wp_page_thp(self, mem, h, subs):
        n = int(mem.nr[h])
        n_cow, total = max_based_batch(mem, h, subs)
        # every fault, copy or reuse, runs page_trans_huge_mapcount again
        cost = thp_subpage_cost(h, subs, n_cow, n + 2, True, n)
        return ThpBatch(n_cow=n_cow, move=total == 1, cost=cost)
