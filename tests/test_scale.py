"""The engine's scaling machinery: the undo journal, the scoped invariant
check, copy-on-write clones and the snapshot recorder.

Timings are in ``benchmarks/bench_engine.py``; these tests check behaviour.
"""

import numpy as np
import pytest
from conftest import SCENARIOS
from test_properties import full_state

from thpviz import invariants as I
from thpviz.eras import ERAS
from thpviz.model.events import OpError, ThpvizDefect
from thpviz.model.snapshots import Recorder, Snapshots
from thpviz.model.world import World
from thpviz.scenario import parse_file, parse_text, run
from thpviz.scenario.runner import eras_for, execute

HEAD = "title: t\nsource: s\nthp: 8\n"
PMD = "P: mmap A\nP: write A\n"
PTE = PMD + "P: split_pmd A\n"


def world_after(text, era="4.6"):
    return run(parse_text(HEAD + text), ERAS[era]).world


def head_of(w, proc="P", region="A", i=0):
    start, _ = w.region_range(proc, region)
    pfn = int(w.lookup(w.mms[proc], np.array([start + i]))[0])
    return int(w.mem.head[pfn]), pfn


# ---------------------------------------------------------------- rollback
def test_refused_statement_half_done_is_rolled_back(monkeypatch):
    """An operation that the modelled kernel refuses only after it began
    changing things (here: an era rule that raises after the fault path
    already split the PMD and allocated) leaves the world as it was."""
    era = ERAS["5.8"]
    scn = parse_text(HEAD + PMD + "P: fork C\nC: write A[3]\nP: write A[5]\n")
    w = World(era, 8)
    for st in scn.statements[:-1]:
        w, _ = execute(w, era, st)
    before = full_state(w)

    real = type(era).do_wp_page_thp

    def refuse_late(self, world, mm, h, subs, unshare=False):
        real(self, world, mm, h, subs, unshare)
        world.mem.w.refcount[h] += 7          # a change ...
        world.mem.alloc_compound(8)           # ... an allocation that grows the memmap ...
        raise OpError("refused after the fact")  # ... and then the refusal

    monkeypatch.setattr(type(era), "do_wp_page_thp", refuse_late)
    w, step = execute(w, era, scn.statements[-1])
    assert step.error == "refused after the fact"
    assert full_state(w) == before
    # and the world goes on consistently
    monkeypatch.setattr(type(era), "do_wp_page_thp", real)
    w, step = execute(w, era, scn.statements[-1], check="both")
    assert step.error is None and step.faults


def test_rollback_forgets_new_processes_pins_and_anon_vmas():
    w = world_after(PMD)
    w.commit()
    before = full_state(w)
    w.fork("P", "C")
    w.gup("C", *w.region_range("C", "A"), True, "pin", "d")
    w.mmap("Q", "B", 2)
    assert "C" in w.mms and "Q" in w.mms and "d" in w.pins
    w.rollback()
    assert full_state(w) == before
    assert "C" not in w.mms and "d" not in w.pins and w.alive_mms() == [w.mms["P"]]


# ------------------------------------------------------------ scoped check
def _tracked(field, at, delta=None, value=None):
    def corrupt(w):
        h, p = head_of(w, i=at if at is not None else 0)
        where = h if at is None else p
        if value is not None:
            getattr(w.mem.w, field)[where] = value
        else:
            getattr(w.mem.w, field)[where] += delta
    return corrupt


# Each case: (era, scenario, corruption through the tracked writers, message)
CORRUPTIONS = [
    ("4.6", PMD, _tracked("refcount", None, 1), "page_count of"),
    ("4.6", PMD, _tracked("refcount", 3, value=1), "a tail page holds references"),
    ("4.6", PTE, _tracked("mapcount", 5, 1), "_mapcount of"),
    ("4.6", PMD, _tracked("cmc", None, 1), "compound_mapcount disagrees"),
    ("4.6", PMD, _tracked("freed", None, value=True), "freed flag disagrees"),
    ("4.6", PMD + "P: pin A[2] rw as d\n", _tracked("pins", 2, 1), "pin bookkeeping"),
    ("4.6", PMD, _tracked("index", None, 1), "page index disagrees"),
    ("5.19", PMD + "P: fork C\n", _tracked("anon_exclusive", None, value=True), "marked exclusive"),
    ("6.15", PTE + "P: fork C\n", _tracked("slot_count", None, 5), "owner slot of"),
    ("6.15", PTE + "P: fork C\n", _tracked("maybe_shared", None, value=False), "not marked maybe shared"),
]


@pytest.mark.parametrize("era,text,corrupt,message", CORRUPTIONS,
                         ids=[f"{c[0]}-{c[3]}" for c in CORRUPTIONS])
def test_scoped_check_catches_what_a_statement_corrupts(era, text, corrupt, message):
    """A corruption made through the engine's writers is in the scope of the
    next check, and the scoped check raises the full check's defect."""
    w = world_after(text, era)
    checker = I.scoped_checker(w)
    assert checker.check(w) == I.check(w)
    corrupt(w)
    w.commit()
    with pytest.raises(ThpvizDefect, match=message) as full:
        I.check(w)
    with pytest.raises(ThpvizDefect, match=message) as scoped:
        checker.check(w)
    assert str(scoped.value) == str(full.value)


def test_scoped_check_looks_only_at_touched_pages():
    """A write to one subpage of a 512-subpage THP in a world with many
    other pages checks that THP (and the new page), not the others."""
    text = "thp: 512\n" + "".join(f"P: mmap R{i}\nP: write R{i}\n" for i in range(8)) + "P: fork C\n"
    era = ERAS["4.6"]
    scn = parse_text(text + "C: write R3[7]\n")
    w = World(era, 512)
    for st in scn.statements[:-1]:
        w, _ = execute(w, era, st)
    w, step = execute(w, era, scn.statements[-1])
    assert step.faults
    checker_census = []
    orig = I._Census.of_frames

    def spy(*a, **k):
        c = orig(*a, **k)
        checker_census.append(c)
        return c

    I._Census.of_frames = spy
    try:
        w, _ = execute(w, era, parse_text(text + "C: write R4[9]\n").statements[-1])
    finally:
        I._Census.of_frames = orig
    (c,) = checker_census
    names = {w.mem.name(int(h)) for h in c.starts}
    assert "H5" in names and "H1" not in names and len(c.pf) <= 2 * 512 + 1


def test_checker_attached_to_a_world_midway_agrees_with_the_full_check():
    """A clone has no checker; the first statement run on it builds one from
    the world as it is (every page in scope once)."""
    scn = parse_text(HEAD + PTE + "P: pin A[2] rw as d\nP: fork C\nC: write A[1]\nC: munmap A[4:8]\n"
                     "P: exit\nC: write A[0:4]\nC: exit\n")
    for era in ERAS.values():
        w = World(era, 8)
        for st in scn.statements[:4]:
            w, _ = execute(w, era, st, check="full")
        # no checker yet: the clone builds one
        c, step = execute(w.clone(), era, scn.statements[4], check="both")
        assert step.error is None
        # a checker: every clone starts from (a copy-on-write share of) it,
        # and the original and its clones go their own ways
        for st in scn.statements[4:]:
            c1, _ = execute(c.clone(), era, st, check="both")
            c2, _ = execute(c.clone(), era, st, check="both")
            assert full_state(c1) == full_state(c2)
            c, _ = execute(c, era, st, check="both")
            assert full_state(c) == full_state(c1)


# -------------------------------------------------------------- clones
def test_clone_and_original_do_not_see_each_others_writes():
    w = world_after(PTE + "P: fork C\n", "6.15")
    c = w.clone()
    a, b = full_state(w), full_state(c)
    assert a == b
    c.access("C", *c.region_range("C", "A"), True)
    c.commit()
    assert full_state(w) == a
    w.munmap("P", *w.region_range("P", "A"))
    w.commit()
    assert full_state(c) != a and full_state(w) != a
    I.check(w)
    I.check(c)


def test_deepcopy_is_independent_and_starts_fresh_bookkeeping():
    import copy

    w = world_after(PTE + "P: fork C\n", "6.15")
    d = copy.deepcopy(w)
    assert full_state(d) == full_state(w)
    assert d._t.listeners == [] and w._t.listeners
    before = full_state(w)
    d.access("C", *d.region_range("C", "A"), True)
    d.commit()
    assert full_state(w) == before and full_state(d) != before
    I.check(d)


# ------------------------------------------------------------ snapshots
def test_snapshots_are_a_sequence_of_independent_worlds():
    r = run(parse_text(HEAD + PTE + "P: fork C\nC: write A[2]\nC: munmap A[4:8]\n"), ERAS["4.5"],
            keep_snapshots=True)
    s = r.snapshots
    assert len(s) == len(r.steps) + 1
    assert list(s) != [] and len(s[1:3]) == 2 and s[-1].mem.size == r.world.mem.size
    assert s[0].mms == {} and s[len(s) - 1].mms["C"].alive
    with pytest.raises(IndexError):
        s[len(s)]
    # a snapshot is a world of its own: running on (a clone of) it leaves
    # the other snapshots and the run's world alone
    last = full_state(s[-1])
    w = s[2].clone()
    w.access("P", *w.region_range("P", "A"), True)
    w.commit()
    assert full_state(s[-1]) == last
    assert full_state(r.world) == last
    # the snapshot arrays are shared read-only: a stray direct write fails
    with pytest.raises(ValueError):
        s[3].mem.refcount[0] = 5


def test_snapshots_from_two_threads():
    import threading

    r = run(parse_text(HEAD + PTE + "P: fork C\nC: write A[2]\nC: munmap A[4:8]\nP: write A\n"), ERAS["6.15"],
            keep_snapshots=True)
    want = [full_state(w) for w in r.snapshots]
    got = {}

    def walk(tag, order):
        got[tag] = [(k, full_state(r.snapshots[k])) for k in order]

    n = len(r.snapshots)
    ts = [threading.Thread(target=walk, args=(t, list(range(n))[::d])) for t, d in (("a", 1), ("b", -1))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for pairs in got.values():
        for k, state in pairs:
            assert state == want[k]


def test_snapshots_share_unchanged_chunks():
    """Steps that touch one small page copy a chunk or two, not the world."""
    text = "thp: 512\nP: mmap A 4\nP: write A\nP: fork C\n" + "".join(
        f"C: write A[{i * 3}]\n" for i in range(40))
    r = run(parse_text(text), ERAS["4.6"], keep_snapshots=True)
    rec = r.snapshots._rec
    per_step = [sum(len(d) for d in st.delta.values()) for st in rec.steps if st.delta is not None]
    fields = len(rec.fields)
    assert per_step and max(per_step[3:]) <= 2 * fields
    assert full_state(r.snapshots[-1]) == full_state(r.world)


def test_recorder_detaches_cells_before_the_world_writes():
    w = World(ERAS["4.6"], 8)
    rec = Recorder(w)
    w.mmap("P", "A", 1)
    w.access("P", *w.region_range("P", "A"), True)
    rec.snap(w)
    s1 = full_state(w)
    w.access("P", *w.region_range("P", "A"), True)  # new data stamps in place
    w.munmap("P", *w.region_range("P", "A"))
    rec.snap(w)
    snaps = Snapshots(rec)
    assert full_state(snaps[1]) == s1
    assert full_state(snaps[2]) == full_state(w)


# ------------------------------------------------------------ litmus sweep
LITMUS = sorted(SCENARIOS.rglob("*.thp"))


@pytest.mark.parametrize("path", LITMUS, ids=[str(p.relative_to(SCENARIOS)) for p in LITMUS])
def test_litmus_file_scoped_check_and_snapshots(path):
    """Every litmus file under every era it names, with the struct page
    arrays read-only outside tracked writes (so an era rule or engine path
    that writes a counter without ``mem.w`` fails here, where it writes): the
    scoped check agrees with the full one at every step (``check="both"``
    raises otherwise), and every snapshot rebuilds the world of its step
    exactly."""
    scn = parse_file(str(path))
    for era in eras_for(scn):
        w = World(era, scn.thp)
        w.mem.set_strict(True)
        rec = Recorder(w)
        states = [full_state(w)]
        for st in scn.statements:
            w, _ = execute(w, era, st, check="both")
            rec.snap(w)
            states.append(full_state(w))
        snaps = Snapshots(rec)
        for k, want in enumerate(states):
            assert full_state(snaps[k]) == want, f"{era.id}: snapshot {k}"
