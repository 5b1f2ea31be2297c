"""Engine benchmarks: statements at 512 subpages in every era, the litmus
suite, CLI start-up, and the scaling series of issue 12 -- each beside the
engine as it was before issue 12, measured in the same run.

    .venv/bin/python benchmarks/bench_engine.py                 # everything (~10 min)
    .venv/bin/python benchmarks/bench_engine.py --quick         # smaller series (~2 min)
    .venv/bin/python benchmarks/bench_engine.py --series subpages statements
    .venv/bin/python benchmarks/bench_engine.py --no-baseline   # the current engine only
    .venv/bin/python benchmarks/bench_engine.py --json out.json

The baseline is the engine at commit ``BASELINE`` (main when the work on
issue 12 began), unpacked with ``git archive`` into a temporary directory.
Every point of every series runs in a fresh Python process per engine, so
"peak MiB" is that point's own peak resident set (``ru_maxrss``, which
includes the ~30 MiB of the interpreter and numpy).  A statement is timed as
the runner executes it (``runner.execute``: the operation, the rollback
machinery, the invariant checks).

Series (the statement mix of each is in its generator below):

* ``subpages``   the 29-statement workload ``scaled(n)`` with n = 16 ..
  262,144 subpages per THP (a 1 GiB THP at the end): median time per
  statement, and the peak memory of a *player*: the run with snapshots,
  then every step visited as ScenarioPlayer does (snapshot k and k-1);
* ``processes``  a fork chain (each child forks the next) and a fork tree
  (P forks every child), 2 .. 200 processes, each child writing one
  subpage: median time per statement and over the last tenth;
* ``statements`` 10 .. 10,000 statements of fork / child writes / child
  exits / parent writes, with a region mapped, written and unmapped every
  eighth round: median time per statement, the first tenth against the
  last tenth, and the peak memory of a run with snapshots;
* ``extents``    a region of 1 .. 64 THP-sized extents, mapped, pinned,
  forked, written, protected, split and unmapped.

"faults" are the minor page faults of the timing run (``ru_minflt``):
fresh temporary arrays cost one per 4 KiB page.  For each series the growth exponent is the least-squares slope of
log(metric) against log(n).  Goals (issue 12): a statement at 262,144
subpages under 50 ms at the median; the 29-statement player at that size
under 500 MiB; at 10,000 statements the last tenth within 2x of the first;
every era's median under 1 ms at 512 subpages; ``thpviz check
data/scenarios`` under 3 s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_model, mem_total_kib  # noqa: E402

BASELINE = "fbb6c95d2d124d4ed3b538976626be16954ce3c5"

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


# ------------------------------------------------------------------ series
def scaled(n: int) -> str:
    """29 statements on one n-subpage THP (the parser's model limit is 1 GiB
    of mapped memory per file, so a 262,144-subpage THP is one extent): a
    PMD fault, a pin and a reference, fork, the child's COW, mprotect
    cycles, a split PMD written by both processes, DMA, mremap, a split
    page, a second fork, exits."""
    h, q = n // 2, n // 4
    return f"""thp: {n}
P: mmap A
P: write A
P: pin A[5] rw as d1
P: vmsplice A[{h + 3}] as r1
P: fork C1
C1: write A[7]
P: mprotect A ro
P: mprotect A rw
P: write A[0:{h}]
P: split_pmd A
C1: write A[{h}:{n}]
P: mprotect A[{h}:{n}] ro
P: mprotect A[{h}:{n}] rw
P: write A[{h}:{n}]
assert page_count(A[5]) >= 1
dma_write d1
dma_read d1
P: mremap A[0:{q}] M
C1: munmap A[0:{q}]
C1: split_page A[{h + q // 2}]
P: unpin r1
P: fork C2
C2: write A[{h + 1}]
C2: exit
P: unpin d1
C1: write A[{q}:{n}]
C1: exit
P: munmap A
P: exit
"""


def chain(n: int) -> str:
    lines = ["thp: 512", "P: mmap A", "P: write A"]
    prev = "P"
    for i in range(1, n):
        lines += [f"{prev}: fork C{i}", f"C{i}: write A[{i % 512}]"]
        prev = f"C{i}"
    return "\n".join(lines) + "\n"


def tree(n: int) -> str:
    lines = ["thp: 512", "P: mmap A", "P: write A"]
    for i in range(1, n):
        lines += [f"P: fork C{i}", f"C{i}: write A[{i % 512}]"]
    return "\n".join(lines) + "\n"


def churn(n: int) -> str:
    """n statements of fork / the child writes one subpage (a COW copy) /
    the child exits / the parent writes it again, and every eighth round a
    region mapped, written and unmapped -- new names every time, so pages,
    exited processes, anon_vmas and regions pile up.  (The parser caps the
    memory a file maps at 1 GiB, 512 regions of 512 subpages, which is why
    not every round maps.)"""
    lines = ["thp: 512", "P: mmap A", "P: write A"]
    i = 0
    while len(lines) - 1 < n:
        i += 1
        k = i % 512
        lines += [f"P: fork C{i}", f"C{i}: write A[{k}]", f"C{i}: exit", f"P: write A[{k}]"]
        if i % 8 == 0:
            lines += [f"P: mmap X{i}", f"P: write X{i}", f"P: munmap X{i}"]
    return "\n".join(lines[: n + 1]) + "\n"


def extents(n: int) -> str:
    return "\n".join([
        "thp: 512", f"P: mmap A {n}", "P: write A", "P: pin A[5] rw as d", "P: fork C",
        f"C: write A[256:{n * 512}]", "P: mprotect A ro", "P: mprotect A rw", "P: write A",
        "P: split_pmd A", "C: munmap A", "P: unpin d", "C: exit",
    ]) + "\n"


SERIES = {
    # name: [(label, generator, metric mode, points, quick points)]
    "subpages": [("29 statements", scaled, "player",
                  [16, 64, 256, 1024, 4096, 16384, 65536, 262144], [16, 256, 4096, 65536])],
    "processes": [("fork chain", chain, "steps", [2, 5, 10, 20, 50, 100, 200], [2, 10, 50]),
                  ("fork tree", tree, "steps", [2, 5, 10, 20, 50, 100, 200], [2, 10, 50])],
    "statements": [("fork/write/exit churn", churn, "steps+snap", [10, 100, 300, 1000, 3000, 10000],
                    [10, 100, 1000])],
    "extents": [("one region", extents, "steps", [1, 2, 4, 8, 16, 32, 64], [1, 8, 64])],
}


# ------------------------------------------------------------------ worker
def worker(spec: dict) -> dict:
    """Runs in a fresh process with one engine on sys.path: one point."""
    sys.path.insert(0, spec["root"])
    from thpviz.eras import ERAS
    from thpviz.model.world import World
    from thpviz.scenario import parse_text
    from thpviz.scenario.runner import execute, run

    era = ERAS[spec["era"]]
    out: dict = {}
    if spec["what"] == "eras":
        scn = parse_text(WORKLOAD, "workload")
        for e in ERAS.values():
            ts = []
            for _ in range(spec["repeat"]):
                world = World(e, scn.thp)
                for st in scn.statements:
                    t0 = time.perf_counter()
                    world, _ = execute(world, e, st)
                    ts.append(time.perf_counter() - t0)
            out[e.id] = ts
        return out
    text = globals()[spec["gen"]](spec["n"])
    scn = parse_text(text, spec["gen"])
    mode = spec["mode"]
    if mode.startswith("steps"):
        world = World(era, scn.thp)
        ts = []
        t0 = time.perf_counter()
        for st in scn.statements:
            t1 = time.perf_counter()
            world, _ = execute(world, era, st)
            ts.append(time.perf_counter() - t1)
        out["total"] = time.perf_counter() - t0
        out["times"] = ts
    if mode in ("player", "snap"):
        t0 = time.perf_counter()
        r = run(scn, era, keep_snapshots=True)
        out["run_snap"] = time.perf_counter() - t0
        if mode == "player":
            t0 = time.perf_counter()
            for k in range(len(r.snapshots)):
                for w in ([r.snapshots[k - 1]] if k else []) + [r.snapshots[k]]:
                    for name, _, _ in w.mem._FIELDS:
                        getattr(w.mem, name)[: w.mem.size].sum()
            out["walk"] = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out["peak_mib"] = ru.ru_maxrss / 1024
    out["minflt"] = ru.ru_minflt
    return out


def measure(root: str, spec: dict, timeout: float) -> dict | None:
    spec = dict(spec, root=root)
    try:
        p = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True,
                           text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(p.stdout)


def baseline_tree(tmp: str) -> str | None:
    """The baseline engine unpacked into ``tmp`` (None if git cannot)."""
    try:
        arch = subprocess.run(["git", "archive", BASELINE, "thpviz"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=arch.stdout, check=True)
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    return tmp


# ----------------------------------------------------------------- reports
def med(xs) -> float:
    return statistics.median(xs) if xs else float("nan")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def slope(ns, ys) -> float:
    """Least-squares slope of log y against log n (the growth exponent)."""
    pts = [(math.log(n), math.log(y)) for n, y in zip(ns, ys) if y and y > 0 and not math.isnan(y)]
    if len(pts) < 2:
        return float("nan")
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else float("nan")


def fmt(x, digits=3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def ratio(old, new) -> str:
    if old is None or new is None or not new or (isinstance(old, float) and math.isnan(old)):
        return "-"
    return f"{old / new:.1f}x"


def machine() -> str:
    cpu = cpu_model()
    kib = mem_total_kib()
    mem = f"{kib // 1024 // 1024} GiB RAM" if kib else "? RAM"
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores, {mem}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}; load average {load} at start")


def point_metrics(res: dict | None) -> dict:
    if not res or "error" in res:
        return {"error": (res or {}).get("error", "not run")}
    ts = res.get("times", [])
    k = max(1, len(ts) // 10)
    return {
        "median_ms": med(ts) * 1e3,
        "p95_ms": pct(ts, 95) * 1e3 if ts else float("nan"),
        "first_ms": med(ts[:k]) * 1e3,
        "last_ms": med(ts[-k:]) * 1e3,
        "total_s": res.get("total", sum(ts)),
        "peak_mib": res["peak_mib"],
        "minflt": res["minflt"],
        "run_snap_s": res.get("run_snap"),
        "walk_s": res.get("walk"),
    }


def run_series(name, roots, quick, era, limits, timeout, results):
    for label, gen, mode, points, qpoints in SERIES[name]:
        pts = qpoints if quick else points
        print(f"\n== {name}: {label} (era {era}; {mode}) ==")
        head = f"{'n':>8} {'new med ms':>11} {'old med ms':>11} {'speed-up':>9}"
        if mode in ("steps", "steps+snap", "player"):
            head += f" {'new last10%':>12} {'old last10%':>12} {'last/first new':>15} {'old':>6}"
        head += f" {'new peak MiB':>13} {'old peak MiB':>13} {'faults new/old':>15}"
        print(head)
        rows = []
        for n in pts:
            row = {"n": n}
            for impl, root in roots.items():
                if impl == "old" and n > limits.get(name, float("inf")):
                    row[impl] = {"error": f"not run above {limits[name]} (--full runs it)"}
                    continue
                spec = {"what": "point", "gen": gen.__name__, "n": n, "mode": mode, "era": era}
                if mode in ("steps+snap", "player"):
                    # times from a run without snapshots, memory from a run
                    # with them (the player also visits every step)
                    memory = "snap" if mode == "steps+snap" else "player"
                    m = point_metrics(measure(root, dict(spec, mode="steps"), timeout))
                    lim = limits.get(f"{name} with snapshots", float("inf"))
                    if impl == "old" and n > lim:
                        m["peak_mib"] = None
                        m["note"] = f"{memory} run (memory) not run above {lim} (--full runs it)"
                    elif "error" not in m:
                        snap = measure(root, dict(spec, mode=memory), timeout)
                        if snap and "error" not in snap:
                            m["peak_mib"] = snap["peak_mib"]
                            m["run_snap_s"], m["walk_s"] = snap.get("run_snap"), snap.get("walk")
                        else:
                            m["peak_mib"] = None
                            m["note"] = f"{memory} run: {(snap or {}).get('error')}"
                    row[impl] = m
                else:
                    row[impl] = point_metrics(measure(root, spec, timeout))
            rows.append(row)
            new, old = row.get("new", {}), row.get("old", {})
            line = (f"{n:>8} {fmt(new.get('median_ms')):>11} {fmt(old.get('median_ms')):>11} "
                    f"{ratio(old.get('median_ms'), new.get('median_ms')):>9}")
            if mode in ("steps", "steps+snap", "player"):
                lf_new = (new.get("last_ms") or 0) / new["first_ms"] if new.get("first_ms") else None
                lf_old = (old.get("last_ms") or 0) / old["first_ms"] if old.get("first_ms") else None
                line += (f" {fmt(new.get('last_ms')):>12} {fmt(old.get('last_ms')):>12} "
                         f"{fmt(lf_new, 2):>15} {fmt(lf_old, 2):>6}")
            flt = f"{fmt((new.get('minflt') or 0) / 1e3, 0)}k/{fmt((old.get('minflt') or 0) / 1e3, 0)}k"
            line += f" {fmt(new.get('peak_mib'), 0):>13} {fmt(old.get('peak_mib'), 0):>13} {flt:>15}"
            print(line)
            for impl in ("new", "old"):
                if "error" in row.get(impl, {}):
                    print(f"{'':>8} ({impl}: {row[impl]['error']})")
                elif row.get(impl, {}).get("note"):
                    print(f"{'':>8} ({impl}: {row[impl]['note']})")
        ns = [r["n"] for r in rows]
        for impl in roots:
            ok = [(r["n"], r[impl]) for r in rows if "error" not in r.get(impl, {"error": 1})]
            if len(ok) >= 2:
                e_t = slope([n for n, _ in ok], [m["median_ms"] for _, m in ok])
                e_m = slope([n for n, _ in ok], [m["peak_mib"] for _, m in ok])
                e_l = slope([n for n, _ in ok], [m["last_ms"] for _, m in ok])
                print(f"growth exponent ({impl}): median time n^{e_t:.2f}, last-tenth time n^{e_l:.2f}, "
                      f"peak memory n^{e_m:.2f}  (over n = {ok[0][0]}..{ok[-1][0]})")
        results.setdefault("series", {}).setdefault(name, []).append({"label": label, "mode": mode, "rows": rows,
                                                                         "points": ns})


def bench_eras(roots, repeat, timeout, results):
    print(f"\n== every era: the 33-statement workload at 512 subpages, 3 processes, {repeat} repeats ==")
    got = {impl: measure(root, {"what": "eras", "era": "4.6", "repeat": repeat}, timeout) for impl, root in roots.items()}
    print(f"{'era':<10} {'new med ms':>11} {'new p95 ms':>11} {'old med ms':>11} {'old p95 ms':>11} {'speed-up':>9}")
    out = {}
    for era in (got.get("new") or {}):
        if era in ("peak_mib", "minflt", "error"):
            continue
        new = got["new"][era]
        old = (got.get("old") or {}).get(era)
        out[era] = {"new_median_ms": med(new) * 1e3, "old_median_ms": med(old) * 1e3 if old else None}
        print(f"{era:<10} {med(new) * 1e3:>11.3f} {pct(new, 95) * 1e3:>11.3f} "
              f"{fmt(med(old) * 1e3 if old else None):>11} {fmt(pct(old, 95) * 1e3 if old else None):>11} "
              f"{ratio(med(old) if old else None, med(new)):>9}")
    results["eras"] = out


def bench_statement_kinds(repeat):
    """Per statement kind, every era, the current engine (in this process)."""
    sys.path.insert(0, str(ROOT))
    from thpviz.eras import ERAS
    from thpviz.model.world import World
    from thpviz.scenario import parse_text
    from thpviz.scenario.runner import execute

    def kind(stmt) -> str:
        if stmt.op == "write":
            return {
                "P: write A": "write (2 PMD faults)",
                "P: write B": "write (512 PTE new)",
                "P: write A[512:1024]": "write (512 PTE wp)",
            }.get(stmt.text, "write (1 subpage)")
        return stmt.op

    scn = parse_text(WORKLOAD, "workload")
    times = defaultdict(list)
    for _ in range(repeat):
        for era in ERAS.values():
            world = World(era, scn.thp)
            for st in scn.statements:
                t0 = time.perf_counter()
                world, _ = execute(world, era, st)
                times[kind(st)].append(time.perf_counter() - t0)
    print(f"\n== per statement kind (current engine, 512 subpages, all {len(ERAS)} eras, {repeat} repeats) ==")
    print(f"{'statement':<22} {'n':>5} {'median ms':>10} {'p95 ms':>8}")
    for k in sorted(times):
        xs = times[k]
        print(f"{k:<22} {len(xs):>5} {statistics.median(xs) * 1e3:>10.3f} {pct(xs, 95) * 1e3:>8.3f}")


def wall(cmd) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - t0


def bench_cli(results):
    thpviz = [sys.executable, "-m", "thpviz.cli"]
    check = [wall(thpviz + ["check", "data/scenarios"]) for _ in range(3)]
    helps = [wall(thpviz + ["--help"]) for _ in range(5)]
    print()
    print(f"thpviz check data/scenarios (all eras): median {statistics.median(check):.2f} s wall")
    print(f"thpviz --help: median {statistics.median(helps) * 1e3:.0f} ms wall")
    mods = subprocess.run(thpviz[:1] + ["-X", "importtime", "-m", "thpviz.cli", "--help"],
                          cwd=ROOT, capture_output=True, text=True).stderr
    heavy = [m for m in ("numpy", "matplotlib", "graphviz", "ipywidgets") if f" {m}\n" in mods or f"| {m}" in mods]
    print(f"modules imported by --help among numpy/matplotlib/graphviz/ipywidgets: {heavy or 'none'}")
    results["check_s"] = statistics.median(check)


def goals(results) -> None:
    print("\n== goals (issue 12) ==")
    s = {x["label"]: x for v in results.get("series", {}).values() for x in v}

    def row(label, n):
        for r in s.get(label, {}).get("rows", []):
            if r["n"] == n:
                return r.get("new", {})
        return {}

    g = row("29 statements", 262144)
    if g and "error" not in g:
        print(f"statement at 262,144 subpages, median: {g['median_ms']:.1f} ms (goal < 50 ms)")
        print(f"29-statement player at 262,144 subpages, peak: {g['peak_mib']:.0f} MiB (goal < 500 MiB)")
    c = row("fork/write/exit churn", 10000)
    if c and "error" not in c:
        print(f"10,000 statements: last tenth {c['last_ms']:.3f} ms / first tenth {c['first_ms']:.3f} ms "
              f"= {c['last_ms'] / c['first_ms']:.2f} (goal <= 2)")
    if results.get("eras"):
        worst = max(results["eras"].items(), key=lambda kv: kv[1]["new_median_ms"])
        print(f"slowest era's median at 512 subpages: {worst[0]} {worst[1]['new_median_ms']:.3f} ms (goal < 1 ms)")
    if "check_s" in results:
        print(f"thpviz check data/scenarios: {results['check_s']:.2f} s (goal < 3 s)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=10, help="repeats of the per-era workload")
    ap.add_argument("--quick", action="store_true", help="fewer points per series")
    ap.add_argument("--full", action="store_true",
                    help="run the baseline at every point too (the old engine needs ~5 GiB and minutes for a "
                         "1 GiB THP with snapshots, and ~75 ms a step after 10,000 statements)")
    ap.add_argument("--series", nargs="*", choices=list(SERIES), help="only these series")
    ap.add_argument("--era", default="4.6", help="era of the series (default 4.6)")
    ap.add_argument("--no-baseline", action="store_true", help="measure only the current engine")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per point and engine")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    print(f"machine: {machine()}")
    results: dict = {"machine": machine(), "baseline": BASELINE}
    with tempfile.TemporaryDirectory(prefix="thpviz-baseline-") as tmp:
        roots = {"new": str(ROOT)}
        if not args.no_baseline:
            base = baseline_tree(tmp)
            if base is None:
                print(f"(baseline {BASELINE[:12]} not available from git: measuring the current engine only)")
            else:
                roots["old"] = base
                print(f"baseline: the engine at {BASELINE[:12]} (before issue 12), unpacked in {tmp}")
        # the old engine's known walls: above these it takes minutes or GiBs
        # (1,000 churn statements with snapshots: 11.5 GiB on the machine of
        # the recorded run)
        limits = {} if args.full else {"statements": 1000, "statements with snapshots": 300,
                                       "subpages with snapshots": 65536}
        bench_eras(roots, args.repeat, args.timeout, results)
        for name in args.series or list(SERIES):
            run_series(name, roots, args.quick, args.era, limits, args.timeout, results)
    bench_statement_kinds(max(1, args.repeat // 5))
    bench_cli(results)
    goals(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
