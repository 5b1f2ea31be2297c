"""The explorer rediscovers the thread, and its state abstraction is exact.

Traces are checked by running them again with the runner (``thpviz check``
on the written file, per-step decisions recomputed here), never by comparing
with results copied from the explorer.  Long searches carry the ``slow``
marker (deselect with ``-m "not slow"``).
"""

from __future__ import annotations

import json
import random
import re
import shlex
from pathlib import Path

import pytest

from thpviz.cli import main
from thpviz.eras import ERAS
from thpviz.explore.alphabet import CHILD_NAMES, Alphabet
from thpviz.explore.canon import canonical, fingerprint
from thpviz.explore.cli_explore import DEFAULT_DEPTH
from thpviz.explore.practice import puzzle
from thpviz.explore.search import difference, search, step_decisions
from thpviz.model.world import World
from thpviz.scenario import parse_file, parse_text, run
from thpviz.scenario.parser import Statement
from thpviz.scenario.runner import execute

#: Kirill's counterexample has 7 statements: mmap, write, split, fork,
#: munmap one half in each process, write
#: (https://lore.kernel.org/all/20160502104119.GA23305@node.shutemov.name/)
KIRILL_LENGTH = 7
EXPLORED = Path(__file__).resolve().parents[1] / "data" / "scenarios" / "explored"
EXPLORED_FILES = sorted(EXPLORED.glob("*.thp"))
MODERN_NO_LOSS = ("5.19", "6.15")
UP_TO_58 = ("4.4", "4.5", "kirill-k1", "andrea-v1", "4.6", "5.8")
FROM_59 = ("5.9", "5.18", "5.19", "6.1", "6.12", "6.15")
FORK_OPS = ("mmap", "write", "fork", "exit", "pin", "unpin")


def explore(tmp_path, *args) -> tuple[int, str]:
    out = tmp_path / "trace.thp"
    code = main(["explore", "-q", *args, "-o", str(out)])
    return code, out


def statements(path) -> list[str]:
    return [st.text for st in parse_file(str(path)).statements]


def verdict(scn, era) -> tuple[str, set]:
    r = run(scn, ERAS[era])
    return r.last_write, r.violations


def need(*eras):
    missing = [e for e in eras if e not in ERAS]
    if missing:
        pytest.skip(f"era(s) {', '.join(missing)} not implemented yet (thpviz.eras.PLANNED)")


# ------------------------------------------------------------ the thread
def test_kirill_counterexample_rediscovered(tmp_path, capsys):
    code, path = explore(tmp_path, "--era", "andrea-v1", "--find", "rmap-broken")
    assert code == 0
    trace = statements(path)
    assert len(trace) <= KIRILL_LENGTH
    # the layout needs two processes sharing one THP
    assert any(" fork " in s for s in trace)
    capsys.readouterr()
    assert main(["check", str(path)]) == 0
    assert re.search(rf"^{len(ERAS)} passed, 0 failed", capsys.readouterr().out, re.M)
    scn = parse_file(str(path))
    dec, viol = verdict(scn, "andrea-v1")
    assert "rmap-broken" in viol
    # the merged fix does not break the rmap on the same trace
    assert "rmap-broken" not in verdict(scn, "4.6")[1]
    text = path.read_text()
    assert re.search(r"^source: .*found by the thpviz explorer: thpviz explore --era andrea-v1 --find rmap-broken",
                     text, re.M)
    for e in ERAS:
        assert re.search(rf"^expect {re.escape(e)}: ", text, re.M), e


def test_false_cow_of_a_pinned_thp_in_45(tmp_path):
    """No fork in the alphabet: the only way to lose the pin is the false
    COW, and only 4.5 takes it."""
    ops = "mmap,write,pin,mprotect"
    code, path = explore(tmp_path, "--era", "4.5", "--find", "pin-lost", "--ops", ops)
    assert code == 0
    scn = parse_file(str(path))
    dec, viol = verdict(scn, "4.5")
    assert (dec, viol) == ("cow-huge", {"pin-lost"})
    for e in ("kirill-k1", "andrea-v1", "4.6"):
        assert verdict(scn, e) == ("reuse", set()), e
    r = search([ERAS["4.6"]], Alphabet(ops=tuple(ops.split(","))), len(scn.statements), goals=["pin-lost"])
    assert r.reached_bound and not r.findings


def test_vmsplice_leak_in_the_mapcount_eras():
    a = Alphabet(ops=("mmap", "write", "fork", "vmsplice", "munmap", "exit"))
    for e in ("4.4", "kirill-k1", "andrea-v1", "4.6"):
        r = search([ERAS[e]], a, DEFAULT_DEPTH, goals=["leak"])
        f = r.findings["leak"]
        scn = parse_text("thp: 8\n" + "\n".join(f.trace))
        assert "leak" in verdict(scn, e)[1]
        assert any("vmsplice" in s for s in f.trace) and any(" fork " in s for s in f.trace)
    # 4.5's page_count test copies a referenced THP instead
    r = search([ERAS["4.5"]], a, DEFAULT_DEPTH, goals=["leak"])
    assert r.reached_bound and not r.findings


@pytest.mark.parametrize("pair", [("kirill-k1", "4.6"), ("4.5", "4.6"), ("4.5", "kirill-k1")])
def test_differ_finds_the_first_difference(tmp_path, pair):
    code, path = explore(tmp_path, "--differ", *pair)
    assert code == 0 and path.exists()
    scn = parse_file(str(path))
    worlds = [World(ERAS[e], scn.thp) for e in pair]
    for k, st in enumerate(scn.statements):
        steps = []
        for i, e in enumerate(pair):
            worlds[i], s = execute(worlds[i], ERAS[e], st)
            steps.append(s)
        diff = difference(pair, steps, worlds)
        if k < len(scn.statements) - 1:
            assert diff is None, f"they already differ at {st.text}"
        else:
            assert diff is not None
    assert main(["check", str(path)]) == 0


def test_prove_reports_states_and_bound(capsys):
    code = main(["explore", "-q", "--era", "4.6", "--find", "rmap-broken", "--prove", "--depth", "4"])
    out = capsys.readouterr().out
    assert code == 0
    m = re.search(r"proved: 4\.6: no trace of at most 4 statements shows rmap-broken \((\d+) states visited", out)
    assert m and int(m.group(1)) > 10


def test_prove_fails_when_a_trace_exists(capsys):
    code = main(["explore", "-q", "--era", "andrea-v1", "--find", "bug", "--prove"])
    assert code == 1
    assert "NOT PROVED: andrea-v1: bug" in capsys.readouterr().out


@pytest.mark.slow
def test_prove_46_rmap_at_the_default_bound(capsys):
    code = main(["explore", "--era", "4.6", "--find", "rmap-broken", "--prove"])
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(rf"proved: 4\.6: no trace of at most {DEFAULT_DEPTH} statements shows rmap-broken "
                     r"\(\d+ states visited", out)


# ------------------------------------------------------- later eras
@pytest.mark.slow
@pytest.mark.parametrize("era", UP_TO_58)
def test_fork_with_pin_loses_the_pin_up_to_58(era):
    need(era)
    f = search([ERAS[era]], Alphabet(ops=FORK_OPS), DEFAULT_DEPTH, goals=["pin-lost"]).findings["pin-lost"]
    assert any(" fork " in s for s in f.trace) and any(" pin " in s for s in f.trace)
    scn = parse_text("thp: 8\n" + "\n".join(f.trace))
    assert "pin-lost" in verdict(scn, era)[1]


@pytest.mark.slow
@pytest.mark.parametrize("era", FROM_59)
def test_fork_keeps_the_pin_from_59(era):
    """5.9 copies a maybe-pinned page for the child at fork."""
    need(era)
    r = search([ERAS[era]], Alphabet(ops=FORK_OPS), DEFAULT_DEPTH, goals=["pin-lost"])
    assert r.reached_bound and not r.findings, r.findings


@pytest.mark.slow
@pytest.mark.parametrize("era", MODERN_NO_LOSS)
def test_no_pin_lost_and_no_leak_in_modern_eras(era):
    need(era)
    r = search([ERAS[era]], Alphabet(), DEFAULT_DEPTH, goals=["pin-lost", "leak"])
    assert r.reached_bound, "the search did not reach its bound"
    assert not r.findings, {g: f.trace for g, f in r.findings.items()}


def test_read_only_pin_of_the_zero_page_until_62():
    """5.19 unshares a read-only pin of an anonymous page but not of the
    shared zero page (fixed in 6.2, 84209e87c696): the explorer finds that
    loss in 5.19 and none in 6.15."""
    need("5.19", "6.15")
    a = Alphabet(ops=("mmap", "read", "write", "pin-ro", "unpin"))
    f = search([ERAS["5.19"]], a, 4, goals=["pin-lost"]).findings["pin-lost"]
    assert any(" ro as " in s for s in f.trace) and "zero_page" in f.detail
    r = search([ERAS["6.15"]], a, 4, goals=["pin-lost"])
    assert r.reached_bound and not r.findings


def test_lost_references_count_only_when_asked():
    """A vmsplice reference to the huge zero page is lost in every era (a
    FOLL_GET reference never promised to follow the page): pin-lost counts
    it only with count_refs."""
    a = Alphabet(ops=("mmap", "write", "vmsplice"))
    for e in ("4.4", "4.6"):
        assert not search([ERAS[e]], a, 3, goals=["pin-lost"]).findings
        f = search([ERAS[e]], a, 3, goals=["pin-lost"], count_refs=True).findings["pin-lost"]
        assert any("vmsplice" in s for s in f.trace) and "zero_page" in f.detail


# ----------------------------------------------------- the abstraction
def _random_trace(era, alphabet, rng, n):
    w = World(era, alphabet.thp)
    out = []
    for _ in range(n):
        sts = alphabet.statements(w)
        if not sts:
            break
        st = rng.choice(sts)
        w2, step = execute(w.clone(), era, st)
        if step.error:
            continue
        w = w2
        out.append(st)
    return w, out


def _fresh(prefix_or_names, used):
    if isinstance(prefix_or_names, tuple):
        return next(n for n in prefix_or_names if n not in used)
    i = 1
    while f"{prefix_or_names}{i}" in used:
        i += 1
    return f"{prefix_or_names}{i}"


def _translate(st, mapping: dict, y) -> Statement:
    """``st`` (valid in one state) for the state ``y`` its names map to;
    a fresh child or pin name gets a name fresh in ``y``."""
    args = dict(st.args)
    if st.op == "fork":
        args["child"] = mapping[st.args["child"]] = _fresh(CHILD_NAMES, y.mms)
    elif st.op in ("pin", "vmsplice"):
        args["name"] = mapping[st.args["name"]] = _fresh(st.args["name"][0], y.pins)
    elif "pin" in args:
        args["pin"] = mapping[args["pin"]]
    proc = mapping.get(st.proc, st.proc)
    return Statement(0, 1, f"{proc}: {st.op} (renamed)", proc, st.op, args)


@pytest.mark.parametrize("era", ["4.5", "andrea-v1", "4.6"])
def test_equal_fingerprints_behave_alike(era):
    """States with one fingerprint, reached by different traces, take the
    same decisions and raise the same violations on the same (renamed)
    continuations."""
    rng = random.Random(11)
    e = ERAS[era]
    a = Alphabet(ops=("mmap", "read", "write", "fork", "exit", "munmap", "mprotect", "split_pmd", "pin",
                      "vmsplice", "unpin", "dma_write"))
    seen: dict = {}
    pairs = 0
    for _ in range(600):
        w, tr = _random_trace(e, a, rng, rng.randint(2, 7))
        enc, procs, pins = canonical(w)
        texts = [s.text for s in tr]
        if enc not in seen:
            seen[enc] = (w, texts, procs, pins)
            continue
        w0, tr0, procs0, pins0 = seen[enc]
        if tr0 == texts:
            continue
        pairs += 1
        for _ in range(3):
            # a random continuation from the first state, renamed for the second
            x, y = w0.clone(), w.clone()
            mapping = dict(zip(procs0 + pins0, procs + pins))
            for _ in range(4):
                sts = a.statements(x)
                if not sts:
                    break
                st = rng.choice(sts)
                st2 = _translate(st, mapping, y)
                x, sx = execute(x, e, st)
                y, sy = execute(y, e, st2)
                where = (tr0, texts, st.text)
                assert bool(sx.error) == bool(sy.error), where
                assert set(sx.violations) == set(sy.violations), where
                assert sorted((mapping.get(p, p), acc, ad, d) for p, acc, ad, d in step_decisions(sx)) == \
                    sorted(step_decisions(sy)), where
                assert fingerprint(x) == fingerprint(y), where
    assert pairs >= 20, "too few merged states to test"


def test_renamed_processes_share_a_fingerprint():
    def world(text):
        scn = parse_text("thp: 8\n" + text)
        w = World(ERAS["4.6"], 8)
        for st in scn.statements:
            w, _ = execute(w, ERAS["4.6"], st)
        return w

    base = "P: mmap A\nP: write A\nP: fork C\nP: fork D\n"
    # the two children are alike: whichever exits, the rest is the same
    assert fingerprint(world(base + "C: exit")) == fingerprint(world(base + "D: exit"))
    # a pin on another subpage is another state
    assert fingerprint(world("P: mmap A\nP: pin A[0:4] rw as d1")) != \
        fingerprint(world("P: mmap A\nP: pin A[4:8] rw as d1"))
    # written twice or once: the contents differ, the state does not
    assert fingerprint(world("P: mmap A\nP: write A\nP: write A")) == fingerprint(world("P: mmap A\nP: write A"))
    # a parent and its child are told apart (the child's VMA has two anon_vmas)
    assert fingerprint(world(base + "C: exit\nP: exit")) != fingerprint(world("P: mmap A\nP: write A"))


@pytest.mark.parametrize("era,goal", [("4.5", "pin-lost"), ("andrea-v1", "bug"), ("4.4", "pin-lost"),
                                      pytest.param("4.6", "leak", marks=pytest.mark.slow)])
def test_same_shortest_length_as_the_naive_search(era, goal):
    """Canonical fingerprints never hide a shorter trace: the naive search
    (deep copies, every node of the tree) finds traces of the same length."""
    a = Alphabet(thp=4, ops=("mmap", "write", "fork", "exit", "pin", "split_pmd", "mprotect", "vmsplice"))
    fast = search([ERAS[era]], a, 5, goals=[goal])
    slow = search([ERAS[era]], a, 5, goals=[goal], naive=True)
    assert (goal in fast.findings) == (goal in slow.findings)
    if goal in fast.findings:
        assert fast.findings[goal].length == slow.findings[goal].length
    assert fast.states < slow.states


# --------------------------------------------------------------- CLI
def test_json_and_table(capsys):
    assert main(["explore", "--era", "4.5", "--era", "4.6", "--find", "pin-lost", "--depth", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["eras"] for r in data["results"]] == [["4.5"], ["4.6"]]
    assert all(r["states"] > 0 and r["complete_depth"] <= 3 for r in data["results"])
    assert main(["explore", "--era", "4.5", "--find", "pin-lost", "--depth", "3"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^era\s+pin-lost\s+states\s+depth", out, re.M)
    assert "\r" not in out  # no progress bar when stdout is not a terminal


@pytest.mark.parametrize("args,msg", [
    (["--era", "9.9"], "unknown era"),
    (["--find", "pin-lots"], "unknown violation"),
    (["--ops", "write,jump"], "unknown operation"),
    (["--cuts", "x"], "--cuts takes integers"),
    (["--cuts", "9"], "cut points must lie in 0..7"),
    (["--differ", "4.5", "4.6", "--find", "leak"], "do not go together"),
])
def test_bad_arguments(capsys, args, msg):
    assert main(["explore", *args]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_several_traces_get_one_file_each(tmp_path, capsys):
    out = tmp_path / "x.thp"
    assert main(["explore", "-q", "--era", "andrea-v1", "--find", "bug,leak", "--depth", "5", "-o", str(out)]) == 0
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["x-andrea-v1-bug.thp", "x-andrea-v1-leak.thp"]
    capsys.readouterr()
    assert main(["check", str(tmp_path)]) == 0


# ------------------------------------------------ data/scenarios/explored
@pytest.mark.slow
@pytest.mark.parametrize("path", EXPLORED_FILES, ids=lambda p: p.name)
def test_explored_file_is_what_its_command_finds(tmp_path, path):
    scn = parse_file(str(path))
    stored = [s.text for s in scn.statements]
    cmd = scn.source.split(": ", 1)[1] if scn.source.startswith("found by") else scn.source
    args = shlex.split(cmd)
    assert args[0] == "thpviz"
    if args[1] == "explore":
        out = tmp_path / "x.thp"
        assert main([*args[1:], "-q", "-o", str(out)]) == 0
        assert statements(out) == stored
    else:
        assert args[1] == "practice"
        seed, n = int(args[args.index("-s") + 1]), int(args[args.index("-n") + 1])
        eras = [args[i + 1] for i, a in enumerate(args) if a == "--era"]
        assert puzzle(seed, n, eras).statements == stored


def test_table_traces_show_what_the_table_says():
    data = json.loads((EXPLORED / "table.json").read_text())
    assert {tuple(r["eras"]) for r in data["results"]} == {(e,) for e in ERAS}, "table.json is out of date"
    for r in data["results"]:
        era = r["eras"][0]
        for goal, f in r["findings"].items():
            scn = parse_text("thp: 8\n" + "\n".join(f["trace"]))
            assert goal in verdict(scn, era)[1], (era, goal)
            assert len(f["trace"]) == f["length"] <= r["depth"]


@pytest.mark.slow
def test_table_row_of_46_is_current():
    data = json.loads((EXPLORED / "table.json").read_text())
    row = next(r for r in data["results"] if r["eras"] == ["4.6"])
    r = search([ERAS["4.6"]], Alphabet(), row["depth"], goals=row["goals"])
    assert {g: f.length for g, f in r.findings.items()} == {g: f["length"] for g, f in row["findings"].items()}
    assert r.reached_bound == row["reached_bound"]
