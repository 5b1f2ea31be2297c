"""Diagrams of thpviz snapshots: graphviz DOT, matplotlib plots, storyboards.

Importing this package is cheap (the ``thpviz`` command imports its CLI
modules); the pieces load on first use:

* :func:`diagram` -> a :class:`~thpviz.render.diagrams.Diagram` (``.dot``,
  ``.svg()``, ``.save(path)``, shows itself in a notebook);
* :func:`snapshot_dot`, :func:`run_dot` -> DOT text;
* :mod:`thpviz.render.plots` -> the per-subpage counter strip;
* :mod:`thpviz.render.storyboard` -> self-contained HTML storyboards.
"""

from __future__ import annotations

_LAZY = {
    "snapshot_dot": "dot", "run_dot": "dot", "scene_dot": "dot",
    "build_scene": "scene",
    "diagram": "diagrams", "Diagram": "diagrams", "inline_svg": "diagrams",
    "storyboard_html": "storyboard",
    "counter_strip": "plots",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'thpviz.render' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"thpviz.render.{mod}"), name)
