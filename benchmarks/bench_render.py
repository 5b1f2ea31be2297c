"""How long from a step to a finished SVG, how big diagrams get at scale, and
whether they stay legible -- each figure beside the renderer as it was
before issue 12 (``--baseline``, default ``2e66db9``), measured in the same
run: that revision's ``thpviz`` is unpacked from git into a temporary
directory and both are driven by the same measuring code, each in its own
Python process.

1. step -> SVG: three processes and two THPs of 512 subpages, ~50
   statements; per statement the engine step, the DOT text (scene +
   writer) and ``dot -Tsvg`` through the long-lived ``dot``.
   Target: p95 of the total < 20 ms.
2. scale: the last step of fork chains and trees (2-200 processes), THPs of
   16-262,144 subpages, 1-64 extents and combs of unmapped subpages; per
   case the DOT text (scene + writer), one ``dot -Tsvg`` run, the DOT size,
   the graph's nodes and edges, the SVG's size.  Targets: a fork chain of
   50 under 1 s; every diagram under 2 s and within the size budget.
   A layout still running after ``--timeout`` seconds is reported as such.
3. legibility: a split 512-subpage THP in two processes (and the
   storyboard scenario's last step): SVG width and the smallest text in
   CSS px when shown in a 750 px column.  Target: >= 11 px.
4. storyboard: 10 statements x 3 eras, every frame rendered.  Target < 2 s.
5. the long-lived ``dot``: resident size after 1,000 graphs (recycled
   now, growing before).

Run: .venv/bin/python benchmarks/bench_render.py [--quick] [--baseline REV] [--timeout S]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from thpviz.render import stress  # noqa: E402

BASELINE = "2e66db9"  # the renderer before issue 12 (bounded diagrams)


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


def scale_cases(quick: bool) -> list[tuple[str, str]]:
    procs = (2, 10, 30, 50, 200) if quick else (2, 5, 10, 20, 30, 50, 100, 200)
    out = [(f"chain {n}", stress.fork_chain(n)) for n in procs]
    out += [(f"tree {n}", stress.fork_tree(n)) for n in (2, 10, 50, 200)]
    out += [(f"subpages {s}", stress.big_thp(s)) for s in ((16, 512, 65536, 262144) if quick else
                                                            (16, 512, 4096, 65536, 262144))]
    out += [(f"extents {e}", stress.extents(e)) for e in (1, 4, 16, 64)]
    out += [("comb 512/2", stress.comb(512)), ("comb 2048/2", stress.comb(2048))]
    return out


# --------------------------------------------------------------- the child
# Runs in a fresh Python process against one thpviz tree (this one or the
# baseline), so both are measured by the same code.  It uses only what both
# trees have: parse_text, eras.get, World, runner.execute, dot.snapshot_dot,
# graphviz_run.render/render_svg, storyboard.storyboard_html.
CHILD = r'''
import json, re, statistics, sys, time
from thpviz.eras import get
from thpviz.model.world import World
from thpviz.scenario import parse_text
from thpviz.scenario.runner import execute
from thpviz.render import graphviz_run
from thpviz.render.dot import snapshot_dot

def emit(d):
    print(json.dumps(d), flush=True)

def is_timeout(err):
    return "Timeout" in type(err).__name__

def last_two(text, era):
    scn = parse_text(text, "<bench>")
    era = get(era)
    world = World(era, scn.thp)
    prev = step = None
    for st in scn.statements:
        prev = world
        world, step = execute(world.clone(), era, st)
    return world, prev, step

def svg_facts(svg):
    m = re.search(r'<svg\b[^>]*?width="([\d.]+)pt" height="([\d.]+)pt"[^>]*?viewBox="[\d.-]+ [\d.-]+ ([\d.]+)', svg, re.S)
    sizes = [float(x) for x in re.findall(r'font-size="([\d.]+)"', svg)]
    return float(m.group(1)), float(m.group(2)), float(m.group(3)), min(sizes) if sizes else 0.0

def count(dot):
    nodes = len(re.findall(r'^"(?:[^"\\]|\\.)*" \[label=', dot, re.M))
    edges = sum(1 for l in dot.splitlines() if " -> " in l and "style=invis" not in l)
    return nodes, edges

def scale(job):
    for label, text in job["cases"]:
        world, prev, step = last_two(text, job["era"])
        kw = {"legend": False}
        if job.get("layout", "wide") != "wide":
            kw["layout"] = job["layout"]
        t0 = time.perf_counter()
        dot = snapshot_dot(world, prev, step, **kw)
        t1 = time.perf_counter()
        out = {"label": label, "dot_ms": (t1 - t0) * 1e3, "dot_bytes": len(dot.encode())}
        out["nodes"], out["edges"] = count(dot)
        try:
            svg = graphviz_run.render(dot, "svg", timeout=job["timeout"]).decode()
            out["layout_ms"] = (time.perf_counter() - t1) * 1e3
            out["w"], out["h"], out["vbw"], out["font"] = svg_facts(svg)
        except Exception as err:
            if not is_timeout(err):
                raise
            out["layout_ms"] = None
        emit(out)

def steps(job):
    scn = parse_text(job["text"], "<bench>")
    era = get(job["era"])
    world = World(era, scn.thp)
    rows = {"engine step": [], "DOT text": [], "dot -Tsvg": [], "total": []}
    for st in scn.statements:
        t0 = time.perf_counter()
        prev = world
        world, res = execute(world.clone(), era, st)
        t1 = time.perf_counter()
        dot = snapshot_dot(world, prev, res, legend=False, caption=False)
        t2 = time.perf_counter()
        graphviz_run.render_svg(dot)
        t3 = time.perf_counter()
        for k, v in zip(rows, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
            rows[k].append(v * 1e3)
    emit(rows)

def story(job):
    from thpviz.render.storyboard import storyboard_html
    times = []
    for _ in range(job["repeat"]):
        t0 = time.perf_counter()
        html = storyboard_html(job["text"], job["eras"])
        times.append(time.perf_counter() - t0)
    emit({"times": times, "bytes": len(html)})

def server(job):
    texts = []
    world, prev, step = last_two(job["text"], job["era"])
    base = snapshot_dot(world, prev, step, legend=False)
    pids = set()
    for i in range(job["n"]):
        graphviz_run.render_svg(base + f"// {i}\n")
        pids.add(graphviz_run._server.proc.pid)
    rss = 0
    for line in open(f"/proc/{graphviz_run._server.proc.pid}/status"):
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    emit({"rss_kib": rss, "processes": len(pids)})

job = json.loads(sys.stdin.read())
globals()[job["mode"]](job)
'''


class Tree:
    """One thpviz tree the child runs against."""

    def __init__(self, name: str, path: Path):
        self.name, self.path = name, path

    def run(self, job: dict, wall_timeout: float = 3600) -> list[dict]:
        env = dict(os.environ, PYTHONPATH=str(self.path), THPVIZ_DOT_SERVER="1")
        p = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(job), capture_output=True, text=True,
                           env=env, cwd=self.path, timeout=wall_timeout)
        if p.returncode != 0:
            raise RuntimeError(f"{self.name}: {p.stderr[-2000:]}")
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def baseline_tree(rev: str, tmp: Path) -> Tree:
    """The baseline revision's thpviz, unpacked from git."""
    data = subprocess.run(["git", "archive", rev, "thpviz"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(tmp)
    return Tree(f"before ({rev})", tmp)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))]


def px(row, width=750.0):
    """Smallest text in CSS px in a ``width`` px column (never enlarged)."""
    if row.get("layout_ms") is None:
        return None
    shown = min(row["w"] * 4 / 3, width)
    return row["font"] * shown / row["vbw"]


def fmt_ms(v):
    return "   timeout" if v is None else f"{v:10.1f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", default=BASELINE, help="git revision of the renderer to compare with")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds a baseline layout may take")
    ap.add_argument("--quick", action="store_true", help="fewer sizes")
    args = ap.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cpus, "
          f"python {platform.python_version()}, load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        old = baseline_tree(args.baseline, Path(tmp))
        new = Tree("now", ROOT)
        trees = (new, old)

        # 1. step -> SVG
        print("\n1. step -> SVG, era 4.5, thp 512, 3 processes (ms)")
        print(f"   {'phase':<12} {'':>9}{'now p50':>9} {'p95':>7} {'before p50':>11} {'p95':>7}")
        res = {t.name: t.run({"mode": "steps", "text": step_scenario(), "era": "4.5"})[0] for t in trees}
        for phase in res[new.name]:
            a, b = res[new.name][phase], res[old.name][phase]
            print(f"   {phase:<12} {'':>9}{statistics.median(a):9.1f} {pct(a, 95):7.1f} "
                  f"{statistics.median(b):11.1f} {pct(b, 95):7.1f}")
        p95 = pct(res[new.name]["total"], 95)
        print(f"   target p95 < 20 ms: {'met' if p95 < 20 else 'MISSED'} ({p95:.1f} ms now, "
              f"{pct(res[old.name]['total'], 95):.1f} ms before)")

        # 2. scale
        from thpviz.render.fold import DEFAULT_BUDGET as B

        cases = scale_cases(args.quick)
        print(f"\n2. scale: the last step of each scenario, era 4.5; DOT = scene + writer, layout = one dot -Tsvg "
              f"run\n   (budget now: {B.nodes} nodes, {B.edges} edges, {B.cells} cells, {B.dot_bytes} DOT bytes; "
              f"baseline layouts stop after {args.timeout:g} s)")
        print(f"   {'case':<16} {'now DOT ms':>10} {'layout ms':>10} {'nodes':>5} {'edges':>5} {'KiB':>5} "
              f"{'size pt':>11}  |  {'before DOT':>10} {'layout ms':>10} {'edges':>5} {'KiB':>5} {'size pt':>11}")
        now = {r["label"]: r for r in new.run({"mode": "scale", "cases": cases, "era": "4.5", "timeout": 60})}
        before = {}
        skip = set()
        for label, text in cases:
            series = label.split()[0]
            if series in skip:
                continue
            r = old.run({"mode": "scale", "cases": [(label, text)], "era": "4.5", "timeout": args.timeout})[0]
            before[label] = r
            if r["layout_ms"] is None:
                skip.add(series)  # bigger ones of the series only take longer
        worst = 0.0
        over = []
        for label, _ in cases:
            a = now[label]
            total = a["dot_ms"] + (a["layout_ms"] or 1e9)
            worst = max(worst, total)
            if a["nodes"] > B.nodes or a["edges"] > B.edges or a["dot_bytes"] > B.dot_bytes:
                over.append(label)
            size = f"{a['w']:.0f}x{a['h']:.0f}" if a.get("w") else "-"
            line = (f"   {label:<16} {a['dot_ms']:10.1f} {fmt_ms(a['layout_ms'])} {a['nodes']:5d} {a['edges']:5d} "
                    f"{a['dot_bytes'] / 1024:5.0f} {size:>11}  |  ")
            b = before.get(label)
            if b is None:
                line += f"{'(skipped: a smaller case timed out)':>46}"
            else:
                bsize = f"{b['w']:.0f}x{b['h']:.0f}" if b.get("w") else "-"
                line += (f"{b['dot_ms']:10.1f} {fmt_ms(b['layout_ms'])} {b['edges']:5d} {b['dot_bytes'] / 1024:5.0f} "
                         f"{bsize:>11}")
            print(line)
        chain = now["chain 50"]
        t50 = (chain["dot_ms"] + chain["layout_ms"]) / 1e3
        b50 = before.get("chain 50")
        b50t = "timed out" if not b50 or b50["layout_ms"] is None else f"{(b50['dot_ms'] + b50['layout_ms']) / 1e3:.2f} s"
        print(f"   target fork chain of 50 < 1 s: {'met' if t50 < 1 else 'MISSED'} ({t50:.2f} s now, {b50t} before)")
        print(f"   target every diagram < 2 s: {'met' if worst < 2000 else 'MISSED'} (worst {worst / 1e3:.2f} s)")
        print(f"   target within the size budget: {'met' if not over else 'MISSED: ' + ', '.join(over)}")

        # 3. legibility
        print("\n3. legibility in a 750 px column (smallest text, CSS px; SVG natural width)")
        leg = [("split 512 THP, 2 procs", stress.split_two(512)), ("storyboard scenario", STORY)]
        rows = {}
        for t in trees:
            rows[t.name] = t.run({"mode": "scale", "cases": leg, "era": "4.5", "timeout": 60})
        narrow = new.run({"mode": "scale", "cases": leg, "era": "4.5", "timeout": 60, "layout": "narrow"})
        print(f"   {'case':<24} {'now px':>7} {'width px':>9} {'narrow px':>10} {'width px':>9}  |  "
              f"{'before px':>9} {'width px':>9}")
        ok = True
        for i, (label, _) in enumerate(leg):
            a, n, b = rows[new.name][i], narrow[i], rows[old.name][i]
            ok &= px(a) >= 11
            print(f"   {label:<24} {px(a):7.1f} {a['w'] * 4 / 3:9.0f} {px(n):10.1f} {n['w'] * 4 / 3:9.0f}  |  "
                  f"{px(b):9.1f} {b['w'] * 4 / 3:9.0f}")
        print(f"   target >= 11 px at 750 px: {'met' if ok else 'MISSED'}")

        # 4. storyboard
        print("\n4. storyboard: 10 statements x 3 eras (4.5, andrea-v1, 4.6), thp 512, every frame (s)")
        for t in trees:
            r = t.run({"mode": "story", "text": STORY, "eras": ["4.5", "andrea-v1", "4.6"], "repeat": 3})[0]
            print(f"   {t.name:<16} best {min(r['times']):.2f}  worst {max(r['times']):.2f}  "
                  f"({r['bytes'] // 1024} KiB of HTML)")

        # 5. the long-lived dot
        print("\n5. the long-lived dot after 1,000 graphs (split 512 THP diagram)")
        for t in trees:
            r = t.run({"mode": "server", "text": stress.split_two(512), "era": "4.5", "n": 1000})[0]
            print(f"   {t.name:<16} resident {r['rss_kib'] / 1024:6.1f} MiB, {r['processes']} dot process(es) used")


if __name__ == "__main__":
    main()
