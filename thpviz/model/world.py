"""The world: struct pages, processes, the reverse map, pins and the device.

The world carries out the mm operations the way the kernel's generic code
does (fault paths, ``copy_huge_pmd`` / ``copy_pte_range`` at fork,
``zap_huge_pmd`` / ``zap_pte_range``, VMA splitting with
``vma_adjust_trans_huge``, ``move_page_tables``, ``anon_vma_fork``).  The
decisions that changed between kernel eras -- reuse or copy on a
write-protect fault, how a PMD is split, whether ``split_huge_page`` may
fail -- are asked of the era object (:mod:`thpviz.eras`).  The world never
imports an era module.

Addresses are in units of 4 KiB subpages.  Every operation either completes
or raises :class:`OpError` before it has changed anything that the runner
does not roll back (the runner clones the world before each statement).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .events import (
    COW_HUGE,
    COW_SMALL,
    NEW,
    REUSE,
    ZERO,
    FaultBatch,
    OpError,
    StepLog,
    ThpvizDefect,
)
from .memmap import KIND_ZERO, PAGE_SIZE, MemMap
from .mm import AnonVma, Mm, Pmd, PteTable, Vma


@dataclass
class Pin:
    """GUP references taken by ``owner`` on a range: a long-term DMA pin as
    vfio takes it (``kind == "pin"``) or a read-only reference held by a pipe
    after vmsplice (``kind == "ref"``).  In the 2016 eras both are plain
    FOLL_GET references (+1 on the head's refcount each)."""

    name: str
    owner: str
    kind: str
    write: bool
    vas: np.ndarray
    pfns: np.ndarray
    excused: np.ndarray
    active: bool = True

    def clone(self) -> "Pin":
        return Pin(
            self.name, self.owner, self.kind, self.write,
            self.vas.copy(), self.pfns.copy(), self.excused.copy(), self.active,
        )


class World:
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
        w.mms = {k: m.clone() for k, m in self.mms.items()}
        w.anon_vmas = list(self.anon_vmas)
        w.pins = {k: p.clone() for k, p in self.pins.items()}
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

    # ------------------------------------------------------------- anon_vma
    def _new_anon_vma(self, parent: AnonVma | None) -> AnonVma:
        i = len(self.anon_vmas)
        av = AnonVma(i, parent.root if parent else i, parent.id if parent else i)
        self.anon_vmas.append(av)
        return av

    def anon_vma_prepare(self, mm: Mm, vma: Vma) -> int:
        """``anon_vma_prepare``: give the VMA an anon_vma before its first
        anonymous page.  Like ``find_mergeable_anon_vma`` we reuse the
        anon_vma of an adjacent VMA of the same mm that has only its own
        anon_vma linked (simplified: the kernel also checks mergeability of
        flags and offsets)."""
        if vma.anon_vma is not None:
            return vma.anon_vma
        for other in mm.vmas:
            if other is vma or other.anon_vma is None or len(other.avcs) != 1:
                continue
            if other.end == vma.start or other.start == vma.end:
                vma.anon_vma, vma.avcs = other.anon_vma, (other.anon_vma,)
                return vma.anon_vma
        av = self._new_anon_vma(None)
        vma.anon_vma, vma.avcs = av.id, (av.id,)
        return av.id

    # ------------------------------------------------------ page accounting
    def _get(self, heads: np.ndarray) -> None:
        """``get_page`` on each head (zero pages are not counted)."""
        heads = heads[self.mem.kind[heads] != KIND_ZERO]
        np.add.at(self.mem.refcount, heads, 1)

    def _put(self, heads: np.ndarray) -> None:
        """``put_page``; a page whose count drops to zero is freed."""
        mem = self.mem
        heads = heads[mem.kind[heads] != KIND_ZERO]
        if len(heads) == 0:
            return
        np.add.at(mem.refcount, heads, -1)
        for h in np.unique(heads[mem.refcount[heads] <= 0]):
            if mem.refcount[h] < 0:
                raise ThpvizDefect(f"refcount of {mem.name(h)} went negative")
            n = int(mem.nr[h])
            mem.freed[h : h + n] = True

    def _pte_map(self, pfns: np.ndarray) -> None:
        """``page_add_anon_rmap``/``page_dup_rmap`` on PTE-mapped frames, plus
        the reference each mapping holds on the head."""
        pfns = pfns[self.mem.kind[pfns] != KIND_ZERO]
        np.add.at(self.mem.mapcount, pfns, 1)
        self._get(self.mem.head[pfns])

    def _pte_unmap(self, pfns: np.ndarray) -> None:
        """``page_remove_rmap(page, false)`` + ``put_page`` for each frame."""
        pfns = pfns[self.mem.kind[pfns] != KIND_ZERO]
        np.add.at(self.mem.mapcount, pfns, -1)
        self._put(self.mem.head[pfns])

    def _pmd_map(self, h: int) -> None:
        if self.mem.kind[h] == KIND_ZERO:
            return
        self.mem.cmc[h] += 1
        self.mem.refcount[h] += 1

    def _pmd_unmap(self, h: int) -> None:
        """``page_remove_rmap(page, true)`` (``page_remove_anon_compound_rmap``)
        + ``put_page``: the last compound mapping also clears PageDoubleMap
        and its +1 on every subpage."""
        mem = self.mem
        if mem.kind[h] == KIND_ZERO:
            return
        mem.cmc[h] -= 1
        if mem.cmc[h] == 0 and mem.double_map[h]:
            mem.double_map[h] = False
            mem.mapcount[h : h + mem.nr[h]] -= 1
        self._put(np.array([h]))

    def _new_thp(self, vma: Vma, addr: int) -> int:
        """``do_huge_pmd_anonymous_page`` / the huge COW target:
        ``page_add_new_anon_rmap(page, vma, haddr, true)``."""
        mem = self.mem
        h = mem.alloc_compound(self.nr)
        mem.mapping[h] = vma.anon_vma
        mem.index[h] = vma.linear_page_index(addr)
        mem.cmc[h] = 1
        mem.refcount[h] = 1
        return h

    def _new_small(self, vmas: list[Vma], vidx: np.ndarray, addrs: np.ndarray) -> np.ndarray:
        """A batch of new order-0 anonymous pages, one per address, each
        mapped once (``page_add_new_anon_rmap``)."""
        mem = self.mem
        pf = mem.alloc_small(len(addrs))
        starts = np.array([v.start for v in vmas])
        pgoffs = np.array([v.pgoff for v in vmas])
        avs = np.array([-1 if v.anon_vma is None else v.anon_vma for v in vmas], dtype=np.int64)
        mem.mapping[pf] = avs[vidx]
        mem.index[pf] = pgoffs[vidx] + (addrs - starts[vidx])
        mem.mapcount[pf] = 1
        mem.refcount[pf] = 1
        return pf

    # ------------------------------------------------------- address lookup
    def _vma_index(self, mm: Mm, addrs: np.ndarray) -> np.ndarray:
        out = np.full(len(addrs), -1, dtype=np.int64)
        for i, v in enumerate(mm.vmas):
            out[(addrs >= v.start) & (addrs < v.end)] = i
        return out

    def lookup(self, mm: Mm, addrs: np.ndarray) -> np.ndarray:
        """The pfn mapped at each address in ``mm`` (-1 for none)."""
        nr = self.nr
        out = np.full(len(addrs), -1, dtype=np.int64)
        if not mm.alive or len(addrs) == 0:
            return out
        ext = addrs // nr
        for e in np.unique(ext):
            entry = mm.pt.get(int(e))
            if entry is None:
                continue
            sel = ext == e
            off = addrs[sel] - int(e) * nr
            if isinstance(entry, Pmd):
                out[sel] = entry.head + off
            else:
                out[sel] = entry.pfn[off]
        return out

    def lookup_one(self, mm: Mm, addr: int) -> tuple[int, str | None, bool]:
        """(pfn, level, writable) mapped at one address."""
        entry = mm.pt.get(addr // self.nr)
        off = addr % self.nr
        if entry is None:
            return -1, None, False
        if isinstance(entry, Pmd):
            return entry.head + off, "pmd", entry.write
        p = int(entry.pfn[off])
        return (p, "pte", bool(entry.write[off])) if p >= 0 else (-1, None, False)

    def _extents(self, lo: int, hi: int):
        nr = self.nr
        for e in range(lo // nr, (hi - 1) // nr + 1):
            yield e, max(lo, e * nr), min(hi, (e + 1) * nr)

    # ------------------------------------------------------------ splitting
    def split_huge_pmd(self, mm: Mm, ext: int) -> None:
        """``__split_huge_pmd_locked`` (4.5+): one PMD becomes ``nr`` PTEs of
        the same compound page, each with the PMD's write bit.  The head gains
        ``nr - 1`` references; every subpage's ``_mapcount`` goes up by one;
        PageDoubleMap is set (with its +1 on every subpage) if another PMD
        still maps the page, and cleared with the last compound mapping."""
        entry = mm.pt.get(ext)
        if not isinstance(entry, Pmd):
            return
        mem, nr, h = self.mem, self.nr, entry.head
        if mem.kind[h] == KIND_ZERO:
            self.split_huge_zero_pmd(mm, ext)
            return
        mm.pt[ext] = PteTable(
            nr, np.arange(h, h + nr, dtype=np.int64), np.full(nr, entry.write, dtype=np.bool_)
        )
        mem.refcount[h] += nr - 1
        mem.mapcount[h : h + nr] += 1
        if mem.cmc[h] > 1 and not mem.double_map[h]:
            mem.double_map[h] = True
            mem.mapcount[h : h + nr] += 1
        mem.cmc[h] -= 1
        if mem.cmc[h] == 0 and mem.double_map[h]:
            mem.double_map[h] = False
            mem.mapcount[h : h + nr] -= 1

    def split_huge_zero_pmd(self, mm: Mm, ext: int) -> None:
        """``__split_huge_zero_page_pmd``: the huge zero PMD becomes PTEs of
        the small zero page, read-only."""
        mm.pt[ext] = PteTable(
            self.nr, np.full(self.nr, self.zero_pfn, dtype=np.int64), np.zeros(self.nr, np.bool_)
        )

    def _compound_to_order0(self, h: int) -> None:
        """Turn compound page ``h`` into ``nr`` order-0 pages once no PMD maps
        it: each keeps its PTE mappings and its own pins as references."""
        mem, n = self.mem, int(self.mem.nr[h])
        fr = np.arange(h, h + n)
        if mem.cmc[h] != 0 or mem.double_map[h]:
            raise ThpvizDefect("compound page split while still PMD-mapped")
        mem.refcount[fr] = mem.mapcount[fr] + mem.pins[fr]
        mem.head[fr] = fr
        mem.nr[fr] = 1
        mem.mapping[fr] = mem.mapping[h]
        mem.index[fr] = mem.index[h] + np.arange(n)
        mem.origin[fr] = h
        mem.freed[fr] = mem.refcount[fr] == 0

    def split_huge_page_whole(self, h: int) -> None:
        """4.4 ``split_huge_page``: split the compound page and every PMD that
        maps it, in every process, at once.  It cannot fail; pins survive
        because tail-page refcounting kept each tail's pins, and each new
        order-0 page gets (mappings + its own pins) references."""
        reach, unreachable = self.rmap_walk(h)
        if unreachable:
            self.log.event("bug", f"split_huge_page: rmap walk of {self.mem.name(h)} misses mappings")
        mem, nr = self.mem, self.nr
        n_pmd = 0
        for mm, lo, _hi, level in reach + unreachable:
            if level != "pmd":
                raise ThpvizDefect("4.4 THP mapped by PTEs")
            ext = lo // nr
            entry = mm.pt[ext]
            mm.pt[ext] = PteTable(
                nr, np.arange(h, h + nr, dtype=np.int64), np.full(nr, entry.write, dtype=np.bool_)
            )
            n_pmd += 1
        mem.cmc[h] = 0
        mem.mapcount[h : h + nr] = n_pmd
        self._compound_to_order0(h)

    def split_huge_page(self, h: int) -> bool:
        """4.5+ ``split_huge_page_to_list``.  Refuses with -EBUSY unless
        ``total_mapcount == page_count - 1`` (no pins or other references);
        then ``freeze_page`` walks the rmap from ``page->mapping`` and splits
        every PMD it finds.  A mapping the walk cannot reach stays mapped, so
        the mapcount is not zero after freezing: a CONFIG_DEBUG_VM kernel
        BUG()s there, otherwise the split fails with -EBUSY."""
        mem = self.mem
        n = int(mem.nr[h])
        if mem.pins[h : h + n].sum() > 0:
            self.log.event("ebusy", f"split_huge_page({mem.name(h)}): -EBUSY, the page is pinned")
            return False
        reach, unreachable = self.rmap_walk(h)
        for mm, lo, _hi, level in reach:
            if level == "pmd":
                self.split_huge_pmd(mm, lo // self.nr)
        if unreachable:
            self.log.event(
                "bug",
                f"split_huge_page({mem.name(h)}): total_mapcount > 0 after freeze_page, "
                "mappings the rmap walk cannot reach (BUG under CONFIG_DEBUG_VM)",
            )
            self.log.event("ebusy", f"split_huge_page({mem.name(h)}): -EBUSY")
            return False
        name = mem.name(h)
        self._compound_to_order0(h)
        self.log.event("info", f"split_huge_page({name}): now {n} order-0 pages")
        return True

    # ---------------------------------------------------------------- rmap
    def rmap_walk(self, h: int):
        """``rmap_walk_anon`` for page ``h``: visit the VMAs linked to
        ``page->mapping``'s anon_vma and find the entries that map the page.
        Returns (reached, unreached): lists of (mm, lo, hi, level) runs; the
        unreached ones are present mappings the walk misses."""
        mem, nr = self.mem, self.nr
        if mem.kind[h] == KIND_ZERO:
            return [], []  # the zero pages are not anonymous: no rmap
        n = int(mem.nr[h])
        av = int(mem.mapping[h])
        reached, missed = [], []
        for mm in self.alive_mms():
            for ext, entry in mm.pt.items():
                if isinstance(entry, Pmd):
                    if entry.head != h:
                        continue
                    runs = [(ext * nr, ext * nr + nr)]
                else:
                    m = (entry.pfn >= h) & (entry.pfn < h + n)
                    if not m.any():
                        continue
                    idx = np.nonzero(m)[0]
                    breaks = np.nonzero(np.diff(idx) != 1)[0] + 1
                    runs = [
                        (ext * nr + int(g[0]), ext * nr + int(g[-1]) + 1)
                        for g in np.split(idx, breaks)
                    ]
                level = "pmd" if isinstance(entry, Pmd) else "pte"
                for lo, hi in runs:
                    vma = mm.find_vma(lo)
                    ok = vma is not None and av in vma.avcs
                    (reached if ok else missed).append((mm, lo, hi, level))
        return reached, missed

    # ----------------------------------------------------------------- mmap
    def mmap(self, proc: str, region: str, extents: int, huge: bool = True) -> None:
        mm = self.mms.get(proc)
        if mm is not None and not mm.alive:
            raise OpError(f"process {proc} has exited")
        if mm is None:
            mm = self._new_mm(proc)
        if region in mm.regions:
            raise OpError(f"{proc} already has a region {region}")
        n = extents * self.nr
        start = self._alloc_va(n)
        mm.vmas.append(Vma(start, start + n, pgoff=start, huge=huge))
        mm.vmas.sort(key=lambda v: v.start)
        mm.regions[region] = (start, n)

    # --------------------------------------------------------------- faults
    def access(self, proc: str, lo: int, hi: int, write: bool) -> None:
        """A CPU read or write of every subpage of [lo, hi)."""
        mm = self.mm(proc)
        self._fault_in(mm, lo, hi, write, gup=False)
        if write:
            self._cpu_write(mm, lo, hi)

    def _check_access(self, mm: Mm, lo: int, hi: int, write: bool, what: str) -> None:
        if not mm.covered(lo, hi):
            raise OpError(f"{what} {mm.describe(lo, hi)}: no VMA (SIGSEGV / -EFAULT)")
        if write and not all(v.write for v in mm.vmas_in(lo, hi)):
            raise OpError(f"{what} {mm.describe(lo, hi)}: VMA is read-only (SIGSEGV / -EFAULT)")

    def _fault_in(self, mm: Mm, lo: int, hi: int, write: bool, gup: bool) -> None:
        """Take the faults an access of [lo, hi) needs, in address order."""
        self._check_access(mm, lo, hi, write, "write" if write else "read")
        nr = self.nr
        wp_addrs = []
        for ext, a, b in self._extents(lo, hi):
            entry = mm.pt.get(ext)
            if entry is None:
                vma = mm.find_vma(ext * nr)
                if vma is not None and vma.huge and vma.start <= ext * nr and vma.end >= ext * nr + nr:
                    self._huge_fault(mm, vma, ext, a, write, gup)
                    continue
                entry = mm.pt[ext] = PteTable(nr)
            if isinstance(entry, Pmd):
                if write and not entry.write:
                    self._huge_wp_fault(mm, ext, a, gup)
                continue
            off = np.arange(a - ext * nr, b - ext * nr)
            pf = entry.pfn[off]
            none = pf < 0
            if not write:
                if none.any():
                    self._pte_none_faults(mm, ext, off[none], False, gup)
                continue
            zero = (~none) & self.is_zero(np.maximum(pf, 0))
            fresh = none | zero
            if fresh.any():
                self._pte_none_faults(mm, ext, off[fresh], True, gup)
            wp = (~fresh) & (~entry.write[off])
            if wp.any():
                wp_addrs.append(ext * nr + off[wp])
        if wp_addrs:
            self._pte_wp_faults(mm, np.concatenate(wp_addrs), gup)

    def _huge_fault(self, mm: Mm, vma: Vma, ext: int, addr: int, write: bool, gup: bool) -> None:
        """``do_huge_pmd_anonymous_page``: a new THP on a write, the huge zero
        page on a read (every era modelled here has the huge zero page)."""
        nr = self.nr
        self.anon_vma_prepare(mm, vma)  # before the zero-page check, as the kernel does
        if write:
            h = self._new_thp(vma, ext * nr)
            mm.pt[ext] = Pmd(h, True)
            self._record(mm, "write", "pmd", [addr], NEW, 0, [-1], gup)
        else:
            mm.pt[ext] = Pmd(self.huge_zero_pfn, False)
            self._record(mm, "read", "pmd", [addr], ZERO, 0, [-1], gup)

    def _huge_wp_fault(self, mm: Mm, ext: int, addr: int, gup: bool) -> None:
        """``do_huge_pmd_wp_page``: a write to a write-protected PMD."""
        nr, mem = self.nr, self.mem
        entry = mm.pt[ext]
        h = entry.head
        vma = mm.find_vma(ext * nr)
        if mem.kind[h] == KIND_ZERO:
            self.anon_vma_prepare(mm, vma)
            mm.pt[ext] = Pmd(self._new_thp(vma, ext * nr), True)
            self._record(mm, "write", "pmd", [addr], NEW, 0, [h + addr - ext * nr], gup)
            return
        d = self.era.do_huge_pmd_wp_page(self.mem, h)
        if d.bug:
            self.log.event("bug", d.bug)
        if not d.reuse and d.fallback:
            # VM_FAULT_FALLBACK: split the PMD, let do_wp_page decide
            self.era.split_huge_pmd(self, mm, ext)
            self._pte_wp_faults(mm, np.array([addr], dtype=np.int64), gup)
            return
        if d.reuse:
            entry.write = True
            self._record(mm, "write", "pmd", [addr], REUSE, 0, [h + addr - ext * nr], gup, d.cost)
            return
        self.anon_vma_prepare(mm, vma)
        h2 = self._new_thp(vma, ext * nr)
        mem.data[h2 : h2 + nr] = mem.data[h : h + nr]
        mem.writer[h2 : h2 + nr] = mem.writer[h : h + nr]
        mm.pt[ext] = Pmd(h2, True)
        self._pmd_unmap(h)
        self._record(
            mm, "write", "pmd", [addr], COW_HUGE, nr * PAGE_SIZE, [h + addr - ext * nr], gup, d.cost
        )

    def _pte_none_faults(self, mm, ext, offs, write, gup) -> None:
        """``do_anonymous_page`` for empty PTEs (a new zeroed page on write,
        the zero page on read), or ``do_wp_page`` on the zero page, which
        allocates a zeroed page."""
        nr = self.nr
        table = mm.pt[ext]
        addrs = ext * nr + offs
        if not write:
            table.pfn[offs] = self.zero_pfn
            table.write[offs] = False
            self._record(mm, "read", "pte", addrs, ZERO, 0, np.full(len(addrs), -1), gup)
            return
        vidx = self._vma_index(mm, addrs)
        for i in np.unique(vidx):
            self.anon_vma_prepare(mm, mm.vmas[i])
        old = table.pfn[offs].copy()  # -1, or the zero page
        pf = self._new_small(mm.vmas, vidx, addrs)
        table.pfn[offs] = pf
        table.write[offs] = True
        self._record(mm, "write", "pte", addrs, NEW, 0, old, gup)

    def _pte_wp_faults(self, mm: Mm, addrs: np.ndarray, gup: bool) -> None:
        """``do_wp_page`` for every write-protected PTE the access hits.

        Faults on different pages are independent; faults on subpages of the
        same THP are decided in address order by the era (a copy lowers the
        THP's counters before the next subpage's fault), which the era does
        in closed form over the whole run."""
        mem, nr = self.mem, self.nr
        pfns = self.lookup(mm, addrs)
        heads = mem.head[pfns]
        n = len(addrs)
        reuse = np.zeros(n, dtype=np.bool_)
        move = np.zeros(n, dtype=np.bool_)
        vidx = self._vma_index(mm, addrs)
        compound = mem.nr[heads] > 1
        costs: dict = {}
        single = ~compound
        if single.any():
            r, mv, cost = self.era.do_wp_page_order0(mem, pfns[single])
            reuse[single] = r
            move[single] = mv & r
            _merge_cost(costs, cost, np.nonzero(single)[0], n)
        if compound.any():
            for h in np.unique(heads[compound]):
                sel = np.nonzero(heads == h)[0]
                d = self.era.do_wp_page_thp(mem, int(h), pfns[sel] - h)
                if d.bug:
                    self.log.event("bug", d.bug)
                reuse[sel[d.n_cow :]] = True
                if d.move and d.n_cow < len(sel):
                    move[sel[d.n_cow]] = True
                _merge_cost(costs, d.cost, sel, n)
        # page_move_anon_rmap: page->mapping = vma->anon_vma
        if move.any():
            avs = np.array([-1 if v.anon_vma is None else v.anon_vma for v in mm.vmas], dtype=np.int64)
            mem.mapping[heads[move]] = avs[vidx[move]]
        tables = {}
        ext = addrs // nr
        off = addrs % nr
        for e in np.unique(ext):
            tables[int(e)] = mm.pt[int(e)]
        for e, t in tables.items():
            m = (ext == e) & reuse
            t.write[off[m]] = True
        cow = ~reuse
        if cow.any():
            caddr = addrs[cow]
            for i in np.unique(vidx[cow]):
                self.anon_vma_prepare(mm, mm.vmas[i])
            old = pfns[cow]
            new = self._new_small(mm.vmas, vidx[cow], caddr)
            mem.data[new] = mem.data[old]
            mem.writer[new] = mem.writer[old]
            for e, t in tables.items():
                m = ext[cow] == e
                t.pfn[off[cow][m]] = new[m]
                t.write[off[cow][m]] = True
            self._pte_unmap(old)
        dec = np.where(reuse, REUSE, COW_SMALL).astype(np.int8)
        copied = np.where(reuse, 0, PAGE_SIZE)
        self._record(mm, "write", "pte", addrs, dec, copied, pfns, gup, costs)

    def _record(self, mm, access, level, addrs, decision, copied, pfns, gup, cost=None) -> None:
        """Log ``n`` faults.  ``cost`` holds per-fault cost (scalars or arrays
        of length ``n``, see ``thpviz.eras.cost_rules.COST_FIELDS``); without it the
        faults decided nothing (new page, zero page) and the era prices them."""
        addrs = np.asarray(addrs, dtype=np.int64)
        n = len(addrs)
        if cost is None:
            zero_map = bool(np.all(np.asarray(decision) == ZERO))
            cost = self.era.anon_fault_cost(level, zero_map, n, self.nr)
        self.log.faults.append(
            FaultBatch(
                mm.name, access, level, addrs,
                np.broadcast_to(np.asarray(decision, dtype=np.int8), (n,)).copy(),
                np.broadcast_to(np.asarray(copied, dtype=np.int64), (n,)).copy(),
                np.broadcast_to(np.asarray(pfns, dtype=np.int64), (n,)).copy(),
                gup, {k: np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)).copy() for k, v in cost.items()},
            )
        )

    def _cpu_write(self, mm: Mm, lo: int, hi: int) -> None:
        """Store new data; report a leak when the page is referenced through
        a GUP reference of another process (CVE-2020-29374 class)."""
        self.clock += 1
        pf = self.lookup(mm, np.arange(lo, hi))
        if (pf < 0).any():
            raise ThpvizDefect("write to an address that is not mapped after the fault")
        mem = self.mem
        mem.data[pf] = self.clock
        mem.writer[pf] = mm.id
        if mem.pins[pf].any():
            hit = set(pf[mem.pins[pf] > 0].tolist())
            for pin in self.pins.values():
                if pin.active and pin.owner != mm.name and hit.intersection(pin.pfns.tolist()):
                    self.log.event(
                        "leak",
                        f"{mm.name} wrote {mm.describe(lo, hi)}, a page {pin.owner} still "
                        f"references through {pin.name}",
                        pin=pin.name,
                    )

    # ---------------------------------------------------------- VMA surgery
    def _split_vma_at(self, mm: Mm, addr: int) -> None:
        """``split_vma`` at ``addr``.  ``vma_adjust_trans_huge`` first splits a
        PMD that straddles the new boundary (in 4.4: the whole THP)."""
        vma = mm.find_vma(addr)
        if vma is None or vma.start == addr:
            return
        if addr % self.nr:
            ext = addr // self.nr
            if isinstance(mm.pt.get(ext), Pmd):
                self.era.split_huge_pmd(self, mm, ext)
        tail = vma.copy(start=addr, pgoff=vma.pgoff + (addr - vma.start))
        vma.end = addr
        mm.vmas.append(tail)
        mm.vmas.sort(key=lambda v: v.start)

    def _merge_vmas(self, mm: Mm) -> None:
        """``vma_merge`` after mprotect/madvise: adjacent VMAs with the same
        flags, anon_vma and contiguous offsets become one."""
        out: list[Vma] = []
        for v in sorted(mm.vmas, key=lambda v: v.start):
            p = out[-1] if out else None
            if (
                p is not None and p.end == v.start and p.write == v.write
                and p.dontcopy == v.dontcopy and p.huge == v.huge and p.anon_vma == v.anon_vma
                and p.avcs == v.avcs and p.pgoff + (p.end - p.start) == v.pgoff
            ):
                p.end = v.end
            else:
                out.append(v)
        mm.vmas = out

    def _zap(self, mm: Mm, lo: int, hi: int, free_tables: bool) -> None:
        """``unmap_page_range``: ``zap_huge_pmd`` for whole PMDs, a PMD split
        (``split_huge_pmd`` from ``zap_pmd_range``) for partial ones, then
        ``zap_pte_range``."""
        nr = self.nr
        for ext, a, b in self._extents(lo, hi):
            entry = mm.pt.get(ext)
            if entry is None:
                continue
            if isinstance(entry, Pmd):
                if b - a == nr:
                    del mm.pt[ext]
                    self._pmd_unmap(entry.head)
                    continue
                self.era.split_huge_pmd(self, mm, ext)
                entry = mm.pt[ext]
            off = np.arange(a - ext * nr, b - ext * nr)
            pf = entry.pfn[off]
            present = pf >= 0
            entry.pfn[off] = -1
            entry.write[off] = False
            self._pte_unmap(pf[present])
            if free_tables and entry.empty() and not mm.vmas_in(ext * nr, ext * nr + nr):
                del mm.pt[ext]

    def _excuse_pins(self, mm: Mm, lo: int, hi: int) -> None:
        """The owner unmapped or discarded these addresses itself: its pins
        there no longer promise anything (Jerome's guarantee excludes it)."""
        for pin in self.pins.values():
            if pin.owner == mm.name:
                pin.excused |= (pin.vas >= lo) & (pin.vas < hi)

    def munmap(self, proc: str, lo: int, hi: int) -> None:
        mm = self.mm(proc)
        self._split_vma_at(mm, lo)
        self._split_vma_at(mm, hi)
        mm.vmas = [v for v in mm.vmas if not (v.start >= lo and v.end <= hi)]
        self._zap(mm, lo, hi, free_tables=True)
        self._excuse_pins(mm, lo, hi)

    def madvise_dontneed(self, proc: str, lo: int, hi: int) -> None:
        """MADV_DONTNEED: zap the range; the VMA and page tables stay."""
        mm = self.mm(proc)
        if not mm.covered(lo, hi):
            raise OpError(f"dontneed {mm.describe(lo, hi)}: range not mapped (-ENOMEM)")
        self._zap(mm, lo, hi, free_tables=False)
        self._excuse_pins(mm, lo, hi)

    def madvise_dontfork(self, proc: str, lo: int, hi: int, dontcopy: bool = True) -> None:
        """MADV_DONTFORK (MADV_DOFORK with ``dontcopy=False``): set (clear)
        VM_DONTCOPY on the range, splitting VMAs (and a straddling PMD)."""
        mm = self.mm(proc)
        what = "dontfork" if dontcopy else "dofork"
        if not mm.covered(lo, hi):
            raise OpError(f"{what} {mm.describe(lo, hi)}: range not mapped (-ENOMEM)")
        if all(v.dontcopy == dontcopy for v in mm.vmas_in(lo, hi)):
            return  # madvise_update_vma: nothing changes, no VMA is split
        self._split_vma_at(mm, lo)
        self._split_vma_at(mm, hi)
        for v in mm.vmas_in(lo, hi):
            v.dontcopy = dontcopy
        self._merge_vmas(mm)

    def madvise_dofork(self, proc: str, lo: int, hi: int) -> None:
        """MADV_DOFORK: clear VM_DONTCOPY on the range."""
        self.madvise_dontfork(proc, lo, hi, dontcopy=False)

    def mprotect(self, proc: str, lo: int, hi: int, write: bool) -> None:
        """``mprotect_fixup`` + ``change_protection``.  Making a range
        read-only clears the write bit of its PMDs and PTEs (a whole PMD inside
        the range stays a PMD: ``change_huge_pmd``).  Making a private mapping
        writable again leaves its entries write-protected until a fault."""
        mm = self.mm(proc)
        if not mm.covered(lo, hi):
            raise OpError(f"mprotect {mm.describe(lo, hi)}: range not mapped (-ENOMEM)")
        self._split_vma_at(mm, lo)
        self._split_vma_at(mm, hi)
        for v in mm.vmas_in(lo, hi):
            v.write = write
        if not write:
            nr = self.nr
            for ext, a, b in self._extents(lo, hi):
                entry = mm.pt.get(ext)
                if isinstance(entry, Pmd):
                    entry.write = False
                elif entry is not None:
                    entry.write[a - ext * nr : b - ext * nr] = False
        elif self.era.mprotect_makes_writable:
            raise ThpvizDefect("no era modelled here maps private pages writable in mprotect")
        self._merge_vmas(mm)

    def mremap(self, proc: str, lo: int, hi: int, new_region: str, aligned: bool = True) -> None:
        """mremap(MREMAP_MAYMOVE) of [lo, hi) to a new place, named
        ``new_region``.

        ``aligned`` (the default): the new address keeps the offset inside a
        huge page, as MREMAP_FIXED to a THP-aligned target does, so whole PMDs
        move as PMDs (``move_huge_pmd``); a PMD only partly inside the range is
        split first (``split_huge_pmd`` in ``move_page_tables``; 4.4 splits the
        THP).  ``aligned=False`` (``mremap R B unaligned``): the target is one
        base page past that, as a plain page-aligned MREMAP_MAYMOVE target
        usually is, so no PMD can move whole: every PMD in R is split first and
        the PTEs move one by one (``move_ptes``)."""
        mm = self.mm(proc)
        vma = mm.find_vma(lo)
        if vma is None or vma.end < hi:
            raise OpError(f"mremap {mm.describe(lo, hi)}: range not inside one VMA (-EFAULT)")
        if new_region in mm.regions:
            raise OpError(f"{proc} already has a region {new_region}")
        nr = self.nr
        base = self._alloc_va(hi - lo + lo % nr + 1)
        dst = base + lo % nr + (0 if aligned else 1)
        self._split_vma_at(mm, lo)
        self._split_vma_at(mm, hi)
        if not aligned:
            for ext, _, _ in self._extents(lo, hi):
                if isinstance(mm.pt.get(ext), Pmd):
                    self.era.split_huge_pmd(self, mm, ext)
        src = mm.find_vma(lo)
        delta = dst - lo
        moved = src.copy(start=dst, end=dst + (hi - lo))
        mm.vmas.remove(src)
        mm.vmas.append(moved)
        mm.vmas.sort(key=lambda v: v.start)
        for ext, a, b in self._extents(lo, hi):
            entry = mm.pt.get(ext)
            if entry is None:
                continue
            if isinstance(entry, Pmd):
                # only whole PMDs are left (a straddling one was split by
                # _split_vma_at, and every one when the move is unaligned)
                del mm.pt[ext]
                mm.pt[(a + delta) // nr] = entry
                continue
            off = np.arange(a - ext * nr, b - ext * nr)
            pf, wr = entry.pfn[off].copy(), entry.write[off].copy()
            entry.pfn[off] = -1
            entry.write[off] = False
            dst_addr = ext * nr + off + delta
            for de in np.unique(dst_addr // nr):
                sel = dst_addr // nr == de
                dt = mm.pt.setdefault(int(de), PteTable(nr))
                dt.pfn[dst_addr[sel] - de * nr] = pf[sel]
                dt.write[dst_addr[sel] - de * nr] = wr[sel]
            if entry.empty() and not mm.vmas_in(ext * nr, ext * nr + nr):
                del mm.pt[ext]
        for pin in self.pins.values():
            if pin.owner == proc:
                m = (pin.vas >= lo) & (pin.vas < hi)
                pin.vas[m] += delta
        mm.regions[new_region] = (dst, hi - lo)

    # ----------------------------------------------------------- explicit splits
    def split_pmd(self, proc: str, lo: int, hi: int) -> None:
        """``split_huge_pmd`` on every PMD of [lo, hi) in ``proc``."""
        mm = self.mm(proc)
        hit = False
        for ext, _, _ in self._extents(lo, hi):
            if isinstance(mm.pt.get(ext), Pmd):
                self.era.split_huge_pmd(self, mm, ext)
                hit = True
        if not hit:
            self.log.event("info", f"split_pmd {mm.describe(lo, hi)}: no PMD mapping there")

    def split_page(self, proc: str, addr: int) -> None:
        """``split_huge_page`` of the THP mapped at ``addr``."""
        mm = self.mm(proc)
        pfn, _, _ = self.lookup_one(mm, addr)
        if pfn < 0:
            raise OpError(f"split_page {mm.describe(addr, addr + 1)}: nothing mapped")
        h = int(self.mem.head[pfn])
        if self.mem.kind[h] == KIND_ZERO:
            self.log.event("info", "split_page: the zero page is not split")
            return
        if self.mem.nr[h] == 1:
            self.log.event("info", f"split_page: {self.mem.name(h)} is not a THP")
            return
        self.era.split_huge_page(self, h)

    def deferred_split(self) -> None:
        """The deferred-split shrinker (``deferred_split_scan``, 4.5+): every
        THP that is partially mapped -- some subpage mapped by no page table,
        another still mapped -- was queued by ``deferred_split_huge_page``
        when its first subpage became unmapped, and is now handed to
        ``split_huge_page``, which refuses (-EBUSY) while the page is pinned
        or otherwise referenced.  (4.4 splits at once and never queues.)"""
        mem = self.mem
        for h in mem.page_starts():
            h = int(h)
            n = int(mem.nr[h])
            if n == 1 or mem.freed[h] or mem.kind[h] == KIND_ZERO:
                continue
            per_page = mem.mapcount[h : h + n] - int(mem.double_map[h]) + int(mem.cmc[h])
            mapped = per_page > 0
            if mapped.any() and not mapped.all():
                self.era.split_huge_page(self, h)

    # ------------------------------------------------------------------- GUP
    def gup(self, proc: str, lo: int, hi: int, write: bool, kind: str, name: str) -> None:
        """``get_user_pages`` with FOLL_GET (the 2016 eras): fault in what is
        missing -- a write GUP takes the write fault first on a
        write-protected entry -- then take a reference on each page."""
        mm = self.mm(proc)
        if name in self.pins:
            raise OpError(f"a pin named {name} already exists")
        self._fault_in(mm, lo, hi, self.era.gup_fault_write(write), gup=True)
        vas = np.arange(lo, hi, dtype=np.int64)
        pf = self.lookup(mm, vas)
        mem = self.mem
        np.add.at(mem.pins, pf, 1)
        self._get(mem.head[pf])
        self.pins[name] = Pin(name, proc, kind, write, vas, pf, np.zeros(len(vas), np.bool_))

    def unpin(self, name: str) -> None:
        pin = self.pins.get(name)
        if pin is None or not pin.active:
            raise OpError(f"no pin named {name}")
        np.add.at(self.mem.pins, pin.pfns, -1)
        self._put(self.mem.head[pin.pfns])
        pin.active = False

    def dma_write(self, name: str) -> None:
        pin = self._active_pin(name)
        if not pin.write:
            raise OpError(f"dma_write {name}: the pin is read-only (IOMMU fault)")
        self.clock += 1
        self.mem.data[pin.pfns] = self.clock
        self.mem.writer[pin.pfns] = -2
        self.log.event("dma", f"device wrote v{self.clock} through {name}", pin=name)

    def dma_read(self, name: str) -> None:
        pin = self._active_pin(name)
        mm = self.mms[pin.owner]
        seen = self.mem.data[pin.pfns]
        cpu_pf = self.lookup(mm, pin.vas)
        cpu = np.where(cpu_pf >= 0, self.mem.data[np.maximum(cpu_pf, 0)], -1)
        differ = int((seen != cpu).sum())
        msg = f"device reads {name}: " + (
            "same data as the CPU" if differ == 0 else f"{differ} subpage(s) differ from what {pin.owner}'s CPU sees"
        )
        self.log.event("dma", msg, pin=name, differ=differ)

    def _active_pin(self, name: str) -> Pin:
        pin = self.pins.get(name)
        if pin is None or not pin.active:
            raise OpError(f"no pin named {name}")
        return pin

    # ------------------------------------------------------------ fork / exit
    def fork(self, proc: str, child: str) -> None:
        """``dup_mmap``: copy every VMA without VM_DONTCOPY, link it into the
        parent's anon_vma hierarchy (``anon_vma_fork``), and copy its entries
        (``copy_huge_pmd`` / ``copy_pte_range``), write-protecting both sides
        of every private writable mapping.  Simplification: the kernel's reuse
        of an ancestor anon_vma of degree < 2 in ``anon_vma_clone`` is not
        modelled; a child VMA always gets a new anon_vma."""
        parent = self.mm(proc)
        if child in self.mms:
            raise OpError(f"process {child} already exists")
        c = self._new_mm(child)
        c.regions = dict(parent.regions)
        nr = self.nr
        for pv in parent.vmas:
            if pv.dontcopy:
                continue
            cv = pv.copy(anon_vma=None, avcs=())
            if pv.anon_vma is not None:
                av = self._new_anon_vma(self.anon_vmas[pv.anon_vma])
                cv.anon_vma, cv.avcs = av.id, pv.avcs + (av.id,)
            c.vmas.append(cv)
            if pv.anon_vma is None:
                # copy_page_range skips a VMA without anon_vma: it can only
                # hold zero-page PTEs, which the child faults in again
                continue
            for ext, a, b in self._extents(pv.start, pv.end):
                entry = parent.pt.get(ext)
                if entry is None:
                    continue
                if isinstance(entry, Pmd):
                    if self.is_zero(entry.head) or self.era.copy_huge_pmd(self.mem, entry.head) == "share":
                        entry.write = False
                        c.pt[ext] = Pmd(entry.head, False)
                        self._pmd_map(entry.head)
                        continue
                    self.era.split_huge_pmd(self, parent, ext)
                    entry = parent.pt[ext]
                off = slice(a - ext * nr, b - ext * nr)
                ct = c.pt.setdefault(ext, PteTable(nr))
                pf = entry.pfn[off]
                present = (pf >= 0) & ~self.is_zero(np.maximum(pf, 0))
                copy = np.zeros(len(pf), dtype=np.bool_)
                copy[present] = self.era.copy_pte_range(self.mem, pf[present])
                share = ~copy
                entry.write[off] &= copy  # shared entries are write-protected
                ct.pfn[off] = np.where(share, pf, -1)
                ct.write[off] = False
                self._pte_map(pf[share & (pf >= 0)])
                if copy.any():
                    # the child's private copy of a (maybe pinned) page
                    idx = np.nonzero(copy)[0]
                    addrs = a + idx
                    new = self._new_small([cv], np.zeros(len(idx), dtype=np.int64), addrs)
                    self.mem.data[new] = self.mem.data[pf[idx]]
                    self.mem.writer[new] = self.mem.writer[pf[idx]]
                    ct.pfn[off][idx] = new
                    ct.write[off][idx] = True
        c.vmas.sort(key=lambda v: v.start)

    def exit(self, proc: str) -> None:
        """exit/exec: unmap everything; the pins the process took stay with
        the device, excused (the owner went away)."""
        mm = self.mm(proc)
        for v in list(mm.vmas):
            self._zap(mm, v.start, v.end, free_tables=False)
        mm.vmas = []
        mm.pt = {}
        mm.alive = False
        for pin in self.pins.values():
            if pin.owner == proc:
                pin.excused[:] = True


def _merge_cost(into: dict, cost: dict, idx: np.ndarray, n: int) -> None:
    """Place the per-fault cost arrays of the faults at positions ``idx`` into
    per-fault arrays of length ``n``."""
    for k, v in (cost or {}).items():
        into.setdefault(k, np.zeros(n, dtype=np.int64))[idx] += v
