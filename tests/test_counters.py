"""Unit tests of the counter functions against hand-computed values.

Formulas: thread.md section 3 (53f9263baba6 for page_mapcount/total_mapcount,
6d0a07edd17c for page_trans_huge_mapcount)."""

import numpy as np
import pytest

from thpviz.eras import ERAS
from thpviz.eras import counters as C
from thpviz.model.memmap import MemMap


def thp(nr=8, pte=None, cmc=0, dm=False, refcount=None, pins=None):
    """A MemMap holding one THP with the given logical counters."""
    mem = MemMap(64)
    h = mem.alloc_compound(nr)
    pte = np.zeros(nr, dtype=np.int64) if pte is None else np.asarray(pte)
    mem.mapcount[h : h + nr] = pte + int(dm)
    mem.cmc[h] = cmc
    mem.double_map[h] = dm
    mem.refcount[h] = refcount if refcount is not None else cmc + int(pte.sum())
    if pins:
        for i, n in pins.items():
            mem.pins[h + i] = n
    return mem, h


def test_pmd_mapped_once():
    mem, h = thp(8, cmc=1)
    assert C.page_mapcount(mem, h + 3) == 1
    assert C.total_mapcount(mem, h + 3) == 1
    assert C.page_trans_huge_mapcount(mem, h + 3) == (1, 1)
    assert C.compound_mapcount(mem, h + 3) == 1
    assert C.mapcount(mem, h + 3) == 0


def test_fully_pte_mapped_in_one_process():
    # total_mapcount counts different subpages' mappers together (M10)
    mem, h = thp(8, pte=[1] * 8)
    assert C.total_mapcount(mem, h) == 8
    assert C.page_trans_huge_mapcount(mem, h + 5) == (1, 8)
    assert C.page_mapcount(mem, h + 5) == 1


def test_worked_check_doublemap():
    # thread.md section 3 item 12 with N = 8: P's PTEs + C's PMD, DoubleMap set
    mem, h = thp(8, pte=[1] * 8, cmc=1, dm=True)
    assert C.mapcount(mem, h + 2) == 2
    assert C.page_mapcount(mem, h + 2) == 2          # 2 + 1 - 1
    assert C.total_mapcount(mem, h + 2) == 8 * 2 + 1 - 8
    assert C.page_trans_huge_mapcount(mem, h + 2) == (2, 9)
    assert C.double_map(mem, h + 2) == 1


def test_max_is_over_all_subpages_not_the_queried_one():
    mem, h = thp(8, pte=[2, 1, 1, 1, 1, 1, 1, 1])
    assert C.page_mapcount(mem, h + 5) == 1
    assert C.page_trans_huge_mapcount(mem, h + 5)[0] == 2
    assert C.total_mapcount(mem, h + 5) == 9


def test_counters_of_order0_page():
    mem = MemMap(16)
    p = int(mem.alloc_small(1)[0])
    mem.mapcount[p] = 2
    assert C.page_mapcount(mem, p) == 2
    assert C.total_mapcount(mem, p) == 2
    assert C.compound_mapcount(mem, p) == 0
    assert C.page_trans_huge_mapcount(mem, p) == (2, 2)


def test_page_count_reads_the_head():
    mem, h = thp(8, cmc=1, refcount=3)
    assert C.page_count(mem, h + 7) == 3


def test_v44_counters():
    """4.4's page_mapcount() reads the page's own _mapcount: the PMD count on
    the head, the GUP pin count on a tail (__page_mapcount is 4.5's)."""
    mem, h = thp(8, cmc=2, refcount=3, pins={5: 1})
    assert C.page_mapcount_v44(mem, h) == 2
    assert C.page_mapcount_v44(mem, h + 5) == 1
    assert C.page_mapcount_v44(mem, h + 6) == 0
    assert C.mapcount_v44(mem, h) == 2
    assert C.mapcount_v44(mem, h + 5) == 1   # tail refcounting: the tail's pin
    assert C.mapcount_v44(mem, h + 6) == 0


@pytest.mark.parametrize(
    "era,present",
    [
        ("4.4", {"page_count", "page_mapcount", "mapcount"}),
        ("4.5", {"total_mapcount", "compound_mapcount", "double_map"}),
        ("kirill-k1", {"total_mapcount"}),
        ("andrea-v1", {"page_trans_huge_mapcount"}),
        ("4.6", {"page_trans_huge_mapcount"}),
    ],
)
def test_counters_exist_only_where_the_kernel_had_them(era, present):
    e = ERAS[era]
    assert present <= e.counters
    assert "pincount" not in e.counters and "anon_exclusive" not in e.counters
    if era in ("4.4", "4.5", "kirill-k1"):
        assert "page_trans_huge_mapcount" not in e.counters
    if era == "4.4":
        assert not {"total_mapcount", "compound_mapcount", "double_map"} & e.counters
