"""Breadth-first search over statement sequences from an empty world.

The search appends one statement of the :class:`~thpviz.explore.alphabet.Alphabet`
at a time and runs it with the engine's own step function
(:func:`thpviz.scenario.runner.execute`: the world's ``clone``, the era's
rules, the vectorised invariant checks), so a trace behaves in the search
exactly as it does in ``thpviz run``.  Breadth-first, so the first trace that
reaches a goal is a shortest one (in statements, within the alphabet).

Pruning, all of it exact:

* a statement the parser would reject (no such process, region or pin; a
  name already used) is never generated; nor one the modelled kernel refuses
  outright (a range no VMA covers, a write to a read-only VMA);
* a statement the engine refuses (``OpError``) is dropped: the world stays as
  it was;
* a state whose canonical fingerprint (:mod:`thpviz.explore.canon`) was seen
  before, at the same or a smaller depth, is not expanded again; that covers
  statements that change nothing (the fingerprint of the parent), and the
  same state reached in another order or under other names.

Goals are checked on every step *before* the fingerprint test, so a
violation raised by a step that leaves the state unchanged (a ``leak`` event)
is still found.

Goals: ``find`` -- a trace on which a step reports one of the wanted
violations under the era; ``differ`` -- a trace on which two eras take
different fault decisions, report different violations, or one refuses a
statement the other runs, at some step (the worlds of both eras advance
together, fingerprinted jointly).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..model.events import DECISIONS, ThpvizDefect
from ..scenario.runner import execute
from .alphabet import Alphabet
from .canon import fingerprint


@dataclass
class Finding:
    """A shortest trace for one goal."""

    goal: str  # a violation name, or "differ"
    eras: tuple[str, ...]
    trace: list[str]
    detail: str
    #: distinct states visited when it was found
    states: int

    @property
    def length(self) -> int:
        return len(self.trace)


@dataclass
class SearchResult:
    eras: tuple[str, ...]
    alphabet: Alphabet
    depth: int  # the bound asked for
    goals: tuple[str, ...]
    findings: dict[str, Finding] = field(default_factory=dict)
    #: every depth up to this one was explored completely
    complete_depth: int = 0
    states: int = 0  # distinct states visited (fingerprints)
    transitions: int = 0  # statements executed
    seconds: float = 0.0
    timed_out: bool = False
    #: (trace, message) of internal inconsistencies of the engine met on the way
    defects: list = field(default_factory=list)
    #: distinct states per depth
    per_depth: list = field(default_factory=list)

    @property
    def reached_bound(self) -> bool:
        return self.complete_depth >= self.depth

    def missing(self) -> list[str]:
        return [g for g in self.goals if g not in self.findings]


class _Node:
    __slots__ = ("worlds", "parent", "text", "depth")

    def __init__(self, worlds, parent, text, depth):
        self.worlds, self.parent, self.text, self.depth = worlds, parent, text, depth

    def trace(self) -> list[str]:
        out = []
        n = self
        while n is not None and n.text is not None:
            out.append(n.text)
            n = n.parent
        return out[::-1]


def step_decisions(step) -> tuple:
    """The fault decisions of one step: (process, access, address, decision)
    per fault, in address order."""
    out = []
    for fb in step.faults:
        for a, d in zip(fb.addrs.tolist(), fb.decisions.tolist()):
            out.append((fb.proc, fb.access, a, DECISIONS[d]))
    return tuple(sorted(out, key=lambda t: (t[2], t[0], t[1])))


def difference(era_ids, steps, worlds) -> str | None:
    """How the steps of one statement under several eras differ, or None."""
    errs = [s.error for s in steps]
    if any(errs) and not all(errs):
        return "; ".join(f"{e}: {'refused: ' + s.error if s.error else 'runs'}" for e, s in zip(era_ids, steps))
    if all(errs):
        return None
    vs = [frozenset(s.violations) for s in steps]
    ds = [step_decisions(s) for s in steps]
    parts = []
    if len(set(ds)) > 1:
        parts.append("decisions: " + "; ".join(
            f"{e}: {_decisions_text(d, w)}" for e, d, w in zip(era_ids, ds, worlds)))
    if len(set(vs)) > 1:
        parts.append("violations: " + "; ".join(f"{e}: {' '.join(sorted(v)) or 'clean'}" for e, v in zip(era_ids, vs)))
    return " / ".join(parts) or None


def _decisions_text(ds, world) -> str:
    if not ds:
        return "no fault"
    out = []
    for proc, access, addr, dec in ds:
        mm = world.mms.get(proc)
        where = mm.describe(addr, addr + 1) if mm is not None else str(addr)
        item = f"{proc} {access} {where} {dec}"
        if not out or out[-1][0] != item:
            out.append([item, 1])
        else:
            out[-1][1] += 1
    return ", ".join(i if n == 1 else f"{i} x{n}" for i, n in out)


def search(eras, alphabet: Alphabet, depth: int, goals=None, differ: bool = False,
           time_limit: float | None = None, progress=None, stop_when_found: bool = True,
           naive: bool = False) -> SearchResult:
    """Breadth-first search up to ``depth`` statements.

    ``eras``: Era objects (one for ``find``, two or more for ``differ``).
    ``goals``: violation names to find (``find``).  ``progress``: a callable
    ``progress(depth, done, total, result)`` called now and then.
    ``stop_when_found``: stop once every goal has a trace.

    ``naive``: the reference search of the benchmark and the tests -- a
    ``copy.deepcopy`` of the worlds for every statement tried and no state
    fingerprints at all (every node of the tree is visited; ``states`` then
    counts nodes)."""
    from ..model.world import World

    if naive:
        import copy

        clone = copy.deepcopy
    else:
        def clone(w):
            return w.clone()

    eras = list(eras)
    era_ids = tuple(e.id for e in eras)
    goals = ("differ",) if differ else tuple(goals or ())
    res = SearchResult(era_ids, alphabet, depth, goals)
    t0 = time.perf_counter()
    root = _Node([World(e, alphabet.thp) for e in eras], None, None, 0)
    visited = set() if naive else {fingerprint(root.worlds)}
    nodes = 1
    frontier = [root]
    res.per_depth.append(1)
    deadline = None if time_limit is None else t0 + time_limit
    pending = set(goals)

    def count() -> int:
        return nodes if naive else len(visited)

    def done() -> SearchResult:
        res.states = count()
        res.seconds = time.perf_counter() - t0
        return res

    for d in range(1, depth + 1):
        nxt: list[_Node] = []
        total = len(frontier)
        for i, node in enumerate(frontier):
            if progress is not None and (i & 15) == 0:
                res.states, res.seconds = count(), time.perf_counter() - t0
                progress(d, i, total, res)
            if deadline is not None and time.perf_counter() > deadline:
                res.timed_out = True
                return done()
            for st in alphabet.statements(node.worlds[0]):
                res.transitions += 1
                children, steps = [], []
                try:
                    for w, era in zip(node.worlds, eras):
                        w2, step = execute(clone(w), era, st)
                        children.append(w2)
                        steps.append(step)
                except ThpvizDefect as e:
                    if len(res.defects) < 20:
                        res.defects.append((node.trace() + [st.text], str(e)))
                    continue
                if differ:
                    diff = difference(era_ids, steps, children)
                    if diff is not None and "differ" in pending:
                        res.findings["differ"] = Finding("differ", era_ids, node.trace() + [st.text], diff,
                                                         count())
                        pending.discard("differ")
                    if steps[0].error or diff is not None:
                        continue
                else:
                    step = steps[0]
                    if step.error:
                        continue
                    for v in step.violations:
                        if v in pending:
                            detail = "; ".join(step.violations[v])
                            res.findings[v] = Finding(v, era_ids, node.trace() + [st.text], detail, count())
                            pending.discard(v)
                if not pending and stop_when_found:
                    res.complete_depth = d - 1
                    return done()
                if not naive:
                    fp = fingerprint(children)
                    if fp in visited:
                        continue
                    visited.add(fp)
                nodes += 1
                nxt.append(_Node(children, node, st.text, d))
            node.worlds = None  # expanded: only its trace is needed now
        frontier = nxt
        res.complete_depth = d
        res.per_depth.append(len(nxt))
        if progress is not None:
            res.states, res.seconds = count(), time.perf_counter() - t0
            progress(d, total, total, res)
        if not frontier:
            res.complete_depth = depth
            break
    return done()
