"""The cost model: exact per-fault counts, statement costs, the cost plots and
the CostExplorer widget (its test is in test_widgets.py).

Expected numbers are worked out by hand from the counting rules in
docs/cost-model.md (for a THP of ``N`` subpages), never copied from a run.
"""

import json
import subprocess
import sys

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from conftest import ROOT, SCENARIOS  # noqa: E402

from thpviz.cost import COST_FIELDS, fault_costs, fault_total, last_write_fault, step_costs  # noqa: E402
from thpviz.cost import experiments as X  # noqa: E402
from thpviz.cost import plots  # noqa: E402
from thpviz.cost.reported import reported_timings  # noqa: E402
from thpviz.eras import ERAS, THREAD_ERAS  # noqa: E402
from thpviz.invariants import pin_lost  # noqa: E402
from thpviz.model.events import DECISIONS  # noqa: E402
from thpviz.scenario import parse_file, parse_text, run  # noqa: E402

PAGE = 4096
N = 16


def vfio(era, level="pmd", nr=N):
    return run(parse_text(X.vfio_text(nr, level), f"<vfio-{level}>"), ERAS[era])


def last_cost(r):
    f = last_write_fault(r)
    assert f is not None
    return f


# --------------------------------------------------------------- one fault
def test_46_pmd_fault_on_pinned_thp_reads_every_subpage_counter_once():
    """6d0a07edd17c: page_trans_huge_mapcount() reads all N subpage _mapcounts,
    plus compound_mapcount and PageDoubleMap in page[1]; it reuses the page."""
    f = last_cost(vfio("4.6"))
    assert f.decision == "reuse" and f.level == "pmd"
    c = f.cost
    assert c["counter_reads"] == N + 2
    assert c["decision_lines"] == N
    assert c["struct_page_lines"] == N
    assert c["bytes_copied"] == c["pages_allocated"] == c["atomic_writes"] == c["data_lines"] == 0
    assert c["entries_written"] == 1


def test_45_pmd_fault_on_pinned_thp_copies_the_whole_thp():
    """1f25fe20a76a: page_mapcount(head) == 1 but page_count == 2, so
    do_huge_pmd_wp_page copies N x 4096 bytes into N newly allocated base
    pages (https://lore.kernel.org/all/20160428102051.17d1c728@t450s.home/)."""
    f = last_cost(vfio("4.5"))
    assert f.decision == "cow-huge"
    c = f.cost
    # head _mapcount, page[1] compound_mapcount and PageDoubleMap, and -- as
    # page_mapcount is 1 -- the head's refcount
    assert c["counter_reads"] == 4
    assert c["decision_lines"] == 2
    assert c["bytes_copied"] == N * PAGE
    assert c["pages_allocated"] == N
    assert c["data_lines"] == 2 * N * PAGE // 64
    # old page: get_page, put_page, compound_mapcount--, put_page; new page:
    # refcount and compound_mapcount set
    assert c["atomic_writes"] == 6
    # head and page[1] of the old page, every struct page of the new one
    assert c["struct_page_lines"] == 2 + N
    assert c["entries_written"] == 1


def test_45_pte_fault_on_pinned_tail_copies_one_base_page():
    """4.5's reuse_swap_page refuses a PageTransCompound page before reading a
    counter: 4096 bytes copied, one base page allocated."""
    f = last_cost(vfio("4.5", "pte"))
    assert (f.decision, f.level) == ("cow-small", "pte")
    c = f.cost
    assert c["counter_reads"] == 0
    assert c["decision_lines"] == 1
    assert c["bytes_copied"] == PAGE and c["pages_allocated"] == 1
    assert c["data_lines"] == 2 * PAGE // 64
    # the tail's struct page, the head's (refcount), the new page's
    assert c["struct_page_lines"] == 3
    assert c["atomic_writes"] == 6


def test_kirill_k1_pmd_test_reads_total_mapcount():
    """total_mapcount(): compound_mapcount, N _mapcounts, PageDoubleMap."""
    f = last_cost(vfio("kirill-k1"))
    assert f.decision == "reuse"
    assert f.cost["counter_reads"] == N + 2 and f.cost["decision_lines"] == N


def test_44_pmd_test_reads_one_counter_and_pte_fault_is_order0():
    """4.4: page_mapcount(head) is the head's _mapcount; after the partial
    mprotect the THP was split, so the PTE fault is an order-0 reuse."""
    pmd = last_cost(vfio("4.4"))
    assert pmd.decision == "reuse" and pmd.cost["counter_reads"] == 1 and pmd.cost["decision_lines"] == 1
    pte = last_cost(vfio("4.4", "pte"))
    assert pte.decision == "reuse" and pte.cost["counter_reads"] == 1 and pte.cost["struct_page_lines"] == 1


def test_46_every_pte_fault_rescans_the_whole_thp():
    """Each do_wp_page on a subpage of a PTE-mapped THP calls
    page_trans_huge_mapcount again: k faults read k x (N + 2) counters."""
    k = N // 2
    text = X.vfio_text(N, "pte", final_write=False) + f"P: write A[0:{k}]\n"
    r = run(parse_text(text), ERAS["4.6"])
    (fb,) = r.steps[-1].faults
    assert len(fb) == k and fb.level == "pte"
    assert (fb.decisions == DECISIONS.index("reuse")).all()
    assert (fb.cost["counter_reads"] == N + 2).all()
    assert fault_total(r, [len(r.steps) - 1])["counter_reads"] == k * (N + 2)
    r45 = run(parse_text(text), ERAS["4.5"])
    (fb45,) = r45.steps[-1].faults
    assert (fb45.cost["counter_reads"] == 0).all()
    assert int(fb45.cost["bytes_copied"].sum()) == k * PAGE


def test_first_touch_and_zero_page_faults():
    """do_huge_pmd_anonymous_page: a write allocates and clears N pages; a
    read maps the huge zero page (one entry, nothing else)."""
    r = run(parse_text(f"thp: {N}\nP: mmap A\nP: read A\nP: write A[3]\n"), ERAS["4.6"])
    read, write = (r.steps[1].faults[0], r.steps[2].faults[0])
    assert DECISIONS[read.decisions[0]] == "zero"
    assert {k: int(read.cost[k][0]) for k in COST_FIELDS} == {
        k: (1 if k == "entries_written" else 0) for k in COST_FIELDS}
    assert DECISIONS[write.decisions[0]] == "new"
    assert int(write.cost["pages_allocated"][0]) == N
    assert int(write.cost["bytes_zeroed"][0]) == N * PAGE
    assert int(write.cost["bytes_copied"][0]) == 0


def test_doublemap_clearing_copy_pays_one_atomic_per_subpage():
    """The COW drops the last compound mapping of a PageDoubleMap THP, so
    page_remove_rmap clears the flag and decrements all N _mapcounts."""
    text = f"thp: {N}\nP: mmap A\nP: write A\nP: fork C\nC: split_pmd A\nP: write A[1]\n"
    r = run(parse_text(text), ERAS["4.5"], keep_snapshots=True)
    before = r.snapshots[-2]
    h = before.mms["P"].pt[before.mms["P"].regions["A"][0] // N].head
    assert before.mem.double_map[h] and before.mem.cmc[h] == 1
    f = last_cost(r)
    assert f.decision == "cow-huge"
    assert f.cost["atomic_writes"] == 6 + N
    assert not r.world.mem.double_map[h]


def test_order0_fault_reads_one_counter():
    text = f"thp: {N}\nP: mmap A\nP: write A\nP: mprotect A[0:2] ro\nP: mprotect A[0:2] rw\nP: write A[1]\n"
    f = last_cost(run(parse_text(text), ERAS["4.4"]))
    assert f.decision == "reuse" and f.cost["counter_reads"] == 1 and f.cost["decision_lines"] == 1


ALL_FILES = sorted(SCENARIOS.rglob("*.thp"))


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.relative_to(SCENARIOS).as_posix())
def test_cost_records_agree_with_the_engine(path):
    """In every scenario and era: one cost value per fault and field; the
    bytes copied are the fault's ``copied``; every allocated page is either
    copied into or cleared; copies happen exactly on cow decisions."""
    scn = parse_file(str(path))
    for era in ERAS.values():
        r = run(scn, era)
        for s in r.steps:
            for fb in s.faults:
                assert set(fb.cost) == set(COST_FIELDS)
                for k in COST_FIELDS:
                    assert fb.cost[k].shape == (len(fb),) and (fb.cost[k] >= 0).all()
                c = fb.cost
                assert (c["bytes_copied"] == fb.copied).all()
                assert ((c["bytes_copied"] + c["bytes_zeroed"]) == c["pages_allocated"] * PAGE).all()
                cow = np.isin(fb.decisions, [DECISIONS.index("cow-small"), DECISIONS.index("cow-huge")])
                assert ((c["bytes_copied"] > 0) == cow).all()
                assert (c["decision_lines"] <= c["struct_page_lines"]).all()
                assert (c["entries_written"] == 1).all()


# -------------------------------------------------------------- statements
def test_fork_of_a_pmd_costs_two_entries_and_two_counter_updates():
    """copy_huge_pmd: the child's PMD, the parent's write-protect; get_page
    and the compound mapcount increment."""
    r = run(parse_text(f"thp: {N}\nP: mmap A\nP: write A\nP: fork C\n"), ERAS["4.6"], keep_snapshots=True)
    st = step_costs(r)[-1]["statement"]
    assert st["entries_changed"] == 2 and st["counter_units"] == 2 and st["rmap_vmas"] == 0


def test_split_huge_page_walks_every_linked_vma_twice():
    """split_huge_page walks the anon_vma tree in freeze_page and again in
    unfreeze_page; after a fork the parent's anon_vma links both VMAs."""
    text = f"thp: {N}\nP: mmap A\nP: write A\nP: fork C\nP: split_page A[0]\n"
    r = run(parse_text(text), ERAS["4.6"], keep_snapshots=True)
    assert step_costs(r)[-1]["statement"]["rmap_vmas"] == 2 * 2
    pinned = text.replace("P: fork C", "P: fork C\nP: pin A[2] rw as d")
    r = run(parse_text(pinned), ERAS["4.6"], keep_snapshots=True)
    costs = step_costs(r)
    assert costs[-1]["statement"]["rmap_vmas"] == 0  # -EBUSY before any walk
    assert costs[-2]["statement"]["gup_refs"] == 1


def test_step_costs_need_snapshots():
    r = run(parse_text(f"thp: {N}\nP: mmap A\n"), ERAS["4.6"])
    with pytest.raises(ValueError):
        step_costs(r)


# -------------------------------------------------------------------- JSON
def test_run_json_has_a_cost_object_per_fault():
    path = SCENARIOS / "regression" / "pin-mprotect-cycle-write.thp"
    out = subprocess.run([sys.executable, "-m", "thpviz.cli", "run", str(path), "--json"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    n = 0
    for d in json.loads(out.stdout):
        for s in d["steps"]:
            for f in s["faults"]:
                n += 1
                assert set(COST_FIELDS) | {"cache_lines"} <= set(f["cost"])
                assert f["cost"]["bytes_copied"] == f["copied_bytes"]
                assert f["cost"]["cache_lines"] == f["cost"]["struct_page_lines"] + f["cost"]["data_lines"]
        if d["era"] == "4.5":
            last = [f for s in d["steps"] for f in s["faults"]][-1]
            assert last["cost"]["bytes_copied"] == d["thp"] * PAGE
    assert n > 0


# ------------------------------------------------------------------- plots
def _engine_lines(era, level, nr):
    r = vfio(era, level, nr)
    (fb,) = r.steps[-1].faults
    return int(fb.cost["decision_lines"][0])


def test_decision_cost_figure_plots_the_engine_counts():
    sizes = (16, 512)
    fig = plots.reuse_decision_cost_figure(sizes)
    for ax, level in zip(fig.axes[:2], ("pmd", "pte")):
        lines = {ln.get_label().split(":")[0]: ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}
        assert set(lines) == set(THREAD_ERAS)
        for era, ln in lines.items():
            assert ln.thpviz_nr == list(sizes)
            assert list(ln.get_ydata()) == [_engine_lines(era, level, nr) for nr in sizes]
    assert plots.png_bytes(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_decision_shortcut_equals_a_full_run():
    """Above FULL_RUN_LIMIT the plot asks the era's decision function about the
    prefix's state instead of running the whole scenario: same answer."""
    for level in ("pmd", "pte"):
        full = {(p.era, p.nr): p for p in X.reuse_decision_costs((16, 64), level=level)}
        short = {(p.era, p.nr): p for p in X.reuse_decision_costs((16, 64), level=level, full_run_limit=8)}
        assert {p.method for p in short.values()} == {"decision"}
        for key, p in full.items():
            assert (short[key].decision, short[key].cost) == (p.decision, p.cost)


def test_false_cow_figure_redoes_andreas_arithmetic():
    """https://lore.kernel.org/all/20160428232127.GL11700@redhat.com/: reading
    512 struct pages (512 x 64 B = 32 KiB) against copying 2 MiB (2 MiB read
    + 2 MiB written = 4 MiB through the cache)."""
    fig = plots.false_cow_figure(512)
    ax, ax2 = fig.axes[:2]
    heights = [b.get_height() for b in ax.patches]
    expected = []
    for era in THREAD_ERAS:
        c = last_cost(vfio(era, "pmd", 512)).cost
        expected.append(c["struct_page_lines"] + c["data_lines"])
    assert heights == expected
    assert [b.get_height() for b in ax2.patches] == [32 * 1024, 4 * 1024 * 1024]
    arg = X.andrea_argument(512)
    assert (arg["scan_bytes"], arg["cow_traffic_bytes"], arg["ratio"]) == (32 * 1024, 4 * 1024 * 1024, 128)


def test_workload_figure_plots_run_totals_and_lost_pins():
    """A guest with pinned THPs: 4.5 copies each pinned THP after fork+exit and
    loses every pin; 4.6 copies nothing and keeps them
    (https://lore.kernel.org/all/20160502152307.GA12310@redhat.com/)."""
    nr, thps, pins, procs = 16, 3, 2, 1
    fig = plots.workload_figure(nr, thps, pins, procs)
    scn = parse_text(X.workload_text(nr, thps, pins, procs))
    copied, lost, read = [], [], []
    for era in (ERAS[e] for e in THREAD_ERAS):
        r = run(scn, era)
        copied.append(sum(f.cost["bytes_copied"] for f in fault_costs(r)))
        lost.append(len(pin_lost(r.world)))
        read.append(sum(f.cost["decision_lines"] for f in fault_costs(r)))
    bars = [[b.get_height() for b in ax.patches] for ax in fig.axes[:3]]
    assert bars == [copied, lost, read]
    by_era = dict(zip(THREAD_ERAS, zip(copied, lost)))
    assert by_era["4.5"][1] == pins and by_era["4.6"] == (0, 0)


# ---------------------------------------------------------------- reported
def test_reported_timings_are_labelled_and_linked():
    rows = reported_timings()
    assert rows, "data/measured/thread-reported-timings.yaml is missing"
    for r in rows:
        assert r["kind"] == "reported in the thread"
        assert r["link"].startswith("https://lore.kernel.org/all/")


def test_measured_records_name_their_machine():
    from thpviz.cost.reported import measurements

    for rec in measurements():
        assert {"cpu", "os"} <= set(rec["machine"]) and rec["date"] and rec["results"]
        assert "not a kernel measurement" in rec["what"]


def test_measured_figure_plots_the_record_beside_the_engine():
    rec = {
        "kind": "measured", "date": "test", "method": "synthetic record for the test",
        "machine": {"cpu": "test cpu", "os": "test os"},
        "results": [
            {"op": "scan", "state": "cold", "n": 16, "median_ns": 100},
            {"op": "copy", "state": "cold", "n": 16, "median_ns": 900},
            {"op": "scan", "state": "cold", "n": 512, "median_ns": 1000},
            {"op": "copy", "state": "cold", "n": 512, "median_ns": 50000},
        ],
    }
    fig = plots.measured_vs_modelled_figure(rec)
    ax, ax2 = fig.axes[:2]
    scan = next(ln for ln in ax.get_lines() if "counter" in ln.get_label())
    assert list(scan.get_ydata()) == [100, 1000]
    measured = next(ln for ln in ax2.get_lines() if ln.get_label().startswith("measured"))
    assert list(measured.get_ydata()) == [9.0, 50.0]
    model = next(ln for ln in ax2.get_lines() if ln.get_label().startswith("modelled"))
    expected = []
    for nr in (16, 512):
        cow, scan_ = last_cost(vfio("4.5", "pmd", nr)).cost, last_cost(vfio("4.6", "pmd", nr)).cost
        expected.append(cow["data_lines"] / scan_["decision_lines"])
    assert list(model.get_ydata()) == expected
