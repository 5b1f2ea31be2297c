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

* ``5.8`` (17839856fd58, 3917c80280c9): override ``do_huge_pmd_wp_page`` to
  split the PMD and fall back to a PTE fault instead of copying 2 MB, and set
  ``gup_breaks_cow`` so a read GUP on a COW mapping takes a write fault.
* ``5.9`` (09854ba94c6a, 70e806e4e645): ``do_wp_page_*`` use ``page_count``;
  ``fork_copies_pinned`` makes ``copy_pte_range`` copy a maybe-pinned page
  for the child (and split a pinned PMD).
* ``5.18``/``5.19``/``6.15``: PMD reuse on ``page_count``; PageAnonExclusive
  needs one more per-frame flag in the memmap and a ``do_wp_page_*`` that
  reads it; the 6.15 per-mm "mapped shared" bit is a per-folio field.

Each decision returns the work it did in ``cost`` (counters read, struct-page
cache lines touched), so the cost model reads the same code path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import counters as C

STRUCT_PAGE_BYTES = 64
CACHE_LINE = 64


@dataclass
class PmdDecision:
    reuse: bool
    bug: str | None = None
    cost: dict = field(default_factory=dict)


@dataclass
class ThpBatch:
    """Outcome of write faults on ``k`` write-protected PTEs of one THP, in
    address order: the first ``n_cow`` are copied, the rest reused; ``move``
    says whether ``page_move_anon_rmap`` runs at the first reuse."""

    n_cow: int
    move: bool = False
    bug: str | None = None
    cost: dict = field(default_factory=dict)


def scan_cost(n_subpages: int) -> dict:
    """Work of reading ``n`` consecutive struct pages' counters once."""
    lines = -(-n_subpages * STRUCT_PAGE_BYTES // CACHE_LINE)
    return {"counter_reads": n_subpages, "cache_lines": lines}


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

    # -- splitting -------------------------------------------------------------
    def split_huge_pmd(self, world, mm, ext: int) -> None:
        world.split_huge_pmd(mm, ext)

    def split_huge_page(self, world, h: int) -> None:
        world.split_huge_page(h)

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
        cost = {"counter_reads": len(pfns), "cache_lines": len(pfns)}
        return reuse, reuse.copy(), cost
