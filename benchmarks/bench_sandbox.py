"""What one Sandbox click costs as the scenario grows (issue 12 item 5).

Builds one valid scenario of N statements (a region of several huge pages
written, pinned, write-protected and restored, forks whose children exit),
then times the click that appends statement N:

* ``step``: :meth:`thpviz.widgets.Sandbox.add` with the display switched off
  -- parse the text, run only the new statement on the last snapshot;
* ``rerun``: the way the Sandbox worked before, measured in the same run --
  parse the text and run the whole scenario again with snapshots;
* ``click``: ``add`` with the display on (the counter table, and the
  diagram handed to ``dot`` on a worker thread with a placeholder shown:
  what a reader waits for before the widget answers);
* ``drawn``: the click plus waiting until the diagram is laid out (the
  graph cache cleared first, so ``dot`` really runs).

Target (issue 12): a click under 30 ms at 150 statements.  Prints the median
of ``--repeat`` clicks per size and the ratio rerun/step.

Usage: .venv/bin/python benchmarks/bench_sandbox.py [--thp 8] [--sizes 10,50,100,150] [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from thpviz.eras import get  # noqa: E402
from thpviz.render import graphviz_run  # noqa: E402
from thpviz.scenario import parse_text, run  # noqa: E402
from thpviz.widgets import Sandbox  # noqa: E402

TARGET_MS = 30.0


def statements(n: int, thp: int) -> list[str]:
    """``n`` statements that every era accepts, cycling through the
    operations the sandbox offers."""
    out = ["P: mmap A 4", "P: write A"]
    k = 0
    while len(out) < n:
        i = (k * 3) % (4 * thp)
        child = f"C{k}"
        out += [f"P: pin A[{i}] rw as pin{k}", "P: mprotect A ro", "P: mprotect A rw",
                f"P: write A[{i}]", f"P: fork {child}", f"{child}: exit", f"P: write A[{(i + 1) % (4 * thp)}]",
                f"P: unpin pin{k}", "P: read A"]
        k += 1
    return out[:n]


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def bench(n: int, thp: int, era: str, repeat: int) -> dict:
    lines = statements(n, thp)
    sb = Sandbox(era, thp=thp)
    sb.update = lambda: None  # the model only
    for line in lines[:-1]:
        assert sb.add(line), (line, sb.message.value)
    step, rerun, click = [], [], []
    body = f"thp: {thp}\n" + "\n".join(lines) + "\n"
    for _ in range(repeat):
        t0 = time.perf_counter()
        ok = sb.add(lines[-1])
        step.append(time.perf_counter() - t0)
        assert ok, sb.message.value
        sb.undo()
        t0 = time.perf_counter()
        run(parse_text(body, "<sandbox>"), get(era), keep_snapshots=True)
        rerun.append(time.perf_counter() - t0)
    del sb.update  # the display on again
    sb.update()
    sb.wait()
    drawn = []
    for _ in range(repeat):
        graphviz_run.clear_cache()
        t0 = time.perf_counter()
        ok = sb.add(lines[-1])
        click.append(time.perf_counter() - t0)
        sb.wait()
        drawn.append(time.perf_counter() - t0)
        assert ok
        sb.undo()
        sb.wait()
    return {"step": median_ms(step), "rerun": median_ms(rerun), "click": median_ms(click),
            "drawn": median_ms(drawn)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--thp", type=int, default=8, help="subpages per huge page (the Sandbox's default: 8)")
    ap.add_argument("--sizes", default="10,50,100,150")
    ap.add_argument("--era", default="4.6")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    print(f"sandbox click ({platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}), "
          f"era {args.era}, thp {args.thp}, median of {args.repeat}")
    print(f"{'statements':>10} {'step ms':>9} {'rerun ms':>9} {'rerun/step':>10} {'click ms':>9} {'drawn ms':>9}"
          f"  click < {TARGET_MS:.0f} ms")
    for n in (int(x) for x in args.sizes.split(",")):
        r = bench(n, args.thp, args.era, args.repeat)
        ok = "yes" if r["click"] < TARGET_MS else "NO"
        print(f"{n:>10} {r['step']:>9.2f} {r['rerun']:>9.2f} {r['rerun'] / r['step']:>10.1f} {r['click']:>9.2f}"
              f" {r['drawn']:>9.2f}  {ok}")


if __name__ == "__main__":
    main()
