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
counting rules are the functions in the "cost" section below; they are
documented, with the kernel function each stands for, in docs/cost-model.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import counters as C

STRUCT_PAGE_BYTES = 64
CACHE_LINE = 64
PAGE_BYTES = 4096

#: per-fault cost fields, in report order (docs/cost-model.md defines each)
COST_FIELDS = (
    "counter_reads",      # refcount/_mapcount/compound_mapcount/PageDoubleMap reads of the reuse test
    "decision_lines",     # distinct struct pages (one 64-byte line each) the reuse test reads
    "struct_page_lines",  # distinct struct pages the whole fault reads or writes
    "atomic_writes",      # atomic ops on refcount/_mapcount/compound_mapcount (incl. initialisation)
    "pages_allocated",    # base (4 KiB) pages allocated
    "bytes_copied",       # page contents copied
    "bytes_zeroed",       # page contents cleared
    "data_lines",         # cache lines of page contents read or written (copy: 2 per 64 bytes)
    "entries_written",    # PMD or PTE entries installed or changed
    "rmap_vmas",          # VMAs visited by rmap walks (no fault walks the rmap)
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


# ------------------------------------------------------------------ cost
def fault_cost(n: int, **fields) -> dict[str, np.ndarray]:
    """Per-fault cost arrays for ``n`` faults; each field is a scalar or an
    array of length ``n``."""
    out = {f: np.zeros(n, dtype=np.int64) for f in COST_FIELDS}
    for k, v in fields.items():
        out[k] += np.asarray(v, dtype=np.int64)
    return out


def _lines(n: int, read: frozenset | None, touched=()) -> int:
    """Distinct struct pages among offsets ``read`` (``None``: all ``n``) and
    ``touched`` of one compound page of ``n`` subpages."""
    if read is None:
        return n
    return len(read | frozenset(touched))


def pmd_fault_cost(mem, h: int, reuse: bool, reads: int, read: frozenset | None,
                   rmap: tuple = (0, 1)) -> dict[str, int]:
    """Cost of one ``do_huge_pmd_wp_page`` on THP ``h``, from the counters
    before the fault.  ``reads`` counter fields at the struct-page offsets
    ``read`` (``None``: the whole THP) decide; ``rmap`` are the offsets the
    copy path's ``page_remove_rmap(page, true)`` + ``put_page`` write (the
    head's refcount and page[1]'s compound_mapcount from 4.5, the head's
    ``_mapcount`` in 4.4).

    Reuse: ``pmdp_set_access_flags`` writes the PMD.  Copy: ``get_page`` on
    the old page before dropping the lock, ``alloc_hugepage_vma`` +
    ``prep_compound_page`` (every new struct page), ``copy_user_huge_page``
    (read and write the whole THP), ``put_page`` after the copy,
    ``page_add_new_anon_rmap`` (new refcount and compound_mapcount set),
    ``set_pmd_at``, then ``page_remove_rmap(page, true)`` -- which also clears
    PageDoubleMap and drops every subpage's ``_mapcount`` when it removes the
    last compound mapping -- and ``put_page``."""
    n = int(mem.nr[h])
    lines = _lines(n, read)
    if reuse:
        out = dict(counter_reads=reads, decision_lines=lines, struct_page_lines=lines,
                   entries_written=1)
    else:
        dm_clear = bool(mem.double_map[h]) and int(mem.cmc[h]) == 1
        old_lines = n if dm_clear else _lines(n, read, rmap)
        out = dict(
            counter_reads=reads, decision_lines=lines,
            struct_page_lines=old_lines + n,
            atomic_writes=4 + 2 + (n if dm_clear else 0),
            pages_allocated=n, bytes_copied=n * PAGE_BYTES,
            data_lines=2 * n * PAGE_BYTES // CACHE_LINE, entries_written=1,
        )
    return {f: int(out.get(f, 0)) for f in COST_FIELDS}


def pte_fault_cost(copy: np.ndarray, reads, decision_lines, old_lines) -> dict[str, np.ndarray]:
    """Cost of ``do_wp_page`` faults on write-protected PTEs, one entry per
    fault.  ``decision_lines``: struct pages the reuse test reads;
    ``old_lines``: distinct struct pages of the old page the fault touches if
    it copies (the decision's plus the subpage's ``_mapcount`` and the head's
    refcount).

    Reuse: ``wp_page_reuse`` writes the PTE (``page_move_anon_rmap`` writes
    ``page->mapping``, not a counter).  Copy (``wp_page_copy``): the old page
    takes ``get_page`` before the copy, ``page_remove_rmap`` (its subpage's
    ``_mapcount``) and two ``put_page`` (the mapping's reference and the
    extra one); the new order-0 page gets its refcount and ``_mapcount`` set
    by allocation and ``page_add_new_anon_rmap``; 4096 bytes are read and
    written by ``cow_user_page``; one PTE is written."""
    copy = np.asarray(copy, dtype=bool)
    k = len(copy)
    c = copy.astype(np.int64)
    return fault_cost(
        k, counter_reads=reads, decision_lines=decision_lines,
        struct_page_lines=np.where(copy, np.asarray(old_lines) + 1, decision_lines),
        atomic_writes=6 * c, pages_allocated=c, bytes_copied=PAGE_BYTES * c,
        data_lines=(2 * PAGE_BYTES // CACHE_LINE) * c, entries_written=1,
    )


def anon_fault_cost(level: str, zero_map: bool, n: int, nr: int) -> dict[str, np.ndarray]:
    """Faults that decide nothing: mapping the (huge) zero page on a read
    (one entry; the zero pages' own reference counts are not modelled), or a
    new zeroed page -- ``do_anonymous_page`` / ``do_huge_pmd_anonymous_page``,
    or ``do_wp_page`` / ``do_huge_pmd_wp_page`` replacing a zero page: the
    allocation initialises every new struct page, ``clear_user_highpage`` /
    ``clear_huge_page`` writes the contents, ``page_add_new_anon_rmap`` sets
    the refcount and (compound) mapcount, one entry is written."""
    if zero_map:
        return fault_cost(n, entries_written=1)
    size = nr if level == "pmd" else 1
    return fault_cost(
        n, struct_page_lines=size, atomic_writes=2, pages_allocated=size,
        bytes_zeroed=size * PAGE_BYTES, data_lines=size * PAGE_BYTES // CACHE_LINE,
        entries_written=1,
    )


def thp_subpage_cost(h: int, subs: np.ndarray, n_cow: int, reads: int, scans: bool,
                     n: int) -> dict[str, np.ndarray]:
    """``do_wp_page`` on subpages ``subs`` of THP ``h``: the first ``n_cow``
    copy.  ``scans``: the reuse test reads every subpage's struct page
    (``page_trans_huge_mapcount``); otherwise it reads only the faulting
    subpage's (4.5's ``PageTransCompound`` refusal)."""
    k = len(subs)
    copy = np.arange(k) < n_cow
    if scans:
        return pte_fault_cost(copy, reads, n, n)
    return pte_fault_cost(copy, reads, 1, 1 + (np.asarray(subs) != 0))


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
