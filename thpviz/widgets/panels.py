"""HTML pieces the widgets show: the diagram of a step, the statement and
what it did, a counter table, an era's verdict.  Plain functions (no widget
state), so they are tested without a kernel and shared by every widget.

Every value comes from the run (the runner's step results) or from
:func:`thpviz.render.scene.build_scene`, which reads the snapshot.
"""

from __future__ import annotations

import re
from html import escape

import ipywidgets as widgets

from ..render import graphviz_run
from ..render.diagrams import inline_svg
from ..render.dot import CHANGED, VIOL_FILL, scene_dot
from ..render.scene import build_scene
from ..render.source import comment_of
from ..render.storyboard import note_items

_BOX = ("background:#FBFAF6;color:#1A1A1A;font-family:Helvetica,Arial,sans-serif;font-size:13px;"
        "padding:4px 6px;border-radius:4px")


def e(s) -> str:
    return escape(str(s), quote=True)


def scene_at(run, k: int):
    """The scene of snapshot ``k`` of a run (0: before the first statement)."""
    prev = run.snapshots[k - 1] if k else None
    step = run.steps[k - 1] if k else None
    return build_scene(run.snapshots[k], prev, step)


def diagram_html(scene, uid: str, fit: bool = False) -> str:
    """The diagram as inline SVG (or the DOT text if graphviz is missing)."""
    dot = scene_dot(scene, legend=False, caption=False, name=uid)
    try:
        svg = inline_svg(graphviz_run.render_svg(dot), uid + "-")
    except graphviz_run.GraphvizMissing as err:
        return f'<div style="{_BOX}"><b>{e(err)}</b><pre>{e(dot)}</pre></div>'
    if fit:
        svg = re.sub(r"<svg\b", '<svg style="max-width:100%;height:auto"', svg, count=1)
    return f'<div style="overflow:auto;background:#FBFAF6">{svg}</div>'


def statement_html(run, k: int, text: str | None) -> str:
    if k == 0:
        return f'<div style="{_BOX}"><b>step 0</b>: before the first statement</div>'
    st = run.steps[k - 1]
    cmt = comment_of(text, st.stmt.line)
    return (f'<div style="{_BOX}"><b>step {k}</b> / {len(run.steps)} · line {st.stmt.line}: '
            f'<code style="background:#eee;color:#1A1A1A">{e(st.stmt.text)}</code>'
            + (f' <span style="color:#555"># {e(cmt)}</span>' if cmt else "") + "</div>")


def details_html(scene) -> str:
    """Fault decisions, events and violations of the step."""
    st = scene.step
    if st is None:
        return ""
    items = note_items(scene, f'style="background:{VIOL_FILL}"')
    if not scene.faults and st.stmt.op in ("read", "write") and not st.error:
        items.insert(0, "<li>no fault (the entries already allowed the access)</li>")
    if not items:
        return ""
    return f'<div style="{_BOX}"><ul style="margin:0;padding-left:1.2em">{"".join(items)}</ul></div>'


def page_rows(scene) -> list[tuple[str, dict]]:
    """(page title, {column: value}) for the counter table, from the scene."""
    rows = []
    for p in scene.pages:
        if p.kind == "zero":
            continue
        d = {}
        if p.kind == "thp":
            d.update(p.head_counters)
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


def counter_table_html(scene, highlight=None) -> str:
    """A table of every drawn page's counters.  ``highlight``: set of
    (page, column) to mark (e.g. where eras differ); else what changed in
    this step."""
    rows = page_rows(scene)
    if not rows:
        return f'<div style="{_BOX}"><i>no pages</i></div>'
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
    head = "".join(f'<th style="text-align:left;padding:1px 6px">{e(c)}</th>' for c in ["page"] + cols)
    body = []
    for title, d in rows:
        tds = [f'<td style="padding:1px 6px"><b>{e(title)}</b></td>']
        for c in cols:
            mark = (title, c) in highlight if highlight is not None else c in changed.get(title, ())
            style = f"padding:1px 6px;background:{CHANGED}" if mark else "padding:1px 6px"
            tds.append(f'<td style="{style}">{e(d.get(c, "—"))}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    return (f'<div style="{_BOX};overflow:auto"><table style="border-collapse:collapse;font-size:12px">'
            f"<tr>{head}</tr>{''.join(body)}</table></div>")


def verdict(run) -> str:
    v = " ".join(sorted(run.violations)) or "clean"
    return f"{run.last_write} · {v}"


def verdict_html(run) -> str:
    exp = run.scenario.expects.get(run.era.id)
    status = ""
    if exp is not None:
        bad = run.mismatches()
        status = " — as expected" if not bad else " — MISMATCH: " + e("; ".join(bad))
    return (f'<div style="{_BOX}"><b>{e(run.era.id)}</b>: last write fault <b>{e(run.last_write)}</b>, '
            f"violations <b>{e(' '.join(sorted(run.violations)) or 'clean')}</b>{status}</div>")


class Stepping:
    """The play button and step slider the player and the era comparison
    share: ``self.step`` is the frame shown, moving the slider calls
    ``self.show(k)``."""

    def _make_stepper(self, n: int, start: int, interval: int) -> int:
        start = max(0, min(n, start))
        self.play = widgets.Play(min=0, max=n, step=1, value=start, interval=interval,
                                 description="play", show_repeat=False)
        self.slider = widgets.IntSlider(min=0, max=n, step=1, value=start, description="step",
                                        continuous_update=True, layout=widgets.Layout(width="60%"))
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.slider.observe(self._on_step, names="value")
        return start

    @property
    def step(self) -> int:
        return self.slider.value

    def _on_step(self, change) -> None:
        self.show(change["new"])
