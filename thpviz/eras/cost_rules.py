"""Cost counting rules: what the modelled kernel code path touches per fault.

The eras call these with the counters they see before each fault; the fields
(:data:`COST_FIELDS`) are documented, with the kernel function each rule
stands for, in docs/cost-model.md.  Counts are exact functions of the model's
state and the code path -- a model of work done, not a measurement.
"""

from __future__ import annotations

import numpy as np

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
