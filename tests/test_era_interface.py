"""The era interface: a policy object decides, the world carries it out.

``Sketch`` below is NOT a model of any kernel: it switches on hooks in
combinations no real era has (a PMD fallback with 4.6's PTE rules, fork
copying every page of a pinned THP without has_pinned) and checks that the
world executes them consistently -- the counters stay consistent and the
decisions land where the hooks said."""

import numpy as np

from thpviz.eras.base import PmdDecision
from thpviz.eras.v4_6 import Era46
from thpviz.scenario import parse_text, run


class Sketch(Era46):
    id = "sketch"
    foll_pin = True

    def do_huge_pmd_wp_page(self, world, mm, h, unshare=False):
        d = super().do_huge_pmd_wp_page(world, mm, h, unshare)
        return PmdDecision(reuse=d.reuse, fallback=not d.reuse, cost=d.cost)

    def _pinned(self, world, pfns):
        mem = world.mem
        pinned_heads = np.unique(mem.head[np.nonzero(mem.pins[: mem.size])[0]])
        return np.isin(mem.head[pfns], pinned_heads)

    def copy_huge_pmd(self, world, mm, h):
        return "split" if self._pinned(world, np.array([h]))[0] else "share"

    def copy_pte_range(self, world, mm, pfns):
        return self._pinned(world, pfns)


HEAD = "title: t\nsource: s\nthp: 8\n"


def test_pmd_fallback_copies_one_base_page():
    r = run(parse_text(HEAD + "P: mmap A\nP: write A\nP: fork C\nP: write A[3]\n"), Sketch())
    assert r.last_write == "cow-small"
    w = r.world
    start, end = w.region_range("P", "A")
    assert end - start == 8
    entry = w.mms["P"].pt[start // w.nr]
    assert hasattr(entry, "pfn")  # the parent's PMD was split
    assert int(entry.pfn[3]) != int(entry.pfn[2]) + 1  # subpage 3 is a new page
    assert not r.violations


def test_fork_copies_a_pinned_thp_for_the_child():
    r = run(parse_text(HEAD + "P: mmap A\nP: write A\nP: pin A[5] rw as d\nP: fork C\n"
                       "P: write A[5]\ndma_read d\n"), Sketch())
    assert not r.violations  # the parent kept its writable, pinned page
    w = r.world
    p_pf = w.lookup(w.mms["P"], np.arange(*w.region_range("P", "A")))
    c_pf = w.lookup(w.mms["C"], np.arange(*w.region_range("C", "A")))
    assert len(p_pf) == len(c_pf) == 8 and (p_pf >= 0).all() and (c_pf >= 0).all()
    assert not np.intersect1d(p_pf, c_pf).size  # no page shared
    assert (w.mem.nr[c_pf] == 1).all()  # the child got order-0 copies
    assert r.steps[-1].events[0].data["differ"] == 0
    assert any(e.kind == "fork-copy" and e.data["pages"] == 8 for e in r.steps[3].events)
