"""get_user_pages: pins, references, unsharing, and the device doing DMA."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .events import OpError
from .memmap import KIND_ZERO
from .mm import Mm, Pmd
from .worldbase import WorldBase


@dataclass
class Pin:
    """GUP references taken by ``owner`` on a range: a long-term DMA pin as
    vfio takes it (``kind == "pin"``; FOLL_GET in the 2016 eras, FOLL_PIN |
    FOLL_LONGTERM from 5.8) or a read-only FOLL_GET reference held by a pipe
    after vmsplice (``kind == "ref"``)."""

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


class GupMixin(WorldBase):
    def gup(self, proc: str, lo: int, hi: int, write: bool, kind: str, name: str) -> None:
        """``get_user_pages`` / ``pin_user_pages``.

        ``kind == "pin"``: a long-term DMA pin as vfio takes it -- FOLL_GET in
        the 2016 eras, FOLL_PIN | FOLL_LONGTERM from 5.8; ``kind == "ref"``:
        a read-only FOLL_GET reference (vmsplice).  First the faults: a write
        GUP takes the write fault on a write-protected entry; a read GUP on a
        COW mapping breaks COW like a write in 5.8 (17839856fd58); from 5.19 a
        read-only FOLL_PIN of an anonymous page that is not exclusive takes an
        unshare fault (a7f226604170), and from 6.2 so does a read-only
        long-term pin of the zero page.  Then one reference per subpage."""
        mm = self.mm(proc)
        if name in self.pins:
            raise OpError(f"a pin named {name} already exists")
        what = "pin" if kind == "pin" else "vmsplice"
        self._check_access(mm, lo, hi, write, what)
        era = self.era
        foll_pin = kind == "pin" and era.foll_pin
        if write:
            self._fault_in(mm, lo, hi, True, gup=True)
        elif era.gup_breaks_cow:
            self._fault_in(mm, lo, hi, True, gup=True)
        else:
            self._fault_in(mm, lo, hi, False, gup=True)
            if foll_pin and era.unshare_ro_pins:
                self._unshare(mm, lo, hi)
        vas = np.arange(lo, hi, dtype=np.int64)
        pf = self.lookup(mm, vas)
        mem = self.mem
        heads = mem.head[pf]
        if kind == "pin":
            mem.w.pins.add_at(pf, 1)
            self._get(heads, self.pin_weight(heads))
        else:
            mem.w.refs.add_at(pf, 1)
            self._get(heads)
        if foll_pin and not mm.has_pinned:
            self._mm_w(mm).has_pinned = True
        self._t.txn.pins.setdefault(name, None)
        self.pins[name] = self.new_pin(name, proc, kind, write, vas, pf)

    def new_pin(self, name, owner, kind, write, vas, pfns):
        return Pin(name, owner, kind, write, vas, pfns, np.zeros(len(vas), np.bool_))

    def _needs_unshare(self, pfns: np.ndarray) -> np.ndarray:
        """``gup_must_unshare`` for a read-only FOLL_PIN | FOLL_LONGTERM on a
        read-only entry: an anonymous page that is not exclusive, or (6.2+,
        84209e87c696) the zero page of a COW mapping."""
        mem = self.mem
        zero = mem.kind[pfns] == KIND_ZERO
        anon = ~zero & ~mem.anon_exclusive[pfns]
        if self.era.unshare_zero_page:
            return anon | zero
        return anon

    def _unshare(self, mm: Mm, lo: int, hi: int) -> None:
        """The unshare faults of a read-only pin, in address order: a PMD
        first (``do_huge_pmd_wp_page`` with FAULT_FLAG_UNSHARE, which may
        split it), then the PTEs that still need one."""
        nr, mem = self.nr, self.mem
        for ext, a, b in self._extents(lo, hi):
            entry = mm.pt.get(ext)
            if isinstance(entry, Pmd) and not entry.write:
                h = entry.head
                pfn = h if mem.kind[h] == KIND_ZERO else h + (a - ext * nr)
                if self._needs_unshare(np.array([pfn]))[0]:
                    self._huge_wp_fault(mm, ext, a, gup=True, unshare=True)
                entry = mm.pt.get(ext)
            if isinstance(entry, Pmd) or entry is None:
                continue
            off = np.arange(a - ext * nr, b - ext * nr)
            pf = entry.pfn[off]
            cand = (pf >= 0) & ~entry.write[off]
            if not cand.any():
                continue
            need = np.zeros(len(off), dtype=np.bool_)
            need[cand] = self._needs_unshare(pf[cand])
            zero = need & (mem.kind[np.maximum(pf, 0)] == KIND_ZERO)
            if zero.any():
                self._pte_none_faults(mm, ext, off[zero], "unshare", True)
            anon = need & ~zero
            if anon.any():
                self._pte_wp_faults(mm, ext * nr + off[anon], True, unshare=True)

    def unpin(self, name: str) -> None:
        pin = self.pins.get(name)
        if pin is None or not pin.active:
            raise OpError(f"no pin named {name}")
        mem = self.mem
        heads = mem.head[pin.pfns]
        if pin.kind == "pin":
            mem.w.pins.add_at(pin.pfns, -1)
            self._put(heads, self.pin_weight(heads))
        else:
            mem.w.refs.add_at(pin.pfns, -1)
            self._put(heads)
        self._pin_w(pin).active = False

    def dma_write(self, name: str) -> None:
        pin = self._active_pin(name)
        if not pin.write:
            raise OpError(f"dma_write {name}: the pin is read-only (IOMMU fault)")
        self.clock += 1
        self.mem.w.data[pin.pfns] = self.clock
        self.mem.w.writer[pin.pfns] = -2
        self.log.event("dma", f"device wrote v{self.clock} through {name}", pin=name)
        owner = self.mms[pin.owner]
        own = self.lookup(owner, pin.vas) == pin.pfns
        self._stray(pin.pfns, own, owner, "the device's write through", name)

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

    def _active_pin(self, name: str):
        pin = self.pins.get(name)
        if pin is None or not pin.active:
            raise OpError(f"no pin named {name}")
        return pin
