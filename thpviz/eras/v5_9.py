"""Era ``5.9``: reuse only what nobody else holds; fork copies pinned pages.

Commits (v5.9; modern-eras.md §0 places 09854ba94c6a in 5.9, not 5.8):

* 09854ba94c6a "mm: do_wp_page() simplification" (Linus Torvalds): a write
  fault on a write-protected PTE reuses the page only if ``page_count == 1``
  and ``page_mapcount == 1`` -- for a PTE-mapped THP subpage ``page_count`` is
  the folio's refcount, which counts every mapped PTE of the folio, so the
  subpage is reused only as the folio's last mapping.  Any GUP reference,
  pin or not, forces a copy.  No ``page_move_anon_rmap`` on this path any
  more [derived from the commit's diff as quoted in stable backports].
* a308c71bf1e6 "mm/gup: Remove enfornced COW mechanism" (Peter Xu): reverts
  the GUP half of 17839856fd58; read pins and references take no fault.
* 008cfe4418b3 "mm: Introduce mm_struct.has_pinned", 70e806e4e645 "mm: Do
  early cow for pinned pages during fork() for ptes", d042035eaf5f "mm/thp:
  Split huge pmds/puds if they're pinned when fork()" (Peter Xu): if the
  parent mm ever took a FOLL_PIN and ``page_maybe_dma_pinned()`` (a large
  folio's ``_pincount``, so every subpage of a pinned THP; an order-0 page's
  refcount >= 1024), the child gets a private copy at fork and the parent's
  entry is left writable; a pinned PMD is split in the parent first.
  FOLL_GET references are invisible to it.

The PMD path is 5.8's (max-based reuse, else split + fallback), so the THP
side of CVE-2020-29374 stays open until 5.18.
"""

from __future__ import annotations

import numpy as np

from . import counters as C
from .base import WpBatch, pte_fault_cost
from .v5_8 import Era58


def page_count_batch(world, h: int, subs: np.ndarray) -> np.ndarray:
    """Closed form for PTE faults on subpages of THP ``h`` (address order)
    decided by ``page_count == 1``: the j-th fault sees the folio refcount
    lowered by the j copies before it, so only the fault at ``j == R - 1`` can
    reuse -- the folio's last mapping."""
    mem = world.mem
    k = len(subs)
    reuse = np.zeros(k, dtype=np.bool_)
    j = int(mem.refcount[h]) - 1
    if 0 <= j < k:
        reuse[j] = True
    return reuse


class Era59(Era58):
    id = "5.9"
    title = "do_wp_page reuses only if page_count==1; GUP no longer breaks COW; fork copies pinned pages for the child"
    kernel = "v5.9 .. v5.17"
    commits: tuple[tuple[str, str], ...] = (
        ("09854ba94c6a", "mm: do_wp_page() simplification"),
        ("a308c71bf1e6", "mm/gup: Remove enfornced COW mechanism"),
        ("008cfe4418b3", "mm: Introduce mm_struct.has_pinned"),
        ("70e806e4e645", "mm: Do early cow for pinned pages during fork() for ptes"),
        ("d042035eaf5f", "mm/thp: Split huge pmds/puds if they're pinned when fork()"),
    )
    gup_breaks_cow = False

    # -- fork ------------------------------------------------------------------
    def needs_cow_for_dma(self, world, mm, pfns, extra: int = 0):
        """``page_needs_cow_for_dma``: the mm has pinned, and the page may be
        (``extra``: see :meth:`~thpviz.model.world.World.maybe_dma_pinned`).
        Here in ``copy_present_page``, before fork takes its own reference
        (the order of 70e806e4e645 as read from its diff; no 5.x tree was at
        hand, so this is a reconstruction -- 5.19 reversed it, see
        :mod:`thpviz.eras.v5_19`)."""
        if not mm.has_pinned:
            return np.zeros(len(pfns), dtype=np.bool_)
        return world.maybe_dma_pinned(pfns, extra)

    def copy_huge_pmd(self, world, mm, h):
        return "split" if self.needs_cow_for_dma(world, mm, np.array([h]))[0] else "share"

    def copy_pte_range(self, world, mm, pfns):
        return self.needs_cow_for_dma(world, mm, pfns)

    # -- write faults on PTEs --------------------------------------------------
    def do_wp_page_order0(self, world, mm, pfns, unshare=False):
        mem = world.mem
        reuse = (mem.refcount[pfns] == 1) & (mem.mapcount[pfns] == 1)
        k = len(pfns)
        return WpBatch(reuse, np.zeros(k, np.bool_), np.zeros(k, np.bool_), None,
                       pte_fault_cost(~reuse, 2, 1, 1))

    def do_wp_page_thp(self, world, mm, h, subs, unshare=False):
        mem = world.mem
        reuse = page_count_batch(world, h, subs)
        # page_mapcount of the reused subpage must be 1 too
        for i in np.nonzero(reuse)[0]:
            reuse[i] = C.page_mapcount(mem, h + int(subs[i])) == 1
        k = len(subs)
        cost = pte_fault_cost(~reuse, 2, 1 + (np.asarray(subs) != 0), 1 + (np.asarray(subs) != 0))
        return WpBatch(reuse, np.zeros(k, np.bool_), np.zeros(k, np.bool_), None, cost)
