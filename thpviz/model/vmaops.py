"""VMA operations and the splits: munmap, MADV_DONTNEED/DONTFORK/DOFORK,
mprotect, mremap, ``split_huge_pmd``, ``split_huge_page`` and the
deferred-split shrinker."""

from __future__ import annotations

import numpy as np

from .arrays import uniq
from .events import OpError, ThpvizDefect
from .memmap import KIND_ZERO
from .mm import Mm, Pmd, PteTable
from .worldbase import WorldBase


class VmaOpsMixin(WorldBase):
    # ------------------------------------------------------------ splitting
    def split_huge_pmd(self, mm: Mm, ext: int) -> None:
        """``__split_huge_pmd_locked`` (4.5+): one PMD becomes ``nr`` PTEs of
        the same compound page, each with the PMD's write bit.  The head gains
        ``nr - 1`` references; every subpage's ``_mapcount`` goes up by one.
        Up to 6.1, PageDoubleMap is set (with its +1 on every subpage) if
        another PMD still maps the page, and cleared with the last compound
        mapping.  PageAnonExclusive of the head is copied to every subpage
        (5.19+).  The new PTEs are dirty only in eras that carry the PMD's
        dirty bit over (6.4, 5436d6556937; 6.0-6.3 and earlier leave them
        clean)."""
        entry = mm.pt.get(ext)
        if not isinstance(entry, Pmd):
            return
        mem, nr, h = self.mem, self.nr, entry.head
        if mem.kind[h] == KIND_ZERO:
            self.split_huge_zero_pmd(mm, ext)
            return
        dirty = bool(entry.dirty) and self.era.split_keeps_dirty
        self._pt_set(mm, ext, PteTable(
            nr, np.arange(h, h + nr, dtype=np.int32), np.full(nr, entry.write, dtype=np.bool_),
            np.full(nr, dirty, dtype=np.bool_),
        ))
        w = mem.w
        w.refcount[h] += nr - 1
        w.mapcount[h : h + nr] += 1
        if self.era.tracks_mm_ids:
            self._slots_change(mm, np.full(nr, h), +1)
        if self.era.has_double_map and mem.cmc[h] > 1 and not mem.double_map[h]:
            w.double_map[h] = True
            w.mapcount[h : h + nr] += 1
        w.cmc[h] -= 1
        if mem.cmc[h] == 0 and mem.double_map[h]:
            w.double_map[h] = False
            w.mapcount[h : h + nr] -= 1
        if self.era.tracks_mm_ids:
            self._slots_change(mm, np.array([h]), -1)
        if mem.anon_exclusive[h]:
            w.anon_exclusive[h : h + nr] = True

    def split_huge_zero_pmd(self, mm: Mm, ext: int) -> None:
        """``__split_huge_zero_page_pmd``: the huge zero PMD becomes PTEs of
        the small zero page, read-only."""
        self._pt_set(mm, ext, PteTable(self.nr, np.full(self.nr, self.zero_pfn, dtype=np.int32)))

    def _compound_to_order0(self, h: int) -> None:
        """Turn compound page ``h`` into ``nr`` order-0 pages once no PMD maps
        it: each keeps its PTE mappings, its own pins and references, and its
        PageAnonExclusive."""
        mem, n = self.mem, int(self.mem.nr[h])
        fr = np.arange(h, h + n)
        sl = slice(h, h + n)
        if mem.cmc[h] != 0 or mem.double_map[h]:
            raise ThpvizDefect("compound page split while still PMD-mapped")
        w = mem.w
        w.head[sl] = fr
        w.nr[sl] = 1
        w.refcount[sl] = mem.mapcount[sl] + mem.pins[sl] * self.pin_weight(fr) + mem.refs[sl]
        w.mapping[sl] = mem.mapping[h]
        w.index[sl] = mem.index[h] + np.arange(n)
        w.origin[sl] = h
        w.freed[sl] = mem.refcount[sl] == 0
        w.anon_exclusive[sl] &= ~mem.freed[sl]
        for f in ("slot_mm", "slot_count", "slot_mm2", "slot_count2"):
            getattr(w, f)[h] = 0
        w.maybe_shared[h] = False

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
        done = set()
        for mm, lo, _hi, level in reach + unreachable:
            if level != "pmd":
                raise ThpvizDefect("4.4 THP mapped by PTEs")
            ext = lo // nr
            if (mm.name, ext) in done:
                continue
            done.add((mm.name, ext))
            entry = mm.pt[ext]
            self._pt_set(mm, ext, PteTable(
                nr, np.arange(h, h + nr, dtype=np.int32), np.full(nr, entry.write, dtype=np.bool_),
                np.full(nr, entry.dirty, dtype=np.bool_),
            ))
            n_pmd += 1
        mem.w.cmc[h] = 0
        mem.w.mapcount[h : h + nr] = n_pmd
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
        if (mem.pins[h : h + n].sum() + mem.refs[h : h + n].sum()) > 0:
            self.log.event("ebusy", f"split_huge_page({mem.name(h)}): -EBUSY, the page is pinned or referenced")
            return False
        reach, unreachable = self.rmap_walk(h)
        for mm, lo, _hi, level in reach:
            if level == "pmd":
                self.era.split_huge_pmd(self, mm, lo // self.nr)
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

    # ---------------------------------------------------------- VMA surgery
    def _split_vma_at(self, mm: Mm, addr: int) -> None:
        """``split_vma`` at ``addr``.  ``vma_adjust_trans_huge`` first splits a
        PMD that straddles the new boundary (in 4.4: the whole THP)."""
        vma = mm.find_vma(addr)
        if vma is None or vma.start == addr:
            return
        self._mm_w(mm)
        if addr % self.nr:
            ext = addr // self.nr
            if isinstance(mm.pt.get(ext), Pmd):
                self.era.split_huge_pmd(self, mm, ext)
        tail = vma.copy(start=addr, pgoff=vma.pgoff + (addr - vma.start))
        vma.end = addr
        mm.vmas.append(tail)
        mm.vmas.sort(key=lambda v: v.start)

    def _split_changing(self, mm: Mm, lo: int, hi: int, changes) -> list:
        """Split the VMAs at ``lo`` and ``hi`` -- but only a VMA whose flags
        the operation changes (``changes(vma)``), as ``mprotect_fixup`` and
        ``madvise_update_vma`` return early for an unchanged VMA -- and return
        the VMAs inside [lo, hi) that change."""
        for addr in (lo, hi):
            v = mm.find_vma(addr)
            if v is not None and v.start < addr and changes(v):
                self._split_vma_at(mm, addr)
        return [v for v in mm.vmas_in(lo, hi) if changes(v)]

    def _merge_vmas(self, mm: Mm) -> None:
        """``vma_merge`` after mprotect/madvise: adjacent VMAs with the same
        flags, anon_vma and contiguous offsets become one."""
        self._mm_w(mm)
        out: list = []
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
                    self._pt_del(mm, ext)
                    self._pmd_unmap(mm, entry.head)
                    continue
                self.era.split_huge_pmd(self, mm, ext)
                entry = mm.pt[ext]
                assert isinstance(entry, PteTable)  # the split left PTEs
            off = slice(a - ext * nr, b - ext * nr)
            pf = entry.pfn[off].copy()
            present = pf >= 0
            if present.any() or entry.write[off].any() or entry.dirty[off].any():
                entry = self._table_w(mm, ext)
                entry.pfn[off] = -1
                entry.write[off] = False
                entry.dirty[off] = False
                self._pte_unmap(mm, pf[present])
            if free_tables and entry.empty() and not mm.vmas_in(ext * nr, ext * nr + nr):
                self._pt_del(mm, ext)

    def _excuse_pins(self, mm: Mm, lo: int, hi: int) -> None:
        """The owner unmapped or discarded these addresses itself: its pins
        there no longer promise anything (Jerome's guarantee excludes it)."""
        for pin in self.pins.values():
            if pin.active and pin.owner == mm.name:
                m = (pin.vas >= lo) & (pin.vas < hi)
                if (m & ~pin.excused).any():
                    self._pin_w(pin).excused |= m

    # ------------------------------------------------------------ operations
    def munmap(self, proc: str, lo: int, hi: int) -> None:
        mm = self.mm(proc)
        self._split_vma_at(mm, lo)
        self._split_vma_at(mm, hi)
        self._mm_w(mm)
        mm.vmas = [v for v in mm.vmas if not (v.start >= lo and v.end <= hi)]
        self._zap(mm, lo, hi, free_tables=True)
        self._excuse_pins(mm, lo, hi)

    def madvise_dontneed(self, proc: str, lo: int, hi: int) -> None:
        """MADV_DONTNEED: zap the range; the VMA and page tables stay --
        except, from 6.14 (6375e95f381e, CONFIG_PT_RECLAIM; on in the 6.18
        host's build), a PTE table that the zap emptied over its whole PMD range:
        ``zap_pte_range`` frees it when one VMA's part of the range covers the
        full 2 MiB, and the next fault there may map a THP again."""
        mm = self.mm(proc)
        if not mm.covered(lo, hi):
            raise OpError(f"dontneed {mm.describe(lo, hi)}: range not mapped (-ENOMEM)")
        self._zap(mm, lo, hi, free_tables=False)
        if self.era.dontneed_frees_pte_table:
            nr = self.nr
            for ext, a, b in self._extents(lo, hi):
                entry = mm.pt.get(ext)
                vma = mm.find_vma(a)
                if (b - a == nr and isinstance(entry, PteTable) and entry.empty() and vma is not None
                        and vma.start <= a and vma.end >= b):
                    self._pt_del(mm, ext)
        self._excuse_pins(mm, lo, hi)

    def madvise_dontfork(self, proc: str, lo: int, hi: int, dontcopy: bool = True) -> None:
        """MADV_DONTFORK (MADV_DOFORK with ``dontcopy=False``): set (clear)
        VM_DONTCOPY on the range, splitting the VMAs that change (and a PMD
        straddling a new boundary)."""
        mm = self.mm(proc)
        what = "dontfork" if dontcopy else "dofork"
        if not mm.covered(lo, hi):
            raise OpError(f"{what} {mm.describe(lo, hi)}: range not mapped (-ENOMEM)")
        for v in self._split_changing(mm, lo, hi, lambda v: v.dontcopy != dontcopy):
            self._mm_w(mm)
            v.dontcopy = dontcopy
        self._merge_vmas(mm)

    def madvise_dofork(self, proc: str, lo: int, hi: int) -> None:
        """MADV_DOFORK: clear VM_DONTCOPY on the range."""
        self.madvise_dontfork(proc, lo, hi, dontcopy=False)

    def mprotect(self, proc: str, lo: int, hi: int, write: bool) -> None:
        """``mprotect_fixup`` + ``change_protection`` on every VMA whose
        protection changes (an unchanged VMA is left alone, not even split).

        ``ro`` clears the write bit of its PMDs and PTEs (a whole PMD inside
        the range stays a PMD: ``change_huge_pmd``).  ``rw`` makes the VMA
        writable and, before 6.0, leaves private entries write-protected until
        a fault.  From 6.0 (64fe24a3e05e) ``change_pte_range`` maps a PTE
        writable at once when ``can_change_pte_writable`` allows it -- an
        exclusive anonymous page whose PTE is dirty (6.0/6.1), or any
        exclusive anonymous page (6.2+); from 6.2 (c27f479ef542)
        ``change_huge_pmd`` does the same for an exclusive PMD-mapped THP.
        Soft-dirty and uffd-wp tracking, which would veto it, are not
        modelled (a new VMA has VM_SOFTDIRTY)."""
        mm = self.mm(proc)
        if not mm.covered(lo, hi):
            raise OpError(f"mprotect {mm.describe(lo, hi)}: range not mapped (-ENOMEM)")
        changing = self._split_changing(mm, lo, hi, lambda v: v.write != write)
        era, mem, nr = self.era, self.mem, self.nr
        for v in changing:
            self._mm_w(mm)
            v.write = write
            for ext, a, b in self._extents(v.start, v.end):
                entry = mm.pt.get(ext)
                if entry is None:
                    continue
                if isinstance(entry, Pmd):
                    if not write:
                        if entry.write:
                            self._pt_set(mm, ext, entry.but(write=False))
                    elif (era.mprotect_upgrade_pmd and mem.kind[entry.head] != KIND_ZERO
                          and mem.anon_exclusive[entry.head]) and not entry.write:
                        self._pt_set(mm, ext, entry.but(write=True))
                    continue
                off = slice(a - ext * nr, b - ext * nr)
                if not write:
                    if entry.write[off].any():
                        self._table_w(mm, ext).write[off] = False
                    continue
                if not era.mprotect_upgrade_pte:
                    continue
                pf = entry.pfn[off]
                present = pf >= 0
                ok = present & (mem.kind[np.maximum(pf, 0)] != KIND_ZERO)
                ok &= mem.anon_exclusive[np.maximum(pf, 0)]
                if era.mprotect_upgrade_pte == "dirty":
                    ok &= entry.dirty[off]
                if (ok & ~entry.write[off]).any():
                    self._table_w(mm, ext).write[off] |= ok
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
        self._mm_w(mm)
        self._split_vma_at(mm, lo)
        self._split_vma_at(mm, hi)
        if not aligned:
            for ext, _, _ in self._extents(lo, hi):
                if isinstance(mm.pt.get(ext), Pmd):
                    self.era.split_huge_pmd(self, mm, ext)
        src = mm.find_vma(lo)
        assert src is not None  # checked above; the splits keep a VMA at lo
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
                self._pt_del(mm, ext)
                self._pt_set(mm, (a + delta) // nr, entry, new=False)
                continue
            off = np.arange(a - ext * nr, b - ext * nr)
            pf, wr, dt_ = entry.pfn[off].copy(), entry.write[off].copy(), entry.dirty[off].copy()
            entry = self._table_w(mm, ext)
            entry.pfn[off] = -1
            entry.write[off] = False
            entry.dirty[off] = False
            dst_addr = ext * nr + off + delta
            for de in uniq(dst_addr // nr):
                sel = dst_addr // nr == de
                dt = self._pt_new_table(mm, int(de))
                where = dst_addr[sel] - de * nr
                dt.pfn[where] = pf[sel]
                dt.write[where] = wr[sel]
                dt.dirty[where] = dt_[sel]
            if entry.empty() and not mm.vmas_in(ext * nr, ext * nr + nr):
                self._pt_del(mm, ext)
        for pin in self.pins.values():
            if pin.active and pin.owner == proc:
                m = (pin.vas >= lo) & (pin.vas < hi)
                if m.any():
                    self._pin_w(pin).vas[m] += delta
        mm.regions[new_region] = (dst, hi - lo)

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
            mapped = self.page_mapcounts(np.arange(h, h + n)) > 0
            if mapped.any() and not mapped.all():
                self.era.split_huge_page(self, h)
