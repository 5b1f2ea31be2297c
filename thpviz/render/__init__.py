"""Diagrams of thpviz snapshots: graphviz DOT, matplotlib plots, storyboards.

Importing this package is cheap (the ``thpviz`` command imports its CLI
modules); the pieces load on first use:

* :func:`diagram` -> a :class:`~thpviz.render.diagrams.Diagram` (``.dot``,
  ``.alt``, ``.svg()``, ``.save(path)``, shows itself in a notebook);
* :func:`render_async` -> lay a diagram out off the caller's thread (a
  Future of the SVG; widgets show a placeholder meanwhile);
* :func:`snapshot_dot`, :func:`run_dot`, :func:`scene_dot` -> DOT text
  (``layout="wide"`` or ``"narrow"``), planned within a size budget by
  :func:`plan` (:mod:`thpviz.render.fold`);
* :func:`build_scene` -> what a snapshot holds, as plain records;
* :mod:`thpviz.render.fields` -> the per-subpage fields each era shows;
* :mod:`thpviz.render.plots` -> the per-subpage counter strip;
* :mod:`thpviz.render.timeline` -> the thread's timeline (SVG);
* :mod:`thpviz.render.storyboard` -> self-contained HTML storyboards;
* :mod:`thpviz.render.graphviz_run` -> the one place that runs ``dot``.

docs/diagrams.md explains what a diagram shows.
"""

from __future__ import annotations

_LAZY = {
    "snapshot_dot": "dot", "run_dot": "dot", "scene_dot": "dot", "alt_text": "dot",
    "build_scene": "scene",
    "plan": "fold", "Budget": "fold",
    "diagram": "diagrams", "Diagram": "diagrams", "inline_svg": "diagrams", "render_async": "diagrams",
    "accessible_svg": "diagrams", "svg_of": "diagrams", "smallest_text_px": "diagrams",
    "storyboard_html": "storyboard",
    "counter_strip": "plots",
    "timeline_svg": "timeline",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'thpviz.render' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"thpviz.render.{mod}"), name)
