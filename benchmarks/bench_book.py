"""How long the book takes to build, clean and cached.

Builds ``book/`` strictly (``jupyter-book build book -W -n --keep-going``)
into a temporary output folder, so ``book/_build`` is left alone:

* clean: ``--all`` with no jupyter-cache, so every chapter is executed;
* cached: ``--all`` again, every page re-read, executions from the cache;
* incremental: no flag, nothing changed (what an edit-and-look loop costs).

Targets on the 2-core reference machine: clean < 120 s, cached < 20 s.
Prints one table row per build, plus the pages and HTML size.

Usage: .venv/bin/python benchmarks/bench_book.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JB = Path(sys.executable).with_name("jupyter-book")
TARGETS = {"clean": 120.0, "cached": 20.0}


def build(out: Path, *flags: str) -> float:
    cmd = [str(JB), "build", str(ROOT / "book"), "-W", "-n", "--keep-going", "--path-output", str(out), *flags]
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if res.returncode != 0:
        sys.stderr.write(res.stdout[-4000:] + res.stderr[-4000:])
        raise SystemExit(f"build failed (rc {res.returncode}): {' '.join(cmd)}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1, help="runs of each kind (best is reported)")
    args = ap.parse_args()

    rows: dict[str, list[float]] = {"clean": [], "cached": [], "incremental": []}
    html = None
    for _ in range(args.repeat):
        out = Path(tempfile.mkdtemp(prefix="thpviz-bench-book-"))
        try:
            rows["clean"].append(build(out, "--all"))
            rows["cached"].append(build(out, "--all"))
            rows["incremental"].append(build(out))
            html = out / "_build" / "html"
            pages = sorted(p.name for p in html.glob("*.html") if p.name not in ("genindex.html", "search.html", "index.html"))
            size = sum(f.stat().st_size for f in html.rglob("*") if f.is_file())
        finally:
            shutil.rmtree(out, ignore_errors=True)

    print(f"book build times ({platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()})")
    print(f"{'build':<12} {'best s':>8} {'runs':>5} {'target s':>9}  ok")
    for name, times in rows.items():
        best = min(times)
        target = TARGETS.get(name)
        ok = "" if target is None else ("yes" if best < target else "NO")
        print(f"{name:<12} {best:>8.1f} {len(times):>5} {'' if target is None else f'{target:.0f}':>9}  {ok}")
    print(f"pages: {len(pages)} ({', '.join(p[:-5] for p in pages)})")
    print(f"HTML output: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
