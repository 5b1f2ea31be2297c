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


def page_mapcount_v44(mem, pfn: int) -> int:
    """4.4 ``page_mapcount()``: a THP is only PMD-mapped, and the head's
    ``_mapcount`` counts those PMDs; thpviz answers that for any subpage of a
    THP (the caller in 4.4 always passes the head)."""
    h = _head(mem, pfn)
    if mem.nr[h] == 1:
        return int(mem.mapcount[pfn])
    return int(mem.cmc[h])


def mapcount_v44(mem, pfn: int) -> int:
    """4.4 logical ``_mapcount`` of one struct page.  A THP head's counts its
    PMD mappings; a tail's holds the GUP references taken on that tail
    (tail-page refcounting, as described in ddc58f27f9ee's message)."""
    h = _head(mem, pfn)
    if mem.nr[h] == 1:
        return int(mem.mapcount[pfn])
    return int(mem.cmc[h]) if pfn == h else int(mem.pins[pfn])
