"""Which per-subpage and per-page state a diagram shows, era by era: the one
place that lists it.

A diagram cuts a page into *cells* where a per-subpage field changes
(:func:`subpage_fields`), and shows the era's counter functions on the head
of a THP (:func:`head_counters`).  Both lists depend on the era (a field or
a counter the era's kernel did not have is not shown) and on what the model
records (``world.mem`` grows fields as later eras are modelled: ``refs``,
``anon_exclusive``...); nothing else in :mod:`thpviz.render` names a
per-subpage field.

The data version stamp (``mem.data``) is deliberately not a field here: two
subpages that differ only in what was written to them are alike for the
kernel's bookkeeping, so they share a cell (the cell shows the range of
versions, ``v1–v3``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

#: counters shown for a THP head, in this order, when the era has them
#: (``era.counters``)
HEAD_COUNTERS = (
    "page_count", "compound_mapcount", "total_mapcount", "page_trans_huge_mapcount",
    "pincount", "entire_mapcount", "large_mapcount", "maybe_shared", "anon_exclusive",
)


@dataclass(frozen=True)
class SubpageField:
    """One per-subpage value.  ``values(world, frames)`` reads it for an
    array of pfns; ``label(v)`` is its text in a cell (None: nothing shown,
    e.g. no pins); ``order0`` marks a field only order-0 pages are cut by
    (their refcount is per page)."""

    name: str
    short: str  # "mc": the prefix of a range in a merged cell ("mc 0–2")
    doc: str
    values: Callable
    label: Callable
    order0: bool = False

    def text(self, lo: int, hi: int | None = None) -> str | None:
        """The cell text for one value, or for a range of them."""
        if hi is None or hi == lo:
            return self.label(lo)
        return f"{self.short} {lo}–{hi}"


def _mapcount(world, frames):
    return world.era.mapcount_frames(world.mem, frames)


def _anon_exclusive(world, frames):
    """PageAnonExclusive as :func:`thpviz.eras.counters.anon_exclusive` reads
    it, for many frames at once: the head's flag while a PMD maps the THP,
    else the subpage's own (``tests/test_render.py`` checks the two agree)."""
    mem = world.mem
    heads = mem.head[frames]
    pmd = (mem.nr[heads] > 1) & (mem.cmc[heads] > 0)
    return np.where(pmd, mem.anon_exclusive[heads], mem.anon_exclusive[frames]).astype(np.int64)


def _mem(name: str):
    def read(world, frames):
        return getattr(world.mem, name)[frames]
    return read


def _count_label(prefix: str):
    def label(v):
        return f"{prefix} {v}" if v else None
    return label


def subpage_fields(world) -> list[SubpageField]:
    """The per-subpage fields the world's era has, in display order."""
    mem, era = world.mem, world.era
    out = [
        SubpageField("mapcount", "mc", "logical _mapcount of the struct page, as the era stores it",
                     _mapcount, lambda v: f"mc {v}"),
        SubpageField("pins", "pin", "pins taken by `pin` on this frame (GUP references; FOLL_PIN from 5.8)",
                     _mem("pins"), _count_label("pin")),
    ]
    if hasattr(mem, "refs"):
        out.append(SubpageField("refs", "ref", "FOLL_GET references held by a pipe (vmsplice) on this frame",
                                _mem("refs"), _count_label("ref")))
    if "anon_exclusive" in era.counters and hasattr(mem, "anon_exclusive"):
        out.append(SubpageField("anon_exclusive", "excl", "PageAnonExclusive (5.19+), as the kernel reads it",
                                _anon_exclusive, lambda v: "excl" if v else None))
    out.append(SubpageField("refcount", "count", "page_count of an order-0 page", _mem("refcount"),
                            lambda v: f"count {v}", order0=True))
    return out


def head_counters(era) -> list[str]:
    """The counter functions shown on a THP head under ``era``."""
    names = [n for n in HEAD_COUNTERS if n in era.counters]
    if "compound_mapcount" not in era.counters and "page_mapcount" in era.counters \
            and "entire_mapcount" not in era.counters:
        # 4.4: the head's _mapcount counts the PMDs (page_mapcount of the head)
        names.insert(1, "page_mapcount")
    return names


def read_fields(world, fields: list[SubpageField], frames: np.ndarray, order0: bool) -> dict[str, np.ndarray]:
    """``{field name: values}`` of the fields that apply to a page kind."""
    return {f.name: np.asarray(f.values(world, frames)) for f in fields if order0 or not f.order0}


def shows_dirty(era) -> bool:
    """Whether the era's rules read or carry the PMD/PTE dirty bit (6.1's
    mprotect upgrade needs a dirty PTE; from 6.4 a PMD split carries the
    bit to the PTEs): only then do the diagrams show it."""
    return getattr(era, "mprotect_upgrade_pte", None) == "dirty" or bool(getattr(era, "split_keeps_dirty", False))


def shows_has_pinned(era) -> bool:
    """Whether the era has ``mm->has_pinned`` (5.9, 008cfe4418b3): the eras
    whose fork reads it (``needs_cow_for_dma``)."""
    return hasattr(era, "needs_cow_for_dma")


def pin_flag(era, kind: str) -> str:
    """How GUP took a ``pin`` (FOLL_PIN from 5.8, FOLL_GET before) or a
    ``vmsplice`` reference (FOLL_GET in every era)."""
    return "FOLL_PIN" if kind == "pin" and getattr(era, "foll_pin", False) else "FOLL_GET"


def owner_slots(world, h: int) -> str | None:
    """6.15's two owner slots of a large folio (``folio->_mm_id`` and
    ``_mm_id_mapcount``) as "P×2, free", or None in eras without them."""
    mem = world.mem
    if not getattr(world.era, "tracks_mm_ids", False) or not hasattr(mem, "slot_mm"):
        return None
    names = {m.id: m.name for m in world.mms.values()}
    out = []
    for mm_id, count in ((int(mem.slot_mm[h]), int(mem.slot_count[h])),
                         (int(mem.slot_mm2[h]), int(mem.slot_count2[h]))):
        out.append("free" if mm_id == 0 else f"{names.get(mm_id, f'mm {mm_id}')}×{count}")
    return ", ".join(out)
