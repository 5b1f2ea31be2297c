"""The checker is itself checked.

Every consistency rule of :mod:`thpviz.invariants` is shown to be load-bearing:
a valid world is corrupted in one place, the full check raises with that
rule's message, and the check *without* that rule lets the corruption pass --
so deleting any one rule makes its test here fail.  Then positive and negative
cases for each violation a scenario can expect.
"""

import numpy as np
import pytest

from thpviz import invariants as I
from thpviz.eras import ERAS
from thpviz.model.events import ThpvizDefect
from thpviz.scenario import parse_text, run

HEAD = "title: t\nsource: s\nthp: 8\n"


def world_after(text, era="4.6"):
    return run(parse_text(HEAD + text), ERAS[era]).world


def thp_head(w, proc="P", region="A", i=0):
    start, _ = w.region_range(proc, region)
    pfn = int(w.lookup(w.mms[proc], np.array([start + i]))[0])
    assert pfn >= 0
    return int(w.mem.head[pfn]), pfn


# Each case: (rule, era, scenario, corruption, message fragment)
def _refcount(w):
    h, _ = thp_head(w)
    w.mem.refcount[h] += 1


def _tail_ref(w):
    h, _ = thp_head(w)
    w.mem.refcount[h + 3] = 1


def _mapcount(w):
    _, p = thp_head(w, i=5)
    w.mem.mapcount[p] += 1


def _compound(w):
    h, _ = thp_head(w)
    w.mem.cmc[h] += 1


def _double_map_unmapped(w):
    # a THP no PMD maps (PTE-mapped in P only), flagged PageDoubleMap
    h, _ = thp_head(w)
    w.mem.double_map[h] = True
    w.mem.mapcount[h : h + 8] += 1  # with its bias, so only the PMD rule can object


def _double_map_new_era(w):
    # 6.2 removed PageDoubleMap: set on a PMD-mapped THP (with its bias)
    h, _ = thp_head(w, proc="C")
    w.mem.double_map[h] = True
    w.mem.mapcount[h : h + 8] += 1


def _freed_mapped(w):
    h, _ = thp_head(w)
    w.mem.freed[h : h + 8] = True


def _pin_bookkeeping(w):
    _, p = thp_head(w, i=2)
    w.mem.pins[p] += 1  # the refcount rule counts the pins held, so only this rule sees it


def _ref_bookkeeping(w):
    _, p = thp_head(w, i=2)
    w.mem.refs[p] += 1


def _index(w):
    h, _ = thp_head(w)
    w.mem.index[h] += 1


def _exclusive_shared(w):
    h, _ = thp_head(w)
    w.mem.anon_exclusive[h] = True  # but the child maps it too


def _exclusive_old_era(w):
    h, _ = thp_head(w)
    w.mem.anon_exclusive[h] = True


def _slot_count(w):
    h, _ = thp_head(w)
    w.mem.slot_count[h] += 5


def _shared_bit_cleared(w):
    h, _ = thp_head(w)
    w.mem.maybe_shared[h] = False


def _has_pinned(w):
    w.mms["P"].has_pinned = False


PMD = "P: mmap A\nP: write A\n"
PTE = PMD + "P: split_pmd A\n"
CASES = [
    ("rule_refcount", "4.6", PMD, _refcount, "page_count of"),
    ("rule_refcount", "4.6", PMD, _tail_ref, "a tail page holds references"),
    ("rule_mapcount", "4.6", PTE, _mapcount, "_mapcount of"),
    ("rule_compound_mapcount", "4.6", PMD, _compound, "compound_mapcount disagrees"),
    ("rule_double_map", "4.6", PTE, _double_map_unmapped, "PageDoubleMap set on a page no PMD maps"),
    ("rule_double_map", "6.12", PMD + "P: fork C\nP: exit\n", _double_map_new_era,
     "PageDoubleMap set in era 6.12"),
    ("rule_freed", "4.6", PMD, _freed_mapped, "freed flag disagrees"),
    ("rule_pin_bookkeeping", "4.6", PMD + "P: pin A[2] rw as d\n", _pin_bookkeeping, "pin bookkeeping"),
    ("rule_pin_bookkeeping", "4.6", PMD + "P: vmsplice A[2] as s\n", _ref_bookkeeping, "reference bookkeeping"),
    ("rule_index", "4.6", PMD, _index, "page index disagrees"),
    ("rule_anon_exclusive", "5.19", PMD + "P: fork C\n", _exclusive_shared, "marked exclusive"),
    ("rule_anon_exclusive", "4.6", PMD, _exclusive_old_era, "PageAnonExclusive set in era 4.6"),
    ("rule_mm_slots", "6.15", PTE + "P: fork C\n", _slot_count, "owner slot of"),
    ("rule_mm_slots", "6.15", PTE + "P: fork C\n", _shared_bit_cleared, "not marked maybe shared"),
    ("rule_has_pinned", "5.19", PMD + "P: pin A[1] rw as d\n", _has_pinned, "has_pinned is clear"),
]


def test_every_rule_has_a_case():
    assert {c[0] for c in CASES} == {r.__name__ for r in I.CONSISTENCY_RULES}


@pytest.mark.parametrize("rule,era,text,corrupt,message", CASES,
                         ids=[f"{c[0]}-{c[3].__name__}" for c in CASES])
def test_corruption_is_caught_by_its_rule_alone(rule, era, text, corrupt, message):
    w = world_after(text, era)
    I.check_counters(w)  # valid before
    corrupt(w)
    with pytest.raises(ThpvizDefect, match=message):
        I.check_counters(w)
    # the same corruption passes when exactly this rule is deleted
    others = tuple(r for r in I.CONSISTENCY_RULES if r.__name__ != rule)
    I.check_counters(w, rules=others)


# ------------------------------------------------------------- violations
def violations(text, era):
    return run(parse_text(HEAD + text), ERAS[era]).violations


@pytest.mark.parametrize("text,era,want", [
    # pin-lost
    (PMD + "P: pin A[3] rw as d\nP: fork C\nC: exit\nP: write A[3]\n", "4.5", {"pin-lost"}),
    (PMD + "P: pin A[3] rw as d\nP: fork C\nC: exit\nP: write A[3]\n", "4.6", set()),
    (PMD + "P: pin A[3] rw as d\nP: munmap A\nP: mmap B\nP: write B\n", "4.5", set()),  # owner unmapped it
    (PMD + "P: pin A[3] rw as d\nP: mremap A B\nP: write B[3]\n", "4.5", set()),        # the pin follows
    (PMD + "P: pin A[3] rw as d\nP: dontneed A\nP: write A\n", "4.6", set()),           # owner discarded it
    # rmap-broken
    (PTE + "P: fork C\nC: munmap A[0:4]\nP: munmap A[4:8]\nC: write A[6]\n", "andrea-v1", {"bug", "rmap-broken"}),
    (PTE + "P: fork C\nC: munmap A[0:4]\nP: munmap A[4:8]\nC: write A[6]\n", "4.6", set()),
    (PTE + "P: fork C\nC: munmap A[0:4]\nP: munmap A[4:8]\nP: write A[0]\n", "andrea-v1", set()),
    # leak
    (PMD + "P: fork C\nC: vmsplice A[0] as s\nC: munmap A\nP: write A[0]\n", "4.6", {"leak"}),
    (PMD + "P: fork C\nC: vmsplice A[0] as s\nC: munmap A\nP: write A[0]\n", "5.18", set()),
    (PMD + "P: vmsplice A[0] as s\nP: write A[0]\n", "4.6", set()),                     # its own reference
    # stray-write
    (PMD + "P: pin A[3] rw as d\nP: fork C\ndma_write d\n", "4.6", {"stray-write"}),
    (PMD + "P: pin A[3] rw as d\nP: fork C\ndma_write d\n", "5.9", set()),
    (PMD + "P: pin A[3] rw as d\ndma_write d\n", "4.6", set()),                          # only P maps it
    (PMD + "P: fork C\nP: write A\n", "6.15", set()),                                    # COW keeps CPU writes apart
])
def test_violation_cases(text, era, want):
    assert violations(text, era) == want


def test_rmap_walk_judges_each_address_by_its_own_vma():
    """A run of PTEs that crosses a VMA boundary: the part in a VMA the
    page's anon_vma is not linked to is unreachable, even though the run
    starts in a linked VMA -- so split_huge_page must refuse (BUG under
    DEBUG_VM) instead of splitting."""
    w = world_after(PTE, "4.6")
    mm = w.mms["P"]
    start, _ = w.region_range("P", "A")
    w._split_vma_at(mm, start + 4)
    stranger = w._new_anon_vma(None)
    upper = mm.find_vma(start + 4)
    upper.anon_vma, upper.avcs = stranger.id, (stranger.id,)
    h, _ = thp_head(w)
    reached, missed = w.rmap_walk(h)
    assert [(lo - start, hi - start) for _, lo, hi, _ in reached] == [(0, 4)]
    assert [(lo - start, hi - start) for _, lo, hi, _ in missed] == [(4, 8)]
    assert I.rmap_broken(w)
    w.log.events.clear()
    assert w.split_huge_page(h) is False
    assert [e.kind for e in w.log.events] == ["bug", "ebusy"]
    assert w.mem.nr[h] == 8  # still one THP
