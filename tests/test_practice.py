"""``thpviz practice``: seeded, reproducible, meaningful puzzles; answers on
demand, checked against fresh runs of the puzzle's scenario."""

from __future__ import annotations

import re

import pytest

from thpviz.cli import main
from thpviz.eras import ERAS
from thpviz.explore.practice import puzzle
from thpviz.explore.search import step_decisions
from thpviz.scenario import parse_text, run

SEEDS = range(8)


def fresh_runs(p):
    scn = parse_text(p.scenario(), "<puzzle>")
    return scn, {e: run(scn, ERAS[e]) for e in p.eras}


def test_same_seed_same_puzzle(capsys):
    assert main(["practice", "-s", "5"]) == 0
    first = capsys.readouterr().out
    assert main(["practice", "-s", "5"]) == 0
    assert capsys.readouterr().out == first
    assert puzzle(5).statements == puzzle(5).statements
    assert len({tuple(puzzle(s).statements) for s in SEEDS}) >= len(SEEDS) - 1


@pytest.mark.parametrize("seed", SEEDS)
def test_puzzles_are_meaningful(seed):
    p = puzzle(seed)
    assert len(p.statements) == 6 and p.statements[-1].split(": ", 1)[1].startswith("write")
    _, runs = fresh_runs(p)
    writes = [tuple(tuple(d for d in step_decisions(r.steps[i]) if d[1] == "write") for r in runs.values())
              for i in range(len(p.statements))]
    disagree = any(len(set(w)) > 1 for w in writes)
    violations = {frozenset(r.violations) for r in runs.values()}
    assert disagree or len(violations) > 1
    # the steps marked "?" are exactly those with a write fault in some era
    assert p.asked == [i for i, w in enumerate(writes) if any(w)]


def test_single_era_puzzle():
    p = puzzle(3, n=5, eras=["4.5"])
    _, runs = fresh_runs(p)
    r = runs["4.5"]
    decided = any(d[3] in ("reuse", "cow-small", "cow-huge") for s in r.steps for d in step_decisions(s))
    assert r.violations or decided


def test_hidden_then_revealed(capsys):
    assert main(["practice", "-s", "2", "-n", "7"]) == 0
    hidden = capsys.readouterr().out
    assert "? write fault decision" in hidden
    assert not re.search(r"reuse|cow-|expect ", hidden.split("# Eras")[0])
    assert main(["practice", "-s", "2", "-n", "7", "-c"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(hidden)
    p = puzzle(2, 7)
    _, runs = fresh_runs(p)
    for e, r in runs.items():
        v = " ".join([r.last_write, *(sorted(r.violations) or ["clean"])])
        assert f"expect {e}: {v}" in shown
    # per step: the era's first fault line of every step marked "?"
    for i in p.asked:
        assert f"{i + 1}. {p.statements[i]}" in shown


def test_scenario_with_answers_passes_check(tmp_path, capsys):
    f = tmp_path / "p.thp"
    f.write_text(puzzle(4).scenario(expect=True))
    assert main(["check", str(f)]) == 0
    assert f"{len(ERAS)} passed, 0 failed" in capsys.readouterr().out


@pytest.mark.parametrize("args,msg", [(["-n", "2"], "at least 3 statements"), (["--era", "7.7"], "unknown era")])
def test_bad_input(capsys, args, msg):
    assert main(["practice", *args]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_widget_new_and_reveal():
    pytest.importorskip("ipywidgets")
    from thpviz.widgets.practice import Practice

    w = Practice(seed=1)
    assert "practice puzzle 1" in w.question.value and w.answer.value == ""
    w.reveal()
    for e in ERAS:
        assert f">{e}<" in w.answer.value
    assert "verdict" in w.answer.value
    w.new()
    assert w.seed.value == 2 and "practice puzzle 2" in w.question.value and w.answer.value == ""


def test_book_puzzle_file_is_puzzle_2():
    """book/practice.md explains puzzle 2 and claims verdicts for the stored
    data/scenarios/explored/practice-2.thp: they must be the same puzzle."""
    from pathlib import Path

    from thpviz.scenario import parse_file

    path = Path(__file__).resolve().parents[1] / "data" / "scenarios" / "explored" / "practice-2.thp"
    stored = [s.text for s in parse_file(str(path)).statements]
    assert puzzle(2, eras=["4.4", "4.5", "kirill-k1", "andrea-v1", "4.6"]).statements == stored
