"""The struct page array: one row per 4 KiB frame, as the kernel's mem_map.

Every counter lives in a numpy array indexed by a page frame number (pfn), so
operations on a whole THP or a run of PTEs are array operations, never a
Python loop over subpages.

Counters are kept as *logical* values (the kernel stores ``_mapcount`` and
``compound_mapcount`` with a -1 bias; we store ``atomic_read(...) + 1``).

Fields, with the kernel field they stand for:

``refcount``   ``page->_count`` (``_refcount`` from 4.7).  Only the head of a
               compound page carries references; tails stay 0 (4.5+, and in
               4.4 for everything but the tail pin count below).
``mapcount``   logical ``page->_mapcount``: PTE mappings of this frame, plus 1
               on every subpage while ``PageDoubleMap`` is set (4.5+).
``cmc``        logical compound mapcount (head only): PMD mappings of the THP.
               In 4.4 the head's ``_mapcount`` played this role.
``double_map`` ``PageDoubleMap`` (head only).
``mapping``    ``page->mapping`` as an anon_vma id (head or order-0 page).
``index``      ``page->index`` (linear page index, head or order-0 page).
``pins``       long-term pins (``pin`` statements) taken on this exact frame:
               FOLL_GET references in the 2016 eras, FOLL_PIN from 5.8.
               thpviz bookkeeping: the kernel keeps them in the head's
               refcount (+1 each, or +GUP_PIN_COUNTING_BIAS on an order-0
               page for FOLL_PIN) and, for a large folio, in ``_pincount``.
``refs``       FOLL_GET references on this frame that are not pins (a pipe's
               reference after ``vmsplice``); +1 each on the head's refcount.
               In 4.4, ``pins + refs`` of a THP tail is what tail-page
               refcounting kept in that tail's ``_mapcount``.
``anon_exclusive``  PageAnonExclusive (5.19+, 6c287605fd56).  For a PMD-mapped
               THP only the head's flag is meaningful; ``split_huge_pmd``
               copies it to every subpage.
``slot_mm``/``slot_count``  6.15 folio owner tracking (6af8cb80d3a9, head
               only): two (mm id, mappings of that mm) slots, mm id 0 for a
               free slot; ``slot_mm2``/``slot_count2`` is the second slot.
``maybe_shared``  6.15's "maybe mapped shared" bit of a large folio (head).
``data``       a version stamp of the frame's contents, so that a lost pin
               shows up as the device and the CPU seeing different data.
``writer``     which mm wrote the frame last (-1 nobody, -2 the device).
"""

from __future__ import annotations

import numpy as np

PAGE_SIZE = 4096

#: what kind of allocation a frame was born in
KIND_THP, KIND_SMALL, KIND_ZERO = 0, 1, 2


class MemMap:
    """Growable arrays of per-frame state.  Allocation never reuses a pfn, so
    a freed page keeps its identity (the diagrams can still show it)."""

    _FIELDS = (
        ("refcount", np.int64, 0),
        ("mapcount", np.int64, 0),
        ("cmc", np.int64, 0),
        ("double_map", np.bool_, False),
        ("head", np.int64, -1),
        ("nr", np.int64, 0),
        ("mapping", np.int64, -1),
        ("index", np.int64, 0),
        ("pins", np.int64, 0),
        ("refs", np.int64, 0),
        ("anon_exclusive", np.bool_, False),
        ("slot_mm", np.int64, 0),
        ("slot_count", np.int64, 0),
        ("slot_mm2", np.int64, 0),
        ("slot_count2", np.int64, 0),
        ("maybe_shared", np.bool_, False),
        ("data", np.int64, 0),
        ("writer", np.int64, -1),
        ("freed", np.bool_, False),
        ("kind", np.int8, 0),
        ("serial", np.int64, 0),
        ("origin", np.int64, -1),
    )

    def __init__(self, capacity: int = 4096):
        self.size = 0
        self.capacity = capacity
        for name, dtype, fill in self._FIELDS:
            setattr(self, name, np.full(capacity, fill, dtype=dtype))
        self.thp_serial = 0
        self.small_serial = 0

    def clone(self) -> "MemMap":
        """A copy of the frames in use (capacity grows again on demand)."""
        new = MemMap.__new__(MemMap)
        new.size = new.capacity = max(self.size, 1)
        for name, _, _ in self._FIELDS:
            setattr(new, name, getattr(self, name)[: new.capacity].copy())
        new.thp_serial, new.small_serial = self.thp_serial, self.small_serial
        return new

    def _reserve(self, n: int) -> int:
        start = self.size
        need = start + n
        if need > self.capacity:
            cap = self.capacity
            while cap < need:
                cap *= 2
            for name, dtype, fill in self._FIELDS:
                old = getattr(self, name)
                grown = np.full(cap, fill, dtype=dtype)
                grown[: self.size] = old[: self.size]
                setattr(self, name, grown)
            self.capacity = cap
        self.size = need
        return start

    # -- allocation (alloc_pages) -------------------------------------------
    def alloc_compound(self, nr: int, kind: int = KIND_THP) -> int:
        """A compound page of ``nr`` frames; returns the head pfn."""
        h = self._reserve(nr)
        self.head[h : h + nr] = h
        self.nr[h] = nr
        self.kind[h : h + nr] = kind
        if kind == KIND_THP:
            self.thp_serial += 1
            self.serial[h] = self.thp_serial
        return h

    def alloc_small(self, n: int, kind: int = KIND_SMALL) -> np.ndarray:
        """``n`` independent order-0 pages; returns their pfns."""
        s = self._reserve(n)
        pfns = np.arange(s, s + n, dtype=np.int64)
        self.head[pfns] = pfns
        self.nr[pfns] = 1
        self.kind[pfns] = kind
        if kind == KIND_SMALL:
            self.serial[pfns] = np.arange(self.small_serial + 1, self.small_serial + 1 + n)
            self.small_serial += n
        return pfns

    # -- queries ---------------------------------------------------------------
    def is_compound(self, head: int) -> bool:
        return bool(self.nr[head] > 1)

    def is_zero(self, pfn: int) -> bool:
        return bool(self.kind[pfn] == KIND_ZERO)

    def page_starts(self) -> np.ndarray:
        """pfn of every page (compound head or order-0 page) ever allocated."""
        pf = np.arange(self.size)
        return pf[self.head[: self.size] == pf]

    def name(self, pfn: int) -> str:
        """Stable display name: ``H1`` for a THP, ``H1[5]`` for one of its
        subpages (or, after a split, the order-0 page it became), ``p7`` for an
        order-0 page allocated on its own."""
        pfn = int(pfn)
        if self.kind[pfn] == KIND_ZERO:
            return "huge_zero_page" if self.nr[self.head[pfn]] > 1 else "zero_page"
        h = int(self.head[pfn])
        if self.nr[h] > 1:
            base = f"H{self.serial[h]}"
            return base if pfn == h else f"{base}[{pfn - h}]"
        o = int(self.origin[pfn])
        if o >= 0:
            return f"H{self.serial[o]}[{pfn - o}]"
        return f"p{self.serial[pfn]}"

    def page_name(self, pfn: int) -> str:
        """Name of the page (compound or order-0) that frame ``pfn`` belongs to."""
        return self.name(int(self.head[pfn]))
