"""Snapshot -> graphviz DOT text.

The diagram, left to right (``layout="wide"``, the default): the anon_vma
tree (the reverse map) as one table, the device or pipe that holds pins;
then each process (``mm``) as a box of VMAs listing their page-table entries
as runs, and the GUP pins; then the pages (a THP is a column of subpage runs
under its head's counters).  ``layout="narrow"`` stacks the same nodes in one
column, top to bottom, for a phone.  Edges:

* anon_vma -> VMA: an ``anon_vma_chain`` link (the rmap walk goes this way);
* page-table run -> subpage run: a PMD (thick) or PTEs (thin); open arrow
  head when write-protected;
* page -> anon_vma: ``page->mapping``;
* device/pipe -> pin -> subpage run: a GUP reference on that exact frame.

Violations are drawn where they happen (vermillion): a run the rmap walk
cannot reach is a dashed edge naming the anon_vma the walk starts from; a
lost pin points at the page the device sees and, dashed, at the page the CPU
maps, with the data version each sees.  Every violation the step reports is
also named in the caption, whatever its kind.  Cells, rows and counters that
changed since the previous snapshot have a yellow background.

What is drawn is decided by :func:`thpviz.render.fold.plan` (alike things
folded, within a size budget); above the budget the diagram is a summary.
Every graph starts with a ``// alt:`` line: its text alternative
(:func:`alt_text`, built from the step's notes), which
:func:`thpviz.render.diagrams.accessible_svg` puts into the SVG.

Only :mod:`thpviz.render.graphviz_run` runs ``dot``; this module only writes
text.  Everything shown comes from :func:`thpviz.render.scene.build_scene`.
"""

from __future__ import annotations

import re
import textwrap
from html import escape

from .fold import DEFAULT_BUDGET, Budget, Drawing, name_range, plan
from .scene import Scene, build_scene
from ..scenario.report import step_notes

FONT = "Helvetica,Arial,sans-serif"
#: every text in the diagram has this size (points): the smallest text
#: decides legibility when a page scales the SVG down
FONT_SIZE = 10
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
LAYOUTS = ("wide", "narrow")
#: the node holding the anon_vma tree (a name no process or pin can have)
RMAP = "anon_vma tree"
#: caption lines are wrapped at this many characters (per layout)
_WRAP = {"wide": 64, "narrow": 44}


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


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u0085\u2028\u2029]")


def q(s: str) -> str:
    """A quoted DOT id."""
    s = _CONTROL.sub(" ", str(s))
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def h(s) -> str:
    """Escape text for an HTML-like label (control characters, which a
    scenario title might smuggle in, become spaces)."""
    return escape(_CONTROL.sub(" ", str(s)), quote=True)


_SPACE_BEFORE = re.compile(r" +(?=<(?:B|I|FONT)\b)")
_SPACE_AFTER = re.compile(r"(</(?:B|I|FONT)>) +")


_TD_MULTI = re.compile(r'(<TD\b[^>]*ALIGN="LEFT"[^>]*>)((?:(?!</TD>).)*?<BR ALIGN="LEFT"/>(?:(?!</TD>).)*?)(?<!<BR ALIGN="LEFT"/>)(</TD>)', re.S)


def _left(label: str) -> str:
    """End every multi-line left-aligned cell with a left-aligned break:
    graphviz centres the last line of a cell otherwise."""
    return _TD_MULTI.sub(lambda m: m.group(1) + m.group(2) + _BR + m.group(3), label)


def _nbsp(label: str) -> str:
    """SVG drops a text piece's leading and trailing spaces, and graphviz
    cuts a label into pieces at every font change: use no-break spaces
    there so "<B>PTE</B> rw" does not render as "PTErw" in a browser."""
    label = _left(label)
    label = _SPACE_BEFORE.sub(lambda m: "&#160;" * len(m.group(0)), label)
    # two: a browser's bold glyphs may be wider than graphviz measured
    return _SPACE_AFTER.sub(lambda m: m.group(1) + "&#160;&#160;", label)


def _sub_range(lo: int, hi: int) -> str:
    return f"{lo}" if hi - lo == 1 else f"{lo}–{hi - 1}"


def _svg_id(s: str) -> str:
    """An SVG/HTML id made of safe characters."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in s)


_BR = '<BR ALIGN="LEFT"/>'


# ----------------------------------------------------------------- node labels
def _avc_text(v) -> str:
    if not v.avcs:
        return ""
    if len(v.avcs) <= 4:
        return "avc " + " ".join(v.avcs)
    return f"avc {name_range(list(v.avcs))} ({len(v.avcs)})"


def _proc_label(pr) -> str:
    """One process: its name, then each VMA (port ``v<i>``, with an ID for
    the SVG) followed by its page-table runs (ports ``r<n>``)."""
    col = proc_color(pr.color)
    fc = _text_on(col)
    pinned = "" if pr.has_pinned is None else f" · has_pinned {int(pr.has_pinned)}"
    rows = [f'<TR><TD PORT="mm" BGCOLOR="{col}" ALIGN="LEFT"><FONT COLOR="{fc}"><B>{h(pr.name)}</B>'
            f'  mm {pr.mm_id}{pinned}</FONT></TD></TR>']
    if pr.exited_now:
        rows.append(f'<TR><TD BGCOLOR="{CHANGED}" ALIGN="LEFT"><B>exited (exit/exec):</B>{_BR}'
                    'all mappings gone</TD></TR>')
    elif pr.new:
        rows.append(f'<TR><TD BGCOLOR="{CHANGED}" ALIGN="LEFT"><B>new process</B></TD></TR>')
    for v in pr.vmas:
        rows.append(_vma_rows(pr, v))
    if pr.unmapped:
        rows.append(f'<TR><TD BGCOLOR="{CHANGED}" ALIGN="LEFT">unmapped this step:{_BR}'
                    f'{h(_short_list(pr.unmapped))}</TD></TR>')
    return (f'<<TABLE BORDER="2" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2" COLOR="{col}" '
            f'BGCOLOR="{_tint(col, 0.88)}">{"".join(rows)}</TABLE>>')


def _short_list(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def _vma_rows(pr, v) -> str:
    col = proc_color(pr.color)
    head_bg = CHANGED if v.changed else _tint(col, 0.7)
    bits = ["rw" if v.write else "ro"]
    if v.dontcopy:
        bits.append("dontcopy")
    second = [f"anon_vma {v.anon_vma}" if v.anon_vma else "no anon_vma"]
    avc = _avc_text(v)
    if avc:
        second.append(avc)
    what = "VMA" if v.count == 1 else f"{v.count} VMAs"
    rows = [f'<TR><TD PORT="{v.port}" ID="{h(_svg_id(v.id))}" ALIGN="LEFT" BGCOLOR="{head_bg}">'
            f'<B>{what} {h(v.where)}</B> {h(" ".join(bits))}{_BR}{h(" · ".join(second))}</TD></TR>']
    for r in v.rows:
        bg = VIOL_FILL if r.unreachable else (CHANGED if r.changed else "#FFFFFF")
        bits = r.write + (" dirty" if r.dirty else "")
        text = f'{h(r.where)}  <B>{h(r.what)}</B> {h(bits)} → {h(r.target)}'
        if r.fault:
            text += f'{_BR}<I>{h(r.fault)}</I>'
        if r.unreachable:
            text += f'{_BR}<B>rmap-broken:</B> the walk from {h(r.unreachable)}{_BR}cannot reach this'
        rows.append(f'<TR><TD PORT="{r.port}" ALIGN="LEFT" BGCOLOR="{bg}">{text}</TD></TR>')
    if not v.rows:
        rows.append('<TR><TD ALIGN="LEFT" BGCOLOR="#FFFFFF"><I>nothing mapped</I></TD></TR>')
    return "".join(rows)


def _counters(items) -> str:
    """Counter name/value pairs, one per line, each with its own cell so a
    changed value can be highlighted."""
    out = []
    for name, value, changed in items:
        bg = f' BGCOLOR="{CHANGED}"' if changed else ""
        out.append(f'<TR><TD ALIGN="LEFT"{bg}>{h(name)}</TD><TD ALIGN="RIGHT"{bg}><B>{h(value)}</B></TD></TR>')
    return ('<TR><TD CELLPADDING="0" BORDER="0"><TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" '
            f'CELLPADDING="1">{"".join(out)}</TABLE></TD></TR>')


def cell_text(page, c, fields) -> list[str]:
    """The lines of one subpage cell (HTML-like label pieces, escaped)."""
    bits = []
    for f in fields:
        if f.order0 and page.kind != "order0":
            continue
        if f.name not in c.values:
            continue
        lo, hi = c.ranges.get(f.name, (c.values[f.name], c.values[f.name]))
        if f.name == "mapcount" and page.double_map and lo == hi:
            bits.append(f"mc {lo} = {lo - 1}+DM")
            continue
        t = f.text(lo, hi)
        if t:
            bits.append(h(t))
        if f.name == "mapcount" and c.runs == 1 and c.page_mapcount != c.mapcount:
            bits.append(f"page_mapcount {c.page_mapcount}")
    bits.append(f"v{c.data}" if c.data == c.data_hi else f"v{c.data}–v{c.data_hi}")
    if page.kind == "order0" and c.freed and not page.freed:
        bits.append("freed")
    head = f"<B>{_sub_range(c.lo, c.hi)}</B>"
    if c.runs > 1:
        head += f" {c.runs} runs"
    if len(bits) <= 3:
        return [head + " " + " · ".join(bits)]
    lines = [head + " " + " · ".join(bits[:2])]
    rest = bits[2:]
    for i in range(0, len(rest), 3):
        lines.append(" · ".join(rest[i:i + 3]))
    return lines


def _cell_td(page, c, fields) -> str:
    lines = cell_text(page, c, fields)
    top = c.ranges.get("mapcount", (c.mapcount, c.mapcount))[1]
    bg = CHANGED if c.changed else MC_FILL[min(max(top, 0), 3)]
    return f'<TR><TD PORT="{c.port}" ALIGN="LEFT" BGCOLOR="{bg}">{_BR.join(lines)}</TD></TR>'


def _page_label(page, scene) -> str:
    style = ' STYLE="dashed"' if page.freed else ""
    if page.kind == "zero":
        return (f'<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" COLOR="#777777" '
                f'BGCOLOR="{GREY_FILL}"><TR><TD PORT="h"><B>{h(page.title)}</B></TD></TR>'
                f'<TR><TD PORT="s0"><I>shared, not counted</I></TD></TR></TABLE>>')
    head_bg = GREY_FILL if page.freed else ("#D9D9D9" if not page.new else CHANGED)
    if page.kind == "thp":
        what = f"THP, {page.n} subpages"
    else:
        what = f"{page.n} order-0 page{'s' if page.n > 1 else ''}"
    title = f'<B>{h(page.title)}</B>  {h(what)}' + ("  <B>freed</B>" if page.freed else "")
    if page.kind == "order0" and page.origin:
        title += f"{_BR}(split from {h(page.origin)})"
    rows = [f'<TR><TD PORT="h" ALIGN="LEFT" BGCOLOR="{head_bg}">{title}</TD></TR>']
    items = []
    if page.kind == "thp":
        for name, value in page.head_counters.items():
            items.append((name, value, name in page.changed))
        if "pincount" not in page.head_counters:
            # before 5.8 the pins are plain references in page_count: say how many
            items.append(("GUP pins", page.pincount, "pins" in page.changed))
        if "double_map" in scene.era.counters or page.double_map:
            items.append(("PageDoubleMap", "yes" if page.double_map else "no", "double_map" in page.changed))
    if page.slots is not None:
        items.append(("_mm_id slots", page.slots, "slots" in page.changed))
    items.append(("mapping", page.mapping or "none", "mapping" in page.changed))
    rows.append(_counters(items))
    rows.extend(_cell_td(page, c, scene.fields) for c in page.cells)
    return (f'<<TABLE BORDER="1" CELLBORDER="1" CELLSPACING="0" CELLPADDING="2" COLOR="#555555" '
            f'BGCOLOR="#FFFFFF"{style}>{"".join(rows)}</TABLE>>')


def _pin_label(pn) -> str:
    border = VERMILLION if pn.lost else PURPLE
    kind = (f"pin {'rw' if pn.write else 'ro'}" if pn.kind == "pin" else "vmsplice ref ro") + f" · {pn.flag}"
    bg = CHANGED if pn.new else _tint(PURPLE, 0.45)
    rows = [f'<TR><TD PORT="h" ALIGN="LEFT" BGCOLOR="{bg}"><B>{h(pn.name)}</B>  {h(kind)}</TD></TR>']
    owner = pn.owner + ("" if pn.owner_alive else " (exited)")
    targets = _short_list([t.target for t in pn.targets], 2)
    rows.append(f'<TR><TD ALIGN="LEFT">owner {h(owner)} · {h(pn.where)}{_BR}→ {h(targets)}</TD></TR>')
    if pn.excused:
        rows.append('<TR><TD ALIGN="LEFT"><I>owner unmapped it:</I>{_BR}<I>no promise left</I></TD></TR>'
                    .replace("{_BR}", _BR))
    if pn.lost:
        L = pn.lost
        cpu = f"{L['cpu_page']} v{L['cpu_data']}" if L["cpu_page"] else "nothing"
        rows.append(
            f'<TR><TD ALIGN="LEFT" BGCOLOR="{VIOL_FILL}"><B>pin-lost</B> at {h(L["where"])}'
            + (f' ({L["count"]} subpages)' if L["count"] > 1 else "")
            + f':{_BR}device sees {h(L["device_page"])} v{L["device_data"]}{_BR}'
            f'{h(pn.owner)}\'s CPU sees {h(cpu)}</TD></TR>')
    return (f'<<TABLE BORDER="{2 if pn.lost else 1}" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2" '
            f'COLOR="{border}" BGCOLOR="{PIN_FILL}">{"".join(rows)}</TABLE>>')


def _rmap_label(d: Drawing) -> str:
    rows = ['<TR><TD ALIGN="LEFT"><B>anon_vma tree</B></TD></TR>']
    for a in d.av_rows:
        bg = CHANGED if a.new else AV_FILL
        indent = "&#160;&#160;&#160;" * min(a.depth, 6) + ("└&#160;" if a.depth else "")
        extra = " (root)" if a.root else (f" (depth {a.depth})" if a.depth > 6 else "")
        if a.via:
            extra += f" (via {a.via} more)"
        rows.append(f'<TR><TD PORT="{a.id}" ALIGN="LEFT" BGCOLOR="{bg}">{indent}<B>{h(a.id)}</B>{h(extra)}</TD></TR>')
    if d.av_hidden:
        rows.append(f'<TR><TD ALIGN="LEFT"><I>{d.av_hidden} more not drawn</I></TD></TR>')
    return (f'<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2" COLOR="{GREEN}" '
            f'BGCOLOR="{AV_FILL}" STYLE="rounded">{"".join(rows)}</TABLE>>')


def _proc_fold_label(f) -> str:
    col = proc_color(f.color)
    n = len(f.names)
    lines = [f"<B>{h(name_range(f.names))}</B>: {n} process{'es' if n > 1 else ''}", f"like {h(f.like)}"]
    if f.anon_vmas:
        lines.append(f"anon_vma {h(name_range(f.anon_vmas))}")
    return (f'<<TABLE BORDER="2" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" COLOR="{col}" STYLE="dashed" '
            f'BGCOLOR="{_tint(col, 0.88)}"><TR><TD PORT="h" ALIGN="LEFT">{_BR.join(lines)}</TD></TR></TABLE>>')


def _page_fold_label(f) -> str:
    n = len(f.titles)
    what = "THP" if f.kind == "thp" else "order-0 run"
    lines = [f"<B>{h(name_range(f.titles))}</B>: {n} {what}{'s' if n > 1 else ''}", f"like {h(f.like)}"]
    if f.mappings:
        lines.append(f"mapping {h(name_range(f.mappings))}")
    return (f'<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" COLOR="#555555" STYLE="dashed" '
            f'BGCOLOR="#FFFFFF"><TR><TD PORT="h" ALIGN="LEFT">{_BR.join(lines)}</TD></TR></TABLE>>')


# -------------------------------------------------------------- caption, alt
def violation_kinds(violations: dict) -> list[str]:
    """The kinds in ``violations``, in the invariants' order, then any other
    kind the engine reports (so a new kind is listed without a change here)."""
    from ..invariants import VIOLATIONS

    return [k for k in VIOLATIONS if k in violations] + sorted(k for k in violations if k not in VIOLATIONS)


def caption_lines(scene: Scene, title: str | None = None) -> list[str]:
    out = []
    if title:
        out.append(title)
    st = scene.step
    if st is not None:
        out.append(f"line {st.stmt.line}: {st.stmt.text}")
        out.extend(n.text for n in step_notes(st, scene.faults) if n.kind != "violation")
    return out


def _wrap(text: str, layout: str = "wide") -> list[str]:
    return textwrap.wrap(text, _WRAP[layout], break_long_words=True, break_on_hyphens=False) or [""]


def _caption_table(scene: Scene, d: Drawing | None, title: str | None, caption: bool, legend: bool,
                   layout: str = "wide") -> str:
    """Graph label: the step (statement, faults, events, violations), what
    was folded, and the legend, one above the other."""
    rows = []
    if caption:
        for i, line in enumerate(caption_lines(scene, title)):
            for piece in _wrap(line, layout):
                rows.append(f'<TR><TD ALIGN="LEFT">{"<B>" + h(piece) + "</B>" if i == 0 else h(piece)}</TD></TR>')
        for kind in violation_kinds(scene.violations):
            details = scene.violations[kind]
            for det in details[:2]:
                text = _wrap(f"{kind}: {det}", layout)
                rows.append(f'<TR><TD ALIGN="LEFT" BGCOLOR="{VIOL_FILL}"><B>{h(kind)}</B>'
                            f'{h(text[0][len(kind):])}{"".join(_BR + h(t) for t in text[1:])}</TD></TR>')
            if len(details) > 2:
                rows.append(f'<TR><TD ALIGN="LEFT" BGCOLOR="{VIOL_FILL}">… and {len(details) - 2} more '
                            f'{h(kind)}</TD></TR>')
    if d is not None and d.folded:
        rows.append(f'<TR><TD ALIGN="LEFT"><I>{h(folded_note(d))}</I></TD></TR>')
    if legend:
        rows.append(f'<TR><TD ALIGN="LEFT">{legend_table()}</TD></TR>')
    if not rows:
        return ""
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="1" CELLPADDING="1">' + "".join(rows) + "</TABLE>>")


def folded_note(d: Drawing) -> str:
    bits = []
    n = sum(len(f.names) for f in d.proc_folds)
    if n:
        bits.append(f"{n} alike processes")
    n = sum(len(f.titles) for f in d.page_folds)
    if n:
        bits.append(f"{n} alike pages")
    if d.avc_summarised:
        bits.append("anon_vma_chain links")
    if any(v.count > 1 for p in d.procs for v in p.vmas):
        bits.append("VMAs")
    if any(r.runs > 1 for p in d.procs for v in p.vmas for r in v.rows):
        bits.append("page-table runs")
    if any(c.runs > 1 for p in d.pages for c in p.cells):
        bits.append("subpage runs")
    return "folded to stay legible: " + ", ".join(bits)


def legend_table() -> str:
    """The legend as an HTML-like table."""
    def sw(swatch, text):
        return (f'<TD BGCOLOR="{swatch}" WIDTH="14" HEIGHT="12" FIXEDSIZE="TRUE" BORDER="1" '
                f'COLOR="#999999"></TD><TD ALIGN="LEFT">{text}&#160;&#160;</TD>')
    swatches = [
        "<TR>" + sw(MC_FILL[1], "subpage run; shade = mc") + sw(CHANGED, "changed in this step") + "</TR>",
        "<TR>" + sw(VIOL_FILL, "violation") + sw(AV_FILL, "anon_vma") + "</TR>",
        "<TR>" + sw(PIN_FILL, "GUP pin / reference") + sw(GREY_FILL, "zero page, device, freed") + "</TR>",
    ]
    text = [
        "edges: thick = PMD, thin = PTEs; open arrow head = read-only",
        "dotted green = anon_vma_chain link (the rmap walk goes that way)",
        "dashed vermillion = a mapping the rmap walk cannot reach",
        "mc: logical _mapcount of each subpage",
        "mc 2 = 1+DM: one PTE plus the PageDoubleMap bias",
        "page_mapcount: what the era's page_mapcount() returns",
        "vN: version of the data in the frame (v0: never written)",
    ]
    rows = [
        '<TR><TD ALIGN="LEFT"><TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="1">'
        + "".join(swatches) + "</TABLE></TD></TR>",
        f'<TR><TD ALIGN="LEFT">{_BR.join(h(t) for t in text)}{_BR}</TD></TR>',
    ]
    return (f'<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="1" CELLPADDING="2" COLOR="#999999" '
            f'BGCOLOR="#FFFFFF">{"".join(rows)}</TABLE>')


def alt_text(scene: Scene, title: str | None = None) -> str:
    """A text alternative for the diagram, from the scene and its step's
    notes (:func:`thpviz.scenario.report.step_notes`)."""
    parts = []
    if title:
        parts.append(title.rstrip(".") + ".")
    era = getattr(scene.era, "id", str(scene.era))
    st = scene.step
    if st is None:
        parts.append(f"Model state under era {era}.")
    else:
        parts.append(f"State after line {st.stmt.line}, {st.stmt.text}, under era {era}.")
    alive = [p.name for p in scene.procs if p.alive]
    if alive:
        parts.append(f"{len(alive)} process{'es' if len(alive) > 1 else ''}: {name_range(alive)}.")
    pages = [p.title for p in scene.pages if p.kind != "zero" and not p.freed]
    if pages:
        parts.append(f"Pages: {name_range(pages)}.")
    if scene.pins:
        parts.append(f"Pins: {name_range([p.name for p in scene.pins])}.")
    if st is not None:
        parts.extend(n.text.rstrip(".") + "." for n in step_notes(st, scene.faults) if not n.violation)
    # violations as the caption lists them: every kind the engine reports
    for kind in violation_kinds(scene.violations):
        parts.extend(f"{kind}: {d}".rstrip(".") + "." for d in scene.violations[kind])
    if not scene.violations:
        parts.append("No violation.")
    return _CONTROL.sub(" ", " ".join(parts)).replace("\n", " ")


# ---------------------------------------------------------------------- graph
def _head(name: str, layout: str) -> list[str]:
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} not one of {', '.join(LAYOUTS)}")
    rankdir = "LR" if layout == "wide" else "TB"
    return [
        f"digraph {q(name)} {{",
        f'graph [rankdir={rankdir}, bgcolor="{BG}", fontname="{FONT}", fontsize={FONT_SIZE}, fontcolor="{INK}", '
        f'nodesep=0.15, ranksep={0.35 if layout == "wide" else 0.25}, newrank=true, pad=0.1, labelloc=t, '
        f'labeljust=l, outputorder=edgesfirst];',
        f'node [shape=plain, fontname="{FONT}", fontsize={FONT_SIZE}, fontcolor="{INK}"];',
        f'edge [fontname="{FONT}", fontsize={FONT_SIZE}, fontcolor="{INK}", arrowsize=0.7];',
    ]


def _alt_line(alt: str) -> str:
    return "// alt: " + alt.replace("\n", " ") + "\n"


def scene_dot(scene: Scene, *, legend: bool = True, title: str | None = None, caption: bool = True,
              name: str = "thpviz", layout: str = "wide", budget: Budget = DEFAULT_BUDGET) -> str:
    """DOT text of a scene (``layout``: ``"wide"``, left to right, or
    ``"narrow"``, one column top to bottom)."""
    d = plan(scene, budget)
    alt = alt_text(scene, title)
    if d.summary is None:
        text = _full_dot(scene, d, legend=legend, title=title, caption=caption, name=name, layout=layout)
        if len(text) <= budget.dot_bytes:
            d.stats["dot_bytes"] = len(text)
            return _alt_line(alt) + text
        d.summary = f"over the size budget: DOT text {len(text)} bytes > {budget.dot_bytes}"
    return _alt_line(alt) + summary_dot(scene, d, title=title, caption=caption, name=name, layout=layout)


def _full_dot(scene, d: Drawing, *, legend, title, caption, name, layout) -> str:
    wide = layout == "wide"
    out = _head(name, layout)
    label = _caption_table(scene, d, title, caption, legend, layout)
    if label:
        out.append(f"label={_nbsp(label)};")
    order: list[str] = []  # the narrow layout's column, top to bottom

    if d.av_rows:
        out.append(f"{q(RMAP)} [label={_nbsp(_rmap_label(d))}];")
        order.append(RMAP)
    holders = sorted({"device" if pn.kind == "pin" else "pipe" for pn in scene.pins})
    for holder in holders:
        text = "device (IOMMU)<BR/>holds the DMA pins" if holder == "device" else \
            "pipe<BR/>holds vmsplice references"
        out.append(f'{q(holder)} [label=<<TABLE BORDER="1" CELLBORDER="0" CELLPADDING="3" COLOR="#444444" '
                   f'BGCOLOR="#D9D9D9"><TR><TD>{text}</TD></TR></TABLE>>];')
        order.append(holder)

    for pr in d.procs:
        out.append(f"{q(pr.name)} [label={_nbsp(_proc_label(pr))}];")
        order.append(pr.name)
        for f in d.proc_folds:
            if f.like == pr.name:
                tip = ", ".join(f.names)
                tip = tip if len(tip) < 1500 else tip[:1500] + "…"
                out.append(f"{q(f.id)} [label={_nbsp(_proc_fold_label(f))}, tooltip={q(tip)}];")
                order.append(f.id)
    for pn in scene.pins:
        out.append(f"{q(pn.id)} [label={_nbsp(_pin_label(pn))}];")
        order.append(pn.id)
    page_nodes = []
    for pg in d.pages:
        out.append(f"{q(pg.id)} [label={_nbsp(_page_label(pg, scene))}];")
        page_nodes.append(pg.id)
        for f in d.page_folds:
            if f.like == pg.id:
                out.append(f"{q(f.id)} [label={_nbsp(_page_fold_label(f))}, tooltip={q(', '.join(f.titles)[:1500])}];")
                page_nodes.append(f.id)
    order.extend(page_nodes)
    if wide and len(page_nodes) > 1:
        out.append("{ rank=same; " + " ".join(q(p) for p in page_nodes) + " }")
    if not wide and len(order) > 1:
        out.append(" -> ".join(q(n) for n in order) + " [style=invis, weight=20];")

    west = ":w" if wide else ""
    # pins and their holders
    for pn in scene.pins:
        holder = "device" if pn.kind == "pin" else "pipe"
        out.append(f'{q(holder)} -> {q(pn.id)}:h [color="{PURPLE}", penwidth=1.2];')
        for i, e in enumerate(d.pin_edges.get(pn.id, ())):
            color = VERMILLION if pn.lost else PURPLE
            label = f', label="device sees v{pn.lost["device_data"]}"' if pn.lost and i == 0 else ""
            out.append(f'{q(pn.id)}:h -> {q(e.node)}:{e.port}{west} [color="{color}", '
                       f'penwidth={2.4 if pn.lost else 1.8}{label}];')
        cpu = d.lost_cpu.get(pn.id)
        if cpu is not None:
            out.append(f'{q(pn.id)}:h -> {q(cpu.node)}:{cpu.port}{west} [style=dashed, '
                       f'color="{VERMILLION}", penwidth=1.6, constraint=false, '
                       f'label={q(pn.owner + chr(39) + "s CPU sees v" + str(pn.lost["cpu_data"]))}];')

    # mappings: page-table runs -> subpage runs
    for pr in d.procs:
        col = proc_color(pr.color)
        for v in pr.vmas:
            for r in v.rows:
                for i, (node, port) in enumerate(r.heads):
                    attrs = [f'color="{VERMILLION if r.unreachable else col}"',
                             f"penwidth={3.0 if r.level == 'pmd' else 1.3}",
                             f"arrowhead={'normal' if r.write == 'rw' else 'onormal'}"]
                    if r.unreachable and i == 0:
                        attrs += ["style=dashed", f'label="rmap walk from {r.unreachable} cannot reach"']
                    hp = "h" if r.level == "pmd" else port
                    out.append(f"{q(pr.name)}:{r.port} -> {q(node)}:{hp}{west if hp != 'h' else ''} "
                               f"[{', '.join(attrs)}];")
    for fold_id, node, port, count in d.fold_edges:
        f = next(f for f in d.proc_folds if f.id == fold_id)
        out.append(f'{q(fold_id)}:h -> {q(node)}:{port} [color="{proc_color(f.color)}", style=dashed, '
                   f'penwidth=1.3, label="×{count}"];')

    # the reverse map: anon_vma_chain links and page->mapping
    for av, proc, port in d.avc_edges:
        tail = f"{q(RMAP)}:{av}" + (":e" if wide else "")
        out.append(f'{tail} -> {q(proc)}:{port}{west} [color="{GREEN}", style=dotted, penwidth=1.3, '
                   f'arrowhead=none];')
    for pid, av, moved in d.mapping_edges:
        if moved:
            map_attrs = f'color="{GREEN}", penwidth=3, label="page->mapping (moved this step)"'
        else:
            map_attrs = f'color="{GREEN}", penwidth=1.2'
        out.append(f"{q(pid)}:h -> {q(RMAP)}:{av} [{map_attrs}, constraint=false];")
    out.append("}")
    return "\n".join(out) + "\n"


def summary_dot(scene: Scene, d: Drawing, *, title=None, caption=True, name="thpviz", layout="wide") -> str:
    """A diagram too big to draw legibly, as one table: what the snapshot
    holds, in numbers, and every violation by name."""
    out = _head(name, layout)
    label = _caption_table(scene, None, title, caption, False, layout)
    if label:
        out.append(f"label={_nbsp(label)};")
    rows = [f'<TR><TD ALIGN="LEFT" BGCOLOR="#D9D9D9"><B>Too much to draw legibly: a summary</B>{_BR}'
            f'{h(d.summary or "")}</TD></TR>']
    alive = [p.name for p in scene.procs if p.alive]
    lines = [f"processes: {len(alive)} ({name_range(alive)})" if alive else "processes: none"]
    thps = [p for p in scene.pages if p.kind == "thp" and not p.freed]
    small = [p for p in scene.pages if p.kind == "order0" and not p.freed]
    lines.append(f"THPs: {len(thps)}" + (f" ({name_range([p.title for p in thps])})" if thps else ""))
    if small:
        lines.append(f"order-0 page runs: {len(small)}, {sum(p.n for p in small)} pages")
    lines.append(f"anon_vmas: {len(scene.anon_vmas)}")
    rows.append(f'<TR><TD ALIGN="LEFT">{_BR.join(h(t) for t in lines)}</TD></TR>')
    for p in (thps + small)[:6]:
        bits = [f"{k} {v}" for k, v in p.head_counters.items()]
        bits.append(f"GUP pins {p.pincount}")
        bits.append(f"mapping {p.mapping or 'none'}")
        bits.append(f"{len(p.cells)} subpage runs")
        text = _wrap(f"{p.title}: " + " · ".join(bits), layout)
        rows.append(f'<TR><TD ALIGN="LEFT">{_BR.join(h(t) for t in text)}</TD></TR>')
    if len(thps) + len(small) > 6:
        rows.append(f'<TR><TD ALIGN="LEFT">… and {len(thps) + len(small) - 6} more pages</TD></TR>')
    for pn in scene.pins[:6]:
        rows.append(f'<TR><TD ALIGN="LEFT" BGCOLOR="{PIN_FILL}">{h(pn.name)}: '
                    f'{"pin" if pn.kind == "pin" else "vmsplice reference"} of {h(pn.owner)} at {h(pn.where)}'
                    f'</TD></TR>')
    if len(scene.pins) > 6:
        rows.append(f'<TR><TD ALIGN="LEFT" BGCOLOR="{PIN_FILL}">… and {len(scene.pins) - 6} more pins</TD></TR>')
    for kind in violation_kinds(scene.violations):
        details = scene.violations[kind]
        for det in details[:5]:
            text = _wrap(f"{kind}: {det}", layout)
            rows.append(f'<TR><TD ALIGN="LEFT" BGCOLOR="{VIOL_FILL}">{_BR.join(h(t) for t in text)}</TD></TR>')
        if len(details) > 5:
            rows.append(f'<TR><TD ALIGN="LEFT" BGCOLOR="{VIOL_FILL}">… and {len(details) - 5} more '
                        f'{h(kind)}</TD></TR>')
    table = (f'<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" COLOR="#555555" '
             f'BGCOLOR="#FFFFFF">{"".join(rows)}</TABLE>>')
    out.append(f'"summary" [label={_nbsp(table)}];')
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
