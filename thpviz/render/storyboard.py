"""Static storyboards: every step of a scenario under one or more eras as
pre-rendered SVG frames in one self-contained HTML fragment.

The fragment carries its own CSS and a few lines of our own JavaScript (a
step slider, previous/next buttons, era tabs).  It makes no network request
and loads no font, so it works in the static book, offline, and several times
on one page: every id is prefixed with the storyboard's own id.

>>> from thpviz.render.storyboard import storyboard_html, storyboard
>>> html = storyboard_html("data/scenarios/regression/pin-mprotect-cycle-write.thp", ["4.5", "4.6"])
>>> storyboard(path, ["4.5", "4.6"])      # an IPython.display.HTML for a notebook cell
"""

from __future__ import annotations

import hashlib
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from html import escape

from . import graphviz_run
from .diagrams import inline_svg
from .dot import AV_FILL, CHANGED, GREY_FILL, MC_FILL, PIN_FILL, VIOL_FILL, scene_dot
from .scene import build_scene
from .source import comment_of, era_of, load_scenario
from ..scenario.report import step_notes

_counter = itertools.count(1)


def _e(s) -> str:
    return escape(str(s), quote=True)


def _verdict(run) -> tuple[str, str | None]:
    """(outcome text, expectation status) of one run, from the runner."""
    viol = " ".join(sorted(run.violations)) or "clean"
    text = f"{run.last_write} · {viol}"
    exp = run.scenario.expects.get(run.era.id)
    if exp is None:
        return text, None
    return text, ("as expected" if not run.mismatches() else "MISMATCH: " + "; ".join(run.mismatches()))


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


def _legend_html() -> str:
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


def _css(uid: str) -> str:
    r = f"#{uid}"
    return f"""<style>
{r}{{background:#FBFAF6;color:#1A1A1A;border:1px solid #bbb;border-radius:6px;padding:8px 10px;margin:1em 0;
font-family:Helvetica,Arial,sans-serif;font-size:14px;line-height:1.35}}
{r} h4{{margin:0 0 6px 0;font-size:15px;color:#1A1A1A}}
{r} .thpviz-tabs{{display:flex;flex-wrap:wrap;gap:4px;margin-bottom:6px}}
{r} .thpviz-tabs button{{background:#eee;color:#1A1A1A;border:1px solid #999;border-radius:4px;padding:3px 8px;
cursor:pointer;font:inherit;font-size:13px}}
{r} .thpviz-tabs button[aria-selected=true]{{background:#0072B2;color:#fff;border-color:#0072B2}}
{r} .thpviz-tabs .thpviz-bad{{outline:2px solid #D55E00}}
{r} .thpviz-nav{{display:flex;align-items:center;gap:8px;margin:4px 0}}
{r} .thpviz-nav button{{background:#fff;color:#1A1A1A;border:1px solid #999;border-radius:4px;padding:2px 10px;
cursor:pointer;font:inherit}}
{r} .thpviz-nav input[type=range]{{flex:1;min-width:120px}}
{r} .thpviz-body{{display:flex;gap:10px;align-items:flex-start}}
{r} ol.thpviz-lines{{margin:0;padding-left:2.2em;font-family:monospace;font-size:12px;min-width:13em;max-width:22em}}
{r} ol.thpviz-lines li{{padding:0 3px;border-radius:3px}}
{r} ol.thpviz-lines li.cur{{background:#F6EC7A;font-weight:bold}}
{r} .thpviz-main{{flex:1;min-width:0}}
{r} .thpviz-stmt code{{background:#eee;color:#1A1A1A;padding:0 3px}}
{r} .thpviz-cmt{{color:#555}}
{r} .thpviz-frame ul{{margin:2px 0 4px 0;padding-left:1.2em}}
{r} .thpviz-viol{{background:#F7CDB3}}
{r} .thpviz-svg{{overflow:auto;max-height:80vh;background:#FBFAF6}}
{r}.thpviz-fit .thpviz-svg svg{{max-width:100%;height:auto}}
{r} .thpviz-legend{{font-size:12px;color:#333;margin-top:6px}}
{r} .thpviz-legend span{{margin-right:10px;white-space:nowrap}}
{r} .thpviz-sw{{display:inline-block;width:12px;height:10px;border:1px solid #999;margin-right:3px;vertical-align:middle}}
{r} .thpviz-verdict{{font-size:13px;margin:2px 0}}
</style>"""


_JS = """<script>
(function () {
  var root = document.getElementById("%(uid)s");
  if (!root || root.getAttribute("data-ready")) return;
  root.setAttribute("data-ready", "1");
  function all(sel) { return Array.prototype.slice.call(root.querySelectorAll(sel)); }
  var frames = all("[data-frame]"), tabs = all("[data-era-tab]"), lines = all("[data-line-step]");
  var verdicts = all("[data-verdict]");
  var slider = root.querySelector("input[type=range]"), label = root.querySelector("[data-step-label]");
  var era = 0, n = +slider.max;
  function show() {
    var k = +slider.value;
    frames.forEach(function (f) { f.hidden = !(+f.getAttribute("data-era") === era && +f.getAttribute("data-step") === k); });
    tabs.forEach(function (t) { t.setAttribute("aria-selected", +t.getAttribute("data-era-tab") === era ? "true" : "false"); });
    verdicts.forEach(function (v) { v.hidden = +v.getAttribute("data-verdict") !== era; });
    lines.forEach(function (l) { l.className = +l.getAttribute("data-line-step") === k ? "cur" : ""; });
    label.textContent = "step " + k + " / " + n;
  }
  function go(d) { slider.value = Math.max(0, Math.min(n, +slider.value + d)); show(); }
  slider.addEventListener("input", show);
  root.querySelector("[data-prev]").addEventListener("click", function () { go(-1); });
  root.querySelector("[data-next]").addEventListener("click", function () { go(1); });
  tabs.forEach(function (t) { t.addEventListener("click", function () { era = +t.getAttribute("data-era-tab"); show(); }); });
  lines.forEach(function (l) { l.addEventListener("click", function () { slider.value = l.getAttribute("data-line-step"); show(); }); });
  root.querySelector("[data-fit]").addEventListener("change", function (e) { root.classList.toggle("thpviz-fit", e.target.checked); });
  root.addEventListener("keydown", function (e) {
    if (e.target === slider) return;
    if (e.key === "ArrowRight") { go(1); e.preventDefault(); }
    if (e.key === "ArrowLeft") { go(-1); e.preventDefault(); }
  });
  show();
})();
</script>"""


def _render_frames(dots: list[str]) -> list[str]:
    """SVG of every frame: one ``dot`` process per half of the frames, run
    side by side."""
    if not dots:
        return []
    workers = max(1, min(2, os.cpu_count() or 1, len(dots)))
    size = -(-len(dots) // workers)
    chunks = [dots[i:i + size] for i in range(0, len(dots), size)]
    with ThreadPoolExecutor(workers) as ex:
        parts = list(ex.map(graphviz_run.render_many_svg, chunks))
    return [svg for part in parts for svg in part]


def storyboard_html(source, eras=None, *, title: str | None = None, uid: str | None = None,
                    start: int = 1, legend: bool = True) -> str:
    """One self-contained HTML fragment: the scenario (path, text or
    Scenario) under each era (ids or Era objects; default: the eras its
    ``expect`` lines name), a frame per step and era."""
    from ..scenario import eras_for, run

    scn, text = load_scenario(source)
    era_objs = [era_of(e) for e in eras] if eras else eras_for(scn)
    runs = [run(scn, e, keep_snapshots=True) for e in era_objs]
    n = len(scn.statements)
    if uid is None:
        digest = hashlib.sha1(((text or scn.path) + "|" + ",".join(e.id for e in era_objs)).encode()).hexdigest()
        uid = f"thpviz-sb-{digest[:8]}-{next(_counter)}"
    dots, meta = [], []
    for i, r in enumerate(runs):
        for k in range(n + 1):
            snap = r.snapshots[k]
            prev = r.snapshots[k - 1] if k else None
            step = r.steps[k - 1] if k else None
            scene = build_scene(snap, prev, step)
            dots.append(scene_dot(scene, legend=False, caption=False, name=f"{uid}-{i}-{k}"))
            meta.append((i, k, scene))
    svgs = _render_frames(dots)

    start = max(0, min(n, start))
    heading = title or scn.title or os.path.basename(scn.path)
    out = [f'<div class="thpviz-storyboard thpviz-fit" id="{uid}" tabindex="0">', _css(uid)]
    out.append(f"<h4>{_e(heading)}</h4>")
    out.append('<div class="thpviz-tabs" role="tablist">')
    for i, r in enumerate(runs):
        verdict, status = _verdict(r)
        bad = ' class="thpviz-bad"' if status and status.startswith("MISMATCH") else ""
        sel = "true" if i == 0 else "false"
        out.append(f'<button type="button" role="tab" data-era-tab="{i}" aria-selected="{sel}"{bad} '
                   f'title="{_e(r.era.title)}">{_e(r.era.id)}: {_e(verdict)}</button>')
    out.append("</div>")
    for i, r in enumerate(runs):
        verdict, status = _verdict(r)
        out.append(f'<div class="thpviz-verdict" data-verdict="{i}"{"" if i == 0 else " hidden"}>'
                   f"era <b>{_e(r.era.id)}</b> ({_e(r.era.title)}): last write fault <b>{_e(r.last_write)}</b>,"
                   f" violations <b>{_e(' '.join(sorted(r.violations)) or 'clean')}</b>"
                   + (f" — {_e(status)}" if status else "") + "</div>")
    out.append('<div class="thpviz-nav"><button type="button" data-prev aria-label="previous step">◀ prev</button>'
               f'<input type="range" min="0" max="{n}" step="1" value="{start}" aria-label="step">'
               '<button type="button" data-next aria-label="next step">next ▶</button>'
               f'<span data-step-label>step {start} / {n}</span>'
               '<label><input type="checkbox" data-fit checked> fit width</label></div>')
    out.append('<div class="thpviz-body"><ol class="thpviz-lines">')
    for k, st in enumerate(scn.statements, 1):
        cur = ' class="cur"' if k == start else ""
        out.append(f'<li data-line-step="{k}"{cur} title="line {st.line}">'
                   f"{_e(st.text)}</li>")
    out.append('</ol><div class="thpviz-main">')
    for (i, k, scene), svg in zip(meta, svgs):
        hidden = "" if (i == 0 and k == start) else " hidden"
        cap = _caption(runs[i], k, text)
        out.append(f'<div class="thpviz-frame" data-frame data-era="{i}" data-step="{k}"{hidden}>'
                   f"{cap}{_details(scene)}"
                   f'<div class="thpviz-svg">{inline_svg(svg, f"{uid}-{i}-{k}-")}</div></div>')
    out.append("</div></div>")
    if legend:
        out.append(_legend_html())
    out.append(_JS % {"uid": uid})
    out.append("</div>")
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
            f'<link rel="icon" href="data:,"><title>{_e(title)}</title></head><body>\n{body}\n</body></html>\n')
