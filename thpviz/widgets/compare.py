"""``EraCompare``: one scenario under several eras, side by side, on one
step slider.

>>> from thpviz.widgets import EraCompare
>>> EraCompare("data/scenarios/regression/pin-mprotect-cycle-write.thp", ["4.5", "4.6"])

Each column is one era: its verdict, the fault decisions and violations of
the current step, and the diagram.  Below, one table lists each page's
counters per era; a cell is highlighted where the eras disagree.
"""

from __future__ import annotations

import itertools

import ipywidgets as widgets

from ..render.source import era_of, load_scenario
from . import panels

_ids = itertools.count(1)


def differences(scenes) -> tuple[list[str], dict, set]:
    """Compare the scenes of one step under several eras.

    Returns (columns, {(page, column): [value per era]}, the (page, column)
    keys whose values differ).  A page missing in an era counts as "—"."""
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
            vals = [rows.get(p, {}).get(c, "—") for rows in per_era]
            values[(p, c)] = vals
            if len({str(v) for v in vals}) > 1:
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
        vals = values[key]
        if all(v == "—" for v in vals):
            continue
        bg = f";background:{panels.CHANGED}" if key in differ else ""
        tds = "".join(f'<td style="padding:1px 6px{bg}">{panels.e(v)}</td>' for v in vals)
        body.append(f'<tr><td style="padding:1px 6px"><b>{panels.e(key[0])}</b></td>'
                    f'<td style="padding:1px 6px">{panels.e(key[1])}</td>{tds}</tr>')
    return (f'<div style="{panels._BOX};overflow:auto"><div>yellow: the eras disagree at this step</div>'
            f'<table style="border-collapse:collapse;font-size:12px"><tr>{head}</tr>{"".join(body)}</table></div>')


class EraCompare(panels.Stepping, widgets.VBox):
    """``scenario`` (path, text or Scenario) under each of ``eras`` (ids or
    Era objects; default: the eras its ``expect`` lines name)."""

    def __init__(self, scenario, eras=None, start: int = 1, interval: int = 1500, **kw):
        from ..scenario import eras_for, run

        scn, self.text = load_scenario(scenario)
        era_objs = [era_of(x) for x in eras] if eras else eras_for(scn)
        self.runs = [run(scn, x, keep_snapshots=True) for x in era_objs]
        self.era_ids = [x.id for x in era_objs]
        self.uid = f"thpviz-compare-{next(_ids)}"
        n = len(scn.statements)
        self._svg: dict[tuple[int, int], str] = {}
        start = self._make_stepper(n, start, interval)
        self.statement = widgets.HTML()
        self.columns = []
        for r in self.runs:
            col = {"verdict": widgets.HTML(panels.verdict_html(r)), "details": widgets.HTML(),
                   "diagram": widgets.HTML()}
            self.columns.append(col)
        self.table = widgets.HTML()
        boxes = [widgets.VBox([c["verdict"], c["details"], c["diagram"]],
                              layout=widgets.Layout(flex="1 1 0", min_width="0"))
                 for c in self.columns]
        title = widgets.HTML(f"<b>{panels.e(scn.title or scn.path)}</b>")
        super().__init__([title, widgets.HBox([self.play, self.slider]), self.statement,
                          widgets.HBox(boxes), self.table], **kw)
        self.show(start)

    def show(self, k: int) -> None:
        scenes = [panels.scene_at(r, k) for r in self.runs]
        self.statement.value = panels.statement_html(self.runs[0], k, self.text)
        for i, (col, sc) in enumerate(zip(self.columns, scenes)):
            col["details"].value = panels.details_html(sc)
            if (i, k) not in self._svg:
                self._svg[(i, k)] = panels.diagram_html(sc, f"{self.uid}-{i}-{k}", fit=True)
            col["diagram"].value = self._svg[(i, k)]
        self.table.value = comparison_html(self.era_ids, scenes)
        if self.slider.value != k:
            self.slider.value = k
