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
violations under the era (for ``pin-lost``: a lost *pin*, unless
``count_refs``; see :func:`search`); ``differ`` -- a trace on which two eras take
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
    #: naive search with ``distinct=True``: distinct states among its nodes
    distinct_states: int | None = None

    @property
    def reached_bound(self) -> bool:
        return self.complete_depth >= self.depth


class _Node:
    """A state in the frontier: its worlds (dropped once expanded), and the
    statement that led to it from its parent."""

    __slots__ = ("worlds", "parent", "text")

    def __init__(self, worlds, parent, text):
        self.worlds, self.parent, self.text = worlds, parent, text

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
    """Decisions as runs: ``P write A[0:4] cow-small, P write A[4] reuse``."""
    if not ds:
        return "no fault"
    runs: list[list] = []  # [proc, access, lo, hi, decision]
    for proc, access, addr, dec in ds:
        last = runs[-1] if runs else None
        if last is not None and last[0] == proc and last[1] == access and last[4] == dec and last[3] == addr:
            last[3] = addr + 1
        else:
            runs.append([proc, access, addr, addr + 1, dec])
    out = []
    for proc, access, lo, hi, dec in runs:
        mm = world.mms.get(proc)
        where = mm.describe(lo, hi) if mm is not None else f"{lo}:{hi}"
        out.append(f"{proc} {access} {where} {dec}")
    return ", ".join(out)


def _lost_kind(world, detail: str) -> str:
    """The kind (``pin`` or ``ref``) of the reference a pin-lost detail is
    about; the invariant names it first (``NAME: device holds ...``)."""
    pin = world.pins.get(detail.split(":", 1)[0])
    return pin.kind if pin is not None else "pin"


class _Timeout(Exception):
    pass


class _Run:
    """What both searches share: trying one statement on a node's worlds and
    checking the goals on the steps it took."""

    def __init__(self, eras, alphabet, depth, goals, differ, time_limit, stop_when_found, clone,
                 count_refs=False):
        self.eras = list(eras)
        self.era_ids = tuple(e.id for e in self.eras)
        self.differ = differ
        goals = ("differ",) if differ else tuple(goals or ())
        self.res = SearchResult(self.era_ids, alphabet, depth, goals)
        self.pending = set(goals)
        self.stop = stop_when_found
        self.clone = clone
        self.count_refs = count_refs
        self.t0 = time.perf_counter()
        self.deadline = None if time_limit is None else self.t0 + time_limit

    def roots(self):
        from ..model.world import World

        return [World(e, self.res.alphabet.thp) for e in self.eras]

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.perf_counter() > self.deadline

    def all_found(self) -> bool:
        return not self.pending and self.stop

    def step(self, worlds, trace, st, states: int):
        """Run ``st`` on copies of ``worlds``; record the goals it reaches.
        Returns the new worlds, or None when the branch ends here (refused,
        an engine defect, or, for ``differ``, the eras already differ)."""
        res = self.res
        res.transitions += 1
        children, steps = [], []
        try:
            for w, era in zip(worlds, self.eras):
                w2, step = execute(self.clone(w), era, st)
                children.append(w2)
                steps.append(step)
        except ThpvizDefect as e:
            if len(res.defects) < 20:
                res.defects.append((trace() + [st.text], str(e)))
            return None
        if self.differ:
            diff = difference(self.era_ids, steps, children)
            if diff is not None and "differ" in self.pending:
                res.findings["differ"] = Finding("differ", self.era_ids, trace() + [st.text], diff, states)
                self.pending.discard("differ")
            return None if steps[0].error or diff is not None else children
        step = steps[0]
        if step.error:
            return None
        for v in step.violations:
            if v in self.pending:
                details = step.violations[v]
                if v == "pin-lost" and not self.count_refs:
                    details = [d for d in details if _lost_kind(children[0], d) == "pin"]
                    if not details:
                        continue
                detail = "; ".join(details)
                res.findings[v] = Finding(v, self.era_ids, trace() + [st.text], detail, states)
                self.pending.discard(v)
        return children

    def done(self, states: int) -> SearchResult:
        self.res.states = states
        self.res.seconds = time.perf_counter() - self.t0
        return self.res


def search(eras, alphabet: Alphabet, depth: int, goals=None, differ: bool = False,
           time_limit: float | None = None, progress=None, stop_when_found: bool = True,
           naive: bool = False, count_refs: bool = False) -> SearchResult:
    """Breadth-first search up to ``depth`` statements.

    ``eras``: Era objects (one for ``find``, two or more for ``differ``).
    ``goals``: violation names to find (``find``).  ``progress``: a callable
    ``progress(depth, done, total, result)`` called now and then.
    ``stop_when_found``: stop once every goal has a trace.

    ``count_refs``: for the ``pin-lost`` goal, also count a lost FOLL_GET
    reference (``vmsplice``).  By default only pins (``pin`` statements)
    count: a pipe's reference never promised to follow the page -- the
    invariant reports it, but it is the CVE-2020-29374 class's mechanism, not
    vfio's guarantee -- and the shortest such loss, a reference to the huge
    zero page, is the same three statements in every era.

    ``naive``: the reference search of the benchmark and the tests
    (:func:`naive_search`)."""
    if naive:
        return naive_search(eras, alphabet, depth, goals, differ, time_limit, stop_when_found,
                            count_refs=count_refs)
    run = _Run(eras, alphabet, depth, goals, differ, time_limit, stop_when_found, lambda w: w.clone(),
               count_refs)
    res = run.res
    root = _Node(run.roots(), None, None)
    visited = {fingerprint(root.worlds)}
    frontier = [root]
    res.per_depth.append(1)
    for d in range(1, depth + 1):
        nxt: list[_Node] = []
        total = len(frontier)
        for i, node in enumerate(frontier):
            if progress is not None and (i & 15) == 0:
                res.states, res.seconds = len(visited), time.perf_counter() - run.t0
                progress(d, i, total, res)
            if run.out_of_time():
                res.timed_out = True
                return run.done(len(visited))
            for st in alphabet.statements(node.worlds[0]):
                children = run.step(node.worlds, node.trace, st, len(visited))
                if run.all_found():
                    res.complete_depth = d - 1
                    return run.done(len(visited))
                if children is None:
                    continue
                fp = fingerprint(children)
                if fp in visited:
                    continue
                visited.add(fp)
                nxt.append(_Node(children, node, st.text))
            node.worlds = None  # expanded: only its trace is needed now
        frontier = nxt
        res.complete_depth = d
        res.per_depth.append(len(nxt))
        if progress is not None:
            res.states, res.seconds = len(visited), time.perf_counter() - run.t0
            progress(d, total, total, res)
        if not frontier:
            res.complete_depth = depth
            break
    return run.done(len(visited))


def naive_search(eras, alphabet: Alphabet, depth: int, goals=None, differ: bool = False,
                 time_limit: float | None = None, stop_when_found: bool = True,
                 distinct: bool = False, count_refs: bool = False) -> SearchResult:
    """The reference search: iterative deepening, a ``copy.deepcopy`` of the
    worlds for every statement tried, and no fingerprints (every node of the
    tree is visited, again on every deeper pass; ``states`` counts nodes).
    It finds the same shortest traces as :func:`search`, slowly, in memory
    proportional to the depth.

    ``distinct`` (for the benchmark): also count the distinct states among
    the nodes, fingerprinting each one *off the clock* -- the time it takes
    is left out of ``seconds`` and of the time limit."""
    import copy

    run = _Run(eras, alphabet, depth, goals, differ, time_limit, stop_when_found, copy.deepcopy, count_refs)
    res = run.res
    nodes = [1]
    seen: set = set()
    off = [0.0]

    def dfs(worlds, trace: list[str], limit: int) -> None:
        for st in alphabet.statements(worlds[0]):
            if run.deadline is not None and time.perf_counter() - off[0] > run.deadline:
                raise _Timeout
            children = run.step(worlds, lambda: list(trace), st, nodes[0])
            if run.all_found():
                raise _Timeout
            if children is None:
                continue
            nodes[0] += 1
            if distinct:
                t = time.perf_counter()
                seen.add(fingerprint(children))
                off[0] += time.perf_counter() - t
            if len(trace) + 1 < limit:
                dfs(children, trace + [st.text], limit)

    root = run.roots()
    try:
        for limit in range(1, depth + 1):
            dfs(root, [], limit)
            res.complete_depth = limit
    except _Timeout:
        res.timed_out = not run.all_found()
    run.done(nodes[0])
    res.seconds -= off[0]
    if distinct:
        res.distinct_states = len(seen)
    return res
