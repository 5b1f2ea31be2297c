"""The era interface: the decisions in which kernel versions differ.

An era is a policy object the world asks at a handful of points:

=========================== ==================================================
``do_huge_pmd_wp_page``     write fault on a write-protected PMD: reuse or copy
``do_wp_page_thp``          write faults on write-protected PTEs of one THP,
                            in address order: how many are copied before the
                            first reuse, whether ``page_move_anon_rmap`` runs
``do_wp_page_order0``       the same for order-0 pages (vectorised)
``split_huge_pmd``          what "give me PTE granularity here" does
``split_huge_page``         the physical split
``counters``                which kernel counter functions exist
=========================== ==================================================

Everything else (fault plumbing, fork, munmap, the rmap) is the world's and is
the same in every era modelled so far.  Later eras plug in the same way:

* ``5.8`` (17839856fd58, 3917c80280c9): ``do_huge_pmd_wp_page`` returns
  ``PmdDecision(fallback=True)`` instead of a 2 MB copy, so the world splits
  the PMD and retries at PTE level; ``gup_fault_write`` makes a read GUP on
  a COW mapping take a write fault.
* ``5.9`` (09854ba94c6a, 70e806e4e645, d042035eaf5f): ``do_wp_page_*`` use
  ``page_count``; ``copy_pte_range`` / ``copy_huge_pmd`` give the child a
  copy of a maybe-pinned page at fork (splitting a pinned PMD first); the
  FOLL_PIN pincount is one more per-frame array in the memmap.
* ``5.18``/``5.19``/``6.15``: PMD reuse on ``page_count``; PageAnonExclusive
  needs one more per-frame flag in the memmap and a ``do_wp_page_*`` that
  reads it; the 6.15 per-mm "mapped shared" bit is a per-folio field.

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
    """``reuse``: make the PMD writable in place.  Otherwise copy the whole
    THP -- or, with ``fallback`` (the 5.8 shape, 3917c80280c9), split the PMD
    and retry the fault at PTE level, where ``do_wp_page`` decides."""

    reuse: bool
    bug: str | None = None
    cost: dict = field(default_factory=dict)
    fallback: bool = False


@dataclass
class ThpBatch:
    """Outcome of write faults on ``k`` write-protected PTEs of one THP, in
    address order: the first ``n_cow`` are copied, the rest reused; ``move``
    says whether ``page_move_anon_rmap`` runs at the first reuse."""

    n_cow: int
    move: bool = False
    bug: str | None = None
    cost: dict = field(default_factory=dict)


def max_based_batch(mem, h: int, subs: np.ndarray):
    """Closed form for a run of PTE write faults decided by the max-based
    count ``max(mc) - DM + cmc`` (``page_trans_huge_mapcount``).

    A copy of subpage s lowers ``mc[s]`` by one and nothing else; a reuse
    changes no counter.  So the value can only fall, the decisions are
    "copy, ..., copy, reuse, ..., reuse", and the first reuse is the first k
    for which the maximum after lowering ``subs[:k]`` gives a value <= 1.
    Returns (n_cow, total_mapcount at the first reuse)."""
    n = int(mem.nr[h])
    mc = mem.mapcount[h : h + n]
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
    """Base policy.  Subclasses set the class attributes and the rules that
    differ; the docstring of each subclass module names its commits."""

    id: str = ""
    title: str = ""
    kernel: str = ""
    commits: tuple[tuple[str, str], ...] = ()
    #: kernel counter functions that exist in this era (for ``assert``)
    counters: frozenset[str] = frozenset({"page_count", "page_mapcount", "mapcount"})
    #: eras after 5.19 may map an exclusive anon page writable in mprotect
    mprotect_makes_writable = False
    implemented = True

    def __repr__(self) -> str:
        return f"<era {self.id}>"

    # -- counters ------------------------------------------------------------
    def counter(self, name: str, mem, pfn: int) -> int:
        if name not in self.counters:
            raise KeyError(name)
        if name == "page_trans_huge_mapcount":
            return C.page_trans_huge_mapcount(mem, pfn)[0]
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

    # -- GUP and fork (the 2016 eras all use these defaults) -----------------
    def gup_fault_write(self, write: bool) -> bool:
        """Whether GUP faults the range in for write.  Until 5.8 only a
        write GUP does; 17839856fd58 made GUP on COW mappings break COW even
        for reads."""
        return write

    def copy_huge_pmd(self, mem, h: int) -> str:
        """``copy_huge_pmd`` at fork: ``"share"`` (both PMDs write-protected)
        or ``"split"`` (d042035eaf5f: split a maybe-pinned PMD and copy at PTE
        level)."""
        return "share"

    def copy_pte_range(self, mem, pfns: np.ndarray) -> np.ndarray:
        """``copy_pte_range`` at fork: which pages the child gets a private
        copy of right away (70e806e4e645: maybe-pinned pages).  Until 5.9:
        none, every page is shared and write-protected on both sides."""
        return np.zeros(len(pfns), dtype=np.bool_)

    # -- write-protect faults --------------------------------------------------
    def do_huge_pmd_wp_page(self, mem, h: int) -> PmdDecision:
        raise NotImplementedError

    def do_wp_page_thp(self, mem, h: int, subs: np.ndarray) -> ThpBatch:
        raise NotImplementedError

    def do_wp_page_order0(self, mem, pfns: np.ndarray):
        """``do_wp_page`` -> ``reuse_swap_page`` on order-0 pages: reuse iff
        ``page_mapcount <= 1`` (no swap cache in the model), and on reuse
        ``page_move_anon_rmap`` to the faulting VMA's anon_vma.  Unchanged in
        every era from 4.4 to 5.8."""
        reuse = mem.mapcount[pfns] <= 1
        cost = pte_fault_cost(~reuse, 1, 1, 1)
        return reuse, reuse.copy(), cost

    # -- cost of the faults that decide nothing ----------------------------------
    def anon_fault_cost(self, level: str, zero_map: bool, n: int, nr: int) -> dict:
        """Cost of new-page and zero-page faults (the same in every era
        modelled so far); see :func:`anon_fault_cost`."""
        return anon_fault_cost(level, zero_map, n, nr)
