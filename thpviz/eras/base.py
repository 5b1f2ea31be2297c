"""The era interface: the decisions in which kernel versions differ.

An era is a policy object the world asks at a handful of points:

=========================== ==================================================
``do_huge_pmd_wp_page``     write (or unshare) fault on a write-protected PMD:
                            reuse, copy the THP, or split and fall back to PTEs
``do_wp_page_thp``          write (or unshare) faults on write-protected PTEs
                            of one THP, in address order
``do_wp_page_order0``       the same for order-0 pages (vectorised)
``copy_huge_pmd``           fork: share a PMD, or split it (a maybe-pinned THP)
``copy_pte_range``          fork: which pages the child gets a private copy of
``split_huge_pmd``          what "give me PTE granularity here" does
``split_huge_page``         the physical split
``counters``                which kernel counter functions exist
=========================== ==================================================

and a few flags for rules that are on or off (``foll_pin``,
``gup_breaks_cow``, ``pmd_fallback``, ``huge_zero_wp_thp``, ``dontneed_frees_pte_table``,
``has_anon_exclusive``,
``unshare_ro_pins``, ``unshare_zero_page``, ``has_double_map``,
``split_keeps_dirty``, ``mprotect_upgrade_pte``/``_pmd``, ``tracks_mm_ids``,
``anon_vma_reuse``).  Everything else (fault plumbing, fork, munmap, the
rmap) is the world's.

A write-protect decision is a :class:`WpBatch`: per fault, whether the page
is reused, whether ``page_move_anon_rmap`` runs, whether PageAnonExclusive is
set.  Faults on subpages of one THP are decided in address order as the
kernel takes them -- each copy lowers the folio's counters before the next
fault -- and each era does that in closed form over the run.

Each decision returns the work its fault does in ``cost``: per fault, the
counters the reuse test reads and what the chosen path (reuse or copy) then
touches, computed from the counters the era sees before the fault.  The
counting rules are the functions of :mod:`thpviz.eras.cost_rules`; they are
documented, with the kernel function each stands for, in docs/cost-model.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import counters as C
from .cost_rules import (  # noqa: F401  (re-exported for the era modules)
    CACHE_LINE,
    COST_FIELDS,
    PAGE_BYTES,
    STRUCT_PAGE_BYTES,
    anon_fault_cost,
    fault_cost,
    pmd_fault_cost,
    pte_fault_cost,
    thp_subpage_cost,
)


@dataclass
class PmdDecision:
    """``reuse``: make the PMD writable in place (an unshare fault leaves it
    read-only); ``move``: ``page_move_anon_rmap`` runs; ``exclusive``: the
    head is marked PageAnonExclusive.  Otherwise copy the whole THP -- or,
    with ``fallback`` (5.8+, 3917c80280c9), split the PMD and retry the fault
    at PTE level, where ``do_wp_page`` decides."""

    reuse: bool
    bug: str | None = None
    cost: dict = field(default_factory=dict)
    fallback: bool = False
    move: bool = False
    exclusive: bool = False


@dataclass
class WpBatch:
    """Outcome of write (or unshare) faults on write-protected PTEs, one entry
    per fault in address order: ``reuse`` (else copy one 4 KiB page),
    ``move`` (``page_move_anon_rmap`` runs at that fault), ``exclusive``
    (PageAnonExclusive is set on reuse)."""

    reuse: np.ndarray
    move: np.ndarray
    exclusive: np.ndarray
    bug: str | None = None
    cost: dict = field(default_factory=dict)

    @classmethod
    def copies_then_reuse(cls, k: int, n_cow: int, move: bool = False, bug=None, cost=None) -> "WpBatch":
        """The first ``n_cow`` of ``k`` faults copy, the rest reuse;
        ``move``: ``page_move_anon_rmap`` runs at the first reuse."""
        reuse = np.arange(k) >= n_cow
        mv = np.zeros(k, dtype=np.bool_)
        if move and n_cow < k:
            mv[n_cow] = True
        return cls(reuse, mv, np.zeros(k, dtype=np.bool_), bug, cost or {})


def max_based_batch(mem, h: int, subs: np.ndarray):
    """Closed form for a run of PTE write faults decided by the max-based
    count ``max(mc) - DM + cmc`` (``page_trans_huge_mapcount``).

    A copy of subpage s lowers ``mc[s]`` by one and nothing else; a reuse
    changes no counter.  So the value can only fall, the decisions are
    "copy, ..., copy, reuse, ..., reuse", and the first reuse is the first k
    for which the maximum after lowering ``subs[:k]`` gives a value <= 1.
    Returns (n_cow, total_mapcount at the first reuse)."""
    n = int(mem.nr[h])
    mc = mem.mapcount[h : h + n].astype(np.int64)
    dm, cmc = int(mem.double_map[h]), int(mem.cmc[h])
    k = len(subs)
    vals = mc[subs]
    rest = mc.copy()
    rest[subs] = np.iinfo(np.int64).min
    max_rest = rest.max()
    lowered = np.concatenate(([np.iinfo(np.int64).min], np.maximum.accumulate(vals - 1)))[:k]
    upper = np.maximum.accumulate(vals[::-1])[::-1]
    value = np.maximum(np.maximum(max_rest, lowered), upper) - dm + cmc
    ok = np.nonzero(value <= 1)[0]
    n_cow = int(ok[0]) if len(ok) else k
    total = int(mc.sum()) - n * dm + cmc - n_cow
    return n_cow, total


class Era:
    """Base policy (the rules every 2016 era shares).  Subclasses set the
    class attributes and the rules that differ; the docstring of each
    subclass module names its commits."""

    id: str = ""
    title: str = ""
    kernel: str = ""
    commits: tuple[tuple[str, str], ...] = ()
    #: kernel counter functions that exist in this era (for ``assert``)
    counters: frozenset[str] = frozenset({"page_count", "page_mapcount", "mapcount", "mapping"})
    implemented = True

    # -- rules that are on or off --------------------------------------------
    #: ``pin`` statements are FOLL_PIN (GUP_PIN_COUNTING_BIAS / _pincount,
    #: 5.7 3faa52c03f44, 47e29d32afba); before, vfio's pins were FOLL_GET
    foll_pin = False
    #: a read GUP on a COW mapping breaks COW like a write (5.8 only)
    gup_breaks_cow = False
    #: a PMD write fault never copies 2 MB: split and fall back (5.8+)
    pmd_fallback = False
    #: a write or unshare fault on the huge zero PMD maps a new THP instead
    #: of splitting the PMD and falling back (6.13+, 1ced09e0331f)
    huge_zero_wp_thp = False
    #: MADV_DONTNEED over a whole PMD range of one VMA frees the emptied PTE
    #: table, so the next fault there may map a THP again (6.14+, 6375e95f381e)
    dontneed_frees_pte_table = False
    #: PageAnonExclusive (5.19+)
    has_anon_exclusive = False
    #: read-only FOLL_PIN of a shared anonymous page unshares it (5.19+)
    unshare_ro_pins = False
    #: read-only long-term pins unshare the zero page too (6.2+)
    unshare_zero_page = False
    #: PageDoubleMap and its +1 on every subpage (4.5 .. 6.1)
    has_double_map = True
    #: ``split_huge_pmd`` carries the PMD's dirty bit to the PTEs (6.4+)
    split_keeps_dirty = False
    #: mprotect maps exclusive anon PTEs writable: None, "dirty" (6.0/6.1:
    #: only dirty PTEs) or "exclusive" (6.2+)
    mprotect_upgrade_pte: str | None = None
    #: mprotect maps an exclusive anon PMD writable (6.2+)
    mprotect_upgrade_pmd = False
    #: large folios track two owner mms and a "maybe mapped shared" bit (6.15)
    tracks_mm_ids = False
    #: ``anon_vma_clone``'s reuse rule: "degree" (3.19) or "active" (6.0+)
    anon_vma_reuse = "degree"

    def __repr__(self) -> str:
        return f"<era {self.id}>"

    # -- counters ------------------------------------------------------------
    def counter(self, name: str, mem, pfn: int) -> int:
        if name not in self.counters:
            raise KeyError(name)
        if name == "page_trans_huge_mapcount":
            return C.page_trans_huge_mapcount(mem, pfn)[0]
        if name == "pincount":
            return C.pincount(mem, pfn, self.foll_pin)
        return getattr(C, name)(mem, pfn)

    def mapcount_frames(self, mem, frames: np.ndarray) -> np.ndarray:
        """The logical ``_mapcount`` of each struct page, as this era stores
        it (what ``mapcount`` asserts, the JSON and the diagrams show)."""
        return mem.mapcount[frames]

    # -- splitting -------------------------------------------------------------
    def split_huge_pmd(self, world, mm, ext: int) -> None:
        world.split_huge_pmd(mm, ext)

    def split_huge_page(self, world, h: int) -> None:
        world.split_huge_page(h)

    # -- fork (the 2016 eras, and 5.8, share everything) -----------------------
    def copy_huge_pmd(self, world, mm, h: int) -> str:
        """``copy_huge_pmd`` at fork: ``"share"`` (both PMDs write-protected)
        or ``"split"`` (5.9+: split a maybe-pinned PMD in the parent and
        copy at PTE level)."""
        return "share"

    def copy_pte_range(self, world, mm, pfns: np.ndarray) -> np.ndarray:
        """``copy_pte_range`` at fork: which pages the child gets a private
        copy of right away (5.9+: maybe-pinned pages).  Until 5.9: none,
        every page is shared and write-protected on both sides."""
        return np.zeros(len(pfns), dtype=np.bool_)

    # -- write-protect faults --------------------------------------------------
    def do_huge_pmd_wp_page(self, world, mm, h: int, unshare: bool = False) -> PmdDecision:
        raise NotImplementedError

    def do_wp_page_thp(self, world, mm, h: int, subs: np.ndarray, unshare: bool = False) -> WpBatch:
        raise NotImplementedError

    def do_wp_page_order0(self, world, mm, pfns: np.ndarray, unshare: bool = False) -> WpBatch:
        """``do_wp_page`` -> ``reuse_swap_page`` on order-0 pages: reuse iff
        ``page_mapcount <= 1`` (no swap cache in the model), and on reuse
        ``page_move_anon_rmap`` to the faulting VMA's anon_vma.  Unchanged in
        every era from 4.4 to 5.8."""
        mem = world.mem
        reuse = mem.mapcount[pfns] <= 1
        cost = pte_fault_cost(~reuse, 1, 1, 1)
        return WpBatch(reuse, reuse.copy(), np.zeros(len(pfns), dtype=np.bool_), None, cost)

    # -- cost of the faults that decide nothing ----------------------------------
    def anon_fault_cost(self, level: str, zero_map: bool, n: int, nr: int) -> dict:
        """Cost of new-page and zero-page faults (the same in every era
        modelled); see :func:`anon_fault_cost`."""
        return anon_fault_cost(level, zero_map, n, nr)


class MaxBasedEra(Era):
    """The decision Andrea's v1 and the merged fix share:
    ``page_trans_huge_mapcount() == 1`` on the PMD path and on the PTE path
    of a THP subpage (what differs -- compound_head, when the anon_vma moves
    -- is each era's).  6d0a07edd17c; 74f1fd7f."""

    def do_huge_pmd_wp_page(self, world, mm, h, unshare=False):
        # page_trans_huge_mapcount: every subpage's _mapcount, PageDoubleMap
        # and compound_mapcount
        mem = world.mem
        n = int(mem.nr[h])
        reuse = C.page_trans_huge_mapcount(mem, h)[0] == 1
        return PmdDecision(reuse=reuse, cost=pmd_fault_cost(mem, h, reuse, n + 2, None))

    def max_based_thp(self, world, h, subs):
        """(n_cow, total at the first reuse, cost) of a run of PTE faults on
        THP ``h`` decided by ``page_trans_huge_mapcount``; every fault, copy
        or reuse, scans the whole THP."""
        mem = world.mem
        n = int(mem.nr[h])
        n_cow, total = max_based_batch(mem, h, subs)
        return n_cow, total, thp_subpage_cost(h, subs, n_cow, n + 2, True, n)
