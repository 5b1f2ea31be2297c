"""What a diagram draws of a scene: alike things folded, long lists
summarised, the whole within a fixed size budget.

:func:`plan` turns a :class:`~thpviz.render.scene.Scene` (everything the
snapshot holds) into a :class:`Drawing` (what the DOT writer draws).  At the
sizes of the litmus scenarios nothing is folded and the drawing shows every
process, page, page-table run, subpage run and ``anon_vma_chain`` link.  At
scale:

* **alike processes** are folded: a process with the same VMAs mapping the
  same kind of pages the same way as another, which did nothing this step,
  is drawn once -- "C3…C49: 47 processes like C2";
* **alike pages** likewise -- "H3…H63: 61 THPs like H2";
* consecutive page-table runs that map alike pages the same way are one row
  ("A[512:32256]  62 PMDs ro → H2…H63"), and a VMA with too many rows keeps
  the ones that matter this step and summarises the stretches between;
* a page with too many subpage runs keeps the runs that matter (pinned,
  changed, where a violation is) and merges the others into mixed cells
  that show each field's range;
* ``anon_vma_chain`` links are summarised when there are many (a fork chain
  of n processes has n(n+1)/2; more than ``avc_links`` in all, or more
  than ``avc_per_vma`` on one VMA): a VMA keeps the link to its own anon_vma
  and the links from the anon_vmas its pages' ``page->mapping`` point at
  (where the rmap walk starts); its label counts the others;
* the anon_vma tree shows the anon_vmas something drawn refers to, an
  elided stretch of the tree as "via N".

Nothing that carries a violation is ever folded or merged: a process whose
mapping the rmap walk misses, the pages and cells a lost pin involves, the
rows ``rmap-broken`` marks.  If what remains still exceeds the
:class:`Budget`, the drawing is replaced by a summary (``Drawing.summary``
says why) that names every violation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from .scene import Cell, Page, Scene

# ------------------------------------------------------------------ budget


@dataclass(frozen=True)
class Budget:
    """Limits of one diagram.  Above ``nodes``/``edges``/``cells``/
    ``dot_bytes`` (after folding) the diagram is a summary; the other
    fields say when folding starts."""

    nodes: int = 40
    edges: int = 140
    cells: int = 160  # subpage cells over all drawn pages
    dot_bytes: int = 160_000
    fold_procs_above: int = 5  # fold alike processes when more are drawn
    fold_pages_above: int = 5
    fold_min: int = 3  # an alike group this large is folded (one drawn, the rest one node)
    cells_per_page: int = 24
    rows_per_vma: int = 12
    vmas_per_proc: int = 8
    avc_links: int = 24  # draw every anon_vma_chain link up to this many in all ...
    avc_per_vma: int = 6  # ... and up to this many per VMA
    edges_per_row: int = 3


DEFAULT_BUDGET = Budget()


# ----------------------------------------------------------------- records
@dataclass
class DrawRow:
    port: str
    where: str
    level: str  # "pmd" | "pte" | "mixed"
    what: str  # "PMD", "PTE", "62 PMDs", "40 runs"
    write: str  # "rw" | "ro" | "rw/ro"
    target: str
    heads: list  # [(node, port)]
    changed: bool = False
    fault: str | None = None
    unreachable: str | None = None
    runs: int = 1
    dirty: bool | None = None


@dataclass
class DrawVma:
    port: str
    id: str
    where: str
    write: bool
    dontcopy: bool
    anon_vma: str | None
    avcs: tuple
    rows: list
    changed: bool = False
    avc_drawn: tuple = ()
    count: int = 1  # VMAs this one stands for (alike neighbours merged)


@dataclass
class DrawProc:
    name: str
    mm_id: int
    color: int
    alive: bool
    new: bool
    exited_now: bool
    unmapped: list
    vmas: list
    has_pinned: bool | None = None


@dataclass
class ProcFold:
    id: str
    like: str
    names: list
    color: int
    anon_vmas: list
    heads: list  # [(node, port)] the representative's targets


@dataclass
class PageFold:
    id: str
    like: str
    titles: list
    kind: str
    n: int
    mappings: list


@dataclass
class PinEdge:
    node: str
    port: str


@dataclass
class AvRow:
    id: str
    depth: int
    parent: str | None
    root: bool
    new: bool
    via: int = 0  # undrawn anon_vmas between it and the drawn parent


@dataclass
class Drawing:
    scene: Scene
    procs: list = field(default_factory=list)
    proc_folds: list = field(default_factory=list)
    pages: list = field(default_factory=list)
    page_folds: list = field(default_factory=list)
    pin_edges: dict = field(default_factory=dict)  # pin id -> [PinEdge]
    lost_cpu: dict = field(default_factory=dict)  # pin id -> PinEdge
    av_rows: list = field(default_factory=list)
    av_hidden: int = 0
    avc_edges: list = field(default_factory=list)  # (av, proc, vma port)
    avc_summarised: bool = False
    mapping_edges: list = field(default_factory=list)  # (page node, av, moved)
    fold_edges: list = field(default_factory=list)  # (fold node, node, port, count)
    summary: str | None = None
    stats: dict = field(default_factory=dict)

    @property
    def folded(self) -> bool:
        return bool(self.proc_folds or self.page_folds or self.avc_summarised or self.av_hidden
                    or any(v.count > 1 for p in self.procs for v in p.vmas)
                    or any(r.runs > 1 for p in self.procs for v in p.vmas for r in v.rows)
                    or any(c.runs > 1 for p in self.pages for c in p.cells))


# ----------------------------------------------------------------- helpers
def name_range(names: list[str]) -> str:
    """``C3…C49`` for a long list, ``C3, C4`` for a short one."""
    if len(names) <= 3:
        return ", ".join(names)
    return f"{names[0]}…{names[-1]}"


_WHERE = re.compile(r"^(.*)\[(\d+)(?::(\d+))?\]$")


def span_where(first: str, last: str) -> str:
    """``A[0:4]`` + ``A[8:12]`` -> ``A[0:12]``."""
    a, b = _WHERE.match(first), _WHERE.match(last)
    if a and b and a.group(1) == b.group(1):
        lo = int(a.group(2))
        hi = int(b.group(3)) if b.group(3) else int(b.group(2)) + 1
        return f"{a.group(1)}[{lo}:{hi}]"
    return f"{first}…{last}"


def _violating(scene: Scene):
    """(pages, procs, (page, offset) cells) that carry a violation."""
    pages, procs, cells = set(), set(), set()
    for pr in scene.procs:
        for v in pr.vmas:
            for r in v.rows:
                if r.unreachable:
                    pages.add(r.page)
                    procs.add(pr.name)
                    cells.add((r.page, r.page_lo))
    for pn in scene.pins:
        if pn.lost:
            procs.add(pn.owner)
            for t in pn.targets:
                pages.add(t.page)
                cells.add((t.page, t.page_lo))
            if pn.lost.get("cpu_node"):
                pg = scene.page(pn.lost["cpu_node"])
                pages.add(pg.id)
                cells.add((pg.id, pn.lost["cpu_pfn"] - pg.start))
    return pages, procs, cells


# ------------------------------------------------------------------- pages
def _page_groups(scene: Scene, budget: Budget, bad_pages: set):
    """{page id: group key}, and the PageFolds (the first page of a
    folded group is drawn, the others become one node)."""
    pinned = {t.page for pn in scene.pins for t in pn.targets}
    own: dict[str, set] = {}
    for pr in scene.procs:
        for v in pr.vmas:
            for r in v.rows:
                own.setdefault(r.page, set()).add(v.anon_vma)
    group: dict[str, str] = {p.id: p.id for p in scene.pages}
    folds: list[PageFold] = []
    if len(scene.pages) <= budget.fold_pages_above:
        return group, folds, {}
    sigs: dict[tuple, list[Page]] = {}
    for p in scene.pages:
        if (p.kind == "zero" or p.new or p.changed or p.mapping_moved or p.pincount or p.id in pinned
                or p.id in bad_pages or any(c.changed for c in p.cells)):
            continue
        role = "own" if p.mapping is not None and own.get(p.id) == {p.mapping} else p.mapping
        cells = tuple((c.lo, c.hi, tuple(sorted(c.values.items())), c.freed) for c in p.cells)
        sig = (p.kind, p.n, tuple(p.head_counters.items()), p.double_map, p.freed, role, p.origin is None, p.slots,
               cells)
        sigs.setdefault(sig, []).append(p)
    alias: dict[str, str] = {}
    for members in sigs.values():
        if len(members) < budget.fold_min:
            continue
        like, rest = members[0], members[1:]
        fid = f"fold:{rest[0].id}"
        for p in members:
            group[p.id] = like.id
        for p in rest:
            alias[p.id] = fid
        folds.append(PageFold(fid, like.id, [p.title for p in rest], like.kind, like.n,
                              sorted({p.mapping for p in rest if p.mapping}, key=lambda a: int(a[2:]))))
    return group, folds, alias


def _merge_cells(page: Page, keep: set, limit: int) -> Page:
    """The page with at most ``limit`` cells where possible: cells at the
    offsets in ``keep`` (and pinned or changed ones) stay; the stretches
    between are merged into mixed cells."""
    cells = page.cells
    if len(cells) <= limit:
        return page

    def important(c: Cell, with_changed: bool) -> bool:
        return c.pins > 0 or any(c.lo <= off < c.hi for off in keep) or (with_changed and c.changed)

    flags = [important(c, True) for c in cells]
    if sum(flags) * 2 > limit:
        flags = [important(c, False) for c in cells]
    out: list[Cell] = []
    i = 0
    while i < len(cells):
        if flags[i]:
            out.append(replace(cells[i]))
            i += 1
            continue
        j = i
        while j < len(cells) and not flags[j]:
            j += 1
        group = cells[i:j]
        # a long stretch becomes a few mixed cells, so edges still land near their run
        pieces = max(1, min(len(group), 8, (limit - sum(flags)) // max(1, _stretches(flags))))
        step = -(-len(group) // pieces)
        for k in range(0, len(group), step):
            out.append(_mixed(group[k:k + step]))
        i = j
    for n, c in enumerate(out):
        c.port = f"s{n}"
    return replace(page, cells=out)


def _stretches(flags: list[bool]) -> int:
    return sum(1 for i, f in enumerate(flags) if not f and (i == 0 or flags[i - 1]))


def _mixed(group: list[Cell]) -> Cell:
    if len(group) == 1:
        return replace(group[0])
    first = group[0]
    ranges = {}
    for name in first.values:
        vals = [c.values.get(name, 0) for c in group]
        ranges[name] = (min(vals), max(vals))
    return Cell(
        port="", lo=first.lo, hi=group[-1].hi, pfn=first.pfn, mapcount=first.mapcount,
        page_mapcount=first.page_mapcount, pins=max(c.pins for c in group),
        data=min(c.data for c in group), refcount=first.refcount, freed=all(c.freed for c in group),
        changed=any(c.changed for c in group), data_hi=max(c.data_hi for c in group),
        values=dict(first.values), runs=sum(c.runs for c in group), ranges=ranges,
    )


# --------------------------------------------------------------- processes
def _proc_groups(scene: Scene, budget: Budget, group: dict, bad_procs: set):
    owners = {pn.owner for pn in scene.pins}
    folded: dict[str, ProcFold] = {}
    if len(scene.procs) <= budget.fold_procs_above:
        return folded
    sigs: dict[tuple, list] = {}
    for pr in scene.procs:
        if pr.new or pr.exited_now or pr.unmapped or pr.name in owners or pr.name in bad_procs:
            continue
        if any(v.changed or any(r.changed or r.fault or r.unreachable for r in v.rows) for v in pr.vmas):
            continue
        sig = (pr.alive, pr.has_pinned, tuple(
            (v.where, v.write, v.dontcopy, v.anon_vma is None,
             tuple((r.where, r.level, r.write, r.dirty, group.get(r.page, r.page), r.page_lo, r.page_hi)
                   for r in v.rows))
            for v in pr.vmas))
        sigs.setdefault(sig, []).append(pr)
    for members in sigs.values():
        if len(members) < budget.fold_min:
            continue
        like, rest = members[0], members[1:]
        fold = ProcFold(f"fold:{rest[0].name}", like.name, [p.name for p in rest], like.color,
                        sorted({v.anon_vma for p in rest for v in p.vmas if v.anon_vma},
                               key=lambda a: int(a[2:])), [])
        for p in rest:
            folded[p.name] = fold
    return folded


def _draw_rows(scene, v, group, alias, page_of, port_of, budget) -> list[DrawRow]:
    """The rows of one VMA: consecutive runs mapping alike pages alike are
    one row; past ``rows_per_vma`` the unremarkable stretches are merged."""
    rows: list[DrawRow] = []
    last = None
    for r in v.rows:
        node = alias.get(r.page, r.page)
        head = (node, port_of(r.page, r.page_lo))
        pg = page_of[r.page]
        key = (r.level, r.write, r.fault, r.unreachable, r.changed, r.dirty, group.get(r.page, r.page),
               r.page_lo, r.page_hi)
        if last is not None and last[0] == key and last[1] == r.lo and not r.unreachable:
            d = last[2]
            d.runs += 1
            d.where = span_where(d.where, r.where)
            first = last[3]
            sub = "" if r.level == "pmd" else f" [{r.page_lo}:{r.page_hi}] each"
            d.target = f"{first}…{pg.title}{sub}"
            d.what = f"{d.runs} {'PMDs' if r.level == 'pmd' else 'PTE runs'}"
            if head not in d.heads and len(d.heads) < budget.edges_per_row:
                d.heads.append(head)
            last = (key, r.hi, d, first)
            continue
        d = DrawRow("", r.where, r.level, "PMD" if r.level == "pmd" else "PTE", "rw" if r.write else "ro",
                    r.target, [head], r.changed, r.fault, r.unreachable, dirty=r.dirty)
        rows.append(d)
        last = (key, r.hi, d, pg.title)
    if len(rows) > budget.rows_per_vma:
        rows = _summarise_rows(rows, budget)
    return rows


def _remarkable(v: DrawVma) -> bool:
    return v.changed or any(r.unreachable or r.fault or r.changed for r in v.rows)


def _merge_vmas(vmas: list[DrawVma], budget: Budget) -> list[DrawVma]:
    """Past ``vmas_per_proc``, consecutive unremarkable VMAs with the same
    protection are one entry (their rows merged and summarised)."""
    out: list[DrawVma] = []
    for v in vmas:
        last = out[-1] if out else None
        if (last is not None and not _remarkable(v) and not _remarkable(last) and last.write == v.write
                and last.dontcopy == v.dontcopy and last.anon_vma == v.anon_vma):
            last.count += v.count
            last.where = span_where(last.where, v.where)
            last.avcs = tuple(dict.fromkeys(last.avcs + v.avcs))
            last.rows.extend(v.rows)
            continue
        out.append(v)
    for v in out:
        if len(v.rows) > budget.rows_per_vma:
            v.rows = _summarise_rows(v.rows, budget)
    return out


def _summarise_rows(rows: list[DrawRow], budget: Budget) -> list[DrawRow]:
    def keep(d: DrawRow) -> bool:
        return bool(d.unreachable or d.fault or d.changed)

    out: list[DrawRow] = []
    i = 0
    while i < len(rows):
        if keep(rows[i]):
            out.append(rows[i])
            i += 1
            continue
        j = i
        while j < len(rows) and not keep(rows[j]):
            j += 1
        grp = rows[i:j]
        if len(grp) == 1:
            out.append(grp[0])
        else:
            heads: list[tuple[str, str]] = []
            for d in grp:
                for hd in d.heads:
                    if hd not in heads and len(heads) < budget.edges_per_row:
                        heads.append(hd)
            levels = {d.level for d in grp}
            writes = {d.write for d in grp}
            n = sum(d.runs for d in grp)
            pages = list(dict.fromkeys(re.split(r"[\[…]", d.target)[0] for d in grp))
            out.append(DrawRow(
                "", span_where(grp[0].where, grp[-1].where), levels.pop() if len(levels) == 1 else "mixed",
                f"{n} runs", "/".join(sorted(writes)), name_range(pages), heads, runs=n))
        i = j
    return out


# --------------------------------------------------------------- anon_vmas
def _av_rows(scene: Scene, want: set) -> tuple[list[AvRow], int]:
    """Rows of the anon_vma tree table: the anon_vmas in ``want`` (and their
    roots), each under its nearest drawn ancestor."""
    avs = {a.id: a for a in scene.anon_vmas}
    want = {a for a in want if a in avs}
    want |= {avs[a].root for a in list(want)}
    children: dict[str | None, list[str]] = {}
    via: dict[str, int] = {}
    for a in scene.anon_vmas:  # creation order: parents come first
        if a.id not in want:
            continue
        up, n = a.parent, 0
        while up is not None and up not in want:
            up = avs[up].parent if up in avs else None
            n += 1
        via[a.id] = n
        children.setdefault(up, []).append(a.id)
    rows: list[AvRow] = []

    def walk(node: str | None, depth: int) -> None:
        for c in children.get(node, ()):
            a = avs[c]
            rows.append(AvRow(c, depth, node, a.parent is None, a.new, via[c]))
            walk(c, depth + 1)

    walk(None, 0)
    return rows, len(avs) - len(rows)


# -------------------------------------------------------------------- plan
def plan(scene: Scene, budget: Budget = DEFAULT_BUDGET) -> Drawing:
    """What to draw of ``scene`` within ``budget``."""
    d = Drawing(scene)
    bad_pages, bad_procs, bad_cells = _violating(scene)
    group, d.page_folds, alias = _page_groups(scene, budget, bad_pages)
    page_of = {p.id: p for p in scene.pages}

    # pages: merge cells, then every (page, offset) -> port of the drawn cell
    keep: dict[str, set] = {}
    for pid, off in bad_cells:
        keep.setdefault(pid, set()).add(off)
    for pr in scene.procs:
        for v in pr.vmas:
            for r in v.rows:
                if r.fault:
                    keep.setdefault(r.page, set()).add(r.page_lo)
    drawn_pages = []
    for p in scene.pages:
        if p.id in alias:
            continue
        drawn_pages.append(_merge_cells(p, keep.get(p.id, set()), budget.cells_per_page)
                           if p.kind != "zero" else p)
    d.pages = drawn_pages
    drawn_by_id = {p.id: p for p in drawn_pages}

    def port_of(pid: str, off: int) -> str:
        if pid in alias:
            return "h"
        pg = drawn_by_id[pid]
        return "s0" if pg.kind == "zero" else pg.cell_at(off).port

    # processes
    folded = _proc_groups(scene, budget, group, bad_procs)
    seen_folds = []
    for pr in scene.procs:
        fold = folded.get(pr.name)
        if fold is not None:
            if fold not in seen_folds:
                seen_folds.append(fold)
            continue
        vmas: list[DrawVma] = []
        for v in pr.vmas:
            vmas.append(DrawVma("", v.id, v.where, v.write, v.dontcopy, v.anon_vma, v.avcs,
                                _draw_rows(scene, v, group, alias, page_of, port_of, budget), v.changed))
        if len(vmas) > budget.vmas_per_proc:
            vmas = _merge_vmas(vmas, budget)
        n = 0
        for i, dv in enumerate(vmas):
            dv.port = f"v{i}"
            for r in dv.rows:
                r.port = f"r{n}"
                n += 1
        d.procs.append(DrawProc(pr.name, pr.mm_id, pr.color, pr.alive, pr.new, pr.exited_now,
                                list(pr.unmapped), vmas, pr.has_pinned))
    d.proc_folds = seen_folds
    by_name = {p.name: p for p in d.procs}
    for fold in seen_folds:
        heads: list[tuple[str, str]] = []
        page_fold_of = {f.like: f.id for f in d.page_folds}
        for v in by_name[fold.like].vmas:
            for r in v.rows:
                for node, port in r.heads[:1]:
                    # the folded processes map pages like the representative's:
                    # if those are folded too, point at the group
                    hd = (page_fold_of[node], "h") if node in page_fold_of else (
                        node, "h" if r.level == "pmd" else port)
                    if hd not in heads and len(heads) < budget.edges_per_row:
                        heads.append(hd)
        fold.heads = heads
        for node, port in heads:
            d.fold_edges.append((fold.id, node, port, len(fold.names)))

    # pins: one edge per target run, onto the drawn cell
    for pn in scene.pins:
        edges: list[PinEdge] = []
        for t in pn.targets:
            e = PinEdge(alias.get(t.page, t.page), port_of(t.page, t.page_lo))
            if all((x.node, x.port) != (e.node, e.port) for x in edges):
                edges.append(e)
        d.pin_edges[pn.id] = edges
        if pn.lost and pn.lost.get("cpu_node"):
            pg = page_of[pn.lost["cpu_node"]]
            d.lost_cpu[pn.id] = PinEdge(pg.id, port_of(pg.id, pn.lost["cpu_pfn"] - pg.start))

    # the reverse map
    mappings = {p.mapping for p in drawn_pages if p.mapping and p.kind != "zero" and not p.freed}
    total_links = sum(len(v.avcs) for p in d.procs for v in p.vmas)
    every = total_links <= budget.avc_links
    want = set(mappings)
    for p in d.procs:
        for v in p.vmas:
            if not every or len(v.avcs) > budget.avc_per_vma:
                d.avc_summarised = True
                shown = tuple(a for a in v.avcs if a == v.anon_vma or a in mappings)
            else:
                shown = tuple(v.avcs)
            v.avc_drawn = shown
            want.update(shown)
            if v.anon_vma:
                want.add(v.anon_vma)
            for a in shown:
                d.avc_edges.append((a, p.name, v.port))
    d.av_rows, d.av_hidden = _av_rows(scene, want)
    for p in drawn_pages:
        if p.mapping and p.kind != "zero" and not p.freed:
            d.mapping_edges.append((p.id, p.mapping, p.mapping_moved))

    # the budget
    n_nodes = (len(d.procs) + len(d.proc_folds) + len(d.pages) + len(d.page_folds) + len(scene.pins)
               + len({pn.kind for pn in scene.pins}) + (1 if d.av_rows else 0))
    n_edges = (sum(len(r.heads) for p in d.procs for v in p.vmas for r in v.rows)
               + sum(len(e) + 1 for e in d.pin_edges.values()) + len(d.lost_cpu) + len(d.avc_edges)
               + len(d.mapping_edges) + len(d.fold_edges))
    n_cells = sum(len(p.cells) for p in d.pages)
    n_rows = sum(len(v.rows) + 1 for p in d.procs for v in p.vmas) + len(d.av_rows)
    d.stats = {"nodes": n_nodes, "edges": n_edges, "cells": n_cells, "rows": n_rows}
    over = [f"{k} {d.stats[k]} > {getattr(budget, k)}" for k in ("nodes", "edges", "cells")
            if d.stats[k] > getattr(budget, k)]
    if n_rows > budget.cells:
        over.append(f"table rows {n_rows} > {budget.cells}")
    if over:
        d.summary = "over the size budget: " + ", ".join(over)
    return d
