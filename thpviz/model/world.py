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
would refuse, so a refused operation leaves the world as it was.  Every change
is also recorded in an undo journal (:mod:`.txn`) until the statement is
committed (:meth:`World.commit`), so :meth:`World.rollback` can undo a
statement that failed half-way.  The engine writes struct pages through
``mem.w`` and page tables through :meth:`World._table_w` /
:meth:`World._pt_set` / :meth:`World._pt_del`, and marks a process with
:meth:`World._mm_w` before changing its VMAs, regions or flags.
"""

from __future__ import annotations

import copy

import numpy as np

from .arrays import uniq, uniq_counts
from .events import OpError, StepLog, ThpvizDefect
from .faults import FaultMixin
from .fork import ForkMixin
from .gup import GupMixin, Pin
from .memmap import KIND_ZERO, MemMap, default_chunk
from .mm import AnonVma, Mm, Pmd, PteTable, Vma
from .rmap import RmapMixin
from .txn import MmSaved, Tracker, Txn
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
        self.mem = MemMap(max(1024, 4 * nr), default_chunk(nr))
        self.mms: dict[str, Mm] = {}
        self.anon_vmas: list[AnonVma] = []
        self.pins: dict[str, Pin] = {}
        self.clock = 0
        self.next_va = 2 * nr
        self.mm_serial = 0
        self._t = Tracker(self)
        self.huge_zero_pfn = self.mem.alloc_compound(nr, KIND_ZERO)
        self.zero_pfn = int(self.mem.alloc_small(1, KIND_ZERO)[0])
        self.log = StepLog()

    # ------------------------------------------------------------------ state
    def clone(self) -> "World":
        """An independent copy.  Cheap: the struct page arrays and the page
        tables are shared copy-on-write (the open statement is committed
        first, so nothing either world writes afterwards is seen by the
        other)."""
        self.commit()
        # an exited process and a released pin never change again (every
        # operation refuses a dead mm; the loops over pins skip released
        # ones), so clones share them: a clone costs what is live, not the
        # whole history of the run
        w = World.assemble(
            self.era, self.nr, self.mem.clone(), {k: m.clone() if m.alive else m for k, m in self.mms.items()},
            list(self.anon_vmas), {k: p.clone() if p.active else p for k, p in self.pins.items()},
            self.clock, self.next_va, self.mm_serial, self.huge_zero_pfn, self.zero_pfn,
        )
        for listener in self._t.listeners:
            hook = getattr(listener, "cloned", None)
            if hook is not None:
                hook(self, w)
        return w

    def __deepcopy__(self, memo) -> "World":
        """``copy.deepcopy``: everything copied, the bookkeeping (journal,
        checker, recorder) started afresh."""
        self.commit()
        new = World.__new__(World)
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            if k != "_t":
                new.__dict__[k] = copy.deepcopy(v, memo)
        new._t = Tracker(new)
        return new

    @classmethod
    def assemble(cls, era, nr, mem, mms, anon_vmas, pins, clock, next_va, mm_serial,
                 huge_zero_pfn, zero_pfn) -> "World":
        """A world made of the given parts (they become its own)."""
        w = cls.__new__(cls)
        w.era, w.nr = era, nr
        w.mem = mem
        w.mms = mms
        w.anon_vmas = anon_vmas
        w.pins = pins
        w.clock, w.next_va, w.mm_serial = clock, next_va, mm_serial
        w._t = Tracker(w)
        w.huge_zero_pfn, w.zero_pfn = huge_zero_pfn, zero_pfn
        w.log = StepLog()
        return w

    # ---------------------------------------------------------- statements
    def commit(self) -> Txn:
        """End the statement: freeze the page tables it wrote, tell the
        listeners what it changed, and start a new journal.  Returns the
        committed journal."""
        t = self._t
        txn = t.txn
        txn.mem, txn.mem_start = self.mem.take_journal()
        for e in txn.owned.values():
            if type(e) is PteTable:
                e.freeze()
        t.txn = Txn(self)
        if not txn.empty() or txn.mem_start is not None:
            for listener in t.listeners:
                listener.absorb(self, txn)
        return txn

    def rollback(self) -> None:
        """Undo everything since the last commit."""
        t = self._t
        txn = t.txn
        self.mem.rollback()
        for name, saved in txn.mms.items():
            if saved is None:
                self.mms.pop(name, None)
                continue
            mm = self.mms[name]
            mm.vmas, mm.pt = saved.vmas, saved.pt
            for k in list(mm.regions)[saved.n_regions :]:
                del mm.regions[k]
            mm.alive, mm.has_pinned = saved.alive, saved.has_pinned
        for name, saved in txn.pins.items():
            if saved is None:
                self.pins.pop(name, None)
            else:
                self.pins[name] = saved
        del self.anon_vmas[txn.n_anon_vmas :]
        self.clock, self.next_va, self.mm_serial = txn.scalars
        t.alive = None
        t.txn = Txn(self)

    def _mm_w(self, mm: Mm) -> Mm:
        """Record ``mm`` before the statement first changes it."""
        txn = self._t.txn
        if mm.name not in txn.mms:
            txn.mms[mm.name] = MmSaved([v.copy() for v in mm.vmas], dict(mm.pt), len(mm.regions),
                                       mm.alive, mm.has_pinned)
        return mm

    def _table_w(self, mm: Mm, ext: int) -> PteTable:
        """The page table at ``ext`` of ``mm``, writable by this statement
        (a copy of the shared one the first time)."""
        e = mm.pt[ext]
        assert isinstance(e, PteTable), "callers ask only where PTEs are"
        owned = self._t.txn.owned
        if id(e) in owned:
            return e
        self._mm_w(mm)
        e = e.copy()
        owned[id(e)] = e
        mm.pt[ext] = e
        return e

    def _pt_set(self, mm: Mm, ext: int, entry: Pmd | PteTable, new: bool = True) -> None:
        """Install ``entry`` at ``ext`` (``new``: an entry this statement
        built, which it may still write)."""
        self._mm_w(mm)
        mm.pt[ext] = entry
        if new:
            self._t.txn.owned[id(entry)] = entry

    def _pt_new_table(self, mm: Mm, ext: int) -> PteTable:
        """The page table at ``ext``, writable; an empty one if there is none."""
        if ext in mm.pt:
            return self._table_w(mm, ext)
        t = PteTable(self.nr)
        self._pt_set(mm, ext, t)
        return t

    def _pt_del(self, mm: Mm, ext: int) -> None:
        self._mm_w(mm)
        del mm.pt[ext]

    def _pin_w(self, pin: "Pin") -> "Pin":
        """Record ``pin`` before the statement first changes it."""
        pins = self._t.txn.pins
        if pin.name not in pins:
            pins[pin.name] = pin.clone()
        return pin

    def mm(self, name: str) -> Mm:
        m = self.mms.get(name)
        if m is None or not m.alive:
            raise OpError(f"process {name} does not exist")
        return m

    def alive_mms(self) -> list[Mm]:
        t = self._t
        if t.alive is None:
            t.alive = [m for m in self.mms.values() if m.alive]
        return list(t.alive)

    def mm_by_id(self, mm_id: int) -> Mm | None:
        for m in self.mms.values():
            if m.id == mm_id:
                return m
        return None

    def _new_mm(self, name: str) -> Mm:
        self.mm_serial += 1
        m = Mm(name, self.mm_serial)
        self.mms[name] = m
        t = self._t
        t.txn.mms.setdefault(name, None)
        if t.alive is not None:
            t.alive.append(m)
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
        self._mm_w(mm)
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

    def maybe_dma_pinned(self, pfns: np.ndarray, extra: int = 0) -> np.ndarray:
        """``page_maybe_dma_pinned()`` (5.7+): a large folio's ``_pincount``
        is not zero, or an order-0 page's refcount is at least
        GUP_PIN_COUNTING_BIAS (false positives allowed, as in the kernel).
        ``extra``: references the caller holds itself at the time of the
        check (fork's own ``get_page`` from 5.19), which count on an order-0
        page."""
        mem = self.mem
        heads = mem.head[np.asarray(pfns, dtype=np.int64)]
        out = np.zeros(len(heads), dtype=np.bool_)
        large = mem.nr[heads] > 1
        for h in uniq(heads[large]):
            out[heads == h] = mem.pins[h : h + mem.nr[h]].sum() > 0
        small = ~large
        out[small] = mem.refcount[heads[small]] + extra >= GUP_PIN_COUNTING_BIAS
        return out

    def _get(self, heads: np.ndarray, n=1) -> None:
        """``get_page`` (``n`` references) on each head; zero pages are not
        counted."""
        heads = np.asarray(heads, dtype=np.int64)
        keep = self.mem.kind[heads] != KIND_ZERO
        n = np.broadcast_to(np.asarray(n, dtype=np.int64), heads.shape)[keep]
        self.mem.w.refcount.add_at(heads[keep], n)

    def _put(self, heads: np.ndarray, n=1) -> None:
        """``put_page``; a page whose count drops to zero is freed."""
        mem = self.mem
        heads = np.asarray(heads, dtype=np.int64)
        keep = mem.kind[heads] != KIND_ZERO
        heads = heads[keep]
        if len(heads) == 0:
            return
        n = np.broadcast_to(np.asarray(n, dtype=np.int64), keep.shape)[keep]
        mem.w.refcount.add_at(heads, -n)
        dead = heads[mem.refcount[heads] <= 0]
        if len(dead) == 0:
            return
        dead = uniq(dead)
        neg = dead[mem.refcount[dead] < 0]
        if len(neg):
            raise ThpvizDefect(f"refcount of {mem.name(int(neg[0]))} went negative")
        large = mem.nr[dead] > 1
        small = dead[~large]
        if len(small):
            mem.w.freed[small] = True
            mem.w.anon_exclusive[small] = False
        for h in dead[large].tolist():
            size = int(mem.nr[h])
            mem.w.freed[h : h + size] = True
            mem.w.anon_exclusive[h : h + size] = False

    def _pte_map(self, mm: Mm, pfns: np.ndarray) -> None:
        """``page_add_anon_rmap`` / ``page_dup_rmap`` on PTE-mapped frames,
        plus the reference each mapping holds on the head."""
        mem = self.mem
        pfns = np.asarray(pfns, dtype=np.int64)
        pfns = pfns[mem.kind[pfns] != KIND_ZERO]
        if len(pfns) == 0:
            return
        mem.w.mapcount.add_at(pfns, 1)
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
        mem.w.mapcount.add_at(pfns, -1)
        heads = mem.head[pfns]
        if self.era.tracks_mm_ids:
            self._slots_change(mm, heads, -1)
        self._put(heads)

    def _pmd_map(self, mm: Mm, h: int) -> None:
        """``page_add_anon_rmap(page, true)`` / ``page_dup_rmap(page, true)``:
        one more entire (compound) mapping and its reference."""
        if self.mem.kind[h] == KIND_ZERO:
            return
        self.mem.w.cmc[h] += 1
        self.mem.w.refcount[h] += 1
        if self.era.tracks_mm_ids:
            self._slots_change(mm, np.array([h]), +1)

    def _pmd_unmap(self, mm: Mm, h: int) -> None:
        """``page_remove_rmap(page, true)`` + ``put_page``: the last compound
        mapping also clears PageDoubleMap and its +1 on every subpage (eras
        that have PageDoubleMap)."""
        mem = self.mem
        if mem.kind[h] == KIND_ZERO:
            return
        mem.w.cmc[h] -= 1
        if mem.cmc[h] == 0 and mem.double_map[h]:
            mem.w.double_map[h] = False
            mem.w.mapcount[h : h + int(mem.nr[h])] -= 1
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
        heads, counts = uniq_counts(heads)
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
                        mem.w.maybe_shared[h] = True
                elif ids[1] == 0:
                    ids[1], cnt[1] = mm.id, diff
                    mem.w.maybe_shared[h] = True
            else:
                own = mm.id in ids
                if own:
                    i = ids.index(mm.id)
                    cnt[i] -= diff
                    if cnt[i] <= 0:
                        ids[i], cnt[i] = 0, 0
                        own = False
                if not own and total in cnt:
                    mem.w.maybe_shared[h] = False
            w = mem.w
            w.slot_mm[h], w.slot_mm2[h] = ids
            w.slot_count[h], w.slot_count2[h] = cnt


__all__ = ["GUP_PIN_COUNTING_BIAS", "OpError", "Pin", "World"]
