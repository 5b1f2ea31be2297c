"""Reading the engine's cost counts: per fault, per statement, per run.

Every fault a run takes carries a per-fault cost record
(:attr:`thpviz.model.events.FaultBatch.cost`, one array per field of
:data:`COST_FIELDS`), filled in by the era's decision and the world's fault
path (rules in :mod:`thpviz.eras.cost_rules`, documented in docs/cost-model.md).
This module only adds them up and counts the work of statements that take no
fault, from the snapshots before and after the statement.  It never changes a
world.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..eras.cost_rules import CACHE_LINE, COST_FIELDS, STRUCT_PAGE_BYTES
from ..invariants import pin_lost
from ..model.events import DECISIONS
from ..model.memmap import KIND_ZERO
from ..model.mm import Pmd

__all__ = [
    "COST_FIELDS", "STATEMENT_FIELDS", "FaultCost", "fault_costs", "fault_total",
    "last_write_fault", "step_costs", "run_totals", "pins_lost", "cache_lines",
]

#: work of a statement outside its faults (docs/cost-model.md, "Statements")
STATEMENT_FIELDS = (
    "gup_refs",              # get_page/put_page of a GUP pin or reference, one per subpage
    "entries_changed",       # PMD/PTE entries whose content differs before/after
    "counter_units",         # net change of refcount + _mapcount + compound_mapcount, in units
    "struct_pages_changed",  # struct pages whose counters, flags or compound layout changed
    "rmap_vmas",             # VMAs visited by split_huge_page's rmap walks
)

#: split_huge_page walks the anon_vma tree twice: freeze_page / unfreeze_page
#: (4.5+), or the PMD-splitting and PMD-mapping loops of __split_huge_page (4.4)
SPLIT_RMAP_WALKS = 2


def cache_lines(cost: dict) -> int:
    """Cache lines a fault touches: struct pages plus page contents."""
    return int(cost["struct_page_lines"]) + int(cost["data_lines"])


@dataclass(frozen=True)
class FaultCost:
    """One fault of a run and its cost record."""

    step: int  # index into run.steps
    line: int  # scenario line
    proc: str
    access: str
    level: str
    decision: str
    addr: int
    page: str | None
    cost: dict

    @property
    def cache_lines(self) -> int:
        return cache_lines(self.cost)


def fault_costs(run) -> list[FaultCost]:
    """Every fault of ``run``, in the order the engine took them."""
    out = []
    for i, s in enumerate(run.steps):
        for fb in s.faults:
            for j in range(len(fb)):
                pfn = int(fb.pfns[j])
                out.append(FaultCost(
                    i, s.stmt.line, fb.proc, fb.access, fb.level, DECISIONS[int(fb.decisions[j])],
                    int(fb.addrs[j]), run.world.mem.name(pfn) if pfn >= 0 else None,
                    {k: int(fb.cost[k][j]) for k in COST_FIELDS},
                ))
    return out


def fault_total(run, steps=None) -> dict[str, int]:
    """Sum of every fault's cost over ``run`` (or over the step indexes
    ``steps``), plus ``cache_lines`` and ``faults``."""
    tot = {k: 0 for k in COST_FIELDS}
    nf = 0
    idx = range(len(run.steps)) if steps is None else steps
    for i in idx:
        for fb in run.steps[i].faults:
            nf += len(fb)
            for k in COST_FIELDS:
                tot[k] += int(fb.cost[k].sum())
    tot["cache_lines"] = cache_lines(tot)
    tot["faults"] = nf
    return tot


def last_write_fault(run) -> FaultCost | None:
    """The fault whose decision is the run's ``last_write`` (the last write
    fault of the run, as :attr:`thpviz.scenario.runner.Run.last_write`
    picks it)."""
    for i in range(len(run.steps) - 1, -1, -1):
        s = run.steps[i]
        wf = [f for f in s.faults if f.access == "write"]
        if not wf:
            continue
        fb = max(wf, key=lambda f: int(f.addrs.max()))
        j = int(fb.addrs.argmax())
        pfn = int(fb.pfns[j])
        return FaultCost(
            i, s.stmt.line, fb.proc, fb.access, fb.level, DECISIONS[int(fb.decisions[j])],
            int(fb.addrs[j]), run.world.mem.name(pfn) if pfn >= 0 else None,
            {k: int(fb.cost[k][j]) for k in COST_FIELDS},
        )
    return None


def pins_lost(world) -> int:
    """Pins (by name) whose owner now maps another page than the device
    holds (the ``pin-lost`` invariant, one count per pin)."""
    return len(pin_lost(world))


# ------------------------------------------------------------ statements
def _entries(world) -> dict:
    out = {}
    for mm in world.alive_mms():
        for ext, e in mm.pt.items():
            out[(mm.name, ext)] = e
    return out


def _as_arrays(e, nr: int):
    if e is None:
        return np.full(nr, -1, dtype=np.int64), np.zeros(nr, dtype=bool)
    return e.pfn, e.write


def entries_changed(before, after) -> int:
    """PMD and PTE entries whose content differs between two worlds (a PMD
    counts as one entry; a PMD replaced by a PTE table as one plus the
    present PTEs)."""
    nr = after.nr
    eb, ea = _entries(before), _entries(after)
    n = 0
    for key in set(eb) | set(ea):
        b, a = eb.get(key), ea.get(key)
        bp, ap = isinstance(b, Pmd), isinstance(a, Pmd)
        if isinstance(b, Pmd) and isinstance(a, Pmd):
            n += int(b.head != a.head or b.write != a.write)
            continue
        if bp or ap:
            n += 1
            other = a if bp else b
            if other is not None:
                n += int((other.pfn >= 0).sum())
            continue
        pb, wb = _as_arrays(b, nr)
        pa, wa = _as_arrays(a, nr)
        live = (pb >= 0) | (pa >= 0)
        n += int((live & ((pb != pa) | (wb != wa))).sum())
    return n


def _counter_delta(before, after) -> tuple[int, int]:
    mb, ma = before.mem, after.mem
    size = ma.size
    changed = np.zeros(size, dtype=bool)
    units = 0
    for f in ("refcount", "mapcount", "cmc"):
        old = np.zeros(size, dtype=np.int64)
        old[: mb.size] = getattr(mb, f)[: mb.size]
        d = getattr(ma, f)[:size] - old
        units += int(np.abs(d).sum())
        changed |= d != 0
    for f in ("double_map", "head", "nr"):
        old = getattr(mb, f)[:size].copy()
        old[mb.size:] = getattr(ma, f)[mb.size:size]
        changed |= getattr(ma, f)[:size] != old
    return units, int(changed.sum())


def _linked_vmas(world, h: int) -> int:
    """VMAs in the interval tree of ``page->mapping``'s anon_vma that overlap
    the page's offsets: what ``anon_vma_interval_tree_foreach`` visits."""
    mem = world.mem
    av, lo = int(mem.mapping[h]), int(mem.index[h])
    hi = lo + int(mem.nr[h])
    n = 0
    for mm in world.alive_mms():
        for v in mm.vmas:
            if av in v.avcs and v.pgoff < hi and v.pgoff + (v.end - v.start) > lo:
                n += 1
    return n


def _split_heads(before, after, step) -> set[int]:
    """THPs whose ``split_huge_page`` walked the rmap in this statement: every
    compound page that became order-0 pages, and the target of a
    ``split_page`` that was not refused up front for a pin."""
    mb, ma = before.mem, after.mem
    pf = np.arange(mb.size)
    heads = pf[(mb.head[: mb.size] == pf) & (mb.nr[: mb.size] > 1) & (mb.kind[: mb.size] != KIND_ZERO)]
    out = {int(h) for h in heads if ma.nr[h] == 1}
    st = step.stmt
    if st.op == "split_page" and step.error is None:
        from ..scenario.runner import address_range

        lo, _ = address_range(before, st.proc, st.args["range"])
        p, _, _ = before.lookup_one(before.mms[st.proc], lo)
        if p >= 0:
            h = int(mb.head[p])
            n = int(mb.nr[h])
            if n > 1 and mb.kind[h] != KIND_ZERO and mb.pins[h : h + n].sum() == 0:
                out.add(h)
    return out


def statement_cost(before, after, step) -> dict[str, int]:
    """Work of one statement outside its faults (STATEMENT_FIELDS).

    Statements that fault (read, write, pin, vmsplice) do nothing else but
    take their GUP references, one ``get_page`` per subpage; ``unpin`` drops
    them.  For every other statement the state change is measured between
    the snapshots, which is a lower bound on the work (an increment undone in
    the same statement is not seen)."""
    out = {k: 0 for k in STATEMENT_FIELDS}
    st = step.stmt
    if step.error is not None or st.op in ("assert", "read", "write", "dma_read", "dma_write"):
        return out
    if st.op in ("pin", "vmsplice"):
        lo, hi = _range(before, st)
        out["gup_refs"] = hi - lo
        return out
    if st.op == "unpin":
        pin = before.pins.get(st.args["pin"])
        out["gup_refs"] = len(pin.vas) if pin is not None else 0
        return out
    out["entries_changed"] = entries_changed(before, after)
    out["counter_units"], out["struct_pages_changed"] = _counter_delta(before, after)
    out["rmap_vmas"] = sum(SPLIT_RMAP_WALKS * _linked_vmas(before, h) for h in _split_heads(before, after, step))
    return out


def _range(world, st) -> tuple[int, int]:
    from ..scenario.runner import address_range

    return address_range(world, st.proc, st.args["range"])


def step_costs(run) -> list[dict]:
    """Per statement: ``{"line", "text", "faults": fault totals,
    "statement": work outside the faults}``.  Needs a run made with
    ``keep_snapshots=True``."""
    if run.snapshots is None:
        raise ValueError("step_costs needs run(..., keep_snapshots=True)")
    out = []
    for i, s in enumerate(run.steps):
        out.append({
            "line": s.stmt.line,
            "text": s.stmt.text,
            "faults": fault_total(run, [i]),
            "statement": statement_cost(run.snapshots[i], run.snapshots[i + 1], s),
        })
    return out


def run_totals(run) -> dict[str, int]:
    """Fault totals of the whole run, plus ``pins_lost`` at the end and the
    struct-page bytes (``decision_lines`` x 64) the reuse tests read."""
    tot = fault_total(run)
    tot["pins_lost"] = pins_lost(run.world)
    tot["decision_bytes"] = tot["decision_lines"] * STRUCT_PAGE_BYTES
    tot["data_bytes"] = tot["data_lines"] * CACHE_LINE
    return tot
