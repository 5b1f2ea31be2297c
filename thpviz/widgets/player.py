"""``ScenarioPlayer``: step through one scenario under one era.

>>> from thpviz.widgets import ScenarioPlayer
>>> ScenarioPlayer("data/scenarios/regression/pin-mprotect-cycle-write.thp", "4.5")

A Play button and a step slider drive the same value; each step shows the
statement (with its comment), the diagram of the state after it, the fault
decisions and violations the engine reported, and the page counters.
"""

from __future__ import annotations

import itertools

import ipywidgets as widgets

from ..render.source import load_run, load_scenario
from . import panels

_ids = itertools.count(1)


class ScenarioPlayer(panels.Stepping, widgets.VBox):
    """Step through ``scenario`` (a path, scenario text or a parsed
    Scenario) under ``era`` (an era id or Era)."""

    def __init__(self, scenario, era="4.5", start: int = 1, interval: int = 1500, **kw):
        scn, self.text = load_scenario(scenario)
        self.run = load_run(scn, era)
        self.uid = f"thpviz-player-{next(_ids)}"
        n = len(self.run.steps)
        self._svg: dict[int, str] = {}
        start = self._make_stepper(n, start, interval)
        self.statement = widgets.HTML()
        self.details = widgets.HTML()
        self.table = widgets.HTML()
        self.diagram = widgets.HTML()
        title = widgets.HTML(f"<b>{panels.e(scn.title or scn.path)}</b>")
        self.verdict = widgets.HTML(panels.verdict_html(self.run))
        super().__init__([title, self.verdict, widgets.HBox([self.play, self.slider]), self.statement,
                          self.details, self.diagram, self.table], **kw)
        self.show(start)

    def show(self, k: int) -> None:
        """Display snapshot ``k`` (0: before the first statement)."""
        scene = panels.scene_at(self.run, k)
        self.statement.value = panels.statement_html(self.run, k, self.text)
        self.details.value = panels.details_html(scene)
        self.table.value = panels.counter_table_html(scene)
        if k not in self._svg:
            self._svg[k] = panels.diagram_html(scene, f"{self.uid}-{k}")
        self.diagram.value = self._svg[k]
        if self.slider.value != k:
            self.slider.value = k
