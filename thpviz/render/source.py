"""The scenario loaders live in :mod:`thpviz.scenario.load`; the names are
kept here for the renderers and widgets that import them from this module."""

from ..scenario.load import comment_of, era_of, load_run, load_scenario

__all__ = ["comment_of", "era_of", "load_run", "load_scenario"]
