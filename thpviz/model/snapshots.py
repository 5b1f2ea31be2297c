"""Snapshots of a world after each statement, sharing what did not change.

A :class:`Recorder` attached to a world keeps, per step, only what the step
changed: the struct page chunks it wrote (as :class:`~thpviz.model.memmap.Cell`
objects -- a view of the live array until the world next writes that chunk,
when the memmap gives the cell a copy of the old contents), the processes and
pins it touched (frozen copies whose page tables are the shared, frozen
entries), and the counters.  Every so often (when the chunks changed since the
last one add up to half a world) a step keeps the whole chunk table, so
building any step's world replays a bounded number of steps' changes.

:class:`Snapshots` is the sequence a :class:`~thpviz.scenario.runner.Run`
exposes as ``run.snapshots``: ``len()``, indexing (negative too), slices and
iteration, each item a :class:`~thpviz.model.world.World` built on demand
(the last few are cached) -- an independent world, like the clones the
runner used to keep.  Worlds built one after the other share the arrays of
fields whose chunks are the same (read-only, copied by the engine before it
writes one).
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from .memmap import Hidden, MemMap


class _Step(Hidden):
    """One recorded step: the whole chunk table (``full``) or the chunks the
    step changed (``delta``), and the rest of the world as it was."""

    __slots__ = ("full", "delta", "size", "serials", "n_mms", "n_pins", "n_anon_vmas", "scalars")
    full: dict | None
    delta: dict | None
    size: int
    serials: tuple[int, int]
    n_mms: int
    n_pins: int
    n_anon_vmas: int
    scalars: tuple[int, int, int]


def _freeze_mm(m, prev):
    """A copy of process ``m`` for the record (a dead mm never changes, so
    it is kept as it is).  Regions are only ever added, so a copy with as
    many regions as the previous one shares its regions dict."""
    if not m.alive:
        return m
    c = m.clone()
    if prev is not None and len(prev.regions) == len(c.regions):
        c.regions = prev.regions
    return c


class Recorder(Hidden):
    """Records ``world`` after each :meth:`snap` (the first snap is taken
    when it is attached)."""

    def __init__(self, world):
        world.commit()
        mem = world.mem
        self.era, self.nr = world.era, world.nr
        self.zero = (world.huge_zero_pfn, world.zero_pfn)
        self.chunk = mem.chunk
        self.fields = [name for name, _, _ in MemMap._FIELDS]
        self.fill = {name: fill for name, _, fill in MemMap._FIELDS}
        self.steps: list[_Step] = []
        self.cur: dict[str, list] = {name: [] for name in self.fields}
        self.dirty: dict[str, set] = {}
        # processes and pins are only ever added (in the order the world's
        # dicts keep), as are anon_vmas: each has a history of the frozen
        # copies recorded for it, (steps, copies)
        self.mm_names: list[str] = []
        self.mm_hist: dict[str, tuple[list, list]] = {}
        self.pin_names: list[str] = []
        self.pin_hist: dict[str, tuple[list, list]] = {}
        self.anon_vmas: list = []
        self.dirty_mms: dict = dict.fromkeys(world.mms)
        self.dirty_pins: dict = dict.fromkeys(world.pins)
        self.since_full = 0
        #: field -> (size, cells, array) of the last world built, whose
        #: arrays the next one shares where the chunks are the same
        self._made: dict = {}
        world._t.listeners.append(self)
        self.snap(world, full=True)

    def absorb(self, world, txn) -> None:
        for name, chunks in (txn.mem or {}).items():
            self.dirty.setdefault(name, set()).update(chunks)
        self.dirty_mms.update(dict.fromkeys(txn.mms))
        self.dirty_pins.update(dict.fromkeys(txn.pins))

    def snap(self, world, full: bool = False) -> None:
        """Record the world as it is now (after its last commit)."""
        world.commit()
        mem = world.mem
        n = self.chunk
        nch = -(-mem.size // n)
        delta = {}
        for name in self.fields:
            cur = self.cur[name]
            want = set(c for c in self.dirty.get(name, ()) if c < nch)
            if len(cur) < nch:
                want.update(range(len(cur), nch))
                cur.extend([None] * (nch - len(cur)))
            if want:
                cells = mem.chunk_cells(name, sorted(want))
                for c, cell in cells.items():
                    cur[c] = cell
                delta[name] = cells
        self.dirty = {}
        self.since_full += sum(len(d) for d in delta.values())
        prev = self.steps[-1] if self.steps else None
        s = _Step()
        if full or prev is None or self.since_full * 2 >= nch * len(self.fields):
            s.full = {name: list(self.cur[name]) for name in self.fields}
            s.delta = None
            self.since_full = 0
        else:
            s.full = None
            s.delta = delta
        s.size = mem.size
        s.serials = (mem.thp_serial, mem.small_serial)
        k = len(self.steps)
        self._record(k, world.mms, self.dirty_mms, self.mm_names, self.mm_hist, _freeze_mm)
        self._record(k, world.pins, self.dirty_pins, self.pin_names, self.pin_hist,
                     lambda p, _prev: p.clone() if p.active else p)
        s.n_mms, s.n_pins = len(world.mms), len(world.pins)
        self.dirty_mms, self.dirty_pins = {}, {}
        self.anon_vmas.extend(world.anon_vmas[len(self.anon_vmas) :])
        s.n_anon_vmas = len(world.anon_vmas)
        s.scalars = (world.clock, world.next_va, world.mm_serial)
        self.steps.append(s)

    def _record(self, k: int, live: dict, dirty: dict, names: list, hist: dict, freeze) -> None:
        """Record a frozen copy of each changed process (or pin) for step
        ``k``; a new one joins ``names`` where the world's dict has it."""
        new = []
        for name in dirty:
            obj = live.get(name)
            if obj is None:
                continue  # created and rolled back
            h = hist.get(name)
            if h is None:
                steps: list[int] = []
                copies: list = []
                h = hist[name] = (steps, copies)
                new.append(name)
            h[0].append(k)
            h[1].append(freeze(obj, h[1][-1] if h[1] else None))
        if new:
            names.extend(new)
            if names != list(live)[: len(names)]:
                names.sort(key=list(live).index)

    @staticmethod
    def _at(k: int, n: int, names: list, hist: dict, thaw) -> dict:
        out = {}
        for name in names[:n]:
            steps, copies = hist[name]
            i = bisect_right(steps, k) - 1
            out[name] = thaw(copies[i])
        return out

    def __len__(self) -> int:
        return len(self.steps)

    def world(self, k: int):
        """An independent world as it was at step ``k``."""
        from .world import World

        j = k
        while self.steps[j].full is None:
            j -= 1
        full = self.steps[j].full
        assert full is not None
        lists = {name: list(cells) for name, cells in full.items()}
        for i in range(j + 1, k + 1):
            for name, cells in (self.steps[i].delta or {}).items():
                lst = lists[name]
                top = max(cells) + 1
                if len(lst) < top:
                    lst.extend([None] * (top - len(lst)))
                for c, cell in cells.items():
                    lst[c] = cell
        s = self.steps[k]
        nch = -(-s.size // self.chunk)
        keep = max(s.size, 1)
        arrays = {}
        shared = set()
        for name in self.fields:
            cells = lists[name][:nch]
            made = self._made.get(name)
            if made is not None and made[0] == keep and len(made[1]) == nch and all(
                    a is b for a, b in zip(made[1], cells)):
                arrays[name] = made[2]  # the same chunks: share the array
                shared.add(name)
                continue
            if self.fill[name] == 0 and nch > 1:
                # zero-filled fields: write only the chunks that are not
                # all zero (the rest of the calloc'ed array costs nothing)
                n = self.chunk
                a = np.zeros(nch * n, dtype=cells[0].a.dtype)
                for c, cell in enumerate(cells):
                    if cell.a.any():
                        a[c * n : c * n + len(cell.a)] = cell.a
                a = a[:keep]
            else:
                a = np.concatenate([cell.a for cell in cells])[:keep]
            a.flags.writeable = False
            arrays[name] = a
            self._made[name] = (keep, cells, a)
            shared.add(name)
        mem = MemMap.from_arrays(arrays, s.size, s.serials[0], s.serials[1], chunk=self.chunk, shared=shared)
        clock, next_va, mm_serial = s.scalars
        mms = self._at(k, s.n_mms, self.mm_names, self.mm_hist, lambda m: m.clone() if m.alive else m)
        pins = self._at(k, s.n_pins, self.pin_names, self.pin_hist, lambda p: p.clone() if p.active else p)
        return World.assemble(
            self.era, self.nr, mem, mms, self.anon_vmas[: s.n_anon_vmas], pins,
            clock, next_va, mm_serial, self.zero[0], self.zero[1],
        )


class Snapshots(Sequence):
    """The worlds after each step of a run (``[0]``: before the first
    statement), built on demand from a :class:`Recorder`; the ``cache`` most
    recently used are kept."""

    def __init__(self, recorder: Recorder, cache: int = 2):
        self._rec = recorder
        self._cache: OrderedDict = OrderedDict()
        self._keep = cache
        # a diagram may be drawn off the notebook's main thread
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._rec)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("snapshot index out of range")
        with self._lock:
            w = self._cache.get(i)
            if w is None:
                w = self._cache[i] = self._rec.world(i)
                while len(self._cache) > self._keep:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(i)
            return w

    def __repr__(self) -> str:
        return f"<{len(self)} snapshots>"
