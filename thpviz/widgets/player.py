"""``ScenarioPlayer``: step through one scenario under one era.

>>> from thpviz.widgets import ScenarioPlayer
>>> ScenarioPlayer("data/scenarios/regression/pin-mprotect-cycle-write.thp", "4.5")

A Play button and a step slider drive the same value; each step shows the
statement (with its comment), the diagram of the state after it (laid out
off the notebook's main thread: a placeholder shows until it is ready), the
fault decisions and violations the engine reported, and the page counters.  The
era control runs the same scenario under another era and stays on the same
step.  The era's verdict is behind a "reveal" toggle, so a reader can
predict first.
"""

from __future__ import annotations

import itertools

import ipywidgets as widgets

from ..render.source import era_of, load_run, load_scenario
from . import panels

_ids = itertools.count(1)


class ScenarioPlayer(panels.Stepping, widgets.VBox):
    """Step through ``scenario`` (a path, scenario text or a parsed
    Scenario) under ``era`` (an era id or Era)."""

    def __init__(self, scenario, era="4.5", start: int | str = 1, interval: int = 1500, **kw):
        from ..eras import ERAS
        from ..render.storyboard import resolve_start

        self.scenario, self.text = load_scenario(scenario)
        scn = self.scenario
        self.run = load_run(scn, era)
        self.uid = f"thpviz-player-{next(_ids)}"
        n = len(self.run.steps)
        start = self._make_stepper(n, resolve_start([self.run], start), interval)
        self.era_picker = widgets.Dropdown(options=list(ERAS), value=self.run.era.id, description="era",
                                           layout=widgets.Layout(width="180px"))
        self.era_picker.observe(lambda ch: self.set_era(ch["new"]), names="value")
        self.statement = widgets.HTML()
        self.details = widgets.HTML()
        self.table = widgets.HTML()
        self.diagram = widgets.HTML()
        self.drawing = panels.AsyncDiagram(self.diagram)
        title = widgets.HTML(f"<b>{panels.e(scn.title or scn.path)}</b>")
        self.verdict = widgets.HTML()
        self.reveal = widgets.ToggleButton(value=False, description="reveal the verdict",
                                           layout=widgets.Layout(width="auto"))
        self.reveal.observe(lambda _c: self._show_verdict(), names="value")
        super().__init__([title, widgets.HBox([self.era_picker, self.reveal, self.verdict]),
                          widgets.HBox([self.play, self.slider]), self.statement,
                          self.details, self.diagram, self.table], **kw)
        self._show_verdict()
        self.show(start)

    def wait(self) -> None:
        """Block until the diagram of the current step is drawn."""
        self.drawing.wait()

    def _show_verdict(self) -> None:
        self.verdict.value = panels.verdict_html(self.run) if self.reveal.value else ""

    def set_era(self, era) -> None:
        """Run the scenario under another era; stay on the same step."""
        from ..scenario import check_eras

        new = era_of(era)
        check_eras(self.scenario, [new])
        if new.id == self.run.era.id:
            return
        self.run = load_run(self.scenario, new)
        if self.era_picker.value != new.id:
            self.era_picker.value = new.id
        self._show_verdict()
        self.show(self.step)

    def show(self, k: int) -> None:
        """Display snapshot ``k`` (0: before the first statement)."""
        scene = panels.scene_at(self.run, k)
        self.statement.value = panels.statement_html(self.run, k, self.text)
        self.details.value = panels.details_html(scene)
        self.table.value = panels.counter_table_html(scene)
        self.drawing.show(scene, f"{self.uid}-{self.run.era.id}-{k}")
        if self.slider.value != k:
            self.slider.value = k
