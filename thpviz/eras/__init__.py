"""Kernel eras as pluggable policies, keyed by the era ids of DESIGN.md.

``ERAS`` holds the implemented eras in chronological order (the three 2016
proposals -- ``kirill-k1``, ``andrea-v1`` -- sit between 4.5 and the merged
fix ``4.6``).  Each module's docstring names the commits it models.
"""

from __future__ import annotations

from .andrea_v1 import EraAndreaV1
from .base import Era
from .kirill_k1 import EraKirillK1
from .v4_4 import Era44
from .v4_5 import Era45
from .v4_6 import Era46
from .v5_8 import Era58
from .v5_9 import Era59
from .v5_18 import Era518
from .v5_19 import Era519
from .v6_1 import Era61
from .v6_12 import Era612
from .v6_15 import Era615

ERAS: dict[str, Era] = {
    e.id: e
    for e in (
        Era44(), Era45(), EraKirillK1(), EraAndreaV1(), Era46(),
        Era58(), Era59(), Era518(), Era519(), Era61(), Era612(), Era615(),
    )
}

#: the 2016 eras of the thread, and the eras after it
THREAD_ERAS = ("4.4", "4.5", "kirill-k1", "andrea-v1", "4.6")
MODERN_ERAS = ("5.8", "5.9", "5.18", "5.19", "6.1", "6.12", "6.15")

#: era ids reserved for later (none at the moment)
PLANNED: dict[str, tuple[str, str]] = {}

ALL_IDS = tuple(ERAS) + tuple(PLANNED)


def get(era_id: str) -> Era:
    if era_id in ERAS:
        return ERAS[era_id]
    if era_id in PLANNED:
        raise KeyError(f"era {era_id} is not implemented yet (planned)")
    raise KeyError(f"unknown era {era_id!r} (known: {', '.join(ALL_IDS)})")
