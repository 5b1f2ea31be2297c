"""Engine benchmarks: time per statement type, the litmus suite, CLI start-up.

    .venv/bin/python benchmarks/bench_engine.py [--repeat N]

Each statement is timed as the runner executes it: clone for rollback, the
operation, and the invariant checks after it.  512-subpage THPs, three
processes (P and two children), two regions of two extents each.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from thpviz.eras import ERAS  # noqa: E402
from thpviz.model.world import World  # noqa: E402
from thpviz.scenario import parse_text  # noqa: E402
from thpviz.scenario.runner import execute  # noqa: E402

# A workload touching every statement type; C1/C2 are alive at the same
# time, so there are three processes.
WORKLOAD = """\
thp: 512
P: mmap A 2
P: mmap B 2
P: write A
P: read B
P: pin A[5] rw as d1
P: vmsplice A[600] as r1
P: fork C1
P: fork C2
C1: write A[7]
P: mprotect A ro
P: mprotect A rw
P: write A
P: split_pmd A[512:1024]
C2: write A[512:1024]
P: mprotect A[512:1024] ro
P: mprotect A[512:1024] rw
P: write A[512:1024]
assert page_count(A[5]) >= 1
dma_write d1
dma_read d1
P: dontfork B[0:100]
P: dontneed B[100:200]
P: mremap A[0:256] M
C1: munmap A[0:256]
C1: split_page A[300]
P: write B
P: unpin r1
C2: mprotect A[0:100] ro
C2: exit
P: unpin d1
C1: write A
C1: exit
P: munmap A
P: exit
"""


def kind(stmt) -> str:
    """Statement type; writes are told apart by what they fault on."""
    if stmt.op == "write":
        return {
            "P: write A": "write (2 PMD faults)",
            "P: write B": "write (512 PTE new)",
            "P: write A[512:1024]": "write (512 PTE wp)",
        }.get(stmt.text, "write (1 subpage)")
    return stmt.op


def bench_statements(repeat: int):
    scn = parse_text(WORKLOAD, "workload")
    times = defaultdict(list)
    for _ in range(repeat):
        for era in ERAS.values():
            world = World(era, scn.thp)
            for st in scn.statements:
                t0 = time.perf_counter()
                world, _ = execute(world, era, st)
                times[kind(st)].append(time.perf_counter() - t0)
    return times


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def wall(cmd) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    times = bench_statements(args.repeat)
    print(f"Per statement (512-subpage THPs, 3 processes, all 5 eras, {args.repeat} repeats)")
    print(f"{'statement':<22} {'n':>5} {'median ms':>10} {'p95 ms':>8}")
    for k in sorted(times):
        xs = times[k]
        print(f"{k:<22} {len(xs):>5} {statistics.median(xs) * 1e3:>10.3f} {pct(xs, 95) * 1e3:>8.3f}")
    thpviz = str(ROOT / ".venv" / "bin" / "thpviz")
    check = [wall([thpviz, "check", "data/scenarios"]) for _ in range(3)]
    helps = [wall([thpviz, "--help"]) for _ in range(5)]
    print()
    print(f"thpviz check data/scenarios (all eras): median {statistics.median(check):.2f} s wall")
    print(f"thpviz --help: median {statistics.median(helps) * 1e3:.0f} ms wall")
    mods = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "thpviz.cli", "--help"],
        cwd=ROOT, capture_output=True, text=True,
    ).stderr
    heavy = [m for m in ("numpy", "matplotlib", "graphviz", "ipywidgets") if f" {m}\n" in mods or f"| {m}" in mods]
    print(f"modules imported by --help among numpy/matplotlib/graphviz/ipywidgets: {heavy or 'none'}")


if __name__ == "__main__":
    main()
