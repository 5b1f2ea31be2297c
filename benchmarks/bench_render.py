"""How long from "step" to a finished SVG, and how long a storyboard takes.

1. Three processes and two THPs of 512 subpages, ~50 statements: for each
   statement, time the engine step (clone the world, apply the statement,
   check the invariants -- what the runner does), the DOT text (scene +
   writer) and the ``dot -Tsvg`` run.  Target: p95 of the total < 50 ms.
2. A 10-statement scenario (512 subpages) as a storyboard under three eras
   (every frame rendered).  Target: < 2 s.

Run: .venv/bin/python benchmarks/bench_render.py
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from thpviz import invariants  # noqa: E402
from thpviz.eras import get  # noqa: E402
from thpviz.model.world import World  # noqa: E402
from thpviz.render.dot import scene_dot  # noqa: E402
from thpviz.render.graphviz_run import render_svg  # noqa: E402
from thpviz.render.scene import build_scene  # noqa: E402
from thpviz.render.storyboard import storyboard_html  # noqa: E402
from thpviz.scenario import parse_text  # noqa: E402
from thpviz.scenario.runner import _apply  # noqa: E402


def step_scenario() -> str:
    """P maps two THPs, forks C, C forks D; then a mix of mprotect cycles,
    pins, unpins, reads and writes in all three."""
    lines = ["thp: 512", "P: mmap A 2", "P: write A", "P: fork C", "C: fork D", "P: split_pmd A[0:512]"]
    for i in range(9):
        a = 16 * i
        lines += [
            f"P: mprotect A[{a}:{a + 16}] ro",
            f"P: mprotect A[{a}:{a + 16}] rw",
            f"P: pin A[{a + 3}] rw as pin{i}",
            f"D: write A[{600 + i}]",
            f"C: read A[{700 + 4 * i}:{704 + 4 * i}]",
        ]
        if i % 2:
            lines.append(f"unpin pin{i - 1}")
    return "\n".join(lines) + "\n"


STORY = """\
title: storyboard benchmark
thp: 512
P: mmap A
P: write A
P: pin A[5] rw as dma
P: fork C
P: split_pmd A[0:256]
C: munmap A[0:256]
P: munmap A[256:512]
C: write A[300]
P: write A[5]
dma_read dma
"""


def pct(values, p):
    values = sorted(values)
    i = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[i]


def bench_steps(era_id: str = "4.5"):
    scn = parse_text(step_scenario(), "<bench>")
    era = get(era_id)
    world = World(era, scn.thp)
    rows = {"engine step": [], "DOT text": [], "dot -Tsvg": [], "total": []}
    sizes = []
    for st in scn.statements:
        t0 = time.perf_counter()
        prev = world
        world = prev.clone()
        world.log.faults.clear()
        world.log.events.clear()
        _apply(world, st)
        invariants.check(world)
        t1 = time.perf_counter()
        dot = scene_dot(build_scene(world, prev, None), legend=False, caption=False)
        t2 = time.perf_counter()
        svg = render_svg(dot)
        t3 = time.perf_counter()
        rows["engine step"].append(t1 - t0)
        rows["DOT text"].append(t2 - t1)
        rows["dot -Tsvg"].append(t3 - t2)
        rows["total"].append(t3 - t0)
        sizes.append((len(dot), len(svg)))
    procs = len(world.alive_mms())
    thps = sum(1 for h in world.mem.page_starts() if world.mem.nr[h] > 1 and world.mem.kind[h] == 0)
    return rows, sizes, len(scn.statements), procs, thps


def bench_storyboard(eras=("4.5", "andrea-v1", "4.6"), repeat: int = 3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        html = storyboard_html(STORY, list(eras))
        times.append(time.perf_counter() - t0)
    return times, len(html)


def main() -> None:
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}")
    rows, sizes, n, procs, thps = bench_steps()
    print(f"\n1. step -> SVG, era 4.5, thp 512: {n} statements, {procs} processes at the end, "
          f"{thps} THPs ever allocated")
    print(f"   DOT text {min(s[0] for s in sizes)}..{max(s[0] for s in sizes)} bytes, "
          f"SVG {min(s[1] for s in sizes)}..{max(s[1] for s in sizes)} bytes")
    print(f"   {'phase':<12} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, vals in rows.items():
        ms = [v * 1000 for v in vals]
        print(f"   {name:<12} {statistics.median(ms):8.1f} {pct(ms, 95):8.1f} {max(ms):8.1f}")
    p95 = pct([v * 1000 for v in rows["total"]], 95)
    print(f"   target p95 < 50 ms: {'met' if p95 < 50 else 'MISSED'} ({p95:.1f} ms)")

    times, size = bench_storyboard()
    print(f"\n2. storyboard, {STORY.count(chr(10)) - 2} statements x 3 eras (4.5, andrea-v1, 4.6), thp 512, "
          f"{size // 1024} KiB of HTML")
    print(f"   {'run':<12} {'seconds':>8}")
    for i, t in enumerate(times, 1):
        print(f"   {i:<12} {t:8.2f}")
    best = min(times)
    print(f"   target < 2 s: {'met' if max(times) < 2 else 'MISSED'} (best {best:.2f} s, worst {max(times):.2f} s)")


if __name__ == "__main__":
    main()
