"""Snapshot -> graphviz DOT text.

The diagram, left to right: the anon_vma tree (the reverse map), each process
(``mm``) as a cluster of VMAs listing their page-table entries as runs, the
pages (a THP is a strip of subpage runs under its head's counters), the GUP
pins, and the device or pipe that holds them.  Edges:

* anon_vma -> VMA: an ``anon_vma_chain`` link (the rmap walk goes this way);
* parent anon_vma -> child anon_vma: the anon_vma tree (``anon_vma_fork``);
* page-table run -> subpage run: a PMD (thick) or PTEs (thin); open arrow
  head when write-protected;
* page -> anon_vma: ``page->mapping``;
* subpage run <- pin <- device/pipe: a GUP reference on that exact frame.

Violations are drawn where they happen (vermillion): a run the rmap walk
cannot reach is a dashed edge naming the anon_vma the walk starts from; a
lost pin points at the page the device sees and, dashed, at the page the CPU
maps, with the data version each sees.  Cells, rows and counters that changed
since the previous snapshot have a yellow background.

Only :mod:`thpviz.render.graphviz_run` runs ``dot``; this module only writes
text.  Everything shown comes from :func:`thpviz.render.scene.build_scene`.
"""

from __future__ import annotations

import re
from html import escape

from .scene import Scene, build_scene
from ..scenario.report import step_notes

FONT = "Helvetica,Arial,sans-serif"
BG = "#FBFAF6"  # the diagram carries its own light background (dark themes)
INK = "#1A1A1A"
# Okabe & Ito's colour-blind-safe palette: processes take blue, orange, sky
# blue, ...; the reverse map is bluish green, pins reddish purple, violations
# vermillion; yellow (as a tint) marks what changed
GREEN, VERMILLION, PURPLE = "#009E73", "#D55E00", "#CC79A7"
PROC_COLORS = ("#0072B2", "#E69F00", "#56B4E9", "#CC79A7", "#999999", "#009E73")
CHANGED = "#F6EC7A"  # yellow tint: changed in this step
VIOL_FILL = "#F7CDB3"  # vermillion tint
PIN_FILL = "#F2D7E7"
AV_FILL = "#CDEBE0"
GREY_FILL = "#E4E4E4"
MC_FILL = ("#FFFFFF", "#DCEBF6", "#B7D6EE", "#8FBFE6")  # logical mapcount 0, 1, 2, 3+


def _tint(hex_color: str, amount: float = 0.78) -> str:
    """Mix a colour with white."""
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    mix = [round(c + (255 - c) * amount) for c in (r, g, b)]
    return "#" + "".join(f"{c:02X}" for c in mix)


def _text_on(hex_color: str) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return "#FFFFFF" if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.45 else INK


def proc_color(index: int) -> str:
    return PROC_COLORS[index % len(PROC_COLORS)]


def q(s: str) -> str:
    """A quoted DOT id."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def h(s) -> str:
    """Escape text for an HTML-like label."""
    return escape(str(s), quote=True)


_SPACE_BEFORE = re.compile(r" +(?=<(?:B|I|FONT)\b)")
_SPACE_AFTER = re.compile(r"(</(?:B|I|FONT)>) +")


def _nbsp(label: str) -> str:
    """SVG drops a text piece's leading and trailing spaces, and graphviz
    cuts a label into pieces at every font change: use no-break spaces
    there so "<B>PTE</B> rw" does not render as "PTErw" in a browser."""
    label = _SPACE_BEFORE.sub(lambda m: "&#160;" * len(m.group(0)), label)
    # two: a browser's bold glyphs may be wider than graphviz measured
    return _SPACE_AFTER.sub(lambda m: m.group(1) + "&#160;&#160;", label)


def _sub_range(lo: int, hi: int) -> str:
    return f"{lo}" if hi - lo == 1 else f"{lo}–{hi - 1}"


# ----------------------------------------------------------------- node labels
def _proc_label(pr) -> str:
    """One process: its name, then each VMA (port ``v<i>``, with an ID for
    the SVG) followed by its page-table runs (ports ``r<n>``)."""
    col = proc_color(pr.color)
    fc = _text_on(col)
    rows = [f'<TR><TD PORT="mm" BGCOLOR="{col}" ALIGN="LEFT"><FONT COLOR="{fc}"><B>{h(pr.name)}</B>'
            f'  mm {pr.mm_id}</FONT></TD></TR>']
    if pr.exited_now:
        rows.append(f'<TR><TD BGCOLOR="{CHANGED}" ALIGN="LEFT"><B>exited (exit/exec): all mappings gone</B></TD></TR>')
    elif pr.new:
        rows.append(f'<TR><TD BGCOLOR="{CHANGED}" ALIGN="LEFT"><B>new process</B></TD></TR>')
    for i, v in enumerate(pr.vmas):
        rows.append(_vma_rows(pr, v, i))
    if pr.unmapped:
        rows.append(f'<TR><TD BGCOLOR="{CHANGED}" ALIGN="LEFT">unmapped this step: '
                    f'{h(", ".join(pr.unmapped))}</TD></TR>')
    return (f'<<TABLE BORDER="2" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" COLOR="{col}" '
            f'BGCOLOR="{_tint(col, 0.88)}">{"".join(rows)}</TABLE>>')


def _vma_rows(pr, v, i) -> str:
    col = proc_color(pr.color)
    head_bg = CHANGED if v.changed else _tint(col, 0.7)
    bits = ["rw" if v.write else "ro"]
    if v.dontcopy:
        bits.append("dontcopy")
    bits.append(f"anon_vma {v.anon_vma}" if v.anon_vma else "no anon_vma")
    if v.avcs:
        bits.append("avc " + " ".join(v.avcs))
    rows = [f'<TR><TD PORT="v{i}" ID="{h(_svg_id(v.id))}" ALIGN="LEFT" BGCOLOR="{head_bg}"><B>VMA {h(v.where)}</B>  '
            f'{h(" · ".join(bits))}</TD></TR>']
    for r in v.rows:
        bg = VIOL_FILL if r.unreachable else (CHANGED if r.changed else "#FFFFFF")
        text = (f'{h(r.where)}  <B>{"PMD" if r.level == "pmd" else "PTE"}</B> {"rw" if r.write else "ro"}'
                f' → {h(r.target)}')
        if r.fault:
            text += f'  <I>{h(r.fault)}</I>'
        if r.unreachable:
            text += f'<BR ALIGN="LEFT"/><B>rmap-broken:</B> the walk from {h(r.unreachable)} cannot reach this'
        rows.append(f'<TR><TD PORT="{r.port}" ALIGN="LEFT" BGCOLOR="{bg}">{text}</TD></TR>')
    if not v.rows:
        rows.append('<TR><TD ALIGN="LEFT" BGCOLOR="#FFFFFF"><I>  nothing mapped</I></TD></TR>')
    return "".join(rows)


def _svg_id(s: str) -> str:
    """An SVG/HTML id made of safe characters."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in s)


def _pairs(items, width) -> str:
    """Counter name/value pairs, two per line, each with its own cell so a
    changed value can be highlighted."""
    out = []
    for i in range(0, len(items), 2):
        tds = []
        for name, value, changed in items[i:i + 2]:
            bg = f' BGCOLOR="{CHANGED}"' if changed else ""
            tds.append(f'<TD ALIGN="LEFT"{bg}>{h(name)}</TD><TD ALIGN="LEFT"{bg}><B>{h(value)}</B></TD>'
                       '<TD WIDTH="6"></TD>')
        if len(tds) == 1:
            tds.append("<TD></TD><TD></TD><TD></TD>")
        out.append("<TR>" + "".join(tds) + "</TR>")
    return (f'<TR><TD COLSPAN="{width}" CELLPADDING="0"><TABLE BORDER="0" CELLBORDER="0" '
            f'CELLSPACING="0" CELLPADDING="2">{"".join(out)}</TABLE></TD></TR>')


def _cell_td(page, c) -> str:
    lines = [f"<B>{_sub_range(c.lo, c.hi)}</B>"]
    if page.kind == "order0":
        lines.append(f"count {c.refcount}")
    if page.double_map:
        lines.append(f"mc {c.mapcount} = {c.mapcount - 1}+DM")
    else:
        lines.append(f"mc {c.mapcount}")
    if c.page_mapcount != c.mapcount:
        lines.append(f'<FONT POINT-SIZE="8">page_mapcount {c.page_mapcount}</FONT>')
    if c.pins:
        lines.append(f'<FONT COLOR="#7A2E5C"><B>pin {c.pins}</B></FONT>')
    lines.append(f"v{c.data}")
    if page.kind == "order0" and c.freed and not page.freed:
        lines.append("freed")
    bg = CHANGED if c.changed else MC_FILL[min(max(c.mapcount, 0), 3)]
    return f'<TD PORT="{c.port}" BGCOLOR="{bg}">{"<BR/>".join(lines)}</TD>'


def _page_label(page, scene) -> str:
    ncol = max(1, len(page.cells))
    style = ' STYLE="dashed"' if page.freed else ""
    if page.kind == "zero":
        return (f'<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="4" COLOR="#777777" '
                f'BGCOLOR="{GREY_FILL}"><TR><TD PORT="h"><B>{h(page.title)}</B></TD></TR>'
                f'<TR><TD PORT="s0"><I>shared, not counted</I></TD></TR></TABLE>>')
    head_bg = GREY_FILL if page.freed else ("#D9D9D9" if not page.new else CHANGED)
    if page.kind == "thp":
        what = f"THP, {page.n} subpages"
    else:
        what = f"{page.n} order-0 page{'s' if page.n > 1 else ''}"
        if page.origin:
            what += f" (split from {page.origin})"
    rows = [f'<TR><TD PORT="h" COLSPAN="{ncol}" BGCOLOR="{head_bg}"><B>{h(page.title)}</B>  {h(what)}'
            + ("  <B>freed</B>" if page.freed else "") + "</TD></TR>"]
    items = []
    if page.kind == "thp":
        for name, value in page.head_counters.items():
            items.append((name, value, name in page.changed))
        items.append(("GUP pins", page.pincount, "pins" in page.changed))
        if "double_map" in scene.era.counters or page.double_map:
            items.append(("PageDoubleMap", "yes" if page.double_map else "no", "double_map" in page.changed))
    items.append(("mapping", page.mapping or "none", "mapping" in page.changed))
    rows.append(_pairs(items, ncol))
    rows.append("<TR>" + "".join(_cell_td(page, c) for c in page.cells) + "</TR>")
    return (f'<<TABLE BORDER="1" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3" COLOR="#555555" '
            f'BGCOLOR="#FFFFFF"{style}>{"".join(rows)}</TABLE>>')


def _pin_label(pn) -> str:
    border = VERMILLION if pn.lost else PURPLE
    kind = f"pin {'rw' if pn.write else 'ro'}" if pn.kind == "pin" else "vmsplice reference (ro)"
    bg = CHANGED if pn.new else _tint(PURPLE, 0.45)
    rows = [f'<TR><TD PORT="h" BGCOLOR="{bg}"><B>{h(pn.name)}</B>  {h(kind)}</TD></TR>']
    owner = pn.owner + ("" if pn.owner_alive else " (exited)")
    targets = ", ".join(t.target for t in pn.targets)
    rows.append(f'<TR><TD ALIGN="LEFT">owner {h(owner)} · {h(pn.where)} → {h(targets)}</TD></TR>')
    if pn.excused:
        rows.append('<TR><TD ALIGN="LEFT"><I>owner unmapped it: no promise left</I></TD></TR>')
    if pn.lost:
        L = pn.lost
        cpu = f"{L['cpu_page']} v{L['cpu_data']}" if L["cpu_page"] else "nothing"
        rows.append(
            f'<TR><TD ALIGN="LEFT" BGCOLOR="{VIOL_FILL}"><B>pin-lost</B> at {h(L["where"])}: device sees '
            f'{h(L["device_page"])} v{L["device_data"]}, {h(pn.owner)}\'s CPU sees {h(cpu)}'
            + (f' ({L["count"]} subpages)' if L["count"] > 1 else "") + "</TD></TR>")
    return (f'<<TABLE BORDER="{2 if pn.lost else 1}" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" '
            f'COLOR="{border}" BGCOLOR="{PIN_FILL}">{"".join(rows)}</TABLE>>')


def _av_label(av) -> str:
    bg = CHANGED if av.new else AV_FILL
    sub = "root" if av.parent is None else f"parent {av.parent} · root {av.root}"
    return (f'<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" COLOR="{GREEN}" '
            f'BGCOLOR="{bg}" STYLE="rounded"><TR><TD><B>{h(av.id)}</B></TD></TR>'
            f'<TR><TD><FONT POINT-SIZE="8">anon_vma · {h(sub)}</FONT></TD></TR></TABLE>>')


def _caption_table(scene: Scene, title: str | None, caption: bool, legend: bool) -> str:
    """Graph label: the step (statement, faults, events, violations) and the
    legend, side by side above the diagram."""
    left = []
    if caption:
        for i, line in enumerate(caption_lines(scene, title)):
            left.append(f'<TR><TD ALIGN="LEFT">{"<B>" + h(line) + "</B>" if i == 0 else h(line)}</TD></TR>')
        for kind in ("pin-lost", "rmap-broken", "leak", "bug"):
            for d in scene.violations.get(kind, ())[:2]:
                left.append(f'<TR><TD ALIGN="LEFT" BGCOLOR="{VIOL_FILL}"><B>{h(kind)}</B>: {h(d)}</TD></TR>')
    cols = []
    if left:
        cols.append('<TD VALIGN="TOP"><TABLE BORDER="0" CELLBORDER="0" CELLSPACING="1" CELLPADDING="2">'
                    + "".join(left) + "</TABLE></TD>")
    if legend:
        cols.append(f'<TD VALIGN="TOP">{legend_table()}</TD>')
    if not cols:
        return ""
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="6" CELLPADDING="0"><TR>'
            + "".join(cols) + "</TR></TABLE>>")


def legend_table() -> str:
    """The legend as an HTML-like table."""
    def sw(swatch, text):
        return (f'<TD BGCOLOR="{swatch}" WIDTH="14" HEIGHT="12" FIXEDSIZE="TRUE" BORDER="1" '
                f'COLOR="#999999"></TD><TD ALIGN="LEFT">{text}&#160;&#160;&#160;</TD>')
    swatches = [
        "<TR>" + sw(MC_FILL[1], "subpage run; shade = mc") + sw(CHANGED, "changed in this step") + "</TR>",
        "<TR>" + sw(VIOL_FILL, "violation") + sw(AV_FILL, "anon_vma (dotted: anon_vma_chain)") + "</TR>",
        "<TR>" + sw(PIN_FILL, "GUP pin / reference") + sw(GREY_FILL, "zero page, device, freed") + "</TR>",
    ]
    rows = [
        '<TR><TD ALIGN="LEFT" VALIGN="TOP"><TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="1">'
        + "".join(swatches) + "</TABLE></TD>",
        '<TD ALIGN="LEFT" VALIGN="TOP">'
        'edges: thick = PMD, thin = PTEs; open arrow head = write-protected<BR ALIGN="LEFT"/>'
        'dashed vermillion = a mapping the rmap walk cannot reach<BR ALIGN="LEFT"/>'
        "mc: logical _mapcount of each subpage; mc 2 = 1+DM: one PTE plus the PageDoubleMap bias"
        '<BR ALIGN="LEFT"/>'
        "page_mapcount: what the era's page_mapcount() returns<BR ALIGN=\"LEFT\"/>"
        'vN: version of the data in the frame (v0: never written)<BR ALIGN="LEFT"/></TD></TR>',
    ]
    return (f'<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="1" CELLPADDING="2" COLOR="#999999" '
            f'BGCOLOR="#FFFFFF">{"".join(rows)}</TABLE>')


def caption_lines(scene: Scene, title: str | None = None) -> list[str]:
    out = []
    if title:
        out.append(title)
    st = scene.step
    if st is not None:
        out.append(f"line {st.stmt.line}: {st.stmt.text}")
        out.extend(n.text for n in step_notes(st, scene.faults) if n.kind != "violation")
    return out


# ---------------------------------------------------------------------- graph
def scene_dot(scene: Scene, *, legend: bool = True, title: str | None = None, caption: bool = True,
              name: str = "thpviz") -> str:
    """DOT text of a scene."""
    out = [f"digraph {q(name)} {{"]
    out.append(f'graph [rankdir=LR, bgcolor="{BG}", fontname="{FONT}", fontsize=11, fontcolor="{INK}", '
               f'nodesep=0.2, ranksep=0.5, newrank=true, pad=0.15, labelloc=t, labeljust=l, '
               f'outputorder=edgesfirst];')
    out.append(f'node [shape=plain, fontname="{FONT}", fontsize=10, fontcolor="{INK}"];')
    out.append(f'edge [fontname="{FONT}", fontsize=9, fontcolor="{INK}", arrowsize=0.7];')
    label = _caption_table(scene, title, caption, legend)
    if label:
        out.append(f"label={_nbsp(label)};")

    # anon_vma tree
    if scene.anon_vmas:
        out.append('subgraph cluster_rmap { graph [label="anon_vma tree", style="rounded,dashed", '
                   f'color="{GREEN}", fontsize=9];')
        for av in scene.anon_vmas:
            out.append(f"{q(av.id)} [label={_nbsp(_av_label(av))}];")
        out.append("}")
        for av in scene.anon_vmas:
            if av.parent:
                out.append(f'{q(av.parent)} -> {q(av.id)} [color="{GREEN}", penwidth=1.4, arrowhead=vee];')

    # processes
    for pr in scene.procs:
        out.append(f"{q(pr.name)} [label={_nbsp(_proc_label(pr))}];")

    # pages
    for pg in scene.pages:
        out.append(f"{q(pg.id)} [label={_nbsp(_page_label(pg, scene))}];")
    if len(scene.pages) > 1:
        out.append("{ rank=same; " + " ".join(q(pg.id) for pg in scene.pages) + " }")

    # pins and their holders
    holders = set()
    for pn in scene.pins:
        pid = pn.id
        out.append(f"{q(pid)} [label={_nbsp(_pin_label(pn))}];")
        holder = "device" if pn.kind == "pin" else "pipe"
        holders.add(holder)
        out.append(f'{q(pid)} -> {q(holder)} [dir=back, color="{PURPLE}", penwidth=1.2];')
        for t in pn.targets:
            color = VERMILLION if pn.lost else PURPLE
            label = f', label="device sees v{pn.lost["device_data"]}"' if pn.lost else ""
            out.append(f'{q(t.page)}:{t.cell} -> {q(pid)}:h [dir=back, color="{color}", '
                       f'penwidth={2.4 if pn.lost else 1.8}{label}];')
        if pn.lost and pn.lost.get("cpu_node"):
            L = pn.lost
            out.append(f'{q(L["cpu_node"])}:{L["cpu_cell"]} -> {q(pid)}:h [dir=back, style=dashed, '
                       f'color="{VERMILLION}", penwidth=1.6, constraint=false, '
                       f'label="{pn.owner}\'s CPU sees v{L["cpu_data"]}"];')
    for holder in sorted(holders):
        text = "device (IOMMU)<BR/><FONT POINT-SIZE=\"8\">holds the DMA pins</FONT>" if holder == "device" \
            else "pipe<BR/><FONT POINT-SIZE=\"8\">holds vmsplice references</FONT>"
        out.append(f'{q(holder)} [label=<<TABLE BORDER="1" CELLBORDER="0" CELLPADDING="4" COLOR="#444444" '
                   f'BGCOLOR="#D9D9D9"><TR><TD>{text}</TD></TR></TABLE>>];')

    # mappings: page-table runs -> subpage runs
    for pr in scene.procs:
        col = proc_color(pr.color)
        for v in pr.vmas:
            for r in v.rows:
                attrs = [f'color="{VERMILLION if r.unreachable else col}"',
                         f"penwidth={3.0 if r.level == 'pmd' else 1.3}",
                         f"arrowhead={'normal' if r.write else 'onormal'}"]
                if r.unreachable:
                    attrs += ["style=dashed", f'label="rmap walk from {r.unreachable} cannot reach"']
                head = f"{q(r.page)}:h" if r.level == "pmd" else f"{q(r.page)}:{r.cell}"
                out.append(f"{q(pr.name)}:{r.port} -> {head} [{', '.join(attrs)}];")

    # the reverse map: anon_vma_chain links and page->mapping
    for pr in scene.procs:
        for i, v in enumerate(pr.vmas):
            for av in v.avcs:
                out.append(f'{q(av)} -> {q(pr.name)}:v{i}:w [color="{GREEN}", style=dotted, penwidth=1.3, '
                           f'arrowhead=none];')
    for pg in scene.pages:
        if pg.mapping and pg.kind != "zero" and not pg.freed:
            if pg.mapping_moved:
                attrs = f'color="{GREEN}", penwidth=3, label="page->mapping (moved this step)"'
            else:
                attrs = f'color="{GREEN}", penwidth=1.2'
            out.append(f"{q(pg.id)}:h -> {q(pg.mapping)} [{attrs}, constraint=false];")
    out.append("}")
    return "\n".join(out) + "\n"


def snapshot_dot(world, prev=None, step=None, **kw) -> str:
    """DOT text of one snapshot (a World); ``prev`` marks changes, ``step``
    (the runner's StepResult) adds its faults and event violations."""
    return scene_dot(build_scene(world, prev, step), **kw)


def run_dot(run, k: int | None = None, **kw) -> str:
    """DOT text of snapshot ``k`` of a run kept with snapshots (0: before
    the first statement; default: the last)."""
    snaps = run.snapshots
    if snaps is None:
        raise ValueError("run the scenario with keep_snapshots=True")
    if k is None:
        k = len(snaps) - 1
    if not 0 <= k < len(snaps):
        raise IndexError(f"step {k} is outside 0..{len(snaps) - 1}")
    prev = snaps[k - 1] if k > 0 else None
    step = run.steps[k - 1] if k > 0 else None
    return snapshot_dot(snaps[k], prev, step, **kw)
