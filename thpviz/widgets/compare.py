"""``EraCompare``: one scenario under several eras, side by side, on one
step slider.

>>> from thpviz.widgets import EraCompare
>>> c = EraCompare("data/scenarios/regression/pin-mprotect-cycle-write.thp", ["4.5", "4.6"])
>>> c.add_era("kirill-k1"); c.remove_era("4.5")     # or the era toggles above the columns

Each column is one era: its verdict (behind a "reveal" toggle, so a reader
can predict first), the fault decisions and violations of the current step,
and the diagram.  Below, one table lists each page's counters per era; a
cell is highlighted where the eras disagree.  An era that has no such
counter (``page_trans_huge_mapcount`` before the thread, ``PageDoubleMap``
in 4.4, ...) shows "n/a" there and takes no part in the comparison: lacking
a counter is not a disagreement.  A page only some eras have (the copy one
era made) is a disagreement.
"""

from __future__ import annotations

import itertools

import ipywidgets as widgets

from ..render.dot import CHANGED
from ..render.source import era_of, load_scenario
from . import panels

_ids = itertools.count(1)

#: shown where an era has no such counter (not compared)
NOT_IN_ERA = "n/a"
#: shown where an era has no such page (compared: a real difference)
NO_PAGE = "—"


def differences(scenes) -> tuple[list[str], dict, set]:
    """Compare the scenes of one step under several eras.

    Returns (columns, {(page, column): [value per era]}, the (page, column)
    keys whose values differ).  A page missing in an era reads
    :data:`NO_PAGE` and counts as a difference; a counter missing in an era
    that has the page reads :data:`NOT_IN_ERA` and is left out of the
    comparison."""
    per_era = [dict(panels.page_rows(sc)) for sc in scenes]
    pages = []
    for rows in per_era:
        for p in rows:
            if p not in pages:
                pages.append(p)
    cols = []
    for rows in per_era:
        for d in rows.values():
            for c in d:
                if c not in cols:
                    cols.append(c)
    values, differ = {}, set()
    for p in pages:
        for c in cols:
            vals, compared = [], []
            for rows in per_era:
                if p not in rows:
                    vals.append(NO_PAGE)
                    compared.append(NO_PAGE)
                elif c not in rows[p]:
                    vals.append(NOT_IN_ERA)
                else:
                    vals.append(rows[p][c])
                    compared.append(str(rows[p][c]))
            if all(v in (NO_PAGE, NOT_IN_ERA) for v in vals):
                continue
            values[(p, c)] = vals
            if len(set(compared)) > 1:
                differ.add((p, c))
    # the step's own outcome: fault decisions and violations
    for label, get in (("faults", lambda sc: "; ".join(sc.faults) or "none"),
                       ("violations", lambda sc: " ".join(sorted(sc.violations)) or "clean")):
        vals = [get(sc) for sc in scenes]
        values[("step", label)] = vals
        if len(set(vals)) > 1:
            differ.add(("step", label))
    return cols, values, differ


def comparison_html(era_ids, scenes) -> str:
    cols, values, differ = differences(scenes)
    keys = [k for k in values if k[0] == "step"] + [k for k in values if k[0] != "step"]
    head = "".join(f'<th style="text-align:left;padding:1px 6px">{panels.e(x)}</th>'
                   for x in ["page", "counter"] + list(era_ids))
    body = []
    for key in keys:
        bg = f";background:{CHANGED}" if key in differ else ""
        tds = "".join(f'<td style="padding:1px 6px{bg}">{panels.e(v)}</td>' for v in values[key])
        body.append(f'<tr><td style="padding:1px 6px"><b>{panels.e(key[0])}</b></td>'
                    f'<td style="padding:1px 6px">{panels.e(key[1])}</td>{tds}</tr>')
    return (f'<div style="{panels._BOX};overflow:auto"><div>yellow: the eras disagree at this step; '
            f'{NOT_IN_ERA}: the era has no such counter (not compared); {NO_PAGE}: no such page in that era</div>'
            f'<table style="border-collapse:collapse;font-size:12px"><tr>{head}</tr>{"".join(body)}</table></div>')


class EraCompare(panels.Stepping, widgets.VBox):
    """``scenario`` (path, text or Scenario) under each of ``eras`` (ids or
    Era objects; default: the eras its ``expect`` lines name).  ``start``: a
    step number, ``"decisive"`` or the start of a statement's text."""

    def __init__(self, scenario, eras=None, start: int | str = 1, interval: int = 1500, **kw):
        from ..eras import ERAS
        from ..render.storyboard import resolve_start
        from ..scenario import eras_for

        self.scenario, self.text = load_scenario(scenario)
        scn = self.scenario
        era_objs = [era_of(x) for x in eras] if eras else eras_for(scn)
        self.uid = f"thpviz-compare-{next(_ids)}"
        self._runs: dict[str, object] = {}
        self.era_ids: list[str] = []
        self.runs: list = []
        for x in era_objs:
            self._add(x)
        n = len(scn.statements)
        start = self._make_stepper(n, resolve_start(self.runs, start), interval)
        self.toggles = {}
        for era_id in ERAS:
            t = widgets.ToggleButton(value=era_id in self.era_ids, description=era_id,
                                     layout=widgets.Layout(width="auto"))
            t.observe(lambda ch, era_id=era_id: self._toggled(era_id, ch["new"]), names="value")
            self.toggles[era_id] = t
        self.reveal = widgets.ToggleButton(value=False, description="reveal the verdicts",
                                           layout=widgets.Layout(width="auto"))
        self.reveal.observe(lambda _c: self.show(self.step), names="value")
        self.message = widgets.HTML()
        self.statement = widgets.HTML()
        self.columns_box = widgets.HBox()
        self.columns: list[dict] = []
        self.table = widgets.HTML()
        title = widgets.HTML(f"<b>{panels.e(scn.title or scn.path)}</b>")
        super().__init__([title, widgets.HBox([widgets.HTML("eras:"), *self.toggles.values(), self.reveal]),
                          self.message, widgets.HBox([self.play, self.slider]), self.statement,
                          self.columns_box, self.table], **kw)
        self._build_columns()
        self.show(start)

    # ---------------------------------------------------------------- eras
    def _add(self, era) -> None:
        from ..scenario import check_eras, run

        check_eras(self.scenario, [era])
        if era.id not in self._runs:
            self._runs[era.id] = run(self.scenario, era, keep_snapshots=True)
        from ..eras import ERAS

        order = list(ERAS)
        self.era_ids = sorted({*self.era_ids, era.id}, key=lambda e: order.index(e) if e in order else len(order))
        self.runs = [self._runs[e] for e in self.era_ids]

    def add_era(self, era) -> None:
        """Add a column for ``era`` (id or Era), in era order."""
        from ..scenario import ScenarioError

        era = era_of(era)
        if era.id in self.era_ids:
            return
        try:
            self._add(era)
        except ScenarioError as err:
            self.message.value = f'<span style="color:#D55E00">{panels.e(err.errors[0])}</span>'
            if era.id in self.toggles:
                self.toggles[era.id].value = False
            return
        self.message.value = ""
        if era.id in self.toggles and not self.toggles[era.id].value:
            self.toggles[era.id].value = True
        self._build_columns()
        self.show(self.step)

    def remove_era(self, era) -> None:
        """Remove ``era``'s column (the last column stays)."""
        era_id = era if isinstance(era, str) else era.id
        if era_id not in self.era_ids:
            return
        if len(self.era_ids) == 1:
            self.message.value = "one era at least"
            if era_id in self.toggles:
                self.toggles[era_id].value = True
            return
        self.era_ids = [e for e in self.era_ids if e != era_id]
        self.runs = [self._runs[e] for e in self.era_ids]
        self.message.value = ""
        if era_id in self.toggles and self.toggles[era_id].value:
            self.toggles[era_id].value = False
        self._build_columns()
        self.show(self.step)

    def _toggled(self, era_id: str, on: bool) -> None:
        if on and era_id not in self.era_ids:
            self.add_era(era_id)
        elif not on and era_id in self.era_ids:
            self.remove_era(era_id)

    # ------------------------------------------------------------- display
    def _build_columns(self) -> None:
        self.columns = []
        boxes = []
        for _ in self.runs:
            col = {"verdict": widgets.HTML(), "details": widgets.HTML(), "diagram": widgets.HTML()}
            col["drawing"] = panels.AsyncDiagram(col["diagram"], fit=True)
            self.columns.append(col)
            boxes.append(widgets.VBox([col["verdict"], col["details"], col["diagram"]],
                                      layout=widgets.Layout(flex="1 1 0", min_width="0")))
        self.columns_box.children = boxes

    def wait(self) -> None:
        """Block until every column's diagram of the current step is drawn."""
        for col in self.columns:
            col["drawing"].wait()

    def show(self, k: int) -> None:
        scenes = [panels.scene_at(r, k) for r in self.runs]
        self.statement.value = panels.statement_html(self.runs[0], k, self.text)
        for era_id, r, col, sc in zip(self.era_ids, self.runs, self.columns, scenes):
            col["verdict"].value = panels.verdict_html(r) if self.reveal.value else \
                f'<div style="{panels._BOX}"><b>{panels.e(era_id)}</b></div>'
            col["details"].value = panels.details_html(sc)
            col["drawing"].show(sc, f"{self.uid}-{era_id}-{k}")
        self.table.value = comparison_html(self.era_ids, scenes)
        if self.slider.value != k:
            self.slider.value = k
