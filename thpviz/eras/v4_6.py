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

The two DEBUG_VM-only follow-ups are included, so this era never reports
``bug`` for that check:

* 0798d3c022dc "mm: thp: avoid false positive VM_BUG_ON_PAGE in
  page_move_anon_rmap()" (Kirill,
  https://lore.kernel.org/all/1464253620-106404-1-git-send-email-kirill.shutemov@linux.intel.com/,
  Fixes: 6d0a07edd17c; merged for v4.7, tagged for 4.5 stable): when the
  single remaining mapping of a PTE-mapped THP is a tail subpage,
  ``page_move_anon_rmap`` checked the tail's address against the head's; the
  fix aligned the address to the huge page.
* Hugh Dickins' refix
  (https://lore.kernel.org/all/alpine.LSU.2.11.1607120444540.12528@eggly.anvils/,
  July 2016): the aligned check still fired when the VMA starts inside the
  THP (the aligned address lies before ``vm_start``), so he removed the
  address check altogether.  The check was wrong, not the behaviour.
"""

from __future__ import annotations

from .base import MaxBasedEra, WpBatch
from .v4_5 import COUNTERS_45


class Era46(MaxBasedEra):
    id = "4.6"
    title = "merged fix: max-based count for reuse, total_mapcount==1 to move the anon_vma, compound_head"
    kernel = "v4.6 .. v5.7 (and 4.5.y stable)"
    commits: tuple[tuple[str, str], ...] = (
        ("6d0a07edd17c", "mm: thp: calculate the mapcount correctly for THP pages during WP faults"),
        ("0798d3c022dc", "mm: thp: avoid false positive VM_BUG_ON_PAGE in page_move_anon_rmap()"),
        ("alpine.LSU.2.11.1607120444540.12528@eggly.anvils",
         "Hugh Dickins' refix: remove page_move_anon_rmap()'s address check (thread message)"),
    )
    counters = COUNTERS_45 | {"page_trans_huge_mapcount"}

    def do_wp_page_thp(self, world, mm, h, subs, unshare=False):
        n_cow, total, cost = self.max_based_thp(world, h, subs)
        return WpBatch.copies_then_reuse(len(subs), n_cow, move=total == 1, cost=cost)
