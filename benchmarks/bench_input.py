"""Input benchmarks: parsing and checking long scenarios, and fuzz throughput.

    .venv/bin/python benchmarks/bench_input.py [--full]

Every number is compared with a baseline measured in the same run, so the
ratios say whether the cost grows linearly with the input:

* parse: a file of N lines against one of N/10 lines (linear: ratio ~10),
  and a line of 100,000 blanks against one of 10,000 (linear: ~10; the old
  backtracking expect regex gave ~100);
* check: ``thpviz check`` (every era, in this process) of a long scenario of
  2N statements against N statements, for two shapes: one THP written over
  and over (``writes``), and processes that map, pin, fork, exit and unpin in
  turn (``cycles``, so the run's history of exited processes and released
  pins grows); linear: ~2;
* fuzz: byte-mutated litmus files through ``thpviz check`` per second, as
  tests/test_fuzz.py runs them.

``--full`` also checks a 100,000-line file (minutes: every statement runs
under every era).
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from thpviz.cli import main  # noqa: E402
from thpviz.eras import ERAS  # noqa: E402
from thpviz.scenario import parse_text  # noqa: E402


def writes(n: int) -> str:
    return "thp: 512\nP: mmap A\nP: write A\n" + "".join(f"P: write A[{i % 512}]\n" for i in range(n))


CYCLE = ["P{i}: mmap A", "P{i}: write A", "P{i}: pin A[5] rw as d{i}", "P{i}: fork C{i}", "C{i}: exit",
         "P{i}: mprotect A ro", "P{i}: mprotect A rw", "P{i}: write A[5]", "dma_write d{i}", "unpin d{i}",
         "P{i}: exit"]


def cycles(n: int) -> str:
    lines: list[str] = []
    i = 0
    while len(lines) < n:
        lines += [c.format(i=i) for c in CYCLE]
        i += 1
    return "thp: 16\n" + "\n".join(lines[:n]) + "\n"


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def check_seconds(text: str) -> float:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "long.thp"
        f.write_text(text)
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            t = time.perf_counter()
            code = main(["check", str(f)])
            el = time.perf_counter() - t
    assert code == 0, code
    return el


def fuzz_rate(seconds: float) -> tuple[int, float]:
    from test_fuzz import LITMUS, mutate

    donors = [p.read_bytes() for p in LITMUS]
    rng = random.Random(1)
    n, t0 = 0, time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "m.thp"
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            while time.perf_counter() - t0 < seconds:
                f.write_bytes(mutate(rng.choice(donors), rng, donors))
                main(["check", str(f)])
                n += 1
    el = time.perf_counter() - t0
    return n, n / el


def main_bench() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="also check a 100,000-line file")
    ap.add_argument("--n", type=int, default=500, help="statements of the shorter check (default 500)")
    a = ap.parse_args()
    eras = list(ERAS)
    print(f"eras: {len(eras)} ({', '.join(eras)})")

    big, small = writes(100_000), writes(10_000)
    tb, ts = timed(lambda: parse_text(big)), timed(lambda: parse_text(small))
    print(f"parse 100,000 lines: {tb:.2f} s ({100_000 / tb:,.0f} lines/s); ratio to 10,000 lines: {tb / ts:.1f}")
    head = "thp: 8\nP: mmap A\n"
    long_, short = (head + "expect 4.6" + " " * k + "x: new\n" for k in (100_000, 10_000))

    def bad(text):
        try:
            parse_text(text)
        except Exception:  # noqa: BLE001 - the error is the point
            pass

    tl, tsh = timed(lambda: bad(long_)), timed(lambda: bad(short))
    print(f"expect line of 100,000 blanks: {tl * 1000:.1f} ms; ratio to 10,000 blanks: {tl / max(tsh, 1e-9):.1f}")

    for name, gen in (("writes", writes), ("cycles", cycles)):
        t1 = check_seconds(gen(a.n))
        t2 = check_seconds(gen(2 * a.n))
        print(f"check {name}: {a.n} statements {t1:.2f} s, {2 * a.n} statements {t2:.2f} s "
              f"(ratio {t2 / t1:.2f}; {t2 / (2 * a.n) / len(eras) * 1e3:.2f} ms per statement and era)")

    n, rate = fuzz_rate(20.0)
    print(f"fuzz: {n} mutated litmus files through thpviz check in 20 s ({rate:.1f} per second)")

    if a.full:
        t = check_seconds(writes(100_000))
        print(f"check of a 100,000-line file (writes): {t:.0f} s")


if __name__ == "__main__":
    main_bench()
