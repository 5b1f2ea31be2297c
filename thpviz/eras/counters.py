"""The kernel's counter functions, computed from the struct page arrays.

Each function takes the :class:`~thpviz.model.memmap.MemMap` and a pfn and
returns the value the kernel function of that name returns.  Which function
exists in which era is the era's business (``Era.counters``); these are only
the formulas.  Notation as in the research notes: ``mc[i]`` logical
``_mapcount`` of subpage i (it includes the PageDoubleMap bias), ``cmc`` the
logical compound mapcount, ``DM`` PageDoubleMap, N subpages.
"""

from __future__ import annotations


def _head(mem, pfn: int) -> int:
    return int(mem.head[pfn])


def page_count(mem, pfn: int) -> int:
    """``page_count()``: the refcount of ``compound_head(page)``."""
    return int(mem.refcount[_head(mem, pfn)])


def mapcount(mem, pfn: int) -> int:
    """The logical ``_mapcount`` of this very struct page (stored value + 1)."""
    return int(mem.mapcount[pfn])


def page_mapcount(mem, pfn: int) -> int:
    """4.5+ ``page_mapcount()`` (``__page_mapcount`` for compound pages):
    ``mc[p] + cmc - DM``, the page tables mapping this 4 KiB subpage."""
    h = _head(mem, pfn)
    if mem.nr[h] == 1:
        return int(mem.mapcount[pfn])
    return int(mem.mapcount[pfn] + mem.cmc[h] - mem.double_map[h])


def compound_mapcount(mem, pfn: int) -> int:
    """``compound_mapcount()``: PMD mappings of the THP; 0 for an order-0
    page (as 4.5 returns)."""
    h = _head(mem, pfn)
    return int(mem.cmc[h]) if mem.nr[h] > 1 else 0


def double_map(mem, pfn: int) -> int:
    """``PageDoubleMap()`` as 0/1."""
    h = _head(mem, pfn)
    return int(bool(mem.double_map[h])) if mem.nr[h] > 1 else 0


def total_mapcount(mem, pfn: int) -> int:
    """``total_mapcount()``: ``sum(mc) + cmc - N*DM``, every page-table entry
    mapping any part of the THP.  The kernel requires the head; thpviz applies
    ``compound_head`` first."""
    h = _head(mem, pfn)
    n = int(mem.nr[h])
    if n == 1:
        return int(mem.mapcount[h])
    return int(mem.mapcount[h : h + n].sum() + mem.cmc[h] - n * mem.double_map[h])


def page_trans_huge_mapcount(mem, pfn: int) -> tuple[int, int]:
    """6d0a07edd17c ``page_trans_huge_mapcount(page, &total)``: returns
    ``(max(mc) - DM + cmc, total_mapcount)``: the most mappers any single
    subpage has, and the total."""
    h = _head(mem, pfn)
    n = int(mem.nr[h])
    if n == 1:
        m = int(mem.mapcount[h])
        return m, m
    mc = mem.mapcount[h : h + n]
    dm = int(mem.double_map[h])
    cmc = int(mem.cmc[h])
    return int(mc.max()) - dm + cmc, int(mc.sum()) - n * dm + cmc


def mapcount_v44(mem, pfn: int) -> int:
    """4.4 logical ``_mapcount`` of one struct page, which is also what 4.4's
    ``page_mapcount()`` returns for any page (it reads the page's own
    ``_mapcount``; ``__page_mapcount`` and its compound handling arrived with
    53f9263baba6 in 4.5).  A THP head's counts its PMD mappings; a tail's
    holds the GUP references taken on that tail (tail-page refcounting:
    ``__get_page_tail_foll`` raises the tail's ``_mapcount``)."""
    h = _head(mem, pfn)
    if mem.nr[h] == 1:
        return int(mem.mapcount[pfn])
    return int(mem.cmc[h]) if pfn == h else int(mem.pins[pfn] + mem.refs[pfn])


page_mapcount_v44 = mapcount_v44


def pincount(mem, pfn: int, foll_pin: bool = True) -> int:
    """FOLL_PIN pins of the folio (5.8+): ``folio->_pincount`` (the first
    tail's ``compound_pincount`` before 6.1) for a large folio; for an
    order-0 page, which has no such field, the GUP_PIN_COUNTING_BIAS units in
    its refcount -- what ``page_maybe_dma_pinned()`` reads."""
    h = _head(mem, pfn)
    if mem.nr[h] > 1:
        return int(mem.pins[h : h + mem.nr[h]].sum()) if foll_pin else 0
    return int(mem.refcount[h]) // 1024


def anon_exclusive(mem, pfn: int) -> int:
    """PageAnonExclusive (5.19+) as 0/1: the head's flag while a PMD maps the
    THP (where the kernel keeps it), else this subpage's own."""
    h = _head(mem, pfn)
    if mem.nr[h] > 1 and mem.cmc[h] > 0:
        return int(bool(mem.anon_exclusive[h]))
    return int(bool(mem.anon_exclusive[pfn]))


def entire_mapcount(mem, pfn: int) -> int:
    """``folio_entire_mapcount()``: PMD mappings of a large folio (0 for an
    order-0 page, for which the kernel function is not defined)."""
    h = _head(mem, pfn)
    return int(mem.cmc[h]) if mem.nr[h] > 1 else 0


def large_mapcount(mem, pfn: int) -> int:
    """``folio_large_mapcount()`` (``folio_mapcount()`` for an order-0
    page): every page-table entry mapping any part of the folio."""
    return total_mapcount(mem, pfn)


def maybe_shared(mem, pfn: int) -> int:
    """6.15's "maybe mapped shared" bit of a large folio (set when a second
    mm maps it; with three or more mms it can stay set after only one is
    left); for an order-0 page, ``folio_maybe_mapped_shared()``: mapcount > 1."""
    h = _head(mem, pfn)
    if mem.nr[h] > 1:
        return int(bool(mem.maybe_shared[h]))
    return int(mem.mapcount[h] > 1)


def mapping(mem, pfn: int) -> int:
    """``page->mapping`` of the (compound) page: the number N of the
    anon_vma ``avN`` it points at (-1 for none)."""
    return int(mem.mapping[_head(mem, pfn)])
