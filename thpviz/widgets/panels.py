"""HTML pieces the widgets show: the diagram of a step, the statement and
what it did, a counter table, an era's verdict.  Plain functions (no widget
state), so they are tested without a kernel and shared by every widget.

Every value comes from the run (the runner's step results) or from
:func:`thpviz.render.scene.build_scene`, which reads the snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from html import escape

import ipywidgets as widgets

from ..render import graphviz_run
from ..render.dot import VIOL_FILL, scene_dot
from ..render.scene import build_scene
from ..render.source import comment_of
from ..render.storyboard import _STYLE, alt_text, figure_html, note_items, page_rows, scene_figure_html  # noqa: F401
from ..render.storyboard import counter_table_html as _counter_table

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
    """The diagram as a readable inline-SVG figure (:mod:`thpviz.render.storyboard`:
    readable size, scrolling in its box; ``fit``: shrunk to the box), or the
    DOT text if graphviz is missing.  Rendered now, on this thread; the
    widgets use :class:`AsyncDiagram` instead."""
    try:
        fig = scene_figure_html(scene, uid, bar=False, table=False)
    except graphviz_run.GraphvizMissing as err:
        dot = scene_dot(scene, legend=False, caption=False, name=uid)
        return f'<div style="{_BOX}"><b>{e(err)}</b><pre>{e(dot)}</pre></div>'
    return f'<div class="thpviz-fit">{fig}</div>' if fit else fig


class AsyncDiagram:
    """Shows diagrams in an HTML widget without blocking the notebook: a
    cached diagram appears at once; otherwise a placeholder does, and ``dot``
    lays the graph out on a worker thread
    (:func:`thpviz.render.graphviz_run.render_async`), replacing the
    placeholder when it is done.  A newer request wins over an older one
    still running.  ``wait()`` blocks until the current one is shown (for
    tests and scripts)."""

    def __init__(self, target, fit: bool = False):
        self.target = target
        self.fit = fit
        self.pending: Future | None = None
        self._want: str | None = None

    def _html(self, scene, svg: str, uid: str) -> str:
        fig = _STYLE + figure_html(svg, uid=uid, alt=alt_text(scene), bar=False)
        return f'<div class="thpviz-fit">{fig}</div>' if self.fit else fig

    def show(self, scene, uid: str) -> None:
        dot = scene_dot(scene, legend=False, caption=False, name=uid)
        self._want = dot
        hit = graphviz_run.cached_svg(dot)
        if hit is not None:
            self.pending = None
            self.target.value = self._html(scene, hit, uid)
            return
        self.target.value = (f'<div style="{_BOX}">{graphviz_run.placeholder_svg()}</div>')
        shown: Future = Future()

        def done(svg, err):
            try:
                if self._want != dot:
                    return  # the reader has moved on
                if err is not None:
                    self.target.value = (f'<div style="{_BOX}"><b>{e(type(err).__name__)}: {e(err)}</b>'
                                         f'<pre>{e(dot)}</pre></div>')
                else:
                    self.target.value = self._html(scene, svg, uid)
            finally:
                shown.set_result(None)

        graphviz_run.render_async(dot, done)
        self.pending = shown

    def wait(self, timeout: float = 120.0) -> None:
        if self.pending is not None:
            self.pending.result(timeout)


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


def counter_table_html(scene, highlight=None) -> str:
    """Every drawn page's counters (:func:`thpviz.render.storyboard.counter_table_html`)
    in the widgets' box."""
    return f'<div style="{_BOX};overflow:auto">{_counter_table(scene, highlight)}</div>'


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

    show: Callable[[int], None]  # the subclass's: draw frame k

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
