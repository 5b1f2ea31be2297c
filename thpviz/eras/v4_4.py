"""Era ``4.4``: THP before the refcounting redesign (Linux 4.4 and earlier).

Kernel range: up to v4.4, i.e. before the THP refcount series merged for 4.5
(53f9263baba6 "mm: rework mapcount accounting to enable 4k mapping of THPs",
ddc58f27f9ee "mm: drop tail page refcounting", 1f25fe20a76a "mm, thp: adjust
conditions when we can reuse the page on WP fault").

Rules (research notes eras.md section 1; thread.md section 2(c)):

* An anonymous THP is mapped only by PMDs; the head's ``_mapcount`` counts
  them (thpviz keeps that number in the compound-mapcount slot).
* Anything that needs 4 KiB granularity -- a partial mprotect, munmap,
  MADV_DONTNEED or mremap, or an explicit PMD split -- calls
  ``split_huge_page``, which splits the compound page itself *and every PMD
  mapping it, in every process*.  It cannot fail: tail-page refcounting
  (``get_page_foll`` on a tail bumps the head's count and the tail's
  ``_mapcount``) lets ``__split_huge_page_refcount`` give each new order-0
  page its own pins, so pins survive the split on the right subpage.
* ``do_huge_pmd_wp_page`` reuses iff the head's mapcount is 1 -- the "-" side
  of 1f25fe20a76a.  Pins are never looked at.  It never calls
  ``page_move_anon_rmap``.
* ``do_wp_page`` on an order-0 page: ``reuse_swap_page`` reuses iff
  ``page_mapcount <= 1``; reuse moves the page to the VMA's anon_vma.
* ``page_mapcount()`` reads the page's own ``_mapcount`` (+1), whatever the
  page: for a THP head that is its PMD count, for a tail its GUP pin count
  (``__page_mapcount`` with its compound handling is 4.5's, 53f9263baba6).
  So ``page_mapcount`` and ``mapcount`` are the same function here, and
  /proc/kpagecount of a tail reported its pins.

Checked against pre-4.5 source copies: ``__get_page_tail_foll`` raises the
head's ``_count`` and, through ``get_huge_page_tail``, the tail's
``_mapcount`` (which starts at -1, logical 0); ``__split_huge_page_refcount``
adds ``page_mapcount(head) + page_mapcount(tail) + 1`` to each tail's count.
What the extra 1 pairs with was not established; thpviz's order-0 pages carry
only their mappings and pins.
"""

from __future__ import annotations

import numpy as np

from ..model.events import ThpvizDefect
from . import counters as C
from .base import Era, PmdDecision, pmd_fault_cost


class Era44(Era):
    id = "4.4"
    title = "before the redesign: THP only PMD-mapped, partial operations split the whole page"
    kernel = "v4.4 and earlier"
    commits: tuple[tuple[str, str], ...] = (("1f25fe20a76a", "pre-image: the reuse test before 'adjust conditions when we can reuse the page on WP fault'"),
               ("ddc58f27f9ee", "pre-image: tail page refcounting, removed by 'mm: drop tail page refcounting'"))
    counters = frozenset({"page_count", "page_mapcount", "mapcount", "mapping"})

    def counter(self, name, mem, pfn):
        if name in ("page_mapcount", "mapcount"):
            if name not in self.counters:
                raise KeyError(name)
            return C.mapcount_v44(mem, pfn)
        return super().counter(name, mem, pfn)

    def mapcount_frames(self, mem, frames):
        """A THP head's ``_mapcount`` counts its PMDs; a tail's holds the GUP
        references taken on it (tail-page refcounting)."""
        heads = mem.head[frames]
        thp = mem.nr[heads] > 1
        return np.where(thp, np.where(frames == heads, mem.cmc[heads], mem.pins[frames] + mem.refs[frames]),
                        mem.mapcount[frames])

    def split_huge_pmd(self, world, mm, ext):
        """``split_huge_page_pmd``: for the huge zero page only this PMD is
        split; for a THP the whole page is split everywhere."""
        entry = mm.pt[ext]
        if world.is_zero(entry.head):
            world.split_huge_zero_pmd(mm, ext)
        else:
            world.split_huge_page_whole(entry.head)

    def split_huge_page(self, world, h):
        world.split_huge_page_whole(h)

    def do_huge_pmd_wp_page(self, world, mm, h, unshare=False):
        mem = world.mem
        # the head's _mapcount: number of PMDs mapping the THP; one read of
        # the head's struct page, and the copy path's rmap update is there too
        reuse = bool(mem.cmc[h] == 1)
        return PmdDecision(reuse=reuse, cost=pmd_fault_cost(mem, h, reuse, 1, frozenset({0}), rmap=(0,)))

    def do_wp_page_thp(self, world, mm, h, subs, unshare=False):
        raise ThpvizDefect("a THP is never PTE-mapped in 4.4")
