"""What one step did: the faults it took and the events it raised."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: fault decisions, in the order of their integer codes
DECISIONS = ("reuse", "cow-small", "cow-huge", "new", "zero")
REUSE, COW_SMALL, COW_HUGE, NEW, ZERO = range(5)


class OpError(Exception):
    """The modelled kernel refuses the operation (an errno or a signal).

    The runner records it as an error event of the step and restores the world
    as it was before the statement."""


class ThpvizDefect(AssertionError):
    """An internal inconsistency of the model: a bug of thpviz, never an
    expected outcome of a scenario."""


@dataclass
class FaultBatch:
    """Faults one statement took in one process, at one level, in address
    order.  Arrays rather than one object per fault, so a write over 512
    write-protected PTEs stays one numpy operation."""

    proc: str
    access: str  # "read" | "write"
    level: str  # "pmd" | "pte"
    addrs: np.ndarray
    decisions: np.ndarray  # codes into DECISIONS
    copied: np.ndarray  # bytes copied per fault
    pfns: np.ndarray  # the page each fault found (-1: none)
    gup: bool = False
    #: per-fault cost: field name -> int64 array of length n (the fields and
    #: their rules: ``thpviz.eras.cost_rules.COST_FIELDS``, docs/cost-model.md)
    cost: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.addrs)


@dataclass
class Event:
    kind: str  # "error" | "bug" | "leak" | "ebusy" | "info" | "dma"
    message: str
    data: dict = field(default_factory=dict)


@dataclass
class StepLog:
    faults: list[FaultBatch] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def event(self, kind: str, message: str, **data) -> None:
        self.events.append(Event(kind, message, data))
