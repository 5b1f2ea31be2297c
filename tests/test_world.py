"""Engine behaviours that the litmus files do not state directly."""

import numpy as np
import pytest

from thpviz.eras import ERAS
from thpviz.model.events import OpError
from thpviz.model.world import World
from thpviz.scenario import parse_text, run

HEAD = "title: t\nsource: s\nthp: 8\n"


def final(text, era):
    return run(parse_text(HEAD + text), ERAS[era], keep_snapshots=True)


def test_refused_operation_is_an_error_event_and_changes_nothing():
    r = final("P: mmap A\nP: write A\nP: mprotect A ro\nP: write A[2]\n", "4.6")
    step = r.steps[-1]
    assert step.error and "read-only" in step.error
    assert step.faults == []
    from thpviz.scenario.report import mapping_dicts, page_dicts
    assert page_dicts(r.snapshots[-1]) == page_dicts(r.snapshots[-2])
    assert mapping_dicts(r.snapshots[-1]) == mapping_dicts(r.snapshots[-2])


def test_split_huge_pmd_doublemap_counters():
    r = final("P: mmap A\nP: write A\nP: fork C\nP: split_pmd A\n", "4.5")
    mem = r.world.mem
    h = 0
    for p in mem.page_starts():
        if mem.kind[p] == 0:
            h = int(p)
    assert bool(mem.double_map[h]) and mem.cmc[h] == 1
    assert (mem.mapcount[h : h + 8] == 2).all()
    assert mem.refcount[h] == 1 + 8


def test_v44_split_is_whole_page_and_keeps_pins_on_their_subpage():
    r = final("P: mmap A\nP: write A\nP: pin A[3] rw as d\nP: fork C\nP: split_pmd A[0:4]\n", "4.4")
    w = r.world
    for name in ("P", "C"):
        mm = w.mms[name]
        entry = next(iter(mm.pt.values()))
        assert hasattr(entry, "pfn")  # both processes now map PTEs
    p3 = int(w.pins["d"].pfns[0])
    assert w.mem.nr[p3] == 1 and w.mem.refcount[p3] == 3  # two PTEs + the pin
    assert w.mem.refcount[p3 + 1] == 2


def test_rmap_walk_misses_the_parents_ptes_after_v1_moves_the_page():
    r = final("P: mmap A\nP: write A\nP: split_pmd A\nP: fork C\nC: munmap A[0:4]\nP: munmap A[4:8]\n"
              "C: write A[6]\n", "andrea-v1")
    w = r.world
    h = int(w.lookup(w.mms["C"], np.array([w.mms["C"].regions["A"][0] + 6]))[0]) - 6
    reached, missed = w.rmap_walk(h)
    assert {m.name for m, *_ in reached} == {"C"}
    assert {m.name for m, *_ in missed} == {"P"}
    assert w.anon_vmas[w.mem.mapping[h]].parent == 0  # C's own anon_vma, child of the root


def test_pin_follows_the_page_on_mremap():
    r = final("P: mmap A\nP: write A\nP: pin A[1] rw as d\nP: mremap A[0:4] B\n", "4.6")
    w = r.world
    pin = w.pins["d"]
    assert int(pin.vas[0]) == w.mms["P"].regions["B"][0] + 1
    assert not r.steps[-1].violations


def test_owner_munmap_excuses_the_pin():
    r = final("P: mmap A\nP: write A\nP: pin A[1] rw as d\nP: munmap A\n", "4.5")
    assert not r.violations
    w = r.world
    assert w.mem.refcount[int(w.pins["d"].pfns[0]) - 1] == 1  # the pin keeps H1


def test_unpin_frees_the_orphaned_thp_after_a_false_cow():
    r = final("P: mmap A\nP: write A\nP: pin A[1] rw as d\nP: fork C\nC: exit\nP: write A[1]\nP: unpin d\n", "4.5")
    pages = {p: r.world.mem.freed[p] for p in r.world.mem.page_starts() if r.world.mem.kind[p] == 0}
    assert sorted(pages.values()) == [False, True]


def test_world_rejects_bad_thp_size():
    with pytest.raises(ValueError):
        World(ERAS["4.6"], 12)


def test_write_to_unmapped_address_raises_operror():
    w = World(ERAS["4.6"], 8)
    w.mmap("P", "A", 1)
    start, _ = w.mms["P"].regions["A"]
    with pytest.raises(OpError):
        w.access("P", start + 8, start + 9, True)


@pytest.mark.parametrize("era, refs, copies", [
    ("5.18", 1022, 1), ("5.18", 1023, 2),     # copy_present_page checks before fork's get_page
    ("6.12", 1021, 1), ("6.12", 1022, 2),     # 5.19+: get_page first, then page_try_dup_anon_rmap
])
def test_fork_sees_enough_references_on_an_order0_page_as_a_pin(era, refs, copies):
    """page_maybe_dma_pinned() on an order-0 page is refcount >= 1024: plain
    vmsplice references reach it too once the mm has pinned something
    (has_pinned); from 5.19 fork holds its own reference at the check.  The
    one copy in every case is the really pinned page A[1]."""
    text = "P: mmap A nohuge\nP: write A[0:2]\nP: pin A[1] rw as d\n"
    text += "".join(f"P: vmsplice A[0] as s{i}\n" for i in range(refs)) + "P: fork C\n"
    r = final(text, era)
    copied = [e.data["pages"] for e in r.steps[-1].events if e.kind == "fork-copy"]
    assert copied == [copies]
