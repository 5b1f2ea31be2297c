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

Kirill's review found both problems.  What ``bug`` means here, on a tail
page: a CONFIG_DEBUG_VM kernel stops at the VM_BUG_ON (the fault never
completes); thpviz reports ``bug`` and then continues *as if
``compound_head`` had been applied*, which is what the author intended, so
the run can go on to show the second problem.  Without DEBUG_VM the literal
patch neither stops nor does that: it computes the count from the tail and
``page_move_anon_rmap`` writes the *tail's* ``->mapping`` (a field the tail
does not own), corrupting that struct page's state -- thpviz does not model
that corruption.  The second problem needs no tail page at all: after fork,
split and munmap of opposite halves, the always-on ``page_move_anon_rmap``
hands the page to an anon_vma whose tree misses the other process's PTEs
(``rmap-broken``); the head-page variant of Kirill's layout
(data/scenarios/counterexample/split-fork-unmap-halves-child-writes-head.thp)
shows it without any ``bug``.
"""

from __future__ import annotations

from .base import MaxBasedEra, WpBatch
from .v4_5 import COUNTERS_45


class EraAndreaV1(MaxBasedEra):
    id = "andrea-v1"
    title = "Andrea's v1: page_trans_huge_mapcount()==1 in both paths, always page_move_anon_rmap, no compound_head"
    kernel = "4.6-rc + 74f1fd7f (posted 2016-04-29, superseded)"
    commits: tuple[tuple[str, str], ...] = (("74f1fd7f", "mm: thp: calculate the mapcount correctly for THP pages during WP faults (v1)"),)
    counters = COUNTERS_45 | {"page_trans_huge_mapcount"}

    def do_wp_page_thp(self, world, mm, h, subs, unshare=False):
        mem = world.mem
        n_cow, _total, cost = self.max_based_thp(world, h, subs)
        tails = subs[subs != 0]
        bug = None
        if len(tails):
            bug = (
                f"do_wp_page handed tail page {mem.name(h + int(tails[0]))} to "
                "page_trans_huge_mapcount()/page_move_anon_rmap(): VM_BUG_ON_PAGE(PageTail) "
                "stops a CONFIG_DEBUG_VM kernel here (thpviz continues as if compound_head had "
                "been applied; without DEBUG_VM the patch would write the tail's ->mapping)"
            )
        return WpBatch.copies_then_reuse(len(subs), n_cow, move=True, bug=bug, cost=cost)
