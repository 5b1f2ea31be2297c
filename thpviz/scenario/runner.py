"""Run a parsed scenario under one era and check its expectations."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import invariants
from ..model.events import DECISIONS, Event, FaultBatch, OpError, ThpvizDefect
from ..model.memmap import KIND_ZERO
from ..model.snapshots import Recorder, Snapshots
from ..model.world import World
from .parser import Scenario, Statement

if TYPE_CHECKING:
    from ..eras.base import Era

_CMP = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
        ">": operator.gt, ">=": operator.ge}


@dataclass
class StepResult:
    stmt: Statement
    faults: list[FaultBatch] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    #: violation kind -> details, for every violation present at this step
    violations: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None
    #: for an assert: (held, value or None, message)
    assertion: tuple | None = None

    @property
    def write_faults(self) -> list[FaultBatch]:
        return [f for f in self.faults if f.access == "write"]


@dataclass
class Run:
    scenario: Scenario
    era: Era
    steps: list[StepResult]
    world: World
    #: world after each step (only with keep_snapshots); snapshots[0] is the
    #: empty world before the first statement.  A sequence of worlds: a
    #: list, or the lazy :class:`~thpviz.model.snapshots.Snapshots` of run()
    snapshots: Sequence[World] | None = None

    @property
    def violations(self) -> set[str]:
        out: set[str] = set()
        for s in self.steps:
            out.update(s.violations)
        return out

    @property
    def last_write(self) -> str:
        """Decision of the last write fault of the run, or ``none``."""
        for s in reversed(self.steps):
            wf = s.write_faults
            if wf:
                last = max(wf, key=lambda f: int(f.addrs.max()))
                i = int(last.addrs.argmax())
                return DECISIONS[int(last.decisions[i])]
        return "none"

    def mismatches(self) -> list[str]:
        """One line per failed expectation or assertion under this era."""
        out = []
        path, era = self.scenario.path, self.era.id
        for s in self.steps:
            if s.assertion is not None and not s.assertion[0]:
                out.append(f"{path}:{s.stmt.line}: era {era}: assert failed: {s.assertion[2]}")
        exp = self.scenario.expects.get(era)
        if exp is not None:
            got_dec = self.last_write
            if exp.decision is not None and not _decision_matches(exp.decision, got_dec):
                out.append(f"{path}:{exp.line}: era {era}: expected decision {exp.decision}, got {got_dec}")
            got_v = self.violations
            if set(exp.violations) != got_v:
                want = " ".join(sorted(exp.violations)) or "clean"
                got = " ".join(sorted(got_v)) or "clean"
                out.append(f"{path}:{exp.line}: era {era}: expected violations {want}, got {got}")
        return out


def _decision_matches(expected: str, got: str) -> bool:
    if expected == "cow":
        return got in ("cow-small", "cow-huge")
    return expected == got


def address_range(world: World, proc: str, rng) -> tuple[int, int]:
    """Addresses of a range in a process.  A region can be missing at run
    time although the parser saw it created -- its ``mremap`` was refused --
    and then the statement is refused too."""
    mm = world.mms[proc]
    if rng.region not in mm.regions:
        raise OpError(f"{proc} has no region {rng.region} (the statement that would create it was refused)")
    start, size = mm.regions[rng.region]
    lo, hi = rng.bounds(size)
    return start + lo, start + hi


def _apply(world: World, st: Statement) -> None:
    op, a = st.op, st.args
    if op == "deferred_split":
        world.deferred_split()
        return
    if op in ("dma_write", "dma_read"):
        getattr(world, op)(a["pin"])
        return
    if op == "unpin":
        world.unpin(a["pin"])
        return
    # every other statement names its process (the parser sees to it)
    proc = st.proc
    assert proc is not None, f"line {st.line}: {op} without a process"
    if op == "mmap":
        world.mmap(proc, a["region"], a["extents"], a.get("huge", True))
        return
    if op == "fork":
        world.fork(proc, a["child"])
        return
    if op == "exit":
        world.exit(proc)
        return
    world.mm(proc)
    lo, hi = address_range(world, proc, a["range"])
    if op in ("read", "write"):
        world.access(proc, lo, hi, op == "write")
    elif op == "munmap":
        world.munmap(proc, lo, hi)
    elif op == "dontneed":
        world.madvise_dontneed(proc, lo, hi)
    elif op == "dontfork":
        world.madvise_dontfork(proc, lo, hi)
    elif op == "dofork":
        world.madvise_dofork(proc, lo, hi)
    elif op == "mprotect":
        world.mprotect(proc, lo, hi, a["write"])
    elif op == "mremap":
        world.mremap(proc, lo, hi, a["new"], a.get("aligned", True))
    elif op == "split_pmd":
        world.split_pmd(proc, lo, hi)
    elif op == "split_page":
        world.split_page(proc, lo)
    elif op == "pin":
        world.gup(proc, lo, hi, a["write"], "pin", a["name"])
    elif op == "vmsplice":
        world.gup(proc, lo, hi, False, "ref", a["name"])
    else:  # pragma: no cover - the parser only produces the ops above
        raise ValueError(op)


def evaluate_assert(world: World, era, st: Statement):
    """(held, value, message) for an assert statement under ``era``."""
    a = st.args
    rng = a["range"]
    cands = [world.mms[st.proc]] if st.proc else [m for m in world.mms.values()]
    pfn, who = -1, None
    for mm in cands:
        if not mm.alive or rng.region not in mm.regions:
            continue
        lo, _ = address_range(world, mm.name, rng)
        p, _, _ = world.lookup_one(mm, lo)
        if p >= 0:
            pfn, who = p, mm
            break
    text = f"{a['func']}({rng.text}) {a['cmp']} {a['value']}"
    if pfn < 0:
        return False, None, f"{text}: nothing is mapped at {rng.text}"
    assert who is not None  # found together with pfn
    if world.mem.kind[pfn] == KIND_ZERO:
        return False, None, f"{text}: {who.name} maps the zero page there (its counters are not modelled)"
    value = era.counter(a["func"], world.mem, int(pfn))
    held = _CMP[a["cmp"]](value, a["value"])
    where = f"{who.name}'s {rng.text} = {world.mem.name(pfn)}"
    return held, value, f"{text}: {a['func']} is {value} ({where})"


def execute(world: World, era, st: Statement, check: str = "scoped") -> tuple[World, StepResult]:
    """Carry out one statement on ``world``: an assert is evaluated, an
    operation applied -- one the modelled kernel refuses is rolled back from
    the world's undo journal, so it leaves the world as it was -- and the
    statement is committed; then the invariants are checked (a counter
    inconsistency raises ThpvizDefect).

    ``check``: ``"scoped"`` (the default) checks what the statement touched
    (:class:`thpviz.invariants.ScopedChecker`), ``"full"`` the whole world
    (:func:`thpviz.invariants.check`), ``"both"`` does both and raises
    ThpvizDefect if they disagree.  Returns ``(world, step)``: the same
    world object, changed in place."""
    res = StepResult(st)
    checker = invariants.scoped_checker(world) if check != "full" else None
    if st.op == "assert":
        if st.args["eras"] is None or era.id in st.args["eras"]:
            res.assertion = evaluate_assert(world, era, st)
    else:
        world.log.faults.clear()
        world.log.events.clear()
        try:
            _apply(world, st)
        except OpError as e:
            world.rollback()
            world.log.faults.clear()
            world.log.events.clear()
            res.error = str(e)
        else:
            # batches in address order (the world logs PMD and new-page
            # faults as it meets them and write-protect faults together)
            res.faults = sorted(world.log.faults, key=lambda f: int(f.addrs.min()))
            res.events = list(world.log.events)
    world.commit()
    for ev in res.events:
        if ev.kind in invariants.EVENT_VIOLATIONS:
            res.violations.setdefault(ev.kind, []).append(ev.message)
    found = checker.check(world) if checker is not None else invariants.check(world)
    if check == "both":
        full = invariants.check(world)
        if full != found:
            raise ThpvizDefect(f"line {st.line}: the scoped check found {found}, the full check {full}")
    for kind, details in found.items():
        res.violations[kind] = details
    return world, res


def run(scn: Scenario, era, keep_snapshots: bool = False, check: str = "scoped") -> Run:
    """Run every statement under ``era`` (see :func:`execute`), then check
    the final world in full (:func:`thpviz.invariants.check`): a counter
    inconsistency anywhere, or state violations other than the scoped check
    of the last step found, raise ThpvizDefect -- so ``thpviz check`` and
    every run end with the full check.  With ``keep_snapshots`` the run's
    ``snapshots`` hold the world before the first statement and after each
    one (:class:`thpviz.model.snapshots.Snapshots`: built on demand, sharing
    what steps did not change)."""
    world = World(era, scn.thp)
    steps: list[StepResult] = []
    rec = Recorder(world) if keep_snapshots else None
    for st in scn.statements:
        world, res = execute(world, era, st, check)
        steps.append(res)
        if rec is not None:
            rec.snap(world)
    if check == "scoped" and steps:
        # the full check once, on the final world: it must find what the
        # scoped checks of the last step found
        last = {k: v for k, v in steps[-1].violations.items() if k in invariants.STATE_VIOLATIONS}
        full = invariants.check(world)
        if full != last:
            raise ThpvizDefect(f"after the last statement the full check found {full}, the scoped check {last}")
    return Run(scn, era, steps, world, Snapshots(rec) if rec is not None else None)


def eras_for(scn: Scenario, requested=None, default_all=True):
    """The eras a file runs under: ``requested`` if given, else those its
    ``expect``/``assert`` lines name, else every implemented era."""
    from ..eras import ERAS, get

    if requested:
        return [get(e) for e in requested]
    named = scn.named_eras()
    if named:
        return [ERAS[e] for e in ERAS if e in named]
    return list(ERAS.values()) if default_all else []
