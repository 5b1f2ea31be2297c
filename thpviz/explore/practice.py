"""Practice puzzles, as the OSTEP homework simulators make them: a random but
meaningful scenario from a seed, its decisions hidden; the answers on demand.

>>> from thpviz.explore.practice import puzzle
>>> p = puzzle(7)
>>> print(p.question())          # the scenario, write faults marked "?"
>>> print(p.answers())           # per step and era: decisions, violations

*Meaningful* means that the eras asked about disagree -- on the decision of
at least one write fault, or on the violations -- so the puzzle asks what
tells them apart.  (With a single era: it reports a violation or reuses or
copies a page on a write fault.)  A puzzle whose answer is "every era does
the same thing" is skipped.  The scenario
is a random walk over the explorer's alphabet (:mod:`thpviz.explore.alphabet`)
that ends with a write; the same seed, length and eras give the same puzzle
everywhere.  Every answer is computed by running the scenario with the
runner, as ``thpviz run`` would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .alphabet import Alphabet
from .search import step_decisions
from .walk import random_walk

#: how often each operation is drawn (others: 1); writes, forks and pins make
#: the interesting puzzles
WEIGHTS = {"write": 5, "fork": 3, "pin": 3, "mprotect": 2, "vmsplice": 1, "exit": 2, "unpin": 1,
           "munmap": 2, "split_pmd": 2, "read": 1}
PRACTICE_OPS = ("mmap", "read", "write", "fork", "exit", "munmap", "mprotect", "split_pmd", "pin", "vmsplice",
                "unpin")
MAX_TRIES = 2000


@dataclass
class Puzzle:
    seed: int
    n: int
    eras: tuple[str, ...]
    thp: int
    statements: list[str]
    #: era -> Run
    runs: dict
    #: 0-based indexes of the steps that take a write fault in some era
    asked: list[int]

    @property
    def title(self) -> str:
        return f"practice puzzle {self.seed} ({self.n} statements)"

    def scenario(self, expect: bool = False) -> str:
        """The puzzle as a ``.thp`` file (with ``expect`` lines: the answer)."""
        lines = [f"title: {self.title}", f"source: thpviz practice -s {self.seed} -n {self.n}", f"thp: {self.thp}", ""]
        lines += self.statements
        if expect:
            lines.append("")
            lines += [f"expect {e}: {verdict(self.runs[e])}" for e in self.eras]
        return "\n".join(lines) + "\n"

    def question(self) -> str:
        """The scenario with every step that takes a write fault marked, and
        what to predict."""
        w = max(len(s) for s in self.statements)
        out = [f"title: {self.title}", f"source: thpviz practice -s {self.seed} -n {self.n}", f"thp: {self.thp}", ""]
        for i, s in enumerate(self.statements):
            out.append(f"{s:<{w}}   # ? write fault decision" if i in self.asked else s)
        out += [
            "",
            f"# Eras: {', '.join(self.eras)}.",
            "# For each era, predict the decision of each write fault marked ? (reuse, cow-small,",
            "# cow-huge, new) and the violations the run reports (pin-lost, rmap-broken, leak,",
            "# stray-write, bug, or clean).  The answers: the same command with -c.",
        ]
        return "\n".join(out)

    def step_answers(self) -> list[dict]:
        """Per step: the statement, and for each era its fault lines and the
        violations first reported at that step."""
        from ..scenario.report import fault_runs

        out = []
        for i, s in enumerate(self.statements):
            per = {}
            for e in self.eras:
                r = self.runs[e]
                st = r.steps[i]
                before = set(r.steps[i - 1].violations) if i else set()
                per[e] = {
                    "faults": [fr.line() for fr in fault_runs(r.world, st) if fr.access == "write"],
                    "violations": sorted(set(st.violations) - before),
                    "error": st.error,
                }
            out.append({"statement": s, "asked": i in self.asked, "eras": per})
        return out

    def answers(self) -> str:
        """The answers as text: each step with a write fault or a new
        violation, per era; then each era's verdict (an ``expect`` line)."""
        w = max(len(e) for e in self.eras)
        out = ["Answers, per step and era (write faults; ! a violation first reported there):"]
        for i, a in enumerate(self.step_answers()):
            if not a["asked"] and not any(v["violations"] for v in a["eras"].values()):
                continue
            out.append(f"  {i + 1}. {a['statement']}")
            for e, v in a["eras"].items():
                bits = list(v["faults"]) or ["no write fault"]
                bits += [f"! {x}" for x in v["violations"]]
                out.append(f"     {e:<{w}}  " + "; ".join(bits))
        out.append("Verdicts (the decision of the last write fault, then the violations):")
        out += [f"  expect {e}: {verdict(self.runs[e])}" for e in self.eras]
        return "\n".join(out)


def verdict(run) -> str:
    return " ".join([run.last_write, *(sorted(run.violations) or ["clean"])])


def meaningful(runs: dict) -> tuple[bool, list[int]]:
    """(whether the puzzle is worth asking, the steps that take a write
    fault in some era).  Several eras: they disagree on a write fault's
    decision or on the violations.  One era: it reports a violation, or a
    write fault reuses or copies a page."""
    eras = list(runs)
    n = len(runs[eras[0]].steps)
    asked, disagree, decided = [], False, False
    for i in range(n):
        decs = [tuple(d for d in step_decisions(runs[e].steps[i]) if d[1] == "write") for e in eras]
        if any(decs):
            asked.append(i)
            disagree |= len(set(decs)) > 1
            decided |= any(d[3] in ("reuse", "cow-small", "cow-huge") for ds in decs for d in ds)
    if len(eras) == 1:
        return bool(runs[eras[0]].violations) or decided, asked
    return disagree or len({frozenset(r.violations) for r in runs.values()}) > 1, asked


def puzzle(seed: int, n: int = 6, eras=None, thp: int = 8) -> Puzzle:
    """The puzzle for ``seed``: ``n`` statements (at least 3), run under
    ``eras`` (default: every implemented era)."""
    from ..eras import ERAS, get
    from ..scenario import parse_text, run

    if n < 3:
        raise ValueError("a puzzle needs at least 3 statements")
    era_objs = [get(e) for e in eras] if eras else list(ERAS.values())
    era_ids = tuple(e.id for e in era_objs)
    alphabet = Alphabet(thp=thp, ops=PRACTICE_OPS)
    for attempt in range(MAX_TRIES):
        rng = random.Random(f"thpviz-practice/{seed}/{n}/{attempt}")
        trace = random_walk(alphabet, era_objs[0], rng, n, WEIGHTS, last_required=True)
        if len(trace) < n:
            continue
        scn = parse_text(f"thp: {thp}\n" + "\n".join(trace), "<puzzle>")
        runs = {e.id: run(scn, e) for e in era_objs}
        if any(s.error for r in runs.values() for s in r.steps):
            continue  # refused in some era: not a fair question
        ok, asked = meaningful(runs)
        if ok:
            return Puzzle(seed, n, era_ids, thp, trace, runs, asked)
    raise ValueError(f"no meaningful puzzle of {n} statements for seed {seed} under {', '.join(era_ids)}")
