"""Generated scenarios whose engine runs the cost plots draw.

Each function writes scenario text, runs it with :func:`thpviz.scenario.run`
under the eras asked for, and returns what the engine counted.  Nothing here
computes a cost itself: the numbers are the per-fault cost records of the runs
(:mod:`thpviz.cost.accounting`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..eras import ERAS, THREAD_ERAS
from ..eras.cost_rules import CACHE_LINE, COST_FIELDS, STRUCT_PAGE_BYTES
from ..scenario import parse_text, run
from .accounting import fault_total, last_write_fault, run_totals

#: huge page sizes of the decision-cost plot, in subpages (x86-64's PMD THP
#: is 512; 262144 subpages is a 1 GiB PUD-sized page)
SIZES = (16, 512, 8192, 262144)
#: above this size the decision-cost plot does not run whole scenarios (a run
#: at 262144 subpages takes seconds per era): it runs the scenario's prefix
#: once and asks each era's decision function about the state it left
FULL_RUN_LIMIT = 8192
#: the subpage the vfio scenarios pin and write (any tail would do)
PINNED = 5

#: the kernel counter function behind each era's reuse test, per fault level
DECISION_LABELS = {
    "pmd": {
        "4.4": "page_mapcount(head)",
        "4.5": "page_mapcount && page_count",
        "kirill-k1": "total_mapcount",
        "andrea-v1": "page_trans_huge_mapcount (v1)",
        "4.6": "page_trans_huge_mapcount",
    },
    "pte": {
        "4.4": "page_mapcount (order-0 after the split)",
        "4.5": "reuse_swap_page: PageTransCompound",
        "kirill-k1": "reuse_swap_page: PageTransCompound",
        "andrea-v1": "reuse_swap_page: page_trans_huge_mapcount (v1)",
        "4.6": "reuse_swap_page: page_trans_huge_mapcount",
    },
}


def era_ids(eras=None) -> list[str]:
    """The eras asked for, in era order; by default the thread's five (the
    cost model prices the 2016 decisions; the modern eras' mprotect upgrade
    leaves the vfio write without a fault at all from 6.2)."""
    return list(THREAD_ERAS) if eras is None else [e for e in ERAS if e in set(eras)]


# ------------------------------------------------------------ scenario text
def vfio_text(nr: int, level: str = "pmd", final_write: bool = True) -> str:
    """The vfio regression in its two shapes, for a THP of ``nr`` subpages.

    ``pmd``: a pinned THP write-protected by an mprotect RO/RW cycle, then a
    write to the pinned subpage (the PMD path, do_huge_pmd_wp_page).
    ``pte``: the same, but the mprotect covers half the THP, so the PMD is
    split (4.5+) or the THP split (4.4) first (the PTE path, do_wp_page)."""
    if level not in ("pmd", "pte"):
        raise ValueError(level)
    rng = "A" if level == "pmd" else f"A[0:{nr // 2}]"
    lines = [
        f"title: generated: a write to a pinned THP of {nr} subpages after an mprotect cycle ({level} path)",
        "source: 20160428102051.17d1c728@t450s.home",
        f"thp: {nr}",
        "P: mmap A",
        "P: write A",
        f"P: pin A[{PINNED}] rw as dma",
        f"P: mprotect {rng} ro",
        f"P: mprotect {rng} rw",
    ]
    if final_write:
        lines.append(f"P: write A[{PINNED}]")
    return "\n".join(lines) + "\n"


def workload_text(nr: int, thps: int, pins: int, procs: int, half_mprotect: bool = True) -> str:
    """A guest's memory: ``thps`` THPs written once, the first ``pins`` of them
    pinned whole for a device (as vfio pins guest RAM), then ``procs``
    fork+exit cycles (a helper process started and gone) each followed by the
    guest writing all its memory, then an mprotect RO/RW cycle (of half of
    the first THP when ``half_mprotect``, else of everything) and one more
    write of everything."""
    if not 0 <= pins <= thps:
        raise ValueError("pins must be between 0 and the number of THPs")
    lines = [
        f"title: generated: a guest with {thps} THPs, {pins} pinned, {procs} fork+exit cycles, an mprotect cycle",
        "source: 20160502152307.GA12310@redhat.com",
        f"thp: {nr}",
        f"P: mmap G {thps}",
        "P: write G",
    ]
    lines += [f"P: pin G[{i * nr}:{(i + 1) * nr}] rw as dma{i}" for i in range(pins)]
    for c in range(procs):
        lines += [f"P: fork C{c}", f"C{c}: exit", "P: write G"]
    rng = f"G[0:{nr // 2}]" if half_mprotect else "G"
    lines += [f"P: mprotect {rng} ro", f"P: mprotect {rng} rw", "P: write G"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------- runs
@dataclass(frozen=True)
class DecisionPoint:
    """Cost of one reuse decision: era, size, level, what it decided, the
    cost record, and how it was obtained (``run``: a whole scenario run;
    ``decision``: the era's decision function on the state after the
    scenario's prefix)."""

    era: str
    nr: int
    level: str
    decision: str
    cost: dict
    method: str

    @property
    def lines(self) -> int:
        return self.cost["decision_lines"]


def _prefix_world(nr: int, level: str, era):
    r = run(parse_text(vfio_text(nr, level, final_write=False), f"<vfio-{level}-{nr}>"), era)
    w = r.world
    mm = w.mms["P"]
    start = mm.regions["A"][0]
    pfn, _, _ = w.lookup_one(mm, start + PINNED)
    return w, pfn


def _hooks(era) -> tuple:
    """The era hooks the vfio prefixes can reach (they split, never decide):
    eras with the same hooks leave the same state after the prefix."""
    t = type(era)
    return (t.split_huge_pmd, t.split_huge_page, era.has_double_map, era.has_anon_exclusive,
            era.tracks_mm_ids, era.foll_pin)


def _decide(era, world, pfn: int, level: str) -> tuple[str, dict]:
    """Ask the era the question the final write would ask, without running
    it: the decision and its one-fault cost record."""
    mem = world.mem
    mm = world.mms["P"]
    h = int(mem.head[pfn])
    if level == "pmd":
        d = era.do_huge_pmd_wp_page(world, mm, h)
        dec = "reuse" if d.reuse else ("cow-small" if d.fallback else "cow-huge")
        return dec, {k: int(d.cost[k]) for k in COST_FIELDS}
    if mem.nr[h] > 1:
        b = era.do_wp_page_thp(world, mm, h, np.array([pfn - h]))
    else:
        b = era.do_wp_page_order0(world, mm, np.array([pfn]))
    return ("reuse" if b.reuse[0] else "cow-small"), {k: int(b.cost[k][0]) for k in COST_FIELDS}


def reuse_decision_costs(sizes=SIZES, eras=None, level: str = "pmd",
                         full_run_limit: int = FULL_RUN_LIMIT) -> list[DecisionPoint]:
    """Cost of the write fault of :func:`vfio_text` per era and THP size.
    Sizes up to ``full_run_limit`` run the whole scenario under each era and
    read the last write fault's cost; larger sizes run the prefix once per
    group of eras with the same split hooks and call each era's decision
    function on the resulting state."""
    out = []
    ids = era_ids(eras)
    for nr in sizes:
        if nr <= full_run_limit:
            scn = parse_text(vfio_text(nr, level), f"<vfio-{level}-{nr}>")
            for e in ids:
                f = last_write_fault(run(scn, ERAS[e]))
                assert f is not None, "vfio_text ends with a write fault"
                out.append(DecisionPoint(e, nr, level, f.decision, f.cost, "run"))
            continue
        worlds: dict = {}
        for e in ids:
            era = ERAS[e]
            key = _hooks(era)
            if key not in worlds:
                worlds[key] = _prefix_world(nr, level, era)
            w, pfn = worlds[key]
            dec, cost = _decide(era, w, pfn, level)
            out.append(DecisionPoint(e, nr, level, dec, cost, "decision"))
    return out


def vfio_write_costs(nr: int = 512, eras=None, level: str = "pmd") -> dict[str, DecisionPoint]:
    """Per era: the vfio scenario's write fault (whole runs)."""
    pts = reuse_decision_costs((nr,), eras, level, full_run_limit=max(nr, FULL_RUN_LIMIT))
    return {p.era: p for p in pts}


def andrea_argument(nr: int = 512) -> dict[str, int]:
    """Andrea's comparison (https://lore.kernel.org/all/20160428232127.GL11700@redhat.com/)
    redone from the engine's counts of the vfio PMD fault: the bytes of
    struct pages 4.6's ``page_trans_huge_mapcount`` reads to decide reuse,
    against the cache traffic of the copy 4.5 makes instead."""
    pts = vfio_write_costs(nr, ("4.5", "4.6"))
    scan, cow = pts["4.6"], pts["4.5"]
    scan_bytes = scan.cost["decision_lines"] * STRUCT_PAGE_BYTES
    copy_bytes = cow.cost["data_lines"] * CACHE_LINE
    return {
        "nr": nr,
        "scan_decision": scan.decision,
        "scan_struct_pages": scan.cost["decision_lines"],
        "scan_bytes": scan_bytes,
        "cow_decision": cow.decision,
        "cow_bytes_copied": cow.cost["bytes_copied"],
        "cow_traffic_bytes": copy_bytes,
        "ratio": copy_bytes // scan_bytes if scan_bytes else 0,
    }


def workload(nr: int = 512, thps: int = 4, pins: int = 2, procs: int = 1, eras=None,
             half_mprotect: bool = True) -> dict[str, dict]:
    """Run :func:`workload_text` under each era; per era the run's fault
    totals (:func:`thpviz.cost.accounting.run_totals`) and its violations."""
    ids = tuple(era_ids(eras))
    return {e: dict(t) for e, t in _workload(nr, thps, pins, procs, ids, half_mprotect).items()}


@lru_cache(maxsize=64)
def _workload(nr, thps, pins, procs, ids, half_mprotect):
    # the engine is deterministic: a widget going back to earlier settings
    # need not rerun them
    scn = parse_text(workload_text(nr, thps, pins, procs, half_mprotect), "<workload>")
    out = {}
    for e in ids:
        r = run(scn, ERAS[e])
        tot = run_totals(r)
        tot["violations"] = sorted(r.violations)
        out[e] = tot
    return out


def last_step_totals(text: str, eras=None, fields=("faults", "counter_reads", "decision_lines", "bytes_copied")) -> dict:
    """Run scenario ``text`` under each era; per era, the fault totals of its
    last statement (only ``fields``)."""
    scn = parse_text(text, "<text>")
    out = {}
    for e in era_ids(eras):
        r = run(scn, ERAS[e])
        tot = fault_total(r, [len(r.steps) - 1])
        out[e] = {k: tot[k] for k in fields}
    return out
