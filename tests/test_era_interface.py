"""The era interface carries later kernels without changes to the core.

``Sketch`` below is NOT a model of any kernel: it only switches on the hooks
that the 5.8/5.9 eras will need (PMD fallback to a PTE fault, copying
maybe-pinned pages for the child at fork, splitting a pinned PMD at fork) and
checks that the world executes them consistently.  Real eras must be written
from their commits (see thpviz/eras/base.py)."""

import numpy as np

from thpviz.eras.base import PmdDecision
from thpviz.eras.v4_6 import Era46
from thpviz.scenario import parse_text, run


class Sketch(Era46):
    id = "sketch"

    def do_huge_pmd_wp_page(self, mem, h):
        d = super().do_huge_pmd_wp_page(mem, h)
        return PmdDecision(reuse=d.reuse, fallback=not d.reuse, cost=d.cost)

    def _pinned(self, mem, pfns):
        pinned_heads = np.unique(mem.head[np.nonzero(mem.pins[: mem.size])[0]])
        return np.isin(mem.head[pfns], pinned_heads)

    def copy_huge_pmd(self, mem, h):
        return "split" if self._pinned(mem, np.array([h]))[0] else "share"

    def copy_pte_range(self, mem, pfns):
        return self._pinned(mem, pfns)


HEAD = "title: t\nsource: s\nthp: 8\n"


def test_pmd_fallback_copies_one_base_page():
    r = run(parse_text(HEAD + "P: mmap A\nP: write A\nP: fork C\nP: write A[3]\n"), Sketch())
    assert r.last_write == "cow-small"
    w = r.world
    entry = next(iter(w.mms["P"].pt.values()))
    assert hasattr(entry, "pfn")  # the parent's PMD was split
    assert int(entry.pfn[3]) != int(entry.pfn[2]) + 1  # subpage 3 is a new page
    assert not r.violations


def test_fork_copies_a_pinned_thp_for_the_child():
    r = run(parse_text(HEAD + "P: mmap A\nP: write A\nP: pin A[5] rw as d\nP: fork C\n"
                       "P: write A[5]\ndma_read d\n"), Sketch())
    assert not r.violations  # the parent kept its writable, pinned page
    w = r.world
    p_pf = w.lookup(w.mms["P"], np.arange(*w.mms["P"].regions["A"]))
    c_pf = w.lookup(w.mms["C"], np.arange(*w.mms["C"].regions["A"]))
    assert not np.intersect1d(p_pf, c_pf).size  # no page shared
    assert (w.mem.nr[c_pf] == 1).all()  # the child got order-0 copies
    assert r.steps[-1].events[0].data["differ"] == 0
