"""Cost benchmarks.

    .venv/bin/python benchmarks/bench_cost.py [--measure] [--reps N]

Always: times the engine runs behind the cost plots (thpviz.cost.experiments)
for each huge page size, and prints a table.

With ``--measure``: compiles benchmarks/memscan.c (needs a C compiler), a
user-space analogue of Andrea's comparison -- reading one counter in each of
N 64-byte records against copying N 4 KiB pages -- runs it on this machine,
prints the medians and writes them, with a description of the machine, to
data/measured/memscan-<date>.yaml (kind: measured).  These are measurements
of this machine's memory system, not of a kernel.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_model, mem_total_kib  # noqa: E402

from thpviz.cost import experiments as X  # noqa: E402

SIZES = (16, 512, 8192, 262144)


def engine_table() -> None:
    print("engine runs behind the cost plots (wall time, one run each)")
    print(f"{'subpages':>9} {'level':>5} {'method':>9} {'seconds':>8}")
    for nr in SIZES:
        for level in ("pmd", "pte"):
            t = time.perf_counter()
            pts = X.reuse_decision_costs((nr,), level=level)
            dt_ = time.perf_counter() - t
            print(f"{nr:>9} {level:>5} {pts[0].method:>9} {dt_:>8.3f}")
    for nr in (512, 8192):
        t = time.perf_counter()
        X._workload.cache_clear()
        X.workload(nr, 8, 8, 4)
        print(f"workload nr={nr} thps=8 pins=8 procs=4, five eras: {time.perf_counter() - t:.3f} s")


def _machine() -> dict:
    cpu = cpu_model()
    kib = mem_total_kib()
    mem = f"{kib} kB" if kib else "unknown"
    cc = subprocess.run(["cc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return {
        "cpu": cpu, "logical_cpus": os.cpu_count(), "memory": mem,
        "os": f"{platform.system()} {platform.release()}", "compiler": cc,
        "note": "the thpviz development environment, probably a virtual machine (not verified)",
    }


def measure(reps: int) -> Path:
    if shutil.which("cc") is None:
        raise SystemExit("--measure needs a C compiler (cc)")
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "memscan"
        subprocess.run(["cc", "-O2", "-Wall", "-o", str(exe), str(ROOT / "benchmarks" / "memscan.c")], check=True)
        out = subprocess.run([str(exe), str(reps), *map(str, SIZES)], capture_output=True, text=True, check=True).stdout
    rows = []
    print(f"{'op':>5} {'state':>5} {'N':>7} {'median ns':>12}")
    for line in out.splitlines():
        op, state, n, ns = line.split()
        rows.append({"op": op, "state": state, "n": int(n), "median_ns": int(float(ns))})
        print(f"{op:>5} {state:>5} {int(n):>7} {int(float(ns)):>12}")
    import yaml

    rec = [{
        "kind": "measured",
        "what": ("user-space analogue of Andrea's comparison: read one 4-byte counter in each of N "
                 "64-byte records (scan) against memcpy of N x 4096 bytes (copy); not a kernel measurement"),
        "source": "benchmarks/memscan.c, run by benchmarks/bench_cost.py --measure",
        "date": dt.date.today().isoformat(),
        "machine": _machine(),
        "method": (f"median of {reps} repetitions; cold = after streaming through a 256 MiB buffer, "
                   "warm = repeated back to back; copies above 256 MiB skipped"),
        "results": rows,
    }]
    path = ROOT / "data" / "measured" / f"memscan-{dt.date.today().isoformat()}.yaml"
    header = "# Measured by benchmarks/bench_cost.py --measure on the machine described below.\n"
    path.write_text(header + yaml.safe_dump(rec, sort_keys=False))
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--measure", action="store_true", help="run the memscan analogue and record it")
    ap.add_argument("--reps", type=int, default=31)
    a = ap.parse_args()
    engine_table()
    if a.measure:
        measure(a.reps)


if __name__ == "__main__":
    main()
