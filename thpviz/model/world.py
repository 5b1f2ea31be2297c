"""The world: struct pages, processes, the reverse map, pins and the device.

The world carries out the mm operations the way the kernel's generic code
does.  The decisions that changed between kernel eras -- reuse or copy on a
write-protect fault, how a PMD is split, what fork does with a pinned page,
whether GUP breaks COW or unshares -- are asked of the era object
(:mod:`thpviz.eras`); the world never imports an era module.  The operations
live in small mixins named after what they hold:

* :mod:`.rmap`     anon_vma, anon_vma_chain, ``rmap_walk``
* :mod:`.faults`   the fault paths and CPU writes
* :mod:`.vmaops`   munmap, madvise, mprotect, mremap, the splits
* :mod:`.fork`     fork and exit
* :mod:`.gup`      GUP pins and references, the device

This module holds the state and the page accounting they share: taking and
dropping references, adding and removing rmap (mapcount) entries, and the
6.15 per-folio owner slots.

Addresses are in units of 4 KiB subpages.  Every operation checks what it
needs before it changes anything and raises :class:`OpError` when the kernel
would refuse, so a refused operation leaves the world as it was.
"""

from __future__ import annotations

import numpy as np

from .events import OpError, StepLog, ThpvizDefect
from .faults import FaultMixin
from .fork import ForkMixin
from .gup import GupMixin, Pin
from .memmap import KIND_ZERO, MemMap
from .mm import AnonVma, Mm, Vma
from .rmap import RmapMixin
from .vmaops import VmaOpsMixin

#: FOLL_PIN on an order-0 page adds this to its refcount (3faa52c03f44, 5.7)
GUP_PIN_COUNTING_BIAS = 1024


class World(RmapMixin, FaultMixin, VmaOpsMixin, ForkMixin, GupMixin):
    """All model state.  ``era`` is any object with the policy methods of
    :class:`thpviz.eras.base.Era`."""

    def __init__(self, era, nr: int = 512):
        if nr < 2 or nr & (nr - 1):
            raise ValueError("thp size must be a power of two >= 2")
        self.era = era
        self.nr = nr
        self.mem = MemMap(max(1024, 4 * nr))
        self.mms: dict[str, Mm] = {}
        self.anon_vmas: list[AnonVma] = []
        self.pins: dict[str, Pin] = {}
        self.clock = 0
        self.next_va = 2 * nr
        self.mm_serial = 0
        self.huge_zero_pfn = self.mem.alloc_compound(nr, KIND_ZERO)
        self.zero_pfn = int(self.mem.alloc_small(1, KIND_ZERO)[0])
        self.log = StepLog()

    # ------------------------------------------------------------------ state
    def clone(self) -> "World":
        w = World.__new__(World)
        w.era, w.nr = self.era, self.nr
        w.mem = self.mem.clone()
        # an exited process and a released pin never change again (every
        # operation refuses a dead mm; the loops over pins skip released
        # ones), so clones share them: a clone costs what is live, not the
        # whole history of the run
        w.mms = {k: m.clone() if m.alive else m for k, m in self.mms.items()}
        w.anon_vmas = list(self.anon_vmas)
        w.pins = {k: p.clone() if p.active else p for k, p in self.pins.items()}
        w.clock, w.next_va, w.mm_serial = self.clock, self.next_va, self.mm_serial
        w.huge_zero_pfn, w.zero_pfn = self.huge_zero_pfn, self.zero_pfn
        w.log = StepLog()
        return w

    def mm(self, name: str) -> Mm:
        m = self.mms.get(name)
        if m is None or not m.alive:
            raise OpError(f"process {name} does not exist")
        return m

    def alive_mms(self) -> list[Mm]:
        return [m for m in self.mms.values() if m.alive]

    def mm_by_id(self, mm_id: int) -> Mm | None:
        for m in self.mms.values():
            if m.id == mm_id:
                return m
        return None

    def _new_mm(self, name: str) -> Mm:
        self.mm_serial += 1
        m = Mm(name, self.mm_serial)
        self.mms[name] = m
        return m

    def _alloc_va(self, n_subpages: int) -> int:
        nr = self.nr
        ext = -(-n_subpages // nr)
        start = self.next_va
        self.next_va += (ext + 1) * nr  # one empty extent between regions
        return start

    def is_zero(self, pfn) -> np.ndarray | bool:
        return self.mem.kind[pfn] == KIND_ZERO

    def region_range(self, proc: str, region: str) -> tuple[int, int]:
        """``(first address, end address)`` of a region of a process."""
        return self.mms[proc].region_bounds(region)

    # ------------------------------------------------------------- mmap
    def mmap(self, proc: str, region: str, extents: int, huge: bool = True) -> None:
        mm = self.mms.get(proc)
        if mm is not None and not mm.alive:
            raise OpError(f"process {proc} has exited")
        if mm is not None and region in mm.regions:
            raise OpError(f"{proc} already has a region {region}")
        if mm is None:
            mm = self._new_mm(proc)
        n = extents * self.nr
        start = self._alloc_va(n)
        mm.vmas.append(Vma(start, start + n, pgoff=start, huge=huge))
        mm.vmas.sort(key=lambda v: v.start)
        mm.regions[region] = (start, n)

    # ------------------------------------------------------ page accounting
    def pin_weight(self, heads: np.ndarray) -> np.ndarray:
        """What one ``pin`` adds to the refcount of each page: 1 for a
        FOLL_GET (the 2016 eras) or for a FOLL_PIN on a large folio (which
        also counts in ``_pincount``), GUP_PIN_COUNTING_BIAS for a FOLL_PIN on
        an order-0 page (5.7+)."""
        heads = np.asarray(heads, dtype=np.int64)
        if not self.era.foll_pin:
            return np.ones(len(heads), dtype=np.int64)
        return np.where(self.mem.nr[heads] > 1, 1, GUP_PIN_COUNTING_BIAS)

    def maybe_dma_pinned(self, pfns: np.ndarray) -> np.ndarray:
        """``page_maybe_dma_pinned()`` (5.7+): a large folio's ``_pincount``
        is not zero, or an order-0 page's refcount is at least
        GUP_PIN_COUNTING_BIAS (false positives allowed, as in the kernel)."""
        mem = self.mem
        heads = mem.head[np.asarray(pfns, dtype=np.int64)]
        out = np.zeros(len(heads), dtype=np.bool_)
        large = mem.nr[heads] > 1
        for h in np.unique(heads[large]):
            out[heads == h] = mem.pins[h : h + mem.nr[h]].sum() > 0
        small = ~large
        out[small] = mem.refcount[heads[small]] >= GUP_PIN_COUNTING_BIAS
        return out

    def _get(self, heads: np.ndarray, n=1) -> None:
        """``get_page`` (``n`` references) on each head; zero pages are not
        counted."""
        heads = np.asarray(heads, dtype=np.int64)
        keep = self.mem.kind[heads] != KIND_ZERO
        n = np.broadcast_to(np.asarray(n, dtype=np.int64), heads.shape)[keep]
        np.add.at(self.mem.refcount, heads[keep], n)

    def _put(self, heads: np.ndarray, n=1) -> None:
        """``put_page``; a page whose count drops to zero is freed."""
        mem = self.mem
        heads = np.asarray(heads, dtype=np.int64)
        keep = mem.kind[heads] != KIND_ZERO
        heads = heads[keep]
        if len(heads) == 0:
            return
        n = np.broadcast_to(np.asarray(n, dtype=np.int64), keep.shape)[keep]
        np.add.at(mem.refcount, heads, -n)
        for h in np.unique(heads[mem.refcount[heads] <= 0]):
            if mem.refcount[h] < 0:
                raise ThpvizDefect(f"refcount of {mem.name(h)} went negative")
            size = int(mem.nr[h])
            mem.freed[h : h + size] = True
            mem.anon_exclusive[h : h + size] = False

    def _pte_map(self, mm: Mm, pfns: np.ndarray) -> None:
        """``page_add_anon_rmap`` / ``page_dup_rmap`` on PTE-mapped frames,
        plus the reference each mapping holds on the head."""
        mem = self.mem
        pfns = np.asarray(pfns, dtype=np.int64)
        pfns = pfns[mem.kind[pfns] != KIND_ZERO]
        if len(pfns) == 0:
            return
        np.add.at(mem.mapcount, pfns, 1)
        heads = mem.head[pfns]
        self._get(heads)
        if self.era.tracks_mm_ids:
            self._slots_change(mm, heads, +1)

    def _pte_unmap(self, mm: Mm, pfns: np.ndarray) -> None:
        """``page_remove_rmap(page, false)`` + ``put_page`` for each frame."""
        mem = self.mem
        pfns = np.asarray(pfns, dtype=np.int64)
        pfns = pfns[mem.kind[pfns] != KIND_ZERO]
        if len(pfns) == 0:
            return
        np.add.at(mem.mapcount, pfns, -1)
        heads = mem.head[pfns]
        if self.era.tracks_mm_ids:
            self._slots_change(mm, heads, -1)
        self._put(heads)

    def _pmd_map(self, mm: Mm, h: int) -> None:
        """``page_add_anon_rmap(page, true)`` / ``page_dup_rmap(page, true)``:
        one more entire (compound) mapping and its reference."""
        if self.mem.kind[h] == KIND_ZERO:
            return
        self.mem.cmc[h] += 1
        self.mem.refcount[h] += 1
        if self.era.tracks_mm_ids:
            self._slots_change(mm, np.array([h]), +1)

    def _pmd_unmap(self, mm: Mm, h: int) -> None:
        """``page_remove_rmap(page, true)`` + ``put_page``: the last compound
        mapping also clears PageDoubleMap and its +1 on every subpage (eras
        that have PageDoubleMap)."""
        mem = self.mem
        if mem.kind[h] == KIND_ZERO:
            return
        mem.cmc[h] -= 1
        if mem.cmc[h] == 0 and mem.double_map[h]:
            mem.double_map[h] = False
            mem.mapcount[h : h + mem.nr[h]] -= 1
        if self.era.tracks_mm_ids:
            self._slots_change(mm, np.array([h]), -1)
        self._put(np.array([h]))

    def large_mapcount(self, h: int) -> int:
        """``folio_large_mapcount()`` of a large folio: every PMD and PTE
        mapping of any part of it (what ``total_mapcount`` counts)."""
        mem = self.mem
        n = int(mem.nr[h])
        return int(mem.mapcount[h : h + n].sum() - n * int(mem.double_map[h]) + mem.cmc[h])

    # -------------------------------------------- 6.15 folio owner tracking
    def _slots_change(self, mm: Mm, heads: np.ndarray, sign: int) -> None:
        """``folio_add_large_mapcount`` / ``folio_sub_large_mapcount`` with
        CONFIG_MM_ID (6af8cb80d3a9, 6.15) for every large folio in ``heads``
        (one entry per mapping added or removed by ``mm``).  Called after the
        mapcounts changed, so ``large_mapcount`` is the new total.

        Slots hold (mm id, that mm's mappings); 0 marks a free slot.  Adding:
        the mm's own slot grows; else it takes slot 0 (setting the "maybe
        mapped shared" bit if other mappings exist) or slot 1 (always setting
        the bit); with both slots taken it is counted only in the total.
        Removing: the mm's slot shrinks and is freed at zero; then, only if
        the mm has no slot left, the bit is cleared when one remaining slot
        holds every mapping."""
        mem = self.mem
        heads, counts = np.unique(heads, return_counts=True)
        for h, diff in zip(heads.tolist(), counts.tolist()):
            if mem.nr[h] == 1:
                continue
            total = self.large_mapcount(h)
            ids = [int(mem.slot_mm[h]), int(mem.slot_mm2[h])]
            cnt = [int(mem.slot_count[h]), int(mem.slot_count2[h])]
            if sign > 0:
                if mm.id in ids:
                    cnt[ids.index(mm.id)] += diff
                elif ids[0] == 0:
                    ids[0], cnt[0] = mm.id, diff
                    if total != diff:
                        mem.maybe_shared[h] = True
                elif ids[1] == 0:
                    ids[1], cnt[1] = mm.id, diff
                    mem.maybe_shared[h] = True
            else:
                own = mm.id in ids
                if own:
                    i = ids.index(mm.id)
                    cnt[i] -= diff
                    if cnt[i] <= 0:
                        ids[i], cnt[i] = 0, 0
                        own = False
                if not own and total in cnt:
                    mem.maybe_shared[h] = False
            mem.slot_mm[h], mem.slot_mm2[h] = ids
            mem.slot_count[h], mem.slot_count2[h] = cnt


__all__ = ["GUP_PIN_COUNTING_BIAS", "OpError", "Pin", "World"]
