"""What a statement changed: the world's undo journal.

Every change the engine makes between two commits is recorded here before it
happens -- the old contents of the struct page chunks it writes (kept by the
:class:`~thpviz.model.memmap.MemMap`), the state of each process it touches,
the pins it changes, the anon_vmas and counters it adds -- so that

* :meth:`World.rollback` puts the world back exactly as it was (a statement
  the modelled kernel refuses changes nothing, even if it had begun);
* :meth:`World.commit` hands the record to the world's listeners: the scoped
  invariant check (:class:`thpviz.invariants.ScopedChecker`) counts only what
  changed, and the snapshot recorder (:mod:`thpviz.model.snapshots`) copies
  only that;
* page tables are copy-on-write: a table written in this statement is a copy
  the statement owns (``owned``); the original stays as snapshots and clones
  saw it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .memmap import Hidden

if TYPE_CHECKING:
    import numpy as np

    from .mm import Mm, Pmd, PteTable, Vma


@dataclass
class MmSaved:
    """A process as it was before the statement first changed it.  Regions
    are only ever added, so only their number is kept."""

    vmas: list[Vma]
    pt: dict[int, Pmd | PteTable]
    n_regions: int
    alive: bool
    has_pinned: bool


class Txn(Hidden):
    __slots__ = ("mms", "pins", "owned", "n_anon_vmas", "scalars", "mem", "mem_start")

    def __init__(self, world):
        #: process name -> MmSaved, or None for a process the statement created
        self.mms: dict[str, MmSaved | None] = {}
        #: pin name -> the pin before the statement (a clone), or None: new
        self.pins: dict = {}
        #: id -> page-table entry created or copied by this statement
        self.owned: dict[int, Pmd | PteTable] = {}
        self.n_anon_vmas = len(world.anon_vmas)
        self.scalars = (world.clock, world.next_va, world.mm_serial)
        #: the memmap's journal and (size, serials) at the start, set at commit
        self.mem: dict[str, dict[int, np.ndarray]] | None = None
        self.mem_start: tuple[int, int, int] | None = None

    def empty(self) -> bool:
        return not (self.mms or self.pins or self.mem)


class Tracker(Hidden):
    """The world's bookkeeping: the open transaction and the listeners told
    about each committed one."""

    __slots__ = ("txn", "listeners", "alive", "children")

    def __init__(self, world):
        self.txn = Txn(world)
        self.listeners: list = []
        #: cached list of the live processes (None: to be rebuilt)
        self.alive: list[Mm] | None = None
        #: (number of anon_vmas indexed, parent id -> child ids)
        self.children: tuple[int, dict] = (0, {})
