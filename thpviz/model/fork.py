"""fork and exit."""

from __future__ import annotations

import numpy as np

from .events import OpError
from .mm import Pmd, PteTable
from .worldbase import WorldBase


class ForkMixin(WorldBase):
    def fork(self, proc: str, child: str) -> None:
        """``dup_mmap``: copy every VMA without VM_DONTCOPY, link it into the
        parent's anon_vma hierarchy (``anon_vma_fork``, which may reuse an
        anon_vma), and copy its entries (``copy_huge_pmd`` /
        ``copy_pte_range``): shared entries are write-protected on both sides.
        What happens to a page that may be pinned is the era's: shared like
        any other before 5.9; from 5.9 (70e806e4e645, d042035eaf5f) the child
        gets a private copy at once and the parent's entry is left as it was
        -- a pinned PMD is split first and copied page by page.  A fork-time
        copy is an event of the fork step, not a write fault."""
        parent = self.mm(proc)
        if child in self.mms:
            raise OpError(f"process {child} already exists")
        c = self._new_mm(child)
        c.regions = dict(parent.regions)
        nr, mem = self.nr, self.mem
        copied = 0
        for pv in list(parent.vmas):
            if pv.dontcopy:
                continue
            cv = pv.copy(anon_vma=None, avcs=())
            self.anon_vma_fork(cv, pv)
            c.vmas.append(cv)
            if pv.anon_vma is None:
                # copy_page_range skips a VMA without anon_vma: it can only
                # hold zero-page entries, which the child faults in again
                continue
            for ext, a, b in self._extents(pv.start, pv.end):
                entry = parent.pt.get(ext)
                if entry is None:
                    continue
                if isinstance(entry, Pmd):
                    if self.is_zero(entry.head):
                        self._pt_set(c, ext, Pmd(entry.head, False, entry.dirty))
                        continue
                    if self.era.copy_huge_pmd(self, parent, entry.head) == "share":
                        if entry.write:
                            self._pt_set(parent, ext, entry.but(write=False))
                        self._pt_set(c, ext, Pmd(entry.head, False, entry.dirty))
                        self._pmd_map(c, entry.head)
                        continue
                    self.era.split_huge_pmd(self, parent, ext)
                    entry = parent.pt[ext]
                    assert isinstance(entry, PteTable)  # the split left PTEs
                off = np.arange(a - ext * nr, b - ext * nr)
                pf = entry.pfn[off]
                present = pf >= 0
                real = present & ~self.is_zero(np.maximum(pf, 0))
                copy = np.zeros(len(pf), dtype=np.bool_)
                if real.any():
                    copy[real] = self.era.copy_pte_range(self, parent, pf[real])
                share = present & ~copy
                if entry.write[off[share]].any():
                    entry = self._table_w(parent, ext)
                    entry.write[off[share]] = False  # shared entries are write-protected
                ct = self._pt_new_table(c, ext)
                ct.pfn[off[share]] = pf[share]
                ct.write[off[share]] = False
                ct.dirty[off[share]] = entry.dirty[off[share]]
                self._pte_map(c, pf[share & real])
                if copy.any():
                    # copy_present_page: the child's private copy of a page
                    # that may be pinned, writable and dirty; the parent keeps
                    # its entry as it was
                    idx = np.nonzero(copy)[0]
                    new = self._new_small([cv], np.zeros(len(idx), dtype=np.int64), a + idx)
                    mem.w.data[new] = mem.data[pf[idx]]
                    mem.w.writer[new] = mem.writer[pf[idx]]
                    ct.pfn[off[idx]] = new
                    ct.write[off[idx]] = cv.write
                    ct.dirty[off[idx]] = True
                    copied += len(idx)
        c.vmas.sort(key=lambda v: v.start)
        if copied:
            self.log.event("fork-copy", f"fork copied {copied} page(s) for {child} (maybe pinned in {proc})",
                           pages=copied)

    def exit(self, proc: str) -> None:
        """exit/exec: unmap everything (``exit_mmap``, which also unlinks the
        anon_vmas); the pins the process took stay with the device, excused
        (the owner went away)."""
        mm = self._mm_w(self.mm(proc))
        for v in list(mm.vmas):
            self._zap(mm, v.start, v.end, free_tables=False)
        mm.vmas = []
        mm.pt = {}
        mm.alive = False
        alive = self._t.alive
        if alive is not None:
            alive.remove(mm)
        for pin in self.pins.values():
            if pin.active and pin.owner == proc and not pin.excused.all():
                self._pin_w(pin).excused[:] = True
