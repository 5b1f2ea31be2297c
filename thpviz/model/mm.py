"""Address spaces: ``mm_struct``, ``vm_area_struct``, page tables, anon_vma.

Addresses are counted in 4 KiB subpages.  A huge-page-sized, huge-page-aligned
stretch of virtual addresses is an *extent* (what one PMD entry covers); each
extent of an mm is either absent, one :class:`Pmd` entry, or a
:class:`PteTable`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class AnonVma:
    """``struct anon_vma``.  ``root`` and ``parent`` are anon_vma ids; the
    reverse map itself lives in the VMAs' anon_vma_chain links (``Vma.avcs``),
    which is how the kernel's interval tree of an anon_vma is filled."""

    id: int
    root: int
    parent: int

    @property
    def name(self) -> str:
        return f"av{self.id}"


@dataclass
class Vma:
    """``struct vm_area_struct`` for a private anonymous mapping.

    ``avcs`` lists the anon_vmas this VMA is linked to by anon_vma_chain
    entries (``vma->anon_vma_chain``); ``anon_vma`` is ``vma->anon_vma``, the
    one new pages go to and the one ``page_move_anon_rmap`` moves a page to.
    """

    start: int
    end: int
    pgoff: int
    write: bool = True
    dontcopy: bool = False
    #: THP allowed (False: VM_NOHUGEPAGE, ``mmap A nohuge``)
    huge: bool = True
    anon_vma: int | None = None
    avcs: tuple[int, ...] = ()

    def copy(self, **kw) -> "Vma":
        c = object.__new__(Vma)
        c.__dict__.update(self.__dict__)
        for k, v in kw.items():
            setattr(c, k, v)
        return c

    def linear_page_index(self, addr):
        """``linear_page_index(vma, address)``."""
        return self.pgoff + (addr - self.start)

    def contains(self, addr: int) -> bool:
        return self.start <= addr < self.end


@dataclass(frozen=True)
class Pmd:
    """A present huge PMD entry mapping the THP whose head is ``head``, with
    its write and dirty bits.  Immutable: a changed entry is a new ``Pmd``
    (so a snapshot can share the old one)."""

    head: int
    write: bool
    dirty: bool = False

    def copy(self) -> "Pmd":
        return self

    def but(self, **kw) -> "Pmd":
        """This entry with some bits changed."""
        return replace(self, **kw)


class PteTable:
    """A page table of ``nr`` PTEs: the pfn each maps (-1 for none), its write
    bit and its dirty bit (set by the hardware on a write through the entry,
    and by the fault paths that map a page for writing).

    A table is written only by the statement that created or copied it; when
    the statement ends the world freezes it (its arrays become read-only) and
    from then on snapshots and clones share it, and a later write goes to a
    copy (``World._table_w``)."""

    __slots__ = ("pfn", "write", "dirty")

    def __init__(self, nr: int, pfn=None, write=None, dirty=None):
        self.pfn = np.full(nr, -1, dtype=np.int32) if pfn is None else np.asarray(pfn, dtype=np.int32)
        n = len(self.pfn)
        self.write = np.zeros(n, dtype=np.bool_) if write is None else write
        self.dirty = np.zeros(n, dtype=np.bool_) if dirty is None else dirty

    def copy(self) -> "PteTable":
        t = PteTable.__new__(PteTable)
        t.pfn, t.write, t.dirty = self.pfn.copy(), self.write.copy(), self.dirty.copy()
        return t

    def freeze(self) -> None:
        self.pfn.flags.writeable = False
        self.write.flags.writeable = False
        self.dirty.flags.writeable = False

    def empty(self) -> bool:
        return not bool((self.pfn >= 0).any())


@dataclass
class Mm:
    """``struct mm_struct``: VMAs, page tables, and the scenario's region names."""

    name: str
    id: int
    vmas: list[Vma] = field(default_factory=list)
    pt: dict[int, Pmd | PteTable] = field(default_factory=dict)
    regions: dict[str, tuple[int, int]] = field(default_factory=dict)
    alive: bool = True
    #: ``mm->has_pinned`` (5.9, 008cfe4418b3; MMF_HAS_PINNED later): this mm
    #: has ever had a page FOLL_PIN-ned; never cleared, not inherited by fork
    has_pinned: bool = False

    def clone(self) -> "Mm":
        """A copy with its own VMAs; the page-table entries are shared (they
        are frozen between statements, see :class:`PteTable`)."""
        return Mm(
            self.name,
            self.id,
            [v.copy() for v in self.vmas],
            dict(self.pt),
            dict(self.regions),
            self.alive,
            self.has_pinned,
        )

    def region_bounds(self, name: str) -> tuple[int, int]:
        """``(first address, end address)`` of a named region (the regions
        table stores ``(start, length)``)."""
        start, length = self.regions[name]
        return start, start + length

    # -- VMA lookup --------------------------------------------------------------
    def find_vma(self, addr: int) -> Vma | None:
        for v in self.vmas:
            if v.start <= addr < v.end:
                return v
        return None

    def vmas_in(self, lo: int, hi: int) -> list[Vma]:
        return [v for v in self.vmas if v.start < hi and v.end > lo]

    def covered(self, lo: int, hi: int) -> bool:
        """True when [lo, hi) is covered by VMAs without holes."""
        pos = lo
        for v in sorted(self.vmas_in(lo, hi), key=lambda v: v.start):
            if v.start > pos:
                return False
            pos = max(pos, v.end)
        return pos >= hi

    def region_at(self, addr: int) -> tuple[str, int] | None:
        """(region name, subpage index in it) for an address, if named."""
        for name, (start, length) in self.regions.items():
            if start <= addr < start + length:
                return name, addr - start
        return None

    def describe(self, lo: int, hi: int) -> str:
        r = self.region_at(lo)
        if r is None:
            return f"@{lo:#x}"
        name, i = r
        n = hi - lo
        return f"{name}[{i}]" if n == 1 else f"{name}[{i}:{i + n}]"
