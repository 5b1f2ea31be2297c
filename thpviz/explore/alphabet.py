"""The explorer's alphabet: which statements it may append to a trace.

A statement is built the way the parser would build it from its text (a
:class:`~thpviz.scenario.parser.Statement` with a
:class:`~thpviz.scenario.parser.Range`), so a trace the explorer finds is a
valid ``.thp`` file and runs exactly as the search ran it.

The alphabet is small and configurable:

* processes: ``P`` (created by the first ``mmap``) and the children of
  ``fork``, named ``C``, ``D``, ``E``... in order; at most ``procs`` alive at
  once;
* regions: ``A``, ``B``... (``regions`` of them, ``extents`` huge pages each),
  mapped by ``P``; ``mremap`` moves a range to a new region named ``M``,
  ``N``... (counted against ``regions``);
* ranges: every ``[a, b)`` between two *cut points*; the cut points are the
  offsets ``cuts`` inside each huge-page extent (default: ``0`` and the
  middle, so the whole extent and its two halves) plus the region's end;
* statements that would certainly change nothing are not generated: a read
  of a range that is mapped everywhere, a ``split_pmd`` where no PMD maps;
* pins: ``pin R rw``, ``pin R ro`` and ``vmsplice R`` take a fresh name
  (``d1``, ``d2``... for pins, ``s1``... for vmsplice), at most ``pins``
  active at once; ``unpin NAME`` and ``dma_write NAME`` name an active one.

Operations (``ops``): the statement names of the scenario language, with
``pin`` for a read-write pin and ``pin-ro`` for a read-only one, and
``mprotect`` for both ``ro`` and ``rw``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model.mm import Pmd
from ..scenario.parser import Range, Statement, range_text
from .ops import ALL_OPS, DEFAULT_OPS

#: child names, in the order forks create them (P is the first process)
CHILD_NAMES = tuple("CDEFGHIJKLNOQRSTUVWXYZ")
REGION_NAMES = tuple("ABFGHIJKL")
MREMAP_NAMES = tuple("MNOQRSTUVWXYZ")


@dataclass(frozen=True)
class Alphabet:
    thp: int = 8
    procs: int = 2
    regions: int = 1
    extents: int = 1
    pins: int = 1
    ops: tuple[str, ...] = DEFAULT_OPS
    #: cut points inside each extent (0 is always one); default: 0 and thp/2
    cuts: tuple[int, ...] | None = None
    #: regions mapped ``nohuge`` (order-0 pages only)
    nohuge: tuple[str, ...] = ()
    _cache: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self):
        bad = [o for o in self.ops if o not in ALL_OPS]
        if bad:
            raise ValueError(f"unknown operation(s) {', '.join(bad)} (known: {', '.join(ALL_OPS)})")
        if self.thp < 2 or self.thp & (self.thp - 1):
            raise ValueError("thp must be a power of two >= 2")
        if self.procs < 1 or self.regions < 1 or self.extents < 1 or self.pins < 0:
            raise ValueError("procs, regions and extents must be >= 1, pins >= 0")
        if self.regions > len(REGION_NAMES):
            raise ValueError(f"at most {len(REGION_NAMES)} regions")
        cuts = self.cut_points
        if any(c < 0 or c >= self.thp for c in cuts):
            raise ValueError(f"cut points must lie in 0..{self.thp - 1}")

    @property
    def cut_points(self) -> tuple[int, ...]:
        c = {0, self.thp // 2} if self.cuts is None else {0, *self.cuts}
        return tuple(sorted(c))

    def describe(self) -> str:
        """One line naming the bound's alphabet (for reports and ``source:``)."""
        return (f"thp {self.thp}, procs {self.procs}, regions {self.regions} x {self.extents} extent(s), "
                f"pins {self.pins}, cuts {','.join(map(str, self.cut_points))}, ops {','.join(self.ops)}"
                + (f", nohuge {','.join(self.nohuge)}" if self.nohuge else ""))

    # -- ranges --------------------------------------------------------------
    def ranges(self, region: str, size: int) -> list[Range]:
        """Every range between two cut points of a region of ``size``
        subpages (cached)."""
        key = ("ranges", region, size)
        got = self._cache.get(key)
        if got is not None:
            return got
        n = self.thp
        pts = sorted({e * n + c for e in range(-(-size // n)) for c in self.cut_points if e * n + c < size}
                     | {size})
        out = []
        # the whole region first, so a trace reads "write A" where any range
        # would do
        pairs = sorted(((lo, hi) for i, lo in enumerate(pts) for hi in pts[i + 1:]),
                       key=lambda p: (p != (0, size), p))
        for lo, hi in pairs:
            # as the parser builds them: the whole region has open ends
            whole = lo == 0 and hi == size
            out.append(Range(region, None if whole else lo, None if whole else hi,
                             range_text(region, size, lo, hi)))
        self._cache[key] = out
        return out

    # -- statements ------------------------------------------------------------
    def statements(self, world) -> list[Statement]:
        """The statements that may follow in ``world``: valid for the parser
        (processes, regions and pins exist, names are fresh) and not refused
        outright (a range no VMA covers; a write to a read-only VMA)."""
        ops = self.ops
        out: list[Statement] = []
        alive = [m for m in world.mms.values() if m.alive]
        used_names = set(world.mms)
        n_regions = len({r for m in world.mms.values() for r in m.regions})
        # the first process: P maps the regions in order
        if "mmap" in ops and n_regions < self.regions:
            p = world.mms.get("P")
            if p is None or p.alive:
                name = REGION_NAMES[n_regions]
                if p is None or name not in p.regions:
                    huge = name not in self.nohuge
                    out.append(_stmt(f"P: mmap {name}" + (f" {self.extents}" if self.extents > 1 else "")
                                     + ("" if huge else " nohuge"),
                                     "P", "mmap", region=name, extents=self.extents, huge=huge))
        active = [pin for pin in world.pins.values() if pin.active]
        can_pin = len(active) < self.pins
        pin_names = set(world.pins)
        for mm in alive:
            proc = mm.name
            for region in sorted(mm.regions):
                start, size = mm.regions[region]
                for rng in self.ranges(region, size):
                    lo, hi = rng.bounds(size)
                    lo, hi = start + lo, start + hi
                    covered = mm.covered(lo, hi)
                    writable = covered and all(v.write for v in mm.vmas_in(lo, hi))
                    t = rng.text
                    if not covered:
                        # only munmap may name an unmapped range, and it would
                        # change nothing there but excuse pins already excused
                        continue
                    if "read" in ops and not _all_present(mm, lo, hi, self.thp):
                        out.append(_stmt(f"{proc}: read {t}", proc, "read", range=rng))
                    if "write" in ops and writable:
                        out.append(_stmt(f"{proc}: write {t}", proc, "write", range=rng))
                    for op in ("munmap", "dontneed", "dontfork", "dofork", "split_pmd", "split_page"):
                        if op == "split_pmd" and not _has_pmd(mm, lo, hi, self.thp):
                            continue
                        if op in ops:
                            out.append(_stmt(f"{proc}: {op} {t}", proc, op, range=rng))
                    if "mprotect" in ops:
                        for w in ("ro", "rw"):
                            out.append(_stmt(f"{proc}: mprotect {t} {w}", proc, "mprotect",
                                             range=rng, write=w == "rw"))
                    if "mremap" in ops and n_regions < self.regions:
                        new = next(x for x in MREMAP_NAMES if x not in mm.regions)
                        out.append(_stmt(f"{proc}: mremap {t} {new}", proc, "mremap", range=rng, new=new,
                                         aligned=True))
                    if can_pin:
                        if "pin" in ops and writable:
                            name = _fresh("d", pin_names)
                            out.append(_stmt(f"{proc}: pin {t} rw as {name}", proc, "pin", range=rng,
                                             write=True, name=name))
                        if "pin-ro" in ops:
                            name = _fresh("d", pin_names)
                            out.append(_stmt(f"{proc}: pin {t} ro as {name}", proc, "pin", range=rng,
                                             write=False, name=name))
                        if "vmsplice" in ops:
                            name = _fresh("s", pin_names)
                            out.append(_stmt(f"{proc}: vmsplice {t} as {name}", proc, "vmsplice", range=rng,
                                             write=False, name=name))
            if "fork" in ops and len(alive) < self.procs:
                child = next((c for c in CHILD_NAMES if c not in used_names), None)
                if child is not None:
                    out.append(_stmt(f"{proc}: fork {child}", proc, "fork", child=child))
            if "exit" in ops:
                out.append(_stmt(f"{proc}: exit", proc, "exit"))
        for pin in active:
            if "unpin" in ops:
                out.append(_stmt(f"unpin {pin.name}", None, "unpin", pin=pin.name))
            if "dma_write" in ops and pin.write:
                out.append(_stmt(f"dma_write {pin.name}", None, "dma_write", pin=pin.name))
            if "dma_read" in ops:
                out.append(_stmt(f"dma_read {pin.name}", None, "dma_read", pin=pin.name))
        if "deferred_split" in ops and alive:
            out.append(_stmt("deferred_split", None, "deferred_split"))
        return out


def _all_present(mm, lo: int, hi: int, nr: int) -> bool:
    """Every address of [lo, hi) has a present entry: a read faults nowhere
    and changes nothing."""
    for ext in range(lo // nr, (hi - 1) // nr + 1):
        e = mm.pt.get(ext)
        if e is None:
            return False
        if isinstance(e, Pmd):
            continue
        a, b = max(lo, ext * nr) - ext * nr, min(hi, ext * nr + nr) - ext * nr
        if (e.pfn[a:b] < 0).any():
            return False
    return True


def _has_pmd(mm, lo: int, hi: int, nr: int) -> bool:
    """A PMD maps part of [lo, hi): otherwise ``split_pmd`` changes nothing."""
    return any(isinstance(mm.pt.get(ext), Pmd) for ext in range(lo // nr, (hi - 1) // nr + 1))


def _fresh(prefix: str, used) -> str:
    i = 1
    while f"{prefix}{i}" in used:
        i += 1
    return f"{prefix}{i}"


_STMTS: dict = {}


def _stmt(text: str, proc, op: str, **args) -> Statement:
    """A statement as the parser builds it (cached by text: statements are
    never mutated by the runner)."""
    st = _STMTS.get(text)
    if st is None:
        st = _STMTS[text] = Statement(0, 1, text, proc, op, args)
    return st
