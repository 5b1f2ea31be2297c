"""What a diagram shows, read from one snapshot (and the one before it).

:func:`build_scene` walks a :class:`~thpviz.model.world.World` and returns
plain records: processes with their VMAs and page-table entries as *runs*,
pages as strips of subpage runs, pins, the anon_vma tree, the violations the
engine reports, and what changed since the previous snapshot.  The DOT
writer (:mod:`thpviz.render.dot`), the plots and the widgets' tables all draw
from these records, so every number shown comes from one place.

Nothing here decides anything about the kernel: counters are read from the
struct page arrays (``world.mem``, logical values) or asked of the era
(``era.counter``); violations come from :mod:`thpviz.invariants` or the
runner's step result; unreachable mappings come from ``world.rmap_walk``.
The world is only read, never changed.

Runs.  A run of page-table entries is a stretch of consecutive addresses in
one VMA that maps consecutive frames of one drawn page with the same write
bit (a PMD is one run).  A drawn page is a THP, a run of order-0 pages of the
same origin and ``page->mapping`` (e.g. the pages a split THP became, or the
copies one COW made), or a zero page.  Each drawn page is cut into *cells*
where a per-frame counter changes or where a mapping run or a pin begins or
ends, so every edge lands on a cell and never on 512 separate boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..model.memmap import KIND_ZERO
from ..model.mm import Pmd
from ..scenario.report import fault_runs
from .fields import (  # noqa: F401 (HEAD_COUNTERS re-exported)
    HEAD_COUNTERS,
    head_counters,
    owner_slots,
    pin_flag,
    read_fields,
    shows_dirty,
    shows_has_pinned,
    subpage_fields,
)

if TYPE_CHECKING:
    from ..scenario.runner import StepResult

#: candidate pages confirmed with the engine's own ``world.rmap_walk``
#: (beyond this many, the vectorised test -- the same condition -- decides)
RMAP_WALKS = 64


@dataclass
class Cell:
    """Frames ``[lo, hi)`` (offsets inside the drawn page) with the same
    per-subpage state (every field of :func:`~thpviz.render.fields.subpage_fields`;
    the data version may differ: ``data``..``data_hi``)."""

    port: str
    lo: int
    hi: int
    pfn: int  # first frame
    mapcount: int  # logical _mapcount (includes the PageDoubleMap bias)
    page_mapcount: int  # era.counter("page_mapcount") of the first frame
    pins: int  # GUP references on each frame of the cell
    data: int  # lowest version stamp of the contents
    refcount: int  # order-0 pages: page_count of each page; THP: 0
    freed: bool
    changed: bool = False
    data_hi: int = -1  # highest version stamp (== data when all frames hold the same)
    values: dict = field(default_factory=dict)  # every subpage field -> its value
    #: a drawing may merge cells (:mod:`thpviz.render.fold`): how many
    #: uniform runs this cell stands for, and each field's (min, max)
    runs: int = 1
    ranges: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.data_hi < 0:
            self.data_hi = self.data


@dataclass
class Page:
    """A drawn page: a THP, a run of order-0 pages, or a zero page."""

    id: str
    kind: str  # "thp" | "order0" | "zero"
    start: int  # first pfn
    n: int  # frames
    title: str  # "H1", "p1…p4", "huge_zero_page"
    head_counters: dict = field(default_factory=dict)  # THP: era counters on the head
    pincount: int = 0
    double_map: bool = False
    mapping: str | None = None  # "av0"
    origin: str | None = None  # order-0 pages a THP was split into: "H1"
    freed: bool = False
    cells: list[Cell] = field(default_factory=list)
    changed: set = field(default_factory=set)  # names of head fields that changed
    new: bool = False
    mapping_moved: bool = False
    slots: str | None = None  # 6.15: the folio's two owner slots ("P×1, C×1")

    def cell_at(self, off: int) -> Cell:
        for c in self.cells:
            if c.lo <= off < c.hi:
                return c
        raise KeyError(off)

    def sub_name(self, lo: int, hi: int, mem, whole: bool = True) -> str:
        """Display name of frames [lo, hi) of this page, from the engine's
        page names (``whole=False``: spell out the range even when it is the
        whole THP, as for PTEs)."""
        if self.kind == "zero":
            return self.title
        if self.kind == "thp":
            if whole and lo == 0 and hi == self.n:
                return self.title
            return f"{self.title}[{lo}]" if hi - lo == 1 else f"{self.title}[{lo}:{hi}]"
        a, b = mem.name(self.start + lo), mem.name(self.start + hi - 1)
        return a if hi - lo == 1 else f"{a}…{b}"


@dataclass
class Row:
    """A run of page-table entries of one process."""

    port: str
    lo: int  # first address (subpage units)
    hi: int
    where: str  # "A[0:4]"
    level: str  # "pmd" | "pte"
    write: bool
    page: str  # Page.id
    page_lo: int  # offsets inside the page
    page_hi: int
    target: str  # "H1[0:4]"
    cell: str  # port of the cell the run starts in
    changed: bool = False
    fault: str | None = None  # "write fault: reuse"
    unreachable: str | None = None  # anon_vma the rmap walk starts from, if it misses this run
    dirty: bool | None = None  # the entries' dirty bit, in eras whose rules read it (else None)


@dataclass
class VmaNode:
    id: str
    where: str
    start: int
    end: int
    write: bool
    dontcopy: bool
    anon_vma: str | None
    avcs: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)
    changed: bool = False


@dataclass
class Proc:
    name: str
    mm_id: int
    alive: bool
    color: int  # index into the palette (order of creation)
    vmas: list[VmaNode] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)  # runs that disappeared this step
    new: bool = False
    exited_now: bool = False
    has_pinned: bool | None = None  # mm->has_pinned, in eras that have it (else None)


@dataclass
class PinTarget:
    page: str
    page_lo: int
    cell: str
    target: str  # "H1[5]"
    where: str  # owner's address range "A[5]"


@dataclass
class PinNode:
    id: str
    name: str
    owner: str
    owner_alive: bool
    kind: str  # "pin" | "ref"
    write: bool
    where: str
    flag: str = "FOLL_GET"  # how GUP took it in this era: FOLL_PIN or FOLL_GET
    targets: list[PinTarget] = field(default_factory=list)
    excused: bool = False  # the owner unmapped/moved/exited: the pin promises nothing there
    new: bool = False
    lost: dict | None = None  # pin-lost details (see build_scene)


@dataclass
class AnonVmaNode:
    id: str
    root: str
    parent: str | None
    new: bool = False


@dataclass
class Scene:
    nr: int
    era: object
    procs: list[Proc]
    pages: list[Page]
    pins: list[PinNode]
    anon_vmas: list[AnonVmaNode]
    violations: dict  # kind -> list of detail strings (engine's words)
    step: StepResult | None = None
    faults: list[str] = field(default_factory=list)  # one line per fault run of the step
    fields: list = field(default_factory=list)  # the era's per-subpage fields (thpviz.render.fields)

    def page(self, pid: str) -> Page:
        for p in self.pages:
            if p.id == pid:
                return p
        raise KeyError(pid)

    def proc(self, name: str) -> Proc:
        for p in self.procs:
            if p.name == name:
                return p
        raise KeyError(name)


# --------------------------------------------------------------------- helpers
def _runs(brk: np.ndarray):
    """(start, end) of the runs delimited by ``brk`` (True where a run starts)."""
    starts = np.nonzero(brk)[0]
    ends = np.append(starts[1:], len(brk))
    return zip(starts.tolist(), ends.tolist())


def _entries(mm, nr: int, ext: int):
    """(pfn array, write array, level) of one extent's entry."""
    entry = mm.pt[ext]
    if isinstance(entry, Pmd):
        return np.arange(entry.head, entry.head + nr, dtype=np.int64), np.full(nr, entry.write), "pmd"
    return entry.pfn, entry.write, "pte"


def _dirty(mm, nr: int, ext: int) -> np.ndarray:
    """The dirty bit of each entry of one extent (False where the model
    has none)."""
    entry = mm.pt[ext]
    if isinstance(entry, Pmd):
        return np.full(nr, bool(getattr(entry, "dirty", False)))
    d = getattr(entry, "dirty", None)
    return np.zeros(nr, dtype=bool) if d is None else d


def _prev_values(prev, f, pfns: np.ndarray, default: int = -1) -> np.ndarray:
    """Field ``f`` of each frame in an earlier snapshot (``default`` for
    frames that did not exist yet)."""
    out = np.full(len(pfns), default, dtype=np.int64)
    ok = pfns < prev.mem.size
    if ok.any():
        out[ok] = f.values(prev, pfns[ok])
    return out


def _arr(mem, name: str, pfns: np.ndarray, default):
    """``mem.<name>[pfns]`` with ``default`` for frames that did not exist yet."""
    a = getattr(mem, name)
    out = np.full(len(pfns), default, dtype=a.dtype)
    ok = pfns < mem.size
    out[ok] = a[pfns[ok]]
    return out


def violations_of(world) -> dict:
    """The state violations the engine finds in ``world``: exactly what
    :func:`thpviz.invariants.check` returns after a step (no event
    violations: those need the step), so a new kind is drawn as soon as the
    invariants report it."""
    from .. import invariants

    return dict(invariants.check(world))


# ------------------------------------------------------------------- the pages
def _select_pages(world, prev) -> list[Page]:
    mem = world.mem
    starts = mem.page_starts()
    kind = mem.kind[starts]
    freed = mem.freed[starts]
    if prev is not None:
        pm = prev.mem
        was_live = np.zeros(len(starts), dtype=bool)
        old = starts < pm.size
        # a frame freed now but live before (as a page or as part of a THP)
        was_live[old] = ~pm.freed[starts[old]]
    else:
        was_live = np.zeros(len(starts), dtype=bool)
    show = (kind != KIND_ZERO) & (~freed | was_live)
    pages: list[Page] = []
    thp = show & (mem.nr[starts] > 1)
    small = show & (mem.nr[starts] == 1)
    order = []
    for h in starts[thp].tolist():
        order.append((h, "thp", 1))
    s = starts[small]
    if len(s):
        org = mem.origin[s]
        mp = mem.mapping[s]
        fr = mem.freed[s]
        kd = mem.kind[s]
        brk = np.ones(len(s), dtype=bool)
        brk[1:] = (s[1:] != s[:-1] + 1) | (org[1:] != org[:-1]) | (mp[1:] != mp[:-1]) | (
            fr[1:] != fr[:-1]) | (kd[1:] != kd[:-1])
        for a, b in _runs(brk):
            order.append((int(s[a]), "order0", b - a))
    order.sort()
    for start, kd, n in order:
        if kd == "thp":
            n = int(mem.nr[start])
            title = mem.name(start)
            pid = title
        else:
            title = mem.name(start) if n == 1 else f"{mem.name(start)}…{mem.name(start + n - 1)}"
            pid = mem.name(start)
        o = int(mem.origin[start])
        av = int(mem.mapping[start])
        pages.append(Page(
            id=pid, kind=kd, start=start, n=n, title=title,
            mapping=f"av{av}" if av >= 0 else None,
            # the THP these pages were split from, by its name ("H1", not "H1[0]")
            origin=mem.name(o).split("[")[0] if (kd == "order0" and o >= 0) else None,
            freed=bool(mem.freed[start]),
        ))
    return pages


def _zero_pages(world) -> list[Page]:
    mem = world.mem
    return [
        Page(id=mem.name(world.huge_zero_pfn), kind="zero", start=world.huge_zero_pfn, n=world.nr,
             title=mem.name(world.huge_zero_pfn)),
        Page(id=mem.name(world.zero_pfn), kind="zero", start=world.zero_pfn, n=1,
             title=mem.name(world.zero_pfn)),
    ]


def _fill_page(world, prev, page: Page, cuts: set, fields) -> None:
    """Cells and header counters of one drawn page.  A cell ends where a
    per-subpage field (:func:`~thpviz.render.fields.subpage_fields`)
    changes, where a mapping run or a pin begins or ends, and where what
    changed in this step begins or ends."""
    mem, era = world.mem, world.era
    a, n = page.start, page.n
    fr = np.arange(a, a + n, dtype=np.int64)
    if page.kind == "zero":
        page.cells = [Cell("s0", 0, n, a, 0, 0, 0, 0, 0, False)]
        return
    order0 = page.kind == "order0"
    used = [f for f in fields if order0 or not f.order0]
    vals = read_fields(world, used, fr, order0)
    freed = mem.freed[fr]
    brk = np.zeros(n, dtype=bool)
    brk[0] = True
    for v in list(vals.values()) + [freed]:
        brk[1:] |= v[1:] != v[:-1]
    for c in cuts:
        if 0 < c < n:
            brk[c] = True
    data = mem.data[fr]
    if prev is not None:
        pm = prev.mem
        ch = (_arr(pm, "data", fr, -1) != data) | (_arr(pm, "freed", fr, True) != freed) | (fr >= pm.size)
        for f in used:
            ch |= _prev_values(prev, f, fr) != vals[f.name]
        if order0:
            ch |= _arr(pm, "head", fr, -1) != mem.head[fr]
        brk[1:] |= ch[1:] != ch[:-1]
    else:
        ch = np.zeros(n, dtype=bool)
    starts = np.nonzero(brk)[0]
    dmin = np.minimum.reduceat(data, starts)
    dmax = np.maximum.reduceat(data, starts)
    cells = []
    for i, (lo, hi) in enumerate(_runs(brk)):
        p = a + lo
        values = {k: int(v[lo]) for k, v in vals.items()}
        cells.append(Cell(
            port=f"s{i}", lo=lo, hi=hi, pfn=p,
            mapcount=values["mapcount"],
            page_mapcount=int(era.counter("page_mapcount", mem, p)),
            pins=values["pins"], data=int(dmin[i]), data_hi=int(dmax[i]),
            refcount=values.get("refcount", 0) if order0 else 0,
            freed=bool(freed[lo]), changed=bool(ch[lo]), values=values,
        ))
    page.cells = cells
    page.pincount = int(mem.pins[fr].sum())
    if page.kind == "thp":
        page.double_map = bool(mem.double_map[a])
        page.head_counters = {name: int(era.counter(name, mem, a)) for name in head_counters(era)}
        page.slots = owner_slots(world, a)
    if prev is not None:
        pm = prev.mem
        if a >= pm.size or (page.kind == "thp" and pm.head[a] != a) or (
                page.kind == "order0" and pm.nr[pm.head[a]] > 1 and not pm.freed[a]):
            page.new = True
        else:
            if page.kind == "thp":
                for name in ("refcount", "cmc", "double_map"):
                    if getattr(pm, name)[a] != getattr(mem, name)[a]:
                        page.changed.add(name)
                for name, v in page.head_counters.items():
                    if int(era.counter(name, pm, a)) != v:
                        page.changed.add(name)
            if pm.mapping[a] != mem.mapping[a]:
                page.changed.add("mapping")
                page.mapping_moved = True
            if pm.freed[a] != mem.freed[a]:
                page.changed.add("freed")
            if page.slots is not None and owner_slots(prev, a) != page.slots:
                page.changed.add("slots")
            if int(pm.pins[a:a + n].sum()) != page.pincount:
                page.changed.add("pins")


# ------------------------------------------------------------------ processes
def _proc_rows(world, prev, mm, owner: np.ndarray, pages: list[Page], cuts: list[set],
               fault_at: dict) -> tuple[list[VmaNode], list[str]]:
    mem, nr = world.mem, world.nr
    vmas = sorted(mm.vmas, key=lambda v: v.start)
    prev_mm = prev.mms.get(mm.name) if prev is not None else None
    nodes = []
    for v in vmas:
        where = mm.describe(v.start, v.end)
        node = VmaNode(
            id=f"{mm.name}.{where}", where=where, start=v.start, end=v.end, write=v.write,
            dontcopy=v.dontcopy, anon_vma=f"av{v.anon_vma}" if v.anon_vma is not None else None,
            avcs=tuple(f"av{a}" for a in v.avcs),
        )
        if prev is not None:
            same = prev_mm is not None and prev_mm.alive and any(
                (pv.start, pv.end, pv.write, pv.dontcopy, pv.anon_vma, pv.avcs)
                == (v.start, v.end, v.write, v.dontcopy, v.anon_vma, v.avcs) for pv in prev_mm.vmas)
            node.changed = not same
        nodes.append(node)
    vstarts = np.array([v.start for v in vmas], dtype=np.int64)
    vends = np.array([v.end for v in vmas], dtype=np.int64)
    dirty_shown = shows_dirty(world.era)
    rowno = 0
    for ext in sorted(mm.pt):
        base = ext * nr
        pf, wr, level = _entries(mm, nr, ext)
        addrs = np.arange(base, base + nr, dtype=np.int64)
        present = pf >= 0
        if not present.any():
            continue
        safe = np.maximum(pf, 0)
        node_of = np.where(present, owner[safe], -1)
        zero = present & (mem.kind[safe] == KIND_ZERO)
        vi = np.searchsorted(vstarts, addrs, side="right") - 1
        vi = np.where((vi >= 0) & (addrs < vends[np.maximum(vi, 0)]), vi, -1)
        brk = np.ones(nr, dtype=bool)
        consecutive = (pf[1:] == pf[:-1] + 1) | (zero[1:] & zero[:-1])
        brk[1:] = (present[1:] != present[:-1]) | (node_of[1:] != node_of[:-1]) | ~consecutive | (
            wr[1:] != wr[:-1]) | (vi[1:] != vi[:-1])
        dt = _dirty(mm, nr, ext) if dirty_shown else None
        if dt is not None:
            brk[1:] |= dt[1:] != dt[:-1]
        if prev_mm is not None and prev_mm.alive and ext in prev_mm.pt:
            ppf, pwr, plevel = _entries(prev_mm, nr, ext)
            ch = (ppf != pf) | (pwr != wr) | (plevel != level)
            if dt is not None:
                ch |= _dirty(prev_mm, nr, ext) != dt
        else:
            ch = np.ones(nr, dtype=bool) if prev is not None else np.zeros(nr, dtype=bool)
        brk[1:] |= ch[1:] != ch[:-1]
        if level == "pmd":
            brk[1:] &= vi[1:] != vi[:-1]  # a PMD is one entry
        for s, e in _runs(brk):
            if not present[s]:
                continue
            k = int(node_of[s])
            if k < 0:
                continue  # a frame not drawn (cannot happen for a mapped page)
            page = pages[k]
            plo = int(pf[s]) - page.start
            phi = int(pf[e - 1]) - page.start + 1
            if page.kind == "zero":
                plo, phi = 0, page.n
            else:
                cuts[k].update((plo, phi))
            lo, hi = base + s, base + e
            row = Row(
                port=f"r{rowno}", lo=lo, hi=hi, where=mm.describe(lo, hi), level=level,
                write=bool(wr[s]), page=page.id, page_lo=plo, page_hi=phi,
                target=page.sub_name(plo, phi, mem, whole=level == "pmd"), cell="", changed=bool(ch[s]),
                dirty=None if dt is None else bool(dt[s]),
            )
            rowno += 1
            f = [dec for (a0, a1, dec) in fault_at.get(mm.name, ()) if a0 < hi and a1 > lo]
            if f:
                row.fault = ", ".join(dict.fromkeys(f))
            v = int(vi[s])
            if v >= 0:
                nodes[v].rows.append(row)
    # runs mapped in the previous snapshot and gone now
    unmapped = []
    if prev_mm is not None and prev_mm.alive:
        for ext in sorted(prev_mm.pt):
            ppf, _, _ = _entries(prev_mm, nr, ext)
            cur = mm.pt.get(ext)
            if cur is None:
                now = np.full(nr, -1)
            else:
                now, _, _ = _entries(mm, nr, ext)
            gone = (ppf >= 0) & (now < 0)
            if gone.any():
                brk = np.ones(nr, dtype=bool)
                brk[1:] = gone[1:] != gone[:-1]
                for s, e in _runs(brk):
                    if gone[s]:
                        unmapped.append(prev_mm.describe(ext * nr + s, ext * nr + e))
    return nodes, unmapped


def _fault_index(world, step) -> tuple[dict, list[str]]:
    """Per process: (lo, hi, "write fault: reuse") runs of the step's faults
    (a PMD fault covers its whole extent), and one summary line per run."""
    out: dict = {}
    if step is None:
        return out, []
    runs = fault_runs(world, step)
    for r in runs:
        a0, a1 = r.lo, r.hi
        if r.level == "pmd":
            a0 = a0 - a0 % world.nr
            a1 = a0 + world.nr
        tag = f"{r.access} fault: {r.decision}" + (" (in GUP)" if r.gup else "")
        out.setdefault(r.proc, []).append((a0, a1, tag))
    return out, [r.line() for r in runs]


# ----------------------------------------------------------------------- pins
def _pins(world, prev, owner, pages, cuts, lost_names) -> list[PinNode]:
    mem = world.mem
    out = []
    for pin in world.pins.values():
        if not pin.active:
            continue
        mm = world.mms.get(pin.owner)
        alive = mm is not None and mm.alive
        lo, hi = int(pin.vas.min()), int(pin.vas.max()) + 1
        where = mm.describe(lo, hi) if mm is not None else f"@{lo:#x}"
        node = PinNode(
            id=pin.name, name=pin.name, owner=pin.owner, owner_alive=alive, kind=pin.kind,
            write=bool(pin.write), where=where, flag=pin_flag(world.era, pin.kind),
            excused=bool(pin.excused.all()),
        )
        if prev is not None:
            pp = prev.pins.get(pin.name)
            node.new = pp is None or not pp.active
        pf = pin.pfns
        k = owner[pf]
        brk = np.ones(len(pf), dtype=bool)
        brk[1:] = (pf[1:] != pf[:-1] + 1) | (k[1:] != k[:-1])
        for s, e in _runs(brk):
            if k[s] < 0:
                continue  # a frame no drawn page holds (a pin keeps its page alive, so never)
            page = pages[int(k[s])]
            plo, phi = int(pf[s]) - page.start, int(pf[e - 1]) - page.start + 1
            if page.kind != "zero":
                cuts[int(k[s])].update((plo, phi))
            w = mm.describe(int(pin.vas[s]), int(pin.vas[e - 1]) + 1) if mm is not None else ""
            node.targets.append(PinTarget(page.id, 0 if page.kind == "zero" else plo, "", page.sub_name(plo, phi, mem, whole=False), w))
        if pin.name in lost_names and alive:
            live = ~pin.excused
            cur = world.lookup(mm, pin.vas[live])
            bad = np.nonzero(cur != pin.pfns[live])[0]
            if len(bad):
                i = int(bad[0])
                dev, cpu = int(pin.pfns[live][i]), int(cur[i])
                va = int(pin.vas[live][i])
                node.lost = {
                    "where": mm.describe(va, va + 1),
                    "device_page": mem.name(dev), "device_data": int(mem.data[dev]),
                    "cpu_page": mem.name(cpu) if cpu >= 0 else None,
                    "cpu_data": int(mem.data[cpu]) if cpu >= 0 else None,
                    "cpu_pfn": cpu, "count": int(len(bad)),
                }
        out.append(node)
    return out


# ---------------------------------------------------------------------- scene
def build_scene(world, prev=None, step=None) -> Scene:
    """Read ``world`` (and ``prev``, the snapshot before, for change marks;
    ``step``, the runner's StepResult that led to ``world``, for faults and
    event violations)."""
    mem = world.mem
    pages = _select_pages(world, prev)
    zero = _zero_pages(world)
    all_pages = pages + zero
    owner = np.full(mem.size, -1, dtype=np.int64)
    for i, p in enumerate(all_pages):
        if p.kind == "zero":
            owner[p.start:p.start + (world.nr if p.start == world.huge_zero_pfn else 1)] = i
        else:
            owner[p.start:p.start + p.n] = i
    cuts: list[set] = [set() for _ in all_pages]
    fault_at, fault_lines = _fault_index(world, step)
    viol = dict(step.violations) if step is not None else violations_of(world)

    procs = []
    mms = list(world.mms.values())
    for i, mm in enumerate(mms):
        was_alive = prev is not None and mm.name in prev.mms and prev.mms[mm.name].alive
        if not mm.alive and not was_alive:
            continue
        pr = Proc(mm.name, mm.id, mm.alive, i)
        if shows_has_pinned(world.era):
            pr.has_pinned = bool(getattr(mm, "has_pinned", False))
        if prev is not None:
            pr.new = mm.name not in prev.mms
            pr.exited_now = was_alive and not mm.alive
        if mm.alive:
            pr.vmas, pr.unmapped = _proc_rows(world, prev, mm, owner, all_pages, cuts, fault_at)
        procs.append(pr)

    lost_names = {d.split(":", 1)[0] for d in viol.get("pin-lost", ())}
    pins = _pins(world, prev, owner, all_pages, cuts, lost_names)

    used = {r.page for pr in procs for v in pr.vmas for r in v.rows}
    used |= {t.page for p in pins for t in p.targets}
    drawn = [p for p in pages] + [z for z in zero if z.id in used]
    index = {id(p): k for k, p in enumerate(all_pages)}
    fields = subpage_fields(world)
    for p in drawn:
        _fill_page(world, prev, p, cuts[index[id(p)]], fields)

    by_id = {p.id: p for p in drawn}
    for pr in procs:
        for v in pr.vmas:
            for r in v.rows:
                r.cell = by_id[r.page].cell_at(r.page_lo).port
    for pn in pins:
        for t in pn.targets:
            t.cell = by_id[t.page].cell_at(t.page_lo).port

    for pn in pins:
        if pn.lost and pn.lost["cpu_pfn"] >= 0:
            pfn = pn.lost["cpu_pfn"]
            for pg in drawn:
                if pg.kind != "zero" and pg.start <= pfn < pg.start + pg.n:
                    pn.lost["cpu_node"] = pg.id
                    pn.lost["cpu_cell"] = pg.cell_at(pfn - pg.start).port

    if "rmap-broken" in viol:
        _mark_unreachable(world, procs, drawn)
    _mark_fork_copies(step, procs, by_id)

    avs = _anon_vmas(world, prev, procs, drawn)
    taken = {pr.name for pr in procs} | {p.id for p in drawn} | {a.id for a in avs} | {"device", "pipe"}
    for pn in pins:
        if pn.id in taken:
            pn.id = f"pin:{pn.name}"
    return Scene(world.nr, world.era, procs, drawn, pins, avs, viol, step, fault_lines, fields)


def _mark_fork_copies(step, procs, pages: dict) -> None:
    """A fork that gave the child private copies (5.9+, of pages that may be
    pinned) reports it as an event of the fork step (``fork-copy``), not
    as a fault; the child's rows that map the pages allocated by this step
    say so."""
    if step is None or step.stmt.op != "fork" or not any(e.kind == "fork-copy" for e in step.events):
        return
    child = step.stmt.args.get("child")
    for pr in procs:
        if pr.name != child:
            continue
        for v in pr.vmas:
            for r in v.rows:
                pg = pages.get(r.page)
                if pg is not None and pg.new and pg.kind != "zero":
                    r.fault = "copied at fork (maybe pinned)"


def _mark_unreachable(world, procs, pages) -> None:
    """Rows the rmap walk from ``page->mapping`` cannot reach.  The engine's
    own walk (``world.rmap_walk``) decides, page by page; to stay fast with
    thousands of order-0 pages it is asked only about the pages a quick
    vectorised test flags (the walk's own condition: ``page->mapping`` is
    not among the anon_vmas the mapping VMA links), and beyond
    :data:`RMAP_WALKS` such pages that test decides."""
    mem = world.mem
    rows: dict[str, list] = {}
    cand: dict[int, list] = {}
    for pr in procs:
        mm = world.mms[pr.name]
        for v in pr.vmas:
            links = np.array([int(a[2:]) for a in v.avcs], dtype=np.int64)
            for r in v.rows:
                rows.setdefault(pr.name, []).append(r)
                pf = world.lookup(mm, np.arange(r.lo, r.hi, dtype=np.int64))
                pf = pf[(pf >= 0) & (mem.kind[np.maximum(pf, 0)] != KIND_ZERO)]
                if not len(pf):
                    continue
                heads = np.unique(mem.head[pf])
                bad = heads[~np.isin(mem.mapping[heads], links)]
                for h in bad.tolist():
                    cand.setdefault(h, []).append(r)
    for i, (h, rs) in enumerate(sorted(cand.items())):
        av = int(mem.mapping[h])
        name = f"av{av}" if av >= 0 else "none"
        if i >= RMAP_WALKS:
            for r in rs:
                r.unreachable = name
            continue
        _, missed = world.rmap_walk(int(h))
        for mm, lo, hi, _level in missed:
            for r in rows.get(mm.name, ()):
                if r.lo < hi and r.hi > lo:
                    r.unreachable = name


def _anon_vmas(world, prev, procs, pages) -> list[AnonVmaNode]:
    want = set()
    for pr in procs:
        for v in pr.vmas:
            want.update(v.avcs)
            if v.anon_vma:
                want.add(v.anon_vma)
    for p in pages:
        if p.mapping and not p.freed:
            want.add(p.mapping)
    avs = {f"av{a.id}": a for a in world.anon_vmas}
    # keep the ancestors so the tree stays connected
    todo = list(want)
    while todo:
        a = avs[todo.pop()]
        for up in (f"av{a.parent}", f"av{a.root}"):
            if up not in want:
                want.add(up)
                todo.append(up)
    out = []
    n_prev = len(prev.anon_vmas) if prev is not None else None
    for a in world.anon_vmas:
        if a.name not in want:
            continue
        out.append(AnonVmaNode(
            a.name, f"av{a.root}", None if a.parent == a.id else f"av{a.parent}",
            new=n_prev is not None and a.id >= n_prev,
        ))
    return out

