"""Random scenarios for ``thpviz live --random N``: the model and the kernel
judge the same random statement sequence, step by step.

A hand-written scenario tests what its author thought of; a random one
tests what nobody did.  Each scenario here is a random walk over the
explorer's alphabet (:mod:`thpviz.explore.alphabet`) at the kernel's THP
size (512 subpages), drawn from every statement the lab can run on a host:
up to four processes, one or two regions of one or two THPs (the second
often ``nohuge``: order-0 pages only), two pins or vmsplice references at
once, ``mprotect``, ``mremap``, ``MADV_DONTNEED`` / ``DONTFORK`` /
``DOFORK`` and PMD splits, ending with a write where one is possible.
Every walk maps its regions first, and most then write one (the lab's
read-only pin cannot hold a zero page the way a long-term pin does, see
docs/live-lab.md).  Every statement is kept
only if the model accepts it, and the ``expect`` lines are the model's own
verdicts, so any disagreement the lab reports -- in the verdict or at any
step -- is one between the model and the kernel.

The same seed gives the same scenario everywhere.  Run on this project's
machines (docs/live-lab.md, "Random scenarios"), this found the 6.13 change
to write faults on the huge zero page (1ced09e0331f) that the 6.15 era
lacked.
"""

from __future__ import annotations

import random
from pathlib import Path

#: operations drawn, and how often (others: 1)
OPS = ("mmap", "read", "write", "fork", "exit", "munmap", "dontneed", "dontfork", "dofork", "mprotect",
       "mremap", "split_pmd", "pin", "pin-ro", "vmsplice", "unpin", "dma_write", "dma_read")
WEIGHTS = {"write": 6, "fork": 3, "pin": 3, "pin-ro": 2, "mprotect": 2, "vmsplice": 2, "exit": 2, "munmap": 2,
           "split_pmd": 2, "read": 2, "dma_write": 2}
#: cut points inside a THP (subpage offsets a range may start or end at)
CUTS = ((0, 256), (0, 128, 256, 384), (0, 1, 256, 511))
THP = 512


def random_scenario(seed: int) -> str:
    """The ``.thp`` text of random scenario ``seed``, with an ``expect`` line
    for every implemented era."""
    from ..eras import get
    from ..explore.alphabet import Alphabet
    from ..explore.trace import scenario_text
    from ..explore.walk import random_walk

    rng = random.Random(f"thpviz-live-random/{seed}")
    regions = rng.choice((1, 2))
    alphabet = Alphabet(thp=THP, procs=rng.choice((2, 3, 4)), regions=regions,
                        extents=rng.choice((1, 2)), pins=2, ops=OPS, cuts=rng.choice(CUTS),
                        nohuge=("B",) if regions == 2 and rng.random() < 0.5 else ())
    # every region is mapped first; most walks then write one
    prefix = ["mmap"] * regions + (["write"] if rng.random() < 0.6 else [])
    n = len(prefix) + rng.randint(3, 9)
    trace = random_walk(alphabet, get("6.15"), rng, n, WEIGHTS, prefix=prefix, budget=30 * n)
    return scenario_text(trace, THP, f"random scenario {seed}", f"thpviz live --random (seed {seed})",
                         notes=[f"{alphabet.describe()}"])


def write_scenarios(folder: Path, seed: int, n: int) -> list[str]:
    """Write scenarios ``seed`` .. ``seed + n - 1`` into ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in range(seed, seed + n):
        p = folder / f"random-{s}.thp"
        p.write_text(random_scenario(s), encoding="utf-8")
        paths.append(str(p))
    return paths
