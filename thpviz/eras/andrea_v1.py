"""Era ``andrea-v1``: Andrea Arcangeli's v1 patch, 74f1fd7f "mm: thp:
calculate the mapcount correctly for THP pages during WP faults", posted
2016-04-29 (https://lore.kernel.org/all/20160429163444.GM11700@redhat.com/;
the patch body survives only in quotes, e.g. Kirill's review
https://lore.kernel.org/all/20160502104119.GA23305@node.shutemov.name/ and the
seed message).

Rules:

* New ``page_trans_huge_mapcount(page)`` = ``max(mc) - DM + cmc`` for a THP
  head (its own mapcount for an order-0 page).  It asserts (VM_BUG_ON) that it
  is not handed a tail page and does not apply ``compound_head``.
* ``do_huge_pmd_wp_page`` reuses iff that value is 1; no ``page_count`` test.
* ``reuse_swap_page`` uses the same value (<= 1) and no longer refuses THP
  subpages.  ``do_wp_page`` passes the subpage it faulted on -- a tail page
  for any subpage but the first -- and on reuse always calls
  ``page_move_anon_rmap``, which moves the *whole compound page* to the
  faulting VMA's anon_vma.

Kirill's review found both problems: the tail page (reported here as ``bug``;
thpviz then continues as the author intended, as if ``compound_head`` had
been applied) and the unconditional anon_vma move, which after fork, split
and munmap of halves hands the page to the child's anon_vma so the parent's
PTEs become unreachable (``rmap-broken``).
"""

from __future__ import annotations

from . import counters as C
from .base import Era, PmdDecision, ThpBatch, max_based_batch, pmd_fault_cost, thp_subpage_cost
from .v4_5 import COUNTERS_45


class EraAndreaV1(Era):
    id = "andrea-v1"
    title = "Andrea's v1: page_trans_huge_mapcount()==1 in both paths, always page_move_anon_rmap, no compound_head"
    kernel = "4.6-rc + 74f1fd7f (posted 2016-04-29, superseded)"
    commits = (("74f1fd7f", "mm: thp: calculate the mapcount correctly for THP pages during WP faults (v1)"),)
    counters = COUNTERS_45 | {"page_trans_huge_mapcount"}

    def do_huge_pmd_wp_page(self, mem, h):
        # page_trans_huge_mapcount: every subpage's _mapcount, PageDoubleMap
        # and compound_mapcount
        n = int(mem.nr[h])
        reuse = C.page_trans_huge_mapcount(mem, h)[0] == 1
        return PmdDecision(reuse=reuse, cost=pmd_fault_cost(mem, h, reuse, n + 2, None))

    def do_wp_page_thp(self, mem, h, subs):
        n = int(mem.nr[h])
        n_cow, _total = max_based_batch(mem, h, subs)
        tails = subs[subs != 0]
        bug = None
        if len(tails):
            bug = (
                f"do_wp_page handed tail page {mem.name(h + int(tails[0]))} to "
                "page_trans_huge_mapcount()/page_move_anon_rmap() (VM_BUG_ON_PAGE(PageTail))"
            )
        # every fault scans the whole THP (as the author intended, from the head)
        cost = thp_subpage_cost(h, subs, n_cow, n + 2, True, n)
        return ThpBatch(n_cow=n_cow, move=True, bug=bug, cost=cost)
