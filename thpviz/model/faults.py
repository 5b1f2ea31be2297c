"""Fault paths: what a CPU access, a GUP or an unshare does to page state.

``_fault_in`` takes the faults an access of a range needs, in address order:
``do_huge_pmd_anonymous_page`` for an empty, THP-eligible extent,
``do_anonymous_page`` for empty PTEs, ``do_huge_pmd_wp_page`` /
``do_wp_page`` for write-protected entries.  The reuse-or-copy decisions are
the era's.  An *unshare* fault (FAULT_FLAG_UNSHARE, 5.19+, c89357e27f20) goes
through the same write-protect paths but leaves the entry read-only; it is
logged with access ``"unshare"`` and is not a write fault
(DESIGN.md, "Modern-era conventions").
"""

from __future__ import annotations

import numpy as np

from .arrays import uniq
from .events import COW_HUGE, COW_SMALL, NEW, REUSE, ZERO, FaultBatch, OpError, ThpvizDefect
from .memmap import KIND_ZERO, PAGE_SIZE
from .mm import Mm, Pmd, PteTable, Vma
from .worldbase import WorldBase


class FaultMixin(WorldBase):
    # --------------------------------------------------------------- access
    def access(self, proc: str, lo: int, hi: int, write: bool) -> None:
        """A CPU read or write of every subpage of [lo, hi)."""
        mm = self.mm(proc)
        self._check_access(mm, lo, hi, write, "write" if write else "read")
        self._fault_in(mm, lo, hi, write, gup=False)
        if write:
            self._cpu_write(mm, lo, hi)

    def _check_access(self, mm: Mm, lo: int, hi: int, write: bool, what: str) -> None:
        if not mm.covered(lo, hi):
            raise OpError(f"{what} {mm.describe(lo, hi)}: no VMA (SIGSEGV / -EFAULT)")
        if write and not all(v.write for v in mm.vmas_in(lo, hi)):
            raise OpError(f"{what} {mm.describe(lo, hi)}: VMA is read-only (SIGSEGV / -EFAULT)")

    def _extents(self, lo: int, hi: int):
        nr = self.nr
        for e in range(lo // nr, (hi - 1) // nr + 1):
            yield e, max(lo, e * nr), min(hi, (e + 1) * nr)

    def _vma_index(self, mm: Mm, addrs: np.ndarray) -> np.ndarray:
        out = np.full(len(addrs), -1, dtype=np.int64)
        for i, v in enumerate(mm.vmas):
            out[(addrs >= v.start) & (addrs < v.end)] = i
        return out

    # --------------------------------------------------------------- lookup
    def lookup(self, mm: Mm, addrs: np.ndarray) -> np.ndarray:
        """The pfn mapped at each address in ``mm`` (-1 for none)."""
        nr = self.nr
        addrs = np.asarray(addrs, dtype=np.int64)
        out = np.full(len(addrs), -1, dtype=np.int64)
        if not mm.alive or len(addrs) == 0:
            return out
        ext = addrs // nr
        for e in uniq(ext):
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

    # --------------------------------------------------------------- faults
    def _fault_in(self, mm: Mm, lo: int, hi: int, write: bool, gup: bool) -> None:
        """Take the faults an access of [lo, hi) needs, in address order.  A
        write fault where the VMA is read-only (5.8's GUP breaking COW on a
        COW mapping) leaves the new or reused entry read-only."""
        nr = self.nr
        wp_addrs = []
        for ext, a, b in self._extents(lo, hi):
            entry = mm.pt.get(ext)
            if entry is None:
                vma = mm.find_vma(ext * nr)
                if vma is not None and vma.huge and vma.start <= ext * nr and vma.end >= ext * nr + nr:
                    self._huge_fault(mm, vma, ext, a, write, gup)
                    continue
                entry = PteTable(nr)
                self._pt_set(mm, ext, entry)
            if isinstance(entry, Pmd):
                if not (write and not entry.write):
                    continue
                self._huge_wp_fault(mm, ext, a, gup)
                entry = mm.pt[ext]
                if isinstance(entry, Pmd):
                    continue
                # the fault fell back to PTEs (5.8+): the access goes on to
                # the other subpages, each of which faults on its own PTE
            off = np.arange(a - ext * nr, b - ext * nr)
            pf = entry.pfn[off]
            none = pf < 0
            if not write:
                if none.any():
                    self._pte_none_faults(mm, ext, off[none], "read", gup)
                continue
            zero = (~none) & self.is_zero(np.maximum(pf, 0))
            fresh = none | zero
            if fresh.any():
                self._pte_none_faults(mm, ext, off[fresh], "write", gup)
                entry = mm.pt[ext]
                assert isinstance(entry, PteTable)  # still PTEs, now written
            wp = (~fresh) & (~entry.write[off])
            if wp.any():
                wp_addrs.append(ext * nr + off[wp])
        if wp_addrs:
            self._pte_wp_faults(mm, np.concatenate(wp_addrs), gup)

    def _new_thp(self, mm: Mm, vma: Vma, addr: int) -> int:
        """``do_huge_pmd_anonymous_page`` / the huge COW target:
        ``page_add_new_anon_rmap(page, vma, haddr, true)`` -- a new THP, one
        compound mapping, exclusive (5.19+), owned by ``mm`` (6.15)."""
        mem = self.mem
        h = mem.alloc_compound(self.nr)
        w = mem.w
        w.mapping[h] = vma.anon_vma
        w.index[h] = vma.linear_page_index(addr)
        w.cmc[h] = 1
        w.refcount[h] = 1
        if self.era.has_anon_exclusive:
            w.anon_exclusive[h] = True
        if self.era.tracks_mm_ids:
            self._slots_change(mm, np.array([h]), +1)
        return h

    def _new_small(self, vmas: list[Vma], vidx: np.ndarray, addrs: np.ndarray) -> np.ndarray:
        """A batch of new order-0 anonymous pages, one per address, each
        mapped once (``page_add_new_anon_rmap``), exclusive in 5.19+."""
        mem = self.mem
        pf = mem.alloc_small(len(addrs))
        starts = np.array([v.start for v in vmas])
        pgoffs = np.array([v.pgoff for v in vmas])
        avs = np.array([-1 if v.anon_vma is None else v.anon_vma for v in vmas], dtype=np.int64)
        sl = slice(int(pf[0]), int(pf[-1]) + 1)  # alloc_small hands out a run of pfns
        w = mem.w
        w.mapping[sl] = avs[vidx]
        w.index[sl] = pgoffs[vidx] + (addrs - starts[vidx])
        w.mapcount[sl] = 1
        w.refcount[sl] = 1
        w.anon_exclusive[sl] = bool(self.era.has_anon_exclusive)
        return pf

    def _huge_fault(self, mm: Mm, vma: Vma, ext: int, addr: int, write: bool, gup: bool) -> None:
        """``do_huge_pmd_anonymous_page``: a new THP on a write, the huge zero
        page on a read (every era modelled here has the huge zero page)."""
        nr = self.nr
        self.anon_vma_prepare(mm, vma)  # before the zero-page check, as the kernel does
        if write:
            h = self._new_thp(mm, vma, ext * nr)
            self._pt_set(mm, ext, Pmd(h, vma.write, True))
            self._record(mm, "write", "pmd", [addr], NEW, 0, [-1], gup)
        else:
            self._pt_set(mm, ext, Pmd(self.huge_zero_pfn, False, False))
            self._record(mm, "read", "pmd", [addr], ZERO, 0, [-1], gup)

    def _huge_wp_fault(self, mm: Mm, ext: int, addr: int, gup: bool, unshare: bool = False) -> None:
        """``do_huge_pmd_wp_page``: a write (or unshare) fault on a
        write-protected PMD."""
        nr, mem = self.nr, self.mem
        entry = mm.pt[ext]
        vma = mm.find_vma(ext * nr)
        assert isinstance(entry, Pmd) and vma is not None  # a PMD mapped inside a VMA
        h = entry.head
        access = "unshare" if unshare else "write"
        if mem.kind[h] == KIND_ZERO:
            if self.era.pmd_fallback and not self.era.huge_zero_wp_thp:
                # 3917c80280c9 (5.8): the huge zero PMD is split too and the
                # fault retried on the small zero page's PTE
                self.split_huge_zero_pmd(mm, ext)
                self._pte_none_faults(mm, ext, np.array([addr - ext * nr]), access, gup)
                return
            # before 5.8, and again from 6.13 (1ced09e0331f,
            # do_huge_zero_wp_pmd): a new THP replaces the huge zero PMD,
            # mapped writable and dirty (map_anon_folio_pmd) -- on an unshare
            # fault too.  The split fallback only runs when the allocation
            # fails, which the model never does.
            self.anon_vma_prepare(mm, vma)
            self._pt_set(mm, ext, Pmd(self._new_thp(mm, vma, ext * nr), vma.write, True))
            self._record(mm, access, "pmd", [addr], NEW, 0, [h + addr - ext * nr], gup)
            return
        d = self.era.do_huge_pmd_wp_page(self, mm, h, unshare)
        if d.bug:
            self.log.event("bug", d.bug)
        if d.reuse:
            if d.move:
                self.page_move_anon_rmap(np.array([h]), [vma])
            if d.exclusive:
                mem.w.anon_exclusive[h] = True
            if not unshare:
                self._pt_set(mm, ext, entry.but(write=vma.write, dirty=True))
            self._record(mm, access, "pmd", [addr], REUSE, 0, [h + addr - ext * nr], gup, d.cost)
            return
        if d.fallback:
            # VM_FAULT_FALLBACK: split the PMD, let do_wp_page decide
            self.era.split_huge_pmd(self, mm, ext)
            self._pte_wp_faults(mm, np.array([addr], dtype=np.int64), gup, unshare)
            return
        if unshare:
            raise ThpvizDefect("an era copied a whole THP on an unshare fault")
        self.anon_vma_prepare(mm, vma)
        h2 = self._new_thp(mm, vma, ext * nr)
        mem.w.data[h2 : h2 + nr] = mem.data[h : h + nr]
        mem.w.writer[h2 : h2 + nr] = mem.writer[h : h + nr]
        self._pt_set(mm, ext, Pmd(h2, vma.write, True))
        self._pmd_unmap(mm, h)
        self._record(mm, access, "pmd", [addr], COW_HUGE, nr * PAGE_SIZE, [h + addr - ext * nr], gup, d.cost)

    def _pte_none_faults(self, mm: Mm, ext: int, offs: np.ndarray, access: str, gup: bool) -> None:
        """``do_anonymous_page`` for empty PTEs (a new zeroed page on write,
        the zero page on read), or ``do_wp_page`` on the zero page, which
        allocates a zeroed page (``wp_page_copy``) -- read-only and clean
        when it is an unshare fault (6.2+, R/O long-term pins)."""
        nr = self.nr
        table = self._table_w(mm, ext)
        addrs = ext * nr + offs
        if access == "read":
            table.pfn[offs] = self.zero_pfn
            table.write[offs] = False
            table.dirty[offs] = False
            self._record(mm, "read", "pte", addrs, ZERO, 0, np.full(len(addrs), -1), gup)
            return
        vidx = self._vma_index(mm, addrs)
        for i in uniq(vidx):
            self.anon_vma_prepare(mm, mm.vmas[i])
        old = table.pfn[offs].copy()  # -1, or the zero page
        pf = self._new_small(mm.vmas, vidx, addrs)
        writable = np.array([v.write for v in mm.vmas], dtype=np.bool_)[vidx]
        table.pfn[offs] = pf
        table.write[offs] = writable & (access == "write")
        table.dirty[offs] = access == "write"
        self._record(mm, access, "pte", addrs, NEW, 0, old, gup)

    def _pte_wp_faults(self, mm: Mm, addrs: np.ndarray, gup: bool, unshare: bool = False) -> None:
        """``do_wp_page`` for every write-protected PTE the access hits.

        Faults on different pages are independent; faults on subpages of the
        same THP are decided in address order by the era (a copy lowers the
        THP's counters before the next subpage's fault), which the era does
        in closed form over the whole run."""
        mem, nr = self.mem, self.nr
        access = "unshare" if unshare else "write"
        pfns = self.lookup(mm, addrs)
        heads = mem.head[pfns]
        n = len(addrs)
        reuse = np.zeros(n, dtype=np.bool_)
        move = np.zeros(n, dtype=np.bool_)
        mark = np.zeros(n, dtype=np.bool_)
        vidx = self._vma_index(mm, addrs)
        compound = mem.nr[heads] > 1
        costs: dict = {}
        single = ~compound
        if single.any():
            idx = np.nonzero(single)[0]
            d = self.era.do_wp_page_order0(self, mm, pfns[single], unshare)
            reuse[idx], move[idx], mark[idx] = d.reuse, d.move & d.reuse, d.exclusive & d.reuse
            _merge_cost(costs, d.cost, idx, n)
        if compound.any():
            for h in uniq(heads[compound]):
                sel = np.nonzero(heads == h)[0]
                d = self.era.do_wp_page_thp(self, mm, int(h), pfns[sel] - h, unshare)
                if d.bug:
                    self.log.event("bug", d.bug)
                reuse[sel], move[sel], mark[sel] = d.reuse, d.move & d.reuse, d.exclusive & d.reuse
                _merge_cost(costs, d.cost, sel, n)
        if move.any():
            self.page_move_anon_rmap(heads[move], [mm.vmas[i] for i in vidx[move]])
        if mark.any():
            mem.w.anon_exclusive[pfns[mark]] = True
        writable = np.array([v.write for v in mm.vmas], dtype=np.bool_)[vidx]
        ext = addrs // nr
        off = addrs % nr
        tables = {int(e): self._table_w(mm, int(e)) for e in uniq(ext)}
        if not unshare:
            for e, t in tables.items():
                m = (ext == e) & reuse
                t.write[off[m]] = writable[m]
                t.dirty[off[m]] = True
        cow = ~reuse
        if cow.any():
            caddr = addrs[cow]
            for i in uniq(vidx[cow]):
                self.anon_vma_prepare(mm, mm.vmas[i])
            old = pfns[cow]
            new = self._new_small(mm.vmas, vidx[cow], caddr)
            mem.w.data[new] = mem.data[old]
            mem.w.writer[new] = mem.writer[old]
            for e, t in tables.items():
                m = ext[cow] == e
                t.pfn[off[cow][m]] = new[m]
                t.write[off[cow][m]] = writable[cow][m] & (not unshare)
                t.dirty[off[cow][m]] = not unshare
            self._pte_unmap(mm, old)
        dec = np.where(reuse, REUSE, COW_SMALL).astype(np.int8)
        copied = np.where(reuse, 0, PAGE_SIZE)
        self._record(mm, access, "pte", addrs, dec, copied, pfns, gup, costs)

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
                mm.name, access, level, addrs, _per_fault(decision, n, np.int8), _per_fault(copied, n),
                _per_fault(pfns, n), gup, {k: _per_fault(v, n) for k, v in cost.items()},
            )
        )

    # --------------------------------------------------------------- writes
    def page_mapcounts(self, pfns: np.ndarray) -> np.ndarray:
        """Page-table entries mapping each 4 KiB frame (its PTEs plus the
        PMDs of its THP): ``__page_mapcount`` in every era's bookkeeping."""
        mem = self.mem
        heads = mem.head[pfns]
        large = mem.nr[heads] > 1
        return mem.mapcount[pfns] + np.where(large, mem.cmc[heads] - mem.double_map[heads], 0)

    def _stray(self, pfns: np.ndarray, own: np.ndarray, writer: Mm | None, what: str, where) -> None:
        """``stray-write``: frames written for ``writer`` that another
        process maps too (private anonymous memory must never be written for
        two processes at once).  ``own`` says which frames the writer itself
        maps at the written address (an anonymous page is mapped at most once
        per mm, so every other mapping belongs to another process).
        ``where`` may be a function that makes the text (only a hit needs it)."""
        real = self.mem.kind[pfns] != KIND_ZERO
        pfns, own = pfns[real], np.asarray(own, dtype=np.bool_)[real]
        counts = self.page_mapcounts(pfns) - own
        hit = counts > 0
        if hit.any():
            if callable(where):
                where = where()
            f = int(pfns[hit][0])
            others = [m.name for m in self.alive_mms() if m is not writer and self._maps_frame(m, f)]
            self.log.event(
                "stray-write",
                f"{what} {where} landed in {self.mem.name(f)}, which {', '.join(others) or 'another process'} "
                f"also maps ({int(hit.sum())} subpage(s))",
            )

    def _maps_frame(self, mm: Mm, pfn: int) -> bool:
        h = int(self.mem.head[pfn])
        for entry in mm.pt.values():
            if isinstance(entry, Pmd):
                if entry.head == h:
                    return True
            elif (entry.pfn == pfn).any():
                return True
        return False

    def _cpu_write(self, mm: Mm, lo: int, hi: int) -> None:
        """Store new data (the hardware sets the dirty bit of every entry
        written through); report a leak when the page is referenced through
        a GUP reference of another process (CVE-2020-29374 class), and a
        stray write when another process maps the page."""
        self.clock += 1
        pf = self.lookup(mm, np.arange(lo, hi))
        if (pf < 0).any():
            raise ThpvizDefect("write to an address that is not mapped after the fault")
        mem = self.mem
        mem.w.data[pf] = self.clock
        mem.w.writer[pf] = mm.id
        for ext, a, b in self._extents(lo, hi):
            entry = mm.pt[ext]
            if isinstance(entry, Pmd):
                if not entry.dirty:
                    self._pt_set(mm, ext, entry.but(dirty=True))
            else:
                d = slice(a - ext * self.nr, b - ext * self.nr)
                if not entry.dirty[d].all():
                    self._table_w(mm, ext).dirty[d] = True
        held = (mem.pins[pf] + mem.refs[pf]) > 0
        if held.any():
            hit = set(pf[held].tolist())
            for pin in self.pins.values():
                if pin.active and pin.owner != mm.name and hit.intersection(pin.pfns.tolist()):
                    self.log.event(
                        "leak",
                        f"{mm.name} wrote {mm.describe(lo, hi)}, a page {pin.owner} still "
                        f"references through {pin.name}",
                        pin=pin.name,
                    )
        self._stray(pf, np.ones(len(pf), dtype=np.bool_), mm, f"{mm.name}'s write to", lambda: mm.describe(lo, hi))


def _per_fault(v, n: int, dtype=np.int64) -> np.ndarray:
    """One value per fault: a scalar becomes a read-only broadcast view (no
    memory for a million equal values), an array a copy."""
    a = np.asarray(v, dtype=dtype)
    if a.ndim == 0:
        if n <= 64:
            return np.full(n, a, dtype=dtype)
        return np.broadcast_to(a, (n,))
    if a.shape == (n,):
        return a.copy()
    return np.broadcast_to(a, (n,)).copy()


def _merge_cost(into: dict, cost: dict, idx: np.ndarray, n: int) -> None:
    """Place the per-fault cost arrays of the faults at positions ``idx`` into
    per-fault arrays of length ``n``."""
    for k, v in (cost or {}).items():
        into.setdefault(k, np.zeros(n, dtype=np.int64))[idx] += v
