"""Kernel eras as pluggable policies, keyed by the era ids of DESIGN.md.

``ERAS`` holds the implemented eras in chronological order; ``PLANNED`` the
ids reserved for later eras (see :mod:`thpviz.eras.base` for how each plugs
in).
"""

from __future__ import annotations

from .andrea_v1 import EraAndreaV1
from .base import Era
from .kirill_k1 import EraKirillK1
from .v4_4 import Era44
from .v4_5 import Era45
from .v4_6 import Era46

ERAS: dict[str, Era] = {e.id: e for e in (Era44(), Era45(), EraKirillK1(), EraAndreaV1(), Era46())}

PLANNED: dict[str, tuple[str, str]] = {
    "5.8": ("GUP breaks COW for reads; THP COW splits the PMD and copies one base page", "17839856fd58, 3917c80280c9"),
    "5.9": ("do_wp_page reuses only if page_count==1; fork copies pinned pages eagerly", "09854ba94c6a, 70e806e4e645"),
    "5.18": ("THP reuse needs page_count==1, else split + copy", "3bff7e3f1f16"),
    "5.19": ("PageAnonExclusive; R/O pins unshare", "6c287605fd56"),
    "6.1": ("5.19 plus the PTE mprotect write-upgrade (exclusive and dirty)", "64fe24a3e05e"),
    "6.12": ("6.1 plus the PMD mprotect write-upgrade; no dirty condition for private anon", "c27f479ef542"),
    "6.15": ("per-mm 'mapped shared' tracking for large folios; no per-page mapcount", "1da190f4d0a6"),
}

ALL_IDS = tuple(ERAS) + tuple(PLANNED)


def get(era_id: str) -> Era:
    if era_id in ERAS:
        return ERAS[era_id]
    if era_id in PLANNED:
        raise KeyError(f"era {era_id} is not implemented yet (planned)")
    raise KeyError(f"unknown era {era_id!r} (known: {', '.join(ALL_IDS)})")
