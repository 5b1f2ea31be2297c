"""Explorer benchmark: states per second and depth reached in a fixed time,
per era, for the explorer and for the naive search, in the same run.

    .venv/bin/python benchmarks/bench_explore.py [--seconds 60] [--era E ...]

Both searches look for every violation over the default alphabet (thp 8,
2 processes, 1 region, 1 pin) and keep going after finding them, until the
time is up:

* explorer -- breadth-first, the engine's ``World.clone``, canonical state
  fingerprints (each state expanded once);
* naive -- iterative deepening, ``copy.deepcopy`` of the world for every
  statement tried, no fingerprints (every node of the tree, again on every
  deeper pass).

``states/s`` counts distinct states (for the naive search: the distinct
states among its nodes, fingerprinted off its clock); ``nodes/s`` the
states each search expanded or would expand (for the explorer the same);
``stmts/s`` the statements executed; ``depth`` the last depth explored
completely.  The ratios are explorer / naive.

A second table times the parts of one explorer step on states sampled from a
search, without a profiler: the engine's statement (``execute``, which clones
once more for its own rollback), ``World.clone``, ``copy.deepcopy`` and the
fingerprint.
"""

from __future__ import annotations

import argparse
import copy
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from thpviz.eras import ERAS  # noqa: E402
from thpviz.explore.alphabet import Alphabet  # noqa: E402
from thpviz.explore.canon import fingerprint  # noqa: E402
from thpviz.explore.ops import GOALS  # noqa: E402
from thpviz.explore.search import naive_search, search  # noqa: E402
from thpviz.model.world import World  # noqa: E402
from thpviz.scenario.runner import execute  # noqa: E402

DEPTH = 50  # never reached: the time limit ends every search


def explorer(era, seconds: float):
    r = search([era], Alphabet(), DEPTH, goals=GOALS, time_limit=seconds, stop_when_found=False)
    return {"states": r.states, "nodes": r.states, "stmts": r.transitions, "seconds": r.seconds,
            "depth": r.complete_depth}


def naive(era, seconds: float):
    r = naive_search([era], Alphabet(), DEPTH, goals=GOALS, time_limit=seconds, stop_when_found=False,
                     distinct=True)
    return {"states": r.distinct_states, "nodes": r.states, "stmts": r.transitions, "seconds": r.seconds,
            "depth": r.complete_depth}


def sample_states(era, n: int, rng) -> list:
    a = Alphabet()
    out = []
    while len(out) < n:
        w = World(era, a.thp)
        for _ in range(rng.randint(2, 6)):
            sts = a.statements(w)
            if not sts:
                break
            w2, step = execute(w.clone(), era, rng.choice(sts))
            if not step.error:
                w = w2
        out.append(w)
    return out


def per_call_us(fn, items, repeat=3) -> float:
    best = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for x in items:
            fn(x)
        best.append((time.perf_counter() - t0) / len(items) * 1e6)
    return min(best)


def parts(era, rng) -> dict:
    states = sample_states(era, 300, rng)
    a = Alphabet()
    pairs = [(w, rng.choice(a.statements(w))) for w in states if a.statements(w)]
    return {
        "execute": per_call_us(lambda p: execute(p[0].clone(), era, p[1]), pairs)
                   - per_call_us(lambda p: p[0].clone(), pairs),
        "clone": per_call_us(lambda w: w.clone(), states),
        "deepcopy": per_call_us(copy.deepcopy, states, repeat=1),
        "fingerprint": per_call_us(fingerprint, states),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0, help="time per search (default 60)")
    ap.add_argument("--era", action="append", help="era id (repeatable; default: every implemented era)")
    args = ap.parse_args()
    eras = [ERAS[e] for e in args.era] if args.era else list(ERAS.values())
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}; "
          f"{args.seconds:.0f} s per search; alphabet: {Alphabet().describe()}")
    print(f"{'':<10} {'explorer':^28}   {'naive':^38}   {'ratio explorer/naive':^24}")
    print(f"{'era':<10} {'states/s':>9} {'stmts/s':>9} {'depth':>8}   {'states/s':>9} {'nodes/s':>9} "
          f"{'stmts/s':>9} {'depth':>8}   {'states/s':>8} {'stmts/s':>7} {'depth':>7}")
    for era in eras:
        fast = explorer(era, args.seconds)
        slow = naive(era, args.seconds)
        fs, ft = fast["states"] / fast["seconds"], fast["stmts"] / fast["seconds"]
        ns, nn, nt = (slow[k] / slow["seconds"] for k in ("states", "nodes", "stmts"))
        print(f"{era.id:<10} {fs:>9.0f} {ft:>9.0f} {fast['depth']:>8}   {ns:>9.0f} {nn:>9.0f} {nt:>9.0f} "
              f"{slow['depth']:>8}   {fs / ns:>8.2f} {ft / nt:>7.2f} {fast['depth'] - slow['depth']:>+7d}")
    print()
    print("Where one explorer step goes (microseconds per call, states sampled from random traces):")
    rng = random.Random(1)
    print(f"{'era':<10} {'execute':>8} {'clone':>8} {'deepcopy':>9} {'fingerprint':>12}")
    rows = []
    for era in eras:
        p = parts(era, rng)
        rows.append(p)
        print(f"{era.id:<10} {p['execute']:>8.0f} {p['clone']:>8.0f} {p['deepcopy']:>9.0f} {p['fingerprint']:>12.0f}")
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    step = med["execute"] + med["clone"] + med["fingerprint"]
    print(f"median explorer step ~{step:.0f} us: execute {med['execute'] / step:.0%} (its rollback clone and "
          f"invariant checks included), clone {med['clone'] / step:.0%}, fingerprint {med['fingerprint'] / step:.0%}")


if __name__ == "__main__":
    main()
