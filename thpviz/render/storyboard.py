"""Static storyboards and readable diagram figures: self-contained HTML
fragments for the book, the notebooks and ``thpviz storyboard``.

A **figure** (:func:`figure_html`) wraps one diagram so it stays readable
wherever it is shown:

* it opens at *readable size*: the SVG is drawn so its smallest text is at
  least :data:`MIN_TEXT_PX` CSS pixels (natural size, or a little more when
  the diagram's smallest font is under 8.25 pt), and scrolls inside its box
  when it is wider than the page;
* a "fit width" toggle shrinks it to the box (and back), "enlarge" shows it
  over the whole window (Escape closes);
* on a narrow screen a top-to-bottom layout of the same diagram is shown
  when one was rendered, and on a phone the step's counter table replaces
  the picture (a button shows the picture anyway);
* the picture carries alt text made from the step's notes (``role="img"``
  and ``aria-label``).

A **storyboard** (:func:`storyboard_html`) is every step of a scenario under
one or more eras as pre-rendered figures, with a step slider, previous/next
buttons, era tabs and a list of the statements.  The tabs name the eras
only: each era's verdict is behind a "reveal" control, so a reader can
predict first.  ``start="decisive"`` opens at the step of the last write
fault, the one an ``expect`` line judges.

The fragments carry their own CSS and a few lines of our own JavaScript;
they make no network request and load no font, so they work in the static
book, offline, and several times on one page (every id is prefixed with the
fragment's own id).  Without JavaScript (an untrusted notebook) the opening
frame is still shown, at readable size.

>>> from thpviz.render.storyboard import storyboard_html, storyboard
>>> html = storyboard_html("data/scenarios/regression/pin-mprotect-cycle-write.thp", ["4.5", "4.6"])
>>> storyboard(path, ["4.5", "4.6"], start="decisive")   # an IPython.display.HTML
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from concurrent.futures import ThreadPoolExecutor
from html import escape
from typing import TYPE_CHECKING

from . import graphviz_run
from .diagrams import inline_svg
from .dot import AV_FILL, CHANGED, GREY_FILL, MC_FILL, PIN_FILL, VIOL_FILL, scene_dot
from .scene import build_scene
from .source import comment_of, era_of, load_scenario
from ..scenario.report import step_notes

if TYPE_CHECKING:
    from ..eras.base import Era
    from ..scenario.runner import Run

_counter = itertools.count(1)

#: the smallest text of a diagram at its opening (readable) size, in CSS px
MIN_TEXT_PX = 11.5
#: viewport widths (CSS px) under which the narrow layout / the phone view apply
NARROW_PX, PHONE_PX = 900, 600
#: CSS px per SVG user unit at natural size (graphviz writes sizes in pt)
PT_PX = 4 / 3

BG, INK = "#FBFAF6", "#1A1A1A"


def _e(s) -> str:
    return escape(str(s), quote=True)


# ------------------------------------------------------------------ reading
def _verdict(run) -> tuple[str, str | None]:
    """(outcome text, expectation status) of one run, from the runner."""
    viol = " ".join(sorted(run.violations)) or "clean"
    text = f"{run.last_write} · {viol}"
    exp = run.scenario.expects.get(run.era.id)
    if exp is None:
        return text, None
    return text, ("as expected" if not run.mismatches() else "MISMATCH: " + "; ".join(run.mismatches()))


def decisive_step(run) -> int:
    """The step (1-based) of the run's last write fault, the one an
    ``expect`` line's decision names; the last step if nothing faulted."""
    for k in range(len(run.steps), 0, -1):
        if run.steps[k - 1].write_faults:
            return k
    return len(run.steps)


def resolve_start(runs, start) -> int:
    """A storyboard's opening step from ``start``: a step number (0: before
    the first statement), ``"decisive"`` (:func:`decisive_step` of the first
    run), or the beginning of a statement's text (its first match)."""
    n = len(runs[0].steps) if runs else 0
    if isinstance(start, str):
        if start == "decisive":
            return decisive_step(runs[0]) if runs else 0
        for k, st in enumerate(runs[0].steps, 1):
            if st.stmt.text.startswith(start):
                return k
        raise ValueError(f"no statement starts with {start!r}")
    return max(0, min(n, int(start)))


_ASSERT_VALUE = re.compile(r"^(.*?\bassert\b.*?(?:==|!=|<=|>=|<|>)\s*)(-?\d+)(\s*(?:#.*)?)$")


def mask_assert(text: str) -> str:
    """An ``assert`` statement with its value replaced by ``?`` (the value
    answers "predict the counter" questions)."""
    m = _ASSERT_VALUE.match(text)
    return f"{m.group(1)}?{m.group(3)}" if m else text


def alt_text(scene) -> str:
    """A text equivalent of a diagram: the renderer's own
    (:func:`thpviz.render.dot.alt_text`, made from the step's notes), plus
    each drawn page's head counters, which the notes do not list."""
    from .dot import alt_text as render_alt

    parts = [render_alt(scene)]
    for p in scene.pages:
        if p.kind == "zero" or not p.head_counters:
            continue
        bits = [f"{k} {v}" for k, v in p.head_counters.items()]
        parts.append(f"{p.title}: " + ", ".join(bits) + ".")
    return " ".join(parts)


# ------------------------------------------------------------ counter table
def page_rows(scene) -> list[tuple[str, dict]]:
    """(page title, {column: value}) for the counter table, from the scene."""
    rows = []
    for p in scene.pages:
        if p.kind == "zero":
            continue
        d = {}
        if p.kind == "thp":
            d.update(p.head_counters)
            if "double_map" in getattr(scene.era, "counters", ("double_map",)):
                d["PageDoubleMap"] = int(p.double_map)
        d["GUP pins"] = p.pincount
        d["mapping"] = p.mapping or "none"
        d["freed"] = "yes" if p.freed else ""
        runs = []
        for c in p.cells:
            rng = f"{c.lo}" if c.hi - c.lo == 1 else f"{c.lo}–{c.hi - 1}"
            extra = f" count {c.refcount}" if p.kind == "order0" else ""
            runs.append(f"[{rng}] mc {c.mapcount} / page_mapcount {c.page_mapcount}{extra}"
                        + (f" pin {c.pins}" if c.pins else ""))
        d["subpages"] = "; ".join(runs)
        rows.append((p.title, d))
    return rows


_CELL = "padding:1px 6px;text-align:left;vertical-align:top"


def counter_table_html(scene, highlight=None) -> str:
    """A table of every drawn page's counters (inline styles, so it reads
    the same in a widget, a storyboard and a phone).  ``highlight``: set of
    (page, column) to mark (e.g. where eras differ); else what changed in
    this step."""
    rows = page_rows(scene)
    if not rows:
        return '<p class="thpviz-nopages"><i>no pages</i></p>'
    cols = []
    for _, d in rows:
        for c in d:
            if c not in cols:
                cols.append(c)
    rename = {"pins": "GUP pins", "double_map": "PageDoubleMap"}
    changed = {}
    for p in scene.pages:
        marks = {rename.get(n, n) for n in p.changed}
        if p.new or any(c.changed for c in p.cells):
            marks.add("subpages")
        changed[p.title] = marks
    head = "".join(f'<th style="{_CELL}">{_e(c)}</th>' for c in ["page"] + cols)
    body = []
    for title, d in rows:
        tds = [f'<td style="{_CELL}"><b>{_e(title)}</b></td>']
        for c in cols:
            mark = (title, c) in highlight if highlight is not None else c in changed.get(title, ())
            style = f"{_CELL};background:{CHANGED}" if mark else _CELL
            tds.append(f'<td style="{style}">{_e(d.get(c, "—"))}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    return (f'<table class="thpviz-counters" style="border-collapse:collapse;font-size:12px;color:{INK}">'
            f"<tr>{head}</tr>{''.join(body)}</table>")


# ----------------------------------------------------------------- figures
_SVG_TAG = re.compile(r"<svg\b[^>]*>", re.S)
_FONT = re.compile(r'font-size="([0-9.]+)"')
_VIEWBOX = re.compile(r'viewBox="([-0-9.]+)[ ,]+([-0-9.]+)[ ,]+([0-9.]+)[ ,]+([0-9.]+)"')


def readable_scale(svg: str) -> float:
    """CSS px per SVG user unit at which the smallest text of ``svg`` is
    :data:`MIN_TEXT_PX` (never smaller than natural size)."""
    sizes = [float(x) for x in _FONT.findall(svg)]
    smallest = min(sizes) if sizes else 14.0
    return max(PT_PX, MIN_TEXT_PX / smallest)


def sized_svg(svg: str, prefix: str) -> str:
    """An SVG made fit for inlining, sized in CSS px at its readable scale
    (:func:`readable_scale`); the ``fit width`` view shrinks it with CSS."""
    svg = inline_svg(svg, prefix)
    m = _SVG_TAG.search(svg)
    if not m:
        return svg
    tag = m.group(0)
    vb = _VIEWBOX.search(tag)
    if not vb:
        return svg
    s = readable_scale(svg)
    w, h = float(vb.group(3)) * s, float(vb.group(4)) * s
    new = re.sub(r'\s(width|height)="[^"]*"', "", tag)
    new = new.replace("<svg", f'<svg width="{w:.0f}px" height="{h:.0f}px" focusable="false" aria-hidden="true"', 1)
    return svg[:m.start()] + new + svg[m.end():]


def _bar(table: bool) -> str:
    phone = ('<button type="button" data-view class="thpviz-phone" aria-pressed="false">'
             "show the diagram</button>") if table else ""
    return ('<div class="thpviz-bar">'
            '<button type="button" data-zoom aria-pressed="false">fit width</button>'
            '<button type="button" data-enlarge aria-pressed="false">enlarge</button>'
            f"{phone}</div>")


def figure_html(svg: str, *, uid: str, alt: str, table: str = "", svg_narrow: str | None = None,
                bar: bool = True, caption: str = "") -> str:
    """One readable diagram (see the module docstring).  ``svg``: graphviz
    output; ``svg_narrow``: the same diagram laid out top to bottom, shown
    on narrow screens; ``table``: HTML shown instead of the picture on a
    phone; ``bar``: the figure's own zoom/enlarge buttons (a storyboard has
    one set for all its frames)."""
    pics = [f'<div class="thpviz-pic thpviz-lr" role="img" aria-label="{_e(alt)}">{sized_svg(svg, uid + "-")}</div>']
    cls = ["thpviz-fig"]
    if svg_narrow:
        cls.append("thpviz-has-tb")
        pics.append(f'<div class="thpviz-pic thpviz-tb" role="img" aria-label="{_e(alt)}">'
                    f'{sized_svg(svg_narrow, uid + "-tb-")}</div>')
    if table:
        cls.append("thpviz-has-table")
    own = " data-own-bar" if bar else ""
    out = [f'<figure class="{" ".join(cls)}" id="{uid}"{own}>']
    if bar:
        out.append(_bar(bool(table)))
    out += pics
    if table:
        out.append(f'<div class="thpviz-table">{table}</div>')
    if caption:
        out.append(f"<figcaption>{caption}</figcaption>")
    out.append("</figure>")
    return "".join(out)


def scene_dots(scene, name: str, narrow: bool = True) -> tuple[str, str | None]:
    """DOT text of a scene for wide screens (left to right), and with
    ``narrow`` the same diagram stacked top to bottom for narrow screens
    (:func:`thpviz.render.dot.scene_dot`'s ``layout="narrow"``)."""
    wide = scene_dot(scene, legend=False, caption=False, name=name)
    tall = scene_dot(scene, legend=False, caption=False, name=name + "-tb", layout="narrow") if narrow else None
    return wide, tall


def render_svgs(dots: list[str]) -> list[str]:
    """SVG of every DOT text: one ``dot`` process per half of the graphs,
    run side by side."""
    if not dots:
        return []
    workers = max(1, min(2, os.cpu_count() or 1, len(dots)))
    size = -(-len(dots) // workers)
    chunks = [dots[i:i + size] for i in range(0, len(dots), size)]
    with ThreadPoolExecutor(workers) as ex:
        parts = list(ex.map(graphviz_run.render_many_svg, chunks))
    return [svg for part in parts for svg in part]


def scene_figure_html(scene, uid: str | None = None, *, bar: bool = True, table: bool = True,
                      svgs=None) -> str:
    """A readable figure of one scene (rendered now unless ``svgs`` gives
    the wide and narrow SVG), with alt text and, with ``table``, the phone's
    counter table; wrapped with the CSS and script so it works on its own."""
    uid = uid or f"thpviz-fig-{next(_counter)}"
    if svgs is None:
        wide, tall = scene_dots(scene, uid)
        rendered = render_svgs([d for d in (wide, tall) if d])
        svgs = (rendered[0], rendered[1] if tall else None)
    fig = figure_html(svgs[0], uid=uid, alt=alt_text(scene), table=counter_table_html(scene) if table else "",
                      svg_narrow=svgs[1], bar=bar)
    return _STYLE + fig + (_SCRIPT if bar else "")


# --------------------------------------------------------------- CSS and JS
def legend_html() -> str:
    """The diagrams' key: fills, edges and labels, as HTML."""
    def sw(color, text):
        return f'<span class="thpviz-sw" style="background:{color}"></span>{_e(text)}'
    items = [
        sw(MC_FILL[1], "subpage run (shade: logical _mapcount)"),
        sw(CHANGED, "changed in this step"),
        sw(VIOL_FILL, "violation"),
        sw(AV_FILL, "anon_vma (dotted edge: anon_vma_chain)"),
        sw(PIN_FILL, "GUP pin / reference"),
        sw(GREY_FILL, "zero page, device, freed page"),
    ]
    notes = ("Edges: thick = PMD, thin = PTEs; open arrow head = write-protected; dashed vermillion = a "
             "mapping the rmap walk cannot reach. mc 2 = 1+DM: one PTE plus the PageDoubleMap bias. "
             "vN: version of the data in a frame.")
    return (f'<div class="thpviz-legend">{" ".join(f"<span>{i}</span>" for i in items)}'
            f"<div>{_e(notes)}</div></div>")


#: one stylesheet for every fragment (repeated per fragment, identical, so
#: a fragment works alone; class names only, no ids)
_STYLE = f"""<style>
.thpviz-storyboard,.thpviz-fig{{background:{BG};color:{INK};font-family:Helvetica,Arial,sans-serif;line-height:1.35}}
.thpviz-storyboard{{border:1px solid #bbb;border-radius:6px;padding:8px 10px;margin:1em 0;font-size:14px;
box-sizing:border-box;max-width:100%}}
.thpviz-storyboard h4{{margin:0 0 6px 0;font-size:15px;color:{INK}}}
.thpviz-storyboard button,.thpviz-fig button{{background:#fff;color:{INK};border:1px solid #888;border-radius:4px;
padding:2px 8px;cursor:pointer;font:inherit;font-size:13px}}
.thpviz-storyboard button[aria-pressed=true],.thpviz-fig button[aria-pressed=true]{{background:#DDE8F3}}
.thpviz-tabs{{display:flex;flex-wrap:wrap;gap:4px;margin-bottom:6px;align-items:center}}
.thpviz-tabs button[aria-selected=true]{{background:#0072B2;color:#fff;border-color:#0072B2}}
.thpviz-tabs .thpviz-bad{{outline:2px solid #D55E00}}
.thpviz-reveal{{font-size:13px;margin:2px 0 6px 0}}
.thpviz-reveal summary{{cursor:pointer;color:#0B5394}}
.thpviz-nav{{display:flex;flex-wrap:wrap;align-items:center;gap:6px;margin:4px 0}}
.thpviz-nav input[type=range]{{flex:1 1 8em;min-width:6em}}
.thpviz-body{{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}}
.thpviz-lines{{flex:1 1 14em;max-width:100%;margin:0;padding-left:2.2em;font-family:monospace;font-size:12px;
max-height:22em;overflow:auto;overflow-wrap:anywhere}}
.thpviz-lines li{{padding:0 3px;border-radius:3px;cursor:pointer}}
.thpviz-lines li.cur{{background:#F6EC7A;font-weight:bold}}
.thpviz-main{{flex:999 1 34em;min-width:0;max-width:100%}}
.thpviz-stmt{{overflow-wrap:anywhere}}
.thpviz-stmt code{{background:#eee;color:{INK};padding:0 3px;white-space:normal}}
.thpviz-cmt{{color:#555}}
.thpviz-frame ul{{margin:2px 0 4px 0;padding-left:1.2em;overflow-wrap:anywhere}}
.thpviz-viol{{background:{VIOL_FILL}}}
.thpviz-fig{{margin:.4em 0;padding:0;max-width:100%;box-sizing:border-box}}
.thpviz-bar{{display:flex;flex-wrap:wrap;gap:4px;justify-content:flex-end;padding:2px 0}}
.thpviz-pic{{overflow:auto;max-height:85vh;max-width:100%;background:{BG}}}
.thpviz-pic svg{{display:block;max-width:none}}
.thpviz-fit .thpviz-pic svg{{max-width:100%;height:auto}}
.thpviz-tb,.thpviz-table,.thpviz-phone{{display:none}}
.thpviz-table{{overflow:auto;max-width:100%}}
.thpviz-big{{position:fixed;inset:0;z-index:10000;margin:0;overflow:auto;border-radius:0;max-width:none;
padding:8px}}
.thpviz-big .thpviz-pic{{max-height:none}}
@media (max-width:{NARROW_PX - 1}px){{
.thpviz-has-tb .thpviz-lr{{display:none}} .thpviz-has-tb .thpviz-tb{{display:block}}
.thpviz-lines{{max-height:9em}}}}
@media (max-width:{PHONE_PX - 1}px){{
.thpviz-has-table .thpviz-pic{{display:none}} .thpviz-has-table .thpviz-table{{display:block}}
.thpviz-phone{{display:inline-block}}
.thpviz-showpic .thpviz-has-table .thpviz-lr,.thpviz-has-table.thpviz-showpic .thpviz-lr{{display:block}}
.thpviz-showpic .thpviz-has-tb .thpviz-lr,.thpviz-has-tb.thpviz-showpic .thpviz-lr{{display:none}}
.thpviz-showpic .thpviz-has-tb .thpviz-tb,.thpviz-has-tb.thpviz-showpic .thpviz-tb{{display:block}}
.thpviz-showpic .thpviz-table{{display:none}}}}
.thpviz-legend{{font-size:12px;color:#333;margin-top:6px}}
.thpviz-legend span{{margin-right:10px;white-space:normal;display:inline-block}}
.thpviz-sw{{display:inline-block;width:12px;height:10px;border:1px solid #999;margin-right:3px;vertical-align:middle}}
.thpviz-verdict{{font-size:13px;margin:2px 0}}
</style>"""

#: the behaviour of every figure and storyboard on the page (idempotent:
#: each root is set up once, however many fragments carry this script)
_SCRIPT = """<script>
(function () {
  function each(list, fn) { Array.prototype.forEach.call(list, fn); }
  function own(root, sel) {
    return Array.prototype.filter.call(root.querySelectorAll(sel), function (el) {
      return el.closest(".thpviz-storyboard, .thpviz-fig[data-own-bar]") === root; });
  }
  function toggles(root) {
    each(own(root, "[data-zoom]"), function (b) {
      b.addEventListener("click", function () {
        var on = root.classList.toggle("thpviz-fit");
        b.setAttribute("aria-pressed", on ? "true" : "false");
        b.textContent = on ? "readable size" : "fit width";
      });
    });
    each(own(root, "[data-enlarge]"), function (b) {
      function set(on) {
        root.classList.toggle("thpviz-big", on);
        b.setAttribute("aria-pressed", on ? "true" : "false");
        b.textContent = on ? "close" : "enlarge";
        document.documentElement.style.overflow = on ? "hidden" : "";
      }
      b.addEventListener("click", function () { set(!root.classList.contains("thpviz-big")); });
      root.addEventListener("keydown", function (e) { if (e.key === "Escape") set(false); });
    });
    each(own(root, "[data-view]"), function (b) {
      b.addEventListener("click", function () {
        var on = root.classList.toggle("thpviz-showpic");
        b.setAttribute("aria-pressed", on ? "true" : "false");
        b.textContent = on ? "show the table" : "show the diagram";
      });
    });
    each(own(root, ".thpviz-pic"), function (p) {
      p.addEventListener("dblclick", function () {
        var b = own(root, "[data-enlarge]")[0]; if (b) b.click();
      });
    });
  }
  function board(root) {
    function all(sel) { return own(root, sel); }
    var frames = all("[data-frame]"), tabs = all("[data-era-tab]"), lines = all("[data-line-step]");
    var slider = all("input[type=range]")[0], label = all("[data-step-label]")[0];
    if (!slider) return;
    var era = 0, n = +slider.max;
    function show() {
      var k = +slider.value;
      frames.forEach(function (f) { f.hidden = !(+f.getAttribute("data-era") === era && +f.getAttribute("data-step") === k); });
      tabs.forEach(function (t) { t.setAttribute("aria-selected", +t.getAttribute("data-era-tab") === era ? "true" : "false"); });
      lines.forEach(function (l) { l.className = +l.getAttribute("data-line-step") === k ? "cur" : ""; });
      label.textContent = "step " + k + " / " + n;
    }
    function go(d) { slider.value = Math.max(0, Math.min(n, +slider.value + d)); show(); }
    slider.addEventListener("input", show);
    all("[data-prev]").forEach(function (b) { b.addEventListener("click", function () { go(-1); }); });
    all("[data-next]").forEach(function (b) { b.addEventListener("click", function () { go(1); }); });
    tabs.forEach(function (t) { t.addEventListener("click", function () { era = +t.getAttribute("data-era-tab"); show(); }); });
    lines.forEach(function (l) { l.addEventListener("click", function () { slider.value = l.getAttribute("data-line-step"); show(); }); });
    root.addEventListener("keydown", function (e) {
      if (e.target === slider || e.target.tagName === "BUTTON" || e.target.tagName === "SUMMARY") return;
      if (e.key === "ArrowRight") { go(1); e.preventDefault(); e.stopPropagation(); }
      if (e.key === "ArrowLeft") { go(-1); e.preventDefault(); e.stopPropagation(); }
    });
    show();
  }
  each(document.querySelectorAll(".thpviz-storyboard:not([data-ready]), .thpviz-fig[data-own-bar]:not([data-ready])"),
    function (root) {
      root.setAttribute("data-ready", "1");
      toggles(root);
      if (root.classList.contains("thpviz-storyboard")) board(root);
    });
})();
</script>"""


def page_assets() -> str:
    """The CSS and script every figure and storyboard needs (already part
    of each fragment; for pages that assemble figures themselves)."""
    return _STYLE + _SCRIPT


# -------------------------------------------------------------- storyboards
def _caption(run, k: int, text: str | None) -> str:
    """HTML caption of frame ``k`` (0: before the first statement)."""
    if k == 0:
        return '<div class="thpviz-stmt">before the first statement: nothing is mapped</div>'
    st = run.steps[k - 1]
    cmt = comment_of(text, st.stmt.line)
    return (f'<div class="thpviz-stmt">line {st.stmt.line}: <code>{_e(st.stmt.text)}</code>'
            + (f' <span class="thpviz-cmt"># {_e(cmt)}</span>' if cmt else "") + "</div>")


def note_items(scene, violation_attr: str) -> list[str]:
    """The step's faults, events and violations, as the engine reports them,
    as ``<li>`` items; ``violation_attr`` styles the violation items."""
    if scene.step is None:
        return []
    return [
        f'<li {violation_attr}><b>{_e(n.violation)}</b>: {_e(n.text)}</li>' if n.violation
        else f"<li>{_e(n.text)}</li>"
        for n in step_notes(scene.step, scene.faults)
    ]


def _details(scene) -> str:
    items = note_items(scene, 'class="thpviz-viol"')
    return f"<ul>{''.join(items)}</ul>" if items else ""


def _era(r: Run) -> Era:
    """The era a run was made under."""
    return r.era


def storyboard_html(source, eras=None, *, title: str | None = None, uid: str | None = None,
                    start: int | str = 1, legend: bool = True, reveal: bool = True,
                    narrow: bool = True) -> str:
    """One self-contained HTML fragment: the scenario (path, text or
    Scenario) under each era (ids or Era objects; default: the eras its
    ``expect`` lines name), a readable figure per step and era.

    ``start``: the opening step (see :func:`resolve_start`; ``"decisive"``
    opens at the last write fault).  ``reveal``: put the era verdicts behind
    a "reveal" control (False: print them under the tabs).  ``narrow``: also
    render the top-to-bottom layout for narrow screens, when the renderer
    has one."""
    from ..scenario import eras_for, run

    scn, text = load_scenario(source)
    era_objs = [era_of(e) for e in eras] if eras else eras_for(scn)
    runs = [run(scn, e, keep_snapshots=True) for e in era_objs]
    n = len(scn.statements)
    if uid is None:
        digest = hashlib.sha1(((text or scn.path) + "|" + ",".join(e.id for e in era_objs)).encode()).hexdigest()
        uid = f"thpviz-sb-{digest[:8]}-{next(_counter)}"
    dots: list[str] = []
    meta: list[tuple] = []
    for i, r in enumerate(runs):
        snaps = r.snapshots
        assert snaps is not None  # run with keep_snapshots=True
        for k in range(n + 1):
            snap = snaps[k]
            prev = snaps[k - 1] if k else None
            step = r.steps[k - 1] if k else None
            scene = build_scene(snap, prev, step)
            wide, tall = scene_dots(scene, f"{uid}-{i}-{k}", narrow)
            meta.append((i, k, scene, len(dots), tall is not None))
            dots.append(wide)
            if tall is not None:
                dots.append(tall)
    svgs = render_svgs(dots)

    start = resolve_start(runs, start)
    heading = title or scn.title or os.path.basename(scn.path)
    out = [_STYLE, f'<div class="thpviz-storyboard" id="{uid}" tabindex="0">']
    out.append(f"<h4>{_e(heading)}</h4>")
    out.append('<div class="thpviz-tabs" role="tablist" aria-label="kernel era">')
    for i, r in enumerate(runs):
        _, status = _verdict(r)
        bad = ' class="thpviz-bad"' if status and status.startswith("MISMATCH") else ""
        sel = "true" if i == 0 else "false"
        era = _era(r)
        label = era.id if reveal else f"{era.id}: {_verdict(r)[0]}"
        out.append(f'<button type="button" role="tab" data-era-tab="{i}" aria-selected="{sel}"{bad} '
                   f'title="{_e(era.title)}">{_e(label)}</button>')
    out.append("</div>")
    lines = []
    for r in runs:
        verdict, status = _verdict(r)
        era = _era(r)
        lines.append(f'<div class="thpviz-verdict">era <b>{_e(era.id)}</b> ({_e(era.title)}): '
                     f"last write fault <b>{_e(r.last_write)}</b>, violations "
                     f"<b>{_e(' '.join(sorted(r.violations)) or 'clean')}</b>"
                     + (f" — {_e(status)}" if status else "") + "</div>")
    if reveal:
        out.append('<details class="thpviz-reveal"><summary>Predict first, then reveal each era\'s verdict'
                   f'</summary>{"".join(lines)}</details>')
    else:
        out.append("".join(lines))
    out.append('<div class="thpviz-nav"><button type="button" data-prev aria-label="previous step">◀ prev</button>'
               f'<input type="range" min="0" max="{n}" step="1" value="{start}" aria-label="step">'
               '<button type="button" data-next aria-label="next step">next ▶</button>'
               f'<span data-step-label>step {start} / {n}</span>'
               '<button type="button" data-zoom aria-pressed="false">fit width</button>'
               '<button type="button" data-enlarge aria-pressed="false">enlarge</button>'
               '<button type="button" data-view class="thpviz-phone" aria-pressed="false">show the diagram</button>'
               "</div>")
    out.append('<div class="thpviz-body"><ol class="thpviz-lines" aria-label="statements">')
    for k, st in enumerate(scn.statements, 1):
        cur = ' class="cur"' if k == start else ""
        out.append(f'<li data-line-step="{k}"{cur} title="line {st.line}">{_e(mask_assert(st.text))}</li>')
    out.append('</ol><div class="thpviz-main">')
    for i, k, scene, at, has_tall in meta:
        hidden = "" if (i == 0 and k == start) else " hidden"
        fig = figure_html(svgs[at], uid=f"{uid}-{i}-{k}", alt=alt_text(scene), table=counter_table_html(scene),
                          svg_narrow=svgs[at + 1] if has_tall else None, bar=False)
        out.append(f'<div class="thpviz-frame" data-frame data-era="{i}" data-step="{k}"{hidden}>'
                   f"{_caption(runs[i], k, text)}{_details(scene)}{fig}</div>")
    out.append("</div></div>")
    if legend:
        out.append(legend_html())
    out.append("</div>")
    out.append(_SCRIPT)
    return "\n".join(out)


def storyboard(source, eras=None, **kw):
    """The storyboard as an ``IPython.display.HTML`` for a notebook cell."""
    from IPython.display import HTML

    return HTML(storyboard_html(source, eras, **kw))


def storyboard_page(fragments: list[str], title: str = "thpviz storyboard") -> str:
    """A whole HTML document around one or more storyboard fragments."""
    body = "\n".join(fragments)
    # an empty icon, so the browser does not ask the server for /favicon.ico
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{_e(title)}</title></head><body>\n{body}\n</body></html>\n')
