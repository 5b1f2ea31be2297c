"""The reverse map: ``anon_vma``, ``anon_vma_chain`` and ``rmap_walk``.

An anon_vma's "interval tree" is not stored: it is the set of live VMAs whose
``avcs`` (their anon_vma_chain links) name it, which is how the kernel fills
it.  Its reference counters are derived from that structure the same way:

* ``num_active_vmas`` -- VMAs whose ``vma->anon_vma`` is this one;
* ``num_children``   -- child anon_vmas whose tree is not empty, plus the root's
  self-parent link while its own tree is not empty (6.0+, 2555283eb40d);
* ``degree``         -- their sum (3.19, 7a3ef208e662, until 6.0).

``anon_vma_clone`` at fork reuses an anon_vma of the parent's chain whose
counters say nobody uses it as its own and it has at most one child, so long
fork chains do not grow the hierarchy without bound.  Up to 5.19 the test is
``degree < 2`` (which can pick an anon_vma another VMA still uses, the
"degree ambiguity" that 2555283eb40d fixed in 6.0); from 6.0 it is
``num_children < 2 && num_active_vmas == 0``.  The era chooses
(``Era.anon_vma_reuse``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .memmap import KIND_ZERO
from .mm import AnonVma, Mm, Pmd, Vma
from .worldbase import WorldBase

if TYPE_CHECKING:
    from .worldbase import RmapRun


class RmapMixin(WorldBase):
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
        self._mm_w(mm)
        for other in mm.vmas:
            if other is vma or other.anon_vma is None or len(other.avcs) != 1:
                continue
            if other.end == vma.start or other.start == vma.end:
                vma.anon_vma, vma.avcs = other.anon_vma, (other.anon_vma,)
                return vma.anon_vma
        av = self._new_anon_vma(None)
        vma.anon_vma, vma.avcs = av.id, (av.id,)
        return av.id

    def _anon_vma_children(self, av_id: int) -> list[int]:
        """Ids of the anon_vmas whose parent is ``av_id`` (an index kept
        alongside ``anon_vmas``, which only grows)."""
        t = self._t
        n, index = t.children
        avs = self.anon_vmas
        if n > len(avs):
            n, index = 0, {}
        for a in avs[n:]:
            index.setdefault(a.parent, []).append(a.id)
        t.children = (len(avs), index)
        return index.get(av_id, [])

    def _live_vmas(self, extra: tuple = ()):
        for m in self.mms.values():
            if m.alive:
                yield from m.vmas
        yield from extra

    def anon_vma_census(self, extra: tuple = ()) -> tuple[dict, dict]:
        """``num_active_vmas`` and ``num_children`` of the anon_vmas (see the
        module docstring), counted once from the live VMAs; ``extra`` are
        VMAs being built that already count.  Returns two dicts, anon_vma id
        -> count; ``children`` is filled lazily (an anon_vma's children are
        looked up in an index of the hierarchy, so a fork costs what the
        parent's chain holds, not the whole history of anon_vmas)."""
        active: dict[int, int] = {}
        linked: set[int] = set()
        for v in self._live_vmas(extra):
            if v.anon_vma is not None:
                active[v.anon_vma] = active.get(v.anon_vma, 0) + 1
            linked.update(v.avcs)
        return active, _Children(self, linked)

    def anon_vma_counts(self, av_id: int, extra: tuple = ()) -> tuple[int, int]:
        """``(num_active_vmas, num_children)`` of anon_vma ``av_id``."""
        active, children = self.anon_vma_census(extra)
        return active.get(av_id, 0), children.get(av_id, 0)

    def anon_vma_fork(self, child_vma: Vma, parent_vma: Vma, extra: tuple = ()) -> None:
        """``anon_vma_fork`` = ``anon_vma_clone`` + a new anon_vma: link the
        child's VMA to every anon_vma of the parent's chain (oldest first, as
        the kernel walks it), reusing one the era's rule allows, else give it
        a new anon_vma whose parent is the parent VMA's."""
        if parent_vma.anon_vma is None:
            child_vma.anon_vma, child_vma.avcs = None, ()
            return
        child_vma.avcs = tuple(parent_vma.avcs)
        child_vma.anon_vma = None
        active, children = self.anon_vma_census(extra)
        for av_id in parent_vma.avcs:
            a, c = active.get(av_id, 0), children.get(av_id, 0)
            if self.era.anon_vma_reuse == "degree":
                ok = av_id != parent_vma.anon_vma and a + c < 2
            else:
                ok = c < 2 and a == 0
            if ok:
                child_vma.anon_vma = av_id
                return
        av = self._new_anon_vma(self.anon_vmas[parent_vma.anon_vma])
        child_vma.anon_vma = av.id
        child_vma.avcs = child_vma.avcs + (av.id,)

    def page_move_anon_rmap(self, heads: np.ndarray, vmas: list[Vma]) -> None:
        """``page_move_anon_rmap``: ``page->mapping`` of each (compound) page
        becomes the faulting VMA's anon_vma."""
        mem = self.mem
        for h, v in zip(np.asarray(heads).tolist(), vmas):
            av = -1 if v.anon_vma is None else v.anon_vma
            if mem.mapping[h] != av:
                mem.w.mapping[h] = av

    # ---------------------------------------------------------------- rmap
    def rmap_walk(self, h: int) -> tuple[list[RmapRun], list[RmapRun]]:
        """``rmap_walk_anon`` for page ``h``: visit the VMAs linked to
        ``page->mapping``'s anon_vma and find the entries that map the page.
        Returns (reached, unreached): lists of (mm, lo, hi, level) runs; the
        unreached ones are present mappings the walk misses.  Each address is
        judged by the VMA that contains it, so a run of PTEs that crosses a
        VMA boundary is split there."""
        mem, nr = self.mem, self.nr
        if mem.kind[h] == KIND_ZERO:
            return [], []  # the zero pages are not anonymous: no rmap
        n = int(mem.nr[h])
        av = int(mem.mapping[h])
        reached: list[RmapRun] = []
        missed: list[RmapRun] = []
        for mm in self.alive_mms():
            for ext, entry in mm.pt.items():
                base = ext * nr
                if isinstance(entry, Pmd):
                    if entry.head != h:
                        continue
                    idx = np.arange(nr)
                    level = "pmd"
                else:
                    idx = np.nonzero((entry.pfn >= h) & (entry.pfn < h + n))[0]
                    if len(idx) == 0:
                        continue
                    level = "pte"
                addrs = base + idx
                ok = np.zeros(len(addrs), dtype=np.bool_)
                vid = np.full(len(addrs), -1, dtype=np.int64)
                for i, v in enumerate(mm.vmas):
                    m = (addrs >= v.start) & (addrs < v.end)
                    vid[m] = i
                    if av in v.avcs:
                        ok[m] = True
                # runs of consecutive addresses in one VMA with one verdict
                cut = np.nonzero((np.diff(addrs) != 1) | (np.diff(vid) != 0) | (np.diff(ok) != 0))[0] + 1
                for run in np.split(np.arange(len(addrs)), cut):
                    lo, hi = int(addrs[run[0]]), int(addrs[run[-1]]) + 1
                    (reached if ok[run[0]] else missed).append((mm, lo, hi, level))
        return reached, missed


class _Children(dict):
    """``num_children`` by anon_vma id, computed on first lookup: children
    whose tree is not empty (some live VMA links them), the root counting
    itself while its own tree is not empty."""

    def __init__(self, world, linked: set):
        super().__init__()
        self._world, self._linked = world, linked

    def __missing__(self, av_id):
        linked = self._linked
        n = sum(1 for c in self._world._anon_vma_children(av_id) if c in linked)
        self[av_id] = n
        return n

    def get(self, av_id, default=None):
        return self[av_id]
