"""How long the live lab takes: per scenario on this machine, and per boot of
a QEMU guest.  Ratios are against baselines measured in the same run: a
scenario with nothing but ``mmap`` and one write (the fixed cost of starting
the executor's process tree and taking snapshots), and a guest boot with no
scenario (firmware, kernel, probe, power-off).

    .venv/bin/python benchmarks/bench_live.py [--repeats N] [--kernel 6.1] [--kernel 6.12]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from thpviz.live.host import run_files  # noqa: E402
from thpviz.live.lab import scenario_files  # noqa: E402
from thpviz.live.probe import probe  # noqa: E402


def host(repeats: int) -> int:
    caps = probe()
    why = caps.require("thp", "pin_rw", "pin_ro")
    if why:
        print(f"host: skipped: {why}")
        return 0
    with tempfile.TemporaryDirectory() as d:
        base = Path(d) / "baseline.thp"
        base.write_text("P: mmap A\nP: write A\n")
        files = [str(base)] + scenario_files([str(ROOT / "data" / "scenarios")])
        times: dict[str, list[float]] = {f: [] for f in files}
        for _ in range(repeats):
            for r in run_files(files, caps):
                if r.status != "skipped":
                    times[r.path].append(r.seconds)
        b = statistics.median(times[str(base)])
        print(f"host: Linux {caps.release}, {repeats} repeats; baseline (mmap + write) {b * 1000:.1f} ms")
        rows = [(statistics.median(v), f) for f, v in times.items() if v and f != str(base)]
        for t, f in sorted(rows, reverse=True):
            print(f"  {t * 1000:8.1f} ms  x{t / b:5.1f}  {Path(f).relative_to(ROOT)}")
        total = sum(t for t, _ in rows)
        print(f"  total {total:.2f} s for {len(rows)} scenarios (median {statistics.median(t for t, _ in rows) * 1000:.1f} ms)")
    return 0


def guest(kernel: str) -> int:
    from thpviz.live.qemu import run_in_guest

    t0 = time.perf_counter()
    caps, _ = run_in_guest(kernel, [], probe_only=True)
    empty = time.perf_counter() - t0
    if caps.require():
        print(f"guest {kernel}: skipped: {caps.require()}")
        return 0
    files = scenario_files([str(ROOT / "data" / "scenarios" / "lab")])
    t0 = time.perf_counter()
    _, results = run_in_guest(kernel, files)
    full = time.perf_counter() - t0
    ok = sum(r.status == "passed" for r in results)
    print(f"guest {kernel} (Linux {caps.release}, QEMU TCG): boot with no scenario {empty:.1f} s; "
          f"with the {len(files)} lab scenarios {full:.1f} s (x{full / empty:.2f}; {ok} passed), "
          f"{(full - empty) / len(files):.2f} s per scenario")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kernel", action="append", choices=("6.1", "6.12"), default=[])
    args = ap.parse_args()
    host(args.repeats)
    for k in args.kernel:
        guest(k)
    return 0


if __name__ == "__main__":
    sys.exit(main())
