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

Storage.  The fields are plain numpy arrays in the most compact integer type
that holds every value the model can produce (``index`` is an address and
stays 64-bit); anyone may *read* them (``mem.refcount[h]``).  The engine
*writes* through :attr:`MemMap.w` (``mem.w.refcount[h] += 1``,
``mem.w.mapcount.add_at(pfns, 1)``), which records what it overwrites: the
old contents of each touched *chunk* (a power-of-two run of frames) are kept
until the world commits or rolls back the statement (the undo journal), a
snapshot that still shares the chunk gets its own copy first, and an array
shared with a clone is copied before its first write (copy-on-write).  A
direct write (``mem.refcount[h] = 1``, as the checker's tests corrupt a world)
still works, but nothing records it.

pfns are never reused: a freed page keeps its frames and its identity, so the
diagrams, the JSON and the fault log can name it at any later step.
"""

from __future__ import annotations

import numpy as np

from .arrays import uniq

PAGE_SIZE = 4096

#: what kind of allocation a frame was born in
KIND_THP, KIND_SMALL, KIND_ZERO = 0, 1, 2

#: fields the consistency rules never read: only names and contents
DISPLAY_FIELDS = frozenset({"data", "writer", "serial", "origin"})


class Hidden:
    """Base for engine bookkeeping stored on model objects: it stands for
    nothing in the modelled kernel, so it prints the same for every object
    (anything that encodes a world by walking its attributes -- a canonical
    fingerprint -- sees a constant)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class Cell(Hidden):
    """One chunk of one field as a snapshot sees it.  While ``a`` is a view of
    the live array the chunk has not changed since; the memmap replaces ``a``
    with a copy of the old contents before it first writes the chunk."""

    __slots__ = ("a",)

    def __init__(self, a: np.ndarray):
        self.a = a


class _Track(Hidden):
    """Write bookkeeping of one MemMap (see the module docstring)."""

    __slots__ = ("shift", "chunk", "journal", "start", "shared", "cells", "strict", "writers")

    def __init__(self, chunk: int):
        if chunk < 1 or chunk & (chunk - 1):
            raise ValueError("chunk must be a power of two")
        self.chunk = chunk
        self.shift = chunk.bit_length() - 1
        #: field -> {chunk number: contents before the first write}
        self.journal: dict[str, dict[int, np.ndarray]] = {}
        #: (size, thp_serial, small_serial) when the statement began
        self.start: tuple[int, int, int] | None = None
        #: fields whose array another MemMap (a clone) shares
        self.shared: set[str] = set()
        #: field -> {chunk number: Cell viewing the live array}
        self.cells: dict[str, dict[int, Cell]] = {}
        #: tests: keep the arrays read-only between tracked writes, so an
        #: untracked write fails where it happens
        self.strict = False
        self.writers: _Writers | None = None


class FieldWriter(Hidden):
    """``mem.w.<field>``: indexing for writing (``[...] = v``, ``[...] += v``)
    and ``add_at`` (``np.add.at``), each recorded before it writes."""

    __slots__ = ("mem", "name")

    def __init__(self, mem: "MemMap", name: str):
        self.mem = mem
        self.name = name

    def _prep(self, idx) -> np.ndarray:
        mem, name = self.mem, self.name
        t = mem._t
        arr = mem.__dict__[name]
        if name in t.shared:
            arr = arr.copy()
            mem.__dict__[name] = arr
            t.shared.discard(name)
            t.cells.pop(name, None)
        if t.strict:
            arr.flags.writeable = True
        if t.start is None:
            t.start = (mem.size, mem.thp_serial, mem.small_serial)
        j = t.journal.get(name)
        if j is None:
            j = t.journal[name] = {}
        s = t.shift
        if isinstance(idx, slice):
            lo, hi = idx.start or 0, idx.stop
            if hi is None or hi > len(arr):
                hi = len(arr)
            if hi <= lo:
                return arr
            c0, c1 = lo >> s, (hi - 1) >> s
            if c0 == c1:
                if c0 not in j:
                    self._save(arr, j, c0)
                return arr
            missing = [c for c in range(c0, c1 + 1) if c not in j]
        elif isinstance(idx, (int, np.integer)):
            c = int(idx) >> s
            if c not in j:
                self._save(arr, j, c)
            return arr
        else:
            idx = np.asarray(idx)
            if idx.dtype == np.bool_:
                idx = np.flatnonzero(idx)
            if idx.size == 0:
                return arr
            c0, c1 = int(idx.min()) >> s, int(idx.max()) >> s
            if c0 == c1:
                if c0 not in j:
                    self._save(arr, j, c0)
                return arr
            missing = [c for c in uniq(idx >> s).tolist() if c not in j]
        if missing:
            self._save_many(arr, j, missing)
        return arr

    def _save(self, arr, j, c: int) -> None:
        t = self.mem._t
        n = t.chunk
        old = arr[c * n : (c + 1) * n].copy()
        j[c] = old
        cells = t.cells.get(self.name)
        if cells:
            cell = cells.pop(c, None)
            if cell is not None:
                cell.a = old

    def _save_many(self, arr, j, chunks: list) -> None:
        """Journal several chunks with one copy of the span they cover."""
        t = self.mem._t
        n = t.chunk
        c0, c1 = chunks[0], chunks[-1]
        span = arr[c0 * n : (c1 + 1) * n].copy()
        cells = t.cells.get(self.name) or {}
        for c in chunks:
            old = span[(c - c0) * n : (c - c0 + 1) * n]
            j[c] = old
            cell = cells.pop(c, None) if cells else None
            if cell is not None:
                cell.a = old

    def _done(self, arr) -> None:
        if self.mem._t.strict:
            arr.flags.writeable = False

    def __getitem__(self, idx):
        return self._prep(idx)[idx]

    def __setitem__(self, idx, value) -> None:
        arr = self._prep(idx)
        arr[idx] = value
        self._done(arr)

    def add_at(self, idx, value) -> None:
        """``np.add.at(field, idx, value)`` (repeated indexes add up)."""
        arr = self._prep(idx)
        idx = np.asarray(idx)
        n = idx.size
        if n >= 64 and np.ndim(value) == 0:
            lo, hi = int(idx.min()), int(idx.max())
            if hi - lo < 4 * n:
                # a bincount over the span: much faster than ufunc.at on a
                # THP's worth of frames
                counts = np.bincount(idx - lo, minlength=hi - lo + 1)
                arr[lo : hi + 1] += (counts * value).astype(arr.dtype)
                self._done(arr)
                return
        np.add.at(arr, idx, value)
        self._done(arr)


class _Writers(Hidden):
    """``mem.w``: one :class:`FieldWriter` per field, as attributes (made
    when first asked for)."""

    # declarations for the type checker, one per field of MemMap._FIELDS
    # (no class attributes: ``__getattr__`` makes each writer)
    _mem: MemMap
    refcount: FieldWriter
    mapcount: FieldWriter
    cmc: FieldWriter
    double_map: FieldWriter
    head: FieldWriter
    nr: FieldWriter
    mapping: FieldWriter
    index: FieldWriter
    pins: FieldWriter
    refs: FieldWriter
    anon_exclusive: FieldWriter
    slot_mm: FieldWriter
    slot_count: FieldWriter
    slot_mm2: FieldWriter
    slot_count2: FieldWriter
    maybe_shared: FieldWriter
    data: FieldWriter
    writer: FieldWriter
    freed: FieldWriter
    kind: FieldWriter
    serial: FieldWriter
    origin: FieldWriter

    def __init__(self, mem: MemMap):
        object.__setattr__(self, "_mem", mem)

    def __getattr__(self, name: str) -> FieldWriter:
        if name not in _FIELD_NAMES:
            raise AttributeError(name)
        w = FieldWriter(self._mem, name)
        object.__setattr__(self, name, w)
        return w

    def __setattr__(self, name, value):  # pragma: no cover - a guard
        raise AttributeError(f"write through mem.w.{name}[...] = ..., not by rebinding it")


def new_field(n: int, dtype, fill) -> np.ndarray:
    """A field array of ``n`` frames holding ``fill``.  A zero-filled one
    comes from ``calloc``: its pages cost no memory until written, which
    matters because most fields are zero almost everywhere (only a THP's
    head carries its refcount, compound mapcount, owner slots...)."""
    if fill == 0:
        return np.zeros(n, dtype=dtype)
    return np.full(n, fill, dtype=dtype)


def copy_into(dst: np.ndarray, src: np.ndarray, size: int, fill, chunk: int) -> None:
    """``dst[:size] = src[:size]``, skipping the chunks of a zero-filled
    field that are still all zero (so their pages of ``dst`` stay untouched)."""
    if fill != 0 or size <= chunk:
        dst[:size] = src[:size]
        return
    whole = size // chunk * chunk
    nz = np.flatnonzero(src[:whole].reshape(-1, chunk).any(axis=1))
    for run in np.split(nz, np.flatnonzero(np.diff(nz) != 1) + 1):
        if len(run):
            a, b = int(run[0]) * chunk, (int(run[-1]) + 1) * chunk
            dst[a:b] = src[a:b]
    dst[whole:size] = src[whole:size]


def default_chunk(nr: int) -> int:
    """Chunk size for a world of ``nr``-subpage THPs: a quarter of a THP,
    between 256 and 4096 frames (a fault on one subpage journals at most
    16 KiB of a field; a write over a whole 1 GiB THP, 64 pieces)."""
    return max(256, min(4096, nr // 4))


class MemMap:
    """Growable arrays of per-frame state.  Allocation never reuses a pfn, so
    a freed page keeps its identity (the diagrams can still show it)."""

    #: (name, dtype, value of a frame never written)
    _FIELDS = (
        ("refcount", np.int32, 0),
        ("mapcount", np.int32, 0),
        ("cmc", np.int32, 0),
        ("double_map", np.bool_, False),
        ("head", np.int32, -1),
        ("nr", np.int32, 0),
        ("mapping", np.int32, -1),
        ("index", np.int64, 0),
        ("pins", np.int32, 0),
        ("refs", np.int32, 0),
        ("anon_exclusive", np.bool_, False),
        ("slot_mm", np.int32, 0),
        ("slot_count", np.int32, 0),
        ("slot_mm2", np.int32, 0),
        ("slot_count2", np.int32, 0),
        ("maybe_shared", np.bool_, False),
        ("data", np.int32, 0),
        ("writer", np.int32, -1),
        ("freed", np.bool_, False),
        ("kind", np.int8, 0),
        ("serial", np.int32, 0),
        ("origin", np.int32, -1),
    )

    # the field arrays, for the type checker (one per entry of _FIELDS; each
    # is an instance attribute set where the memmap is made, no class attribute)
    refcount: np.ndarray
    mapcount: np.ndarray
    cmc: np.ndarray
    double_map: np.ndarray
    head: np.ndarray
    nr: np.ndarray
    mapping: np.ndarray
    index: np.ndarray
    pins: np.ndarray
    refs: np.ndarray
    anon_exclusive: np.ndarray
    slot_mm: np.ndarray
    slot_count: np.ndarray
    slot_mm2: np.ndarray
    slot_count2: np.ndarray
    maybe_shared: np.ndarray
    data: np.ndarray
    writer: np.ndarray
    freed: np.ndarray
    kind: np.ndarray
    serial: np.ndarray
    origin: np.ndarray

    #: pfns are stored as int32 (in ``head``, ``origin`` and the page tables)
    MAX_FRAMES = 2**31 - 1

    def __init__(self, capacity: int = 4096, chunk: int = 256):
        self._t = _Track(chunk)
        capacity = self._round(max(capacity, 1))
        self.size = 0
        self.capacity = capacity
        for name, dtype, fill in self._FIELDS:
            setattr(self, name, new_field(capacity, dtype, fill))
        self.thp_serial = 0
        self.small_serial = 0

    def _round(self, n: int) -> int:
        c = self._t.chunk
        return -(-n // c) * c

    @property
    def w(self) -> _Writers:
        """Tracked writers, one per field: ``mem.w.refcount[h] += 1``."""
        t = self._t
        if t.writers is None:
            t.writers = _Writers(self)
        return t.writers

    @property
    def chunk(self) -> int:
        return self._t.chunk

    def clone(self) -> "MemMap":
        """A copy that shares every array with this one until either writes
        it (copy-on-write, per field)."""
        new = MemMap.__new__(MemMap)
        new._t = _Track(self._t.chunk)
        new.size, new.capacity = self.size, self.capacity
        for name, _, _ in self._FIELDS:
            new.__dict__[name] = self.__dict__[name]
        new.thp_serial, new.small_serial = self.thp_serial, self.small_serial
        names = {name for name, _, _ in self._FIELDS}
        new._t.shared = set(names)
        self._t.shared = set(names)
        self._t.cells.clear()
        return new

    def __deepcopy__(self, memo) -> "MemMap":
        new = MemMap.__new__(MemMap)
        memo[id(self)] = new
        new._t = _Track(self._t.chunk)
        new.size, new.capacity = self.size, self.capacity
        for name, _, _ in self._FIELDS:
            new.__dict__[name] = self.__dict__[name].copy()
        new.thp_serial, new.small_serial = self.thp_serial, self.small_serial
        return new

    # -- statements: commit and roll back ---------------------------------------
    def take_journal(self) -> tuple[dict[str, dict[int, np.ndarray]], tuple[int, int, int] | None]:
        """End the statement: return (journal, (size, serials) at its start)
        and forget them."""
        t = self._t
        out = (t.journal, t.start)
        t.journal = {}
        t.start = None
        return out

    def rollback(self) -> None:
        """Put back every chunk written since the statement began."""
        t = self._t
        n = t.chunk
        for name, chunks in t.journal.items():
            arr = self.__dict__[name]
            if t.strict:
                arr.flags.writeable = True
            for c, old in chunks.items():
                arr[c * n : c * n + len(old)] = old
            if t.strict:
                arr.flags.writeable = False
        if t.start is not None:
            self.size, self.thp_serial, self.small_serial = t.start
        t.journal = {}
        t.start = None

    def set_strict(self, on: bool = True) -> None:
        """Make the arrays read-only except inside tracked writes (tests)."""
        self._t.strict = on
        for name, _, _ in self._FIELDS:
            arr = self.__dict__[name]
            if name not in self._t.shared or not on:
                arr.flags.writeable = not on

    def _reserve(self, n: int) -> int:
        start = self.size
        need = start + n
        if need > self.MAX_FRAMES:
            raise MemoryError("thpviz: more than 2**31 frames")
        t = self._t
        if t.start is None:
            t.start = (self.size, self.thp_serial, self.small_serial)
        if need > self.capacity:
            cap = self._round(max(need, self.capacity + self.capacity // 4))
            c = t.chunk
            for name, dtype, fill in self._FIELDS:
                old = self.__dict__[name]
                grown = new_field(cap, dtype, fill)
                copy_into(grown, old, self.size, fill, c)
                # snapshot cells of unchanged chunks view the new array (the
                # same contents), so the old one can go
                for k, cell in t.cells.get(name, {}).items():
                    cell.a = grown[k * c : (k + 1) * c]
                if t.strict:
                    grown.flags.writeable = False
                self.__dict__[name] = grown
            self.capacity = cap
            # clones no longer share anything with this memmap
            t.shared.clear()
        self.size = need
        return start

    # -- allocation (alloc_pages) -------------------------------------------
    def alloc_compound(self, nr: int, kind: int = KIND_THP) -> int:
        """A compound page of ``nr`` frames; returns the head pfn."""
        h = self._reserve(nr)
        w = self.w
        w.head[h : h + nr] = h
        w.nr[h] = nr
        w.kind[h : h + nr] = kind
        if kind == KIND_THP:
            self.thp_serial += 1
            w.serial[h] = self.thp_serial
        return h

    def alloc_small(self, n: int, kind: int = KIND_SMALL) -> np.ndarray:
        """``n`` independent order-0 pages; returns their pfns."""
        s = self._reserve(n)
        pfns = np.arange(s, s + n, dtype=np.int64)
        sl = slice(s, s + n)
        w = self.w
        w.head[sl] = pfns
        w.nr[sl] = 1
        w.kind[sl] = kind
        if kind == KIND_SMALL:
            w.serial[sl] = np.arange(self.small_serial + 1, self.small_serial + 1 + n)
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

    # -- snapshots --------------------------------------------------------------
    def chunk_cells(self, name: str, chunks) -> dict[int, Cell]:
        """A :class:`Cell` viewing each of ``chunks`` of field ``name`` as it
        is now (one cell per chunk, shared by every snapshot that asks before
        the chunk changes)."""
        t = self._t
        n = t.chunk
        arr = self.__dict__[name]
        cells = t.cells.setdefault(name, {})
        out = {}
        for c in chunks:
            cell = cells.get(c)
            if cell is None:
                cell = cells[c] = Cell(arr[c * n : (c + 1) * n])
            out[c] = cell
        return out

    @classmethod
    def from_arrays(cls, arrays: dict, size: int, thp_serial: int, small_serial: int, chunk: int,
                    shared=()) -> "MemMap":
        """A MemMap holding ``arrays`` (one per field, each at least ``size``
        long; they become this memmap's own, except those named in
        ``shared``, which it copies before it first writes them)."""
        new = cls.__new__(cls)
        new._t = _Track(chunk)
        new._t.shared = set(shared)
        new.size = size
        new.capacity = min(len(a) for a in arrays.values())
        for name, _, _ in cls._FIELDS:
            new.__dict__[name] = arrays[name]
        new.thp_serial, new.small_serial = thp_serial, small_serial
        return new


_FIELD_NAMES = frozenset(name for name, _, _ in MemMap._FIELDS)
