"""A diagram object that shows itself in a notebook (``_repr_svg_``), and
the SVG helpers around it.

>>> from thpviz.render import diagram
>>> d = diagram("data/scenarios/regression/pin-mprotect-cycle-write.thp", "4.5", step=7)
>>> d            # in a notebook: the SVG
>>> d.dot        # the DOT text
>>> d.alt        # its text alternative, from the step's notes
>>> d.save("vfio.png")

Off the main thread (a widget shows :func:`placeholder_svg` first)::

    fut = render_async(scene, lambda svg, err: out.update(svg or str(err)), layout="narrow")
"""

from __future__ import annotations

import re
from concurrent.futures import Future
from html import escape

from . import graphviz_run
from .dot import run_dot, scene_dot, snapshot_dot
from .graphviz_run import placeholder_svg  # noqa: F401 (part of this module's API)
from .source import load_run

_ALT = re.compile(r"\A// alt: ([^\n]*)\n")


def alt_of(dot_text: str) -> str:
    """The text alternative a diagram's DOT text carries (its ``// alt:``
    first line), or an empty string."""
    m = _ALT.match(dot_text)
    return m.group(1) if m else ""


_SVG_OPEN = re.compile(r"<svg\b([^>]*)>", re.S)


def accessible_svg(svg: str, alt: str) -> str:
    """The SVG with ``role="img"``, an ``aria-label`` and a ``<title>`` (the
    first child, which screen readers and tooltips use) carrying ``alt``."""
    if not alt:
        return svg
    a = escape(alt, quote=True)

    def fix(m):
        attrs = re.sub(r'\s(role|aria-label)="[^"]*"', "", m.group(1))
        return f'<svg{attrs} role="img" aria-label="{a}"><title>{a}</title>'

    return _SVG_OPEN.sub(fix, svg, count=1)


def svg_of(dot_text: str, timeout: float = graphviz_run.DEFAULT_TIMEOUT) -> str:
    """Lay out a diagram's DOT text (cached) and make the SVG accessible."""
    return accessible_svg(graphviz_run.render_svg(dot_text, timeout), alt_of(dot_text))


class Diagram:
    """DOT text plus lazy rendering (``dot`` runs once per format)."""

    def __init__(self, dot_text: str):
        self.dot = dot_text
        self.alt = alt_of(dot_text)
        self._cache: dict[str, bytes] = {}

    def render(self, fmt: str = "svg") -> bytes:
        if fmt == "dot":
            return self.dot.encode("utf-8")
        if fmt not in self._cache:
            if fmt == "svg":
                self._cache[fmt] = svg_of(self.dot).encode("utf-8")
            else:
                self._cache[fmt] = graphviz_run.render(self.dot, fmt)
        return self._cache[fmt]

    def svg(self) -> str:
        return self.render("svg").decode("utf-8")

    def _repr_svg_(self) -> str:
        return inline_svg(self.svg())

    def save(self, path: str, fmt: str | None = None) -> None:
        fmt = fmt or path.rsplit(".", 1)[-1].lower()
        data = self.render(fmt)
        with open(path, "wb") as f:
            f.write(data)


def diagram(source, era=None, step: int | None = None, **kw) -> Diagram:
    """A diagram of snapshot ``step`` (0: before the first statement,
    default: the last) of a scenario (path, text, Scenario) under ``era``,
    of a Run, or of a World (``prev=`` another World to mark changes).
    Keywords go to :func:`thpviz.render.dot.scene_dot` (``layout="narrow"``,
    ``legend=False``, ``title=``, ``budget=``...)."""
    from ..model.world import World

    if isinstance(source, World):
        return Diagram(snapshot_dot(source, kw.pop("prev", None), kw.pop("step_result", None), **kw))
    r = load_run(source, era)
    return Diagram(run_dot(r, step, **kw))


class _LayoutFuture(Future):
    """The Future of an SVG made from a layout Future (``inner``):
    cancelling it cancels the layout if that has not started (this Future
    is then cancelled when the layout is)."""

    def __init__(self, inner: Future):
        super().__init__()
        self._inner = inner

    def cancel(self) -> bool:
        return self._inner.cancel()


def render_async(source, callback=None, timeout: float = graphviz_run.DEFAULT_TIMEOUT, **kw):
    """Lay out a diagram off the caller's thread.

    ``source``: a :class:`~thpviz.render.scene.Scene` (keywords go to
    :func:`~thpviz.render.dot.scene_dot`), a :class:`Diagram` or DOT text.
    Returns a :class:`concurrent.futures.Future` of the accessible SVG text;
    ``callback(svg, error)``, if given, is called when it is done, on the
    worker thread (``svg`` is None when ``error`` -- a
    :class:`~thpviz.render.graphviz_run.LayoutTimeout`, ``DotError`` or
    ``GraphvizMissing`` -- is set).  A diagram already laid out is done at
    once.  The DOT text is written on the caller's thread (a few ms);
    only ``dot`` runs on the worker."""
    from .scene import Scene

    if isinstance(source, Scene):
        text = scene_dot(source, **kw)
    elif isinstance(source, Diagram):
        text = source.dot
    else:
        text = str(source)
    alt = alt_of(text)
    inner = graphviz_run.render_async(text, timeout=timeout)
    fut = _LayoutFuture(inner)

    def done(f) -> None:
        if f.cancelled():
            Future.cancel(fut)
            return
        err = f.exception()
        if err is not None:
            fut.set_exception(err)
        else:
            fut.set_result(accessible_svg(f.result(), alt))

    inner.add_done_callback(done)
    if callback is not None:
        def notify(f) -> None:
            if f.cancelled():
                return
            err = f.exception()
            callback(None if err else f.result(), err)
        fut.add_done_callback(notify)
    return fut


_SIZE = re.compile(r'<svg\b[^>]*?\bwidth="([\d.]+)(pt|px)?"[^>]*?\bviewBox="[\d.-]+ [\d.-]+ ([\d.]+) [\d.]+"', re.S)
_FONT_SIZE = re.compile(r'font-size="([\d.]+)"')


def svg_width_px(svg: str) -> float:
    """The natural width of an SVG from ``dot``, in CSS px (1 pt = 4/3 px)."""
    m = _SIZE.search(svg)
    if not m:
        raise ValueError("not an SVG with a width and a viewBox")
    return float(m.group(1)) * (4 / 3 if m.group(2) in (None, "pt") else 1)


def smallest_text_px(svg: str, content_width: float = 750.0) -> float:
    """The smallest text of an SVG from ``dot``, in CSS px, when a page shows
    it at its natural size but at most ``content_width`` px wide (a book's
    content column, where figures are shrunk to fit and never enlarged)."""
    m = _SIZE.search(svg)
    if not m:
        raise ValueError("not an SVG with a width and a viewBox")
    shown = min(svg_width_px(svg), content_width)
    scale = shown / float(m.group(3))
    sizes = [float(x) for x in _FONT_SIZE.findall(svg)]
    return min(sizes) * scale if sizes else float("inf")


_PROLOG = re.compile(r"^\s*<\?xml[^>]*>\s*(<!DOCTYPE[^>]*>\s*)?(<!--.*?-->\s*)*", re.S)
_ID = re.compile(r'\b(id|href|xlink:href)="(#?)([^"]*)"')
_URL = re.compile(r"url\(#([^)]*)\)")


def inline_svg(svg: str, prefix: str | None = None) -> str:
    """An SVG document made fit for inlining in HTML: no XML prolog, and
    (with ``prefix``) every id prefixed so several diagrams can share a page."""
    svg = _PROLOG.sub("", svg, count=1)
    if prefix:
        def fix(m):
            attr, hash_, val = m.groups()
            if attr != "id" and not hash_:
                return m.group(0)
            return f'{attr}="{hash_}{prefix}{val}"'
        svg = _ID.sub(fix, svg)
        svg = _URL.sub(lambda m: f"url(#{prefix}{m.group(1)})", svg)
    return svg
