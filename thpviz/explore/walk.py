"""Random walks over the explorer's alphabet: the statement sequences that
``thpviz practice`` asks about and ``thpviz live --random`` runs."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from .alphabet import Alphabet


def random_walk(alphabet: Alphabet, era, rng: random.Random, n: int, weights: Mapping[str, int], *,
                prefix: Sequence[str] = (), last: str = "write", last_required: bool = False,
                budget: int | None = None) -> list[str]:
    """Up to ``n`` statements drawn from ``alphabet`` (``weights`` per
    operation, 1 for the others), each kept only if ``era``'s model accepts
    it.  The first statements are ``P``'s, of the operations ``prefix``
    names, where the alphabet offers one; the last is a ``last`` statement
    where one is offered (with ``last_required``, none at all otherwise, and
    the walk stops short).  ``budget`` bounds the draws (default ``20 * n``)."""
    from ..model.world import World
    from ..scenario.runner import execute

    world = World(era, alphabet.thp)
    trace: list[str] = []
    for _ in range(budget if budget is not None else 20 * n):
        if len(trace) == n:
            break
        sts = alphabet.statements(world)
        if len(trace) < len(prefix):
            sts = [s for s in sts if s.op == prefix[len(trace)] and s.proc == "P"] or sts
        if len(trace) == n - 1:
            ends = [s for s in sts if s.op == last]
            sts = ends if ends or last_required else sts
        if not sts:
            break
        st = rng.choices(sts, weights=[weights.get(s.op, 1) for s in sts])[0]
        after, step = execute(world.clone(), era, st)
        if step.error:
            continue
        world = after
        trace.append(st.text)
    return trace
