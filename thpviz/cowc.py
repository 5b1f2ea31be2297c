"""The kernel's own COW selftest, ``tools/testing/selftests/mm/cow.c``,
replayed in the model.

cow.c (David Hildenbrand, 69c66add5663; read in Debian's 6.12.117 tree) runs
every test family on a set of memory configurations and judges each run by
what data ended up where: the child must keep its data when the parent
writes ("Basic COW"), a pipe must return the data it was given ("vmsplice"),
a pin must see the process's later writes ("io_uring", "R/O pin").  Here
each anonymous family that the ``.thp`` language can express is crossed with
each configuration, run under every era, and judged by the same criterion
from the model's data stamps -- not from thpviz's violation names, so the
table is an independent reading of the runs.

On Linux 6.18 every expressible cell passes (280 pass, 0 fail; research notes
cow-c-6.18.txt): the ``6.15`` column must be all ``pass``.  What cannot be
expressed is listed in :data:`NOT_MODELLED` with the reason.

Differences from cow.c kept on purpose, each harmless to the verdict:
cow.c's base page is a one-page mapping, here subpage 0 of a ``nohuge``
region; cow.c's mremap target is wherever mmap put it, here ``unaligned``;
the "R/O-mapped exclusive" and io_uring mprotect tests clear soft-dirty so
that 6.x mprotect does not map the page writable again -- soft-dirty is not
modelled, so in 6.0+ eras the page *is* writable again and the write takes
no fault (the data still goes where cow.c wants it); GUP-fast variants decide
like the slow path (GUP-fast refuses what needs a fault and falls back).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from .model.world import World

#: cow.c configurations thpviz cannot express, with the reason
NOT_MODELLED = (
    ("swapped-out base page, THP, PTE-mapped THP, single PTE (MADV_PAGEOUT)",
     "no swap: swap-cache references and the swap PTE's exclusive bit are not modelled"),
    ("hugetlb 2 MiB / 1 GiB", "hugetlbfs regions are not modelled"),
    ("mTHP sizes 16 KiB .. 1 MiB", "only PMD-sized THPs: a folio order other than the PMD's is not modelled"),
    ("Basic COW after fork() when collapsing (MADV_COLLAPSE)", "khugepaged / MADV_COLLAPSE is not modelled"),
    ("KSM (ksm_functional_tests)", "KSM is not modelled"),
    ("non-anonymous memory (shared zeropage, memfd, tmpfile, huge zeropage)",
     "file and shmem mappings are not modelled (the zero page is, but not as cow.c's second mapping)"),
)


@dataclass(frozen=True)
class Family:
    key: str
    title: str  # cow.c's test name
    check: str  # "child" | "pipe" | "pin"
    steps: tuple[str, ...]  # statements, R = the configuration's range


@dataclass(frozen=True)
class Config:
    key: str
    title: str  # cow.c's configuration name
    prefix: tuple[str, ...]
    range: str


FAMILIES = (
    Family("basic", "Basic COW after fork()", "child", ("P: fork C", "P: write {R}")),
    Family("basic-mprotect", "Basic COW after fork() with mprotect() optimization", "child",
           ("P: fork C", "P: mprotect {R} ro", "P: mprotect {R} rw", "P: write {R}")),
    Family("vmsplice-child", "vmsplice() + unmap in child", "pipe",
           ("P: fork C", "C: vmsplice {R} as pipe", "C: munmap {R}", "P: write {R}")),
    Family("vmsplice-child-mprotect", "vmsplice() + unmap in child with mprotect() optimization", "pipe",
           ("P: fork C", "C: vmsplice {R} as pipe", "C: munmap {R}", "P: mprotect {R} ro",
            "P: mprotect {R} rw", "P: write {R}")),
    Family("vmsplice-before-fork", "vmsplice() before fork(), unmap in parent after fork()", "pipe",
           ("P: vmsplice {R} as pipe", "P: fork C", "P: munmap {R}", "C: write {R}")),
    Family("vmsplice-after-fork", "vmsplice() + unmap in parent after fork()", "pipe",
           ("P: fork C", "P: vmsplice {R} as pipe", "P: munmap {R}", "C: write {R}")),
    Family("iouring-ro", "R/O-mapping a page registered as iouring fixed buffer", "pin",
           ("P: pin {R} rw as dev", "P: mprotect {R} ro", "P: mprotect {R} rw", "P: write {R}")),
    Family("iouring-fork", "fork() with an iouring fixed buffer", "pin",
           ("P: pin {R} rw as dev", "P: fork C", "P: write {R}")),
    Family("ro-pin-shared", "R/O GUP pin on R/O-mapped shared page", "pin",
           ("P: fork C", "P: pin {R} ro as dev", "P: write {R}")),
    Family("ro-pin-previously-shared", "R/O GUP pin on R/O-mapped previously-shared page", "pin",
           ("P: fork C", "C: exit", "P: pin {R} ro as dev", "P: write {R}")),
    Family("ro-pin-exclusive", "R/O GUP pin on R/O-mapped exclusive page", "pin",
           ("P: mprotect {R} ro", "P: mprotect {R} rw", "P: pin {R} ro as dev", "P: write {R}")),
)

_THP = ("P: mmap A", "P: write A")
CONFIGS = (
    Config("base", "base page", ("P: mmap A nohuge", "P: write A[0]"), "A[0]"),
    Config("pmd", "PMD-mapped THP", _THP, "A"),
    Config("pte", "PTE-mapped THP", _THP + ("P: mprotect A[1] ro", "P: mprotect A[1] rw"), "A"),
    Config("single-pte", "single PTE of a THP", _THP + ("P: dontneed A[1:]",), "A[0]"),
    Config("mremap", "partially mremap()'ed THP", _THP + ("P: mremap A[256:] B unaligned",), "B"),
    Config("shared", "partially shared THP",
           _THP + ("P: dontfork A[1:]", "P: fork X", "X: exit", "P: dofork A[1:]"), "A"),
)


def scenario_text(family: Family, config: Config) -> str:
    """The ``.thp`` text of one cell (no expect lines: cow.c judges)."""
    lines = [f"title: cow.c: {family.title} -- {config.title}",
             "source: 69c66add5663", "thp: 512", ""]
    lines += list(config.prefix)
    lines += [s.format(R=config.range) for s in family.steps]
    return "\n".join(lines) + "\n"


def _data(world: World) -> np.ndarray:
    """The data stamps of the world's frames."""
    return world.mem.data


def judge(family: Family, config: Config, era) -> tuple[bool, str]:
    """Run one cell under ``era`` and judge it as cow.c does.  Returns
    (passed, what happened)."""
    import numpy as np

    from .model.world import World
    from .scenario import parse_text
    from .scenario.runner import address_range, execute

    scn = parse_text(scenario_text(family, config), f"<cow.c {family.key} {config.key}>")
    world = World(era, scn.thp)
    rng = scn.statements[-1].args["range"]  # every family ends with the write of R
    before = None
    for st in scn.statements:
        if st is scn.statements[-1] and family.check == "child":
            c = world.mms["C"]
            lo, hi = address_range(world, "C", rng)
            before = _data(world)[world.lookup(c, np.arange(lo, hi))].copy()
        world, step = execute(world, era, st)
        if step.error:
            return False, f"refused at '{st.text}': {step.error}"
        if st.op == "vmsplice":
            before = _data(world)[world.pins["pipe"].pfns].copy()
    data = _data(world)
    if family.check == "child":
        c = world.mms["C"]
        lo, hi = address_range(world, "C", rng)
        after = data[world.lookup(c, np.arange(lo, hi))]
        bad = int((after != before).sum())
        return (bad == 0, "child kept its data" if bad == 0
                else f"the parent's write reached the child ({bad} subpage(s))")
    if family.check == "pipe":
        after = data[world.pins["pipe"].pfns]
        bad = int((after != before).sum())
        return (bad == 0, "pipe returned the old data" if bad == 0
                else f"the pipe returned data written after vmsplice ({bad} subpage(s))")
    pin = world.pins["dev"]
    owner = world.mms[pin.owner]
    cpu = data[world.lookup(owner, pin.vas)]
    bad = int((data[pin.pfns] != cpu).sum())
    return (bad == 0, "the pin sees the write" if bad == 0
            else f"the pin misses the process's write ({bad} subpage(s))")


def table(eras=None) -> dict:
    """Every cell under every era: ``{"eras": [...], "rows": [{"family",
    "config", "cells": {era: {"pass", "why"}}}], "not_modelled": [...]}``."""
    from .eras import ERAS

    ids = list(ERAS) if eras is None else [e for e in ERAS if e in set(eras)]
    rows = []
    for fam in FAMILIES:
        for cfg in CONFIGS:
            cells = {}
            for e in ids:
                ok, why = judge(fam, cfg, ERAS[e])
                cells[e] = {"pass": ok, "why": why}
            rows.append({"family": fam.title, "family_key": fam.key, "config": cfg.title,
                         "config_key": cfg.key, "cells": cells})
    return {"eras": ids, "rows": rows,
            "not_modelled": [{"what": w, "why": r} for w, r in NOT_MODELLED]}


def markdown(t: dict) -> str:
    """The table as Markdown: one row per (family, configuration)."""
    eras = t["eras"]
    out = ["| cow.c test | configuration | " + " | ".join(eras) + " |",
           "|---|---|" + "---|" * len(eras)]
    for r in t["rows"]:
        cells = ["pass" if r["cells"][e]["pass"] else "**FAIL**" for e in eras]
        out.append(f"| {r['family']} | {r['config']} | " + " | ".join(cells) + " |")
    out += ["", "Not modelled:", ""]
    out += [f"* {n['what']}: {n['why']}" for n in t["not_modelled"]]
    return "\n".join(out) + "\n"


def add_parser(sub, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description=__doc__.split("\n\n")[0])
    p.add_argument("--era", action="append", help="era id (repeatable); default: every era")
    p.add_argument("--json", action="store_true", help="the whole table with the reason for each cell")
    p.add_argument("--failures", action="store_true", help="list the failing cells with what happened")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    import json
    import sys

    from .eras import ERAS

    for e in args.era or ():
        if e not in ERAS:
            print(f"thpviz cowc: unknown era {e!r}", file=sys.stderr)
            return 2
    t = table(args.era)
    if args.json:
        json.dump(t, sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif args.failures:
        for r in t["rows"]:
            for e, c in r["cells"].items():
                if not c["pass"]:
                    print(f"{e}: {r['family']} / {r['config']}: {c['why']}")
    else:
        sys.stdout.write(markdown(t))
    return 0
