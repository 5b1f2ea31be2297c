"""A diagram object that shows itself in a notebook (``_repr_svg_``).

>>> from thpviz.render import diagram
>>> d = diagram("data/scenarios/regression/pin-mprotect-cycle-write.thp", "4.5", step=7)
>>> d            # in a notebook: the SVG
>>> d.dot        # the DOT text
>>> d.save("vfio.png")
"""

from __future__ import annotations

import re

from . import graphviz_run
from .dot import run_dot, snapshot_dot
from .source import load_run


class Diagram:
    """DOT text plus lazy rendering (``dot`` runs once per format)."""

    def __init__(self, dot_text: str):
        self.dot = dot_text
        self._cache: dict[str, bytes] = {}

    def render(self, fmt: str = "svg") -> bytes:
        if fmt == "dot":
            return self.dot.encode("utf-8")
        if fmt not in self._cache:
            self._cache[fmt] = graphviz_run.render(self.dot, fmt)
        return self._cache[fmt]

    def svg(self) -> str:
        return self.render("svg").decode("utf-8")

    def _repr_svg_(self) -> str:
        return inline_svg(self.svg())

    def save(self, path: str, fmt: str | None = None) -> None:
        fmt = fmt or path.rsplit(".", 1)[-1].lower()
        with open(path, "wb") as f:
            f.write(self.render(fmt))


def diagram(source, era=None, step: int | None = None, **kw) -> Diagram:
    """A diagram of snapshot ``step`` (0: before the first statement,
    default: the last) of a scenario (path, text, Scenario) under ``era``,
    of a Run, or of a World (``prev=`` another World to mark changes)."""
    from ..model.world import World

    if isinstance(source, World):
        return Diagram(snapshot_dot(source, kw.pop("prev", None), kw.pop("step_result", None), **kw))
    r = load_run(source, era)
    return Diagram(run_dot(r, step, **kw))


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
