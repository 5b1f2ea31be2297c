"""``CostExplorer``: the cost plots behind sliders (ipywidgets 8).

Every slider calls :meth:`CostExplorer.update`, which reruns the engine
(:mod:`thpviz.cost.experiments`) and redraws the figures
(:mod:`thpviz.cost.plots`) as PNG images.  It lives with the other widgets;
the cost model it drives stays in :mod:`thpviz.cost`.  It needs no kernel to update:
setting a slider's ``.value`` in plain Python recomputes everything, which is
how the tests drive it.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from ..cost import experiments as X
from ..cost import plots
from ..eras import ERAS

#: huge page sizes offered, in subpages (whole scenario runs stay fast)
SIZE_OPTIONS = (16, 64, 256, 512, 2048, 8192)
#: slider limits that keep one update (five eras, two figures) near a second
MAX_THPS, MAX_PROCS = 8, 4


class CostExplorer:
    """Sliders for the huge page size, the guest's THPs, how many are pinned,
    how many fork+exit cycles run, and the eras to compare; two figures (the
    vfio write fault per era, and the guest workload) and a table of the
    engine's totals."""

    def __init__(self, nr: int = 512, thps: int = 4, pins: int = 2, procs: int = 1, eras=None):
        style = {"description_width": "150px"}
        layout = widgets.Layout(width="460px")
        self.size = widgets.SelectionSlider(options=SIZE_OPTIONS, value=nr, description="subpages per THP",
                                            style=style, layout=layout)
        self.thps = widgets.IntSlider(value=thps, min=1, max=MAX_THPS, description="guest THPs",
                                      style=style, layout=layout)
        self.pins = widgets.IntSlider(value=pins, min=0, max=max(thps, 1), description="pinned THPs",
                                      style=style, layout=layout)
        self.procs = widgets.IntSlider(value=procs, min=0, max=MAX_PROCS, description="fork+exit cycles",
                                       style=style, layout=layout)
        self.eras = widgets.SelectMultiple(options=list(ERAS), value=tuple(X.era_ids(eras)),
                                           description="eras", rows=len(ERAS), style=style)
        self.fault_image = widgets.Image(format="png", layout=widgets.Layout(width="100%"))
        self.workload_image = widgets.Image(format="png", layout=widgets.Layout(width="100%"))
        self.table = widgets.HTML()
        self.figures: list = []
        self.results: dict = {}
        self.thps.observe(self._clamp_pins, names="value")
        for w in (self.size, self.thps, self.pins, self.procs, self.eras):
            w.observe(self._changed, names="value")
        self._updating = False
        self.widget = widgets.VBox([
            widgets.HBox([widgets.VBox([self.size, self.thps, self.pins, self.procs]), self.eras]),
            self.fault_image, self.workload_image, self.table,
        ])
        self.update()

    # -- callbacks -----------------------------------------------------------
    def _clamp_pins(self, change) -> None:
        self._updating = True
        try:
            self.pins.max = max(change["new"], 1)
            if self.pins.value > change["new"]:
                self.pins.value = change["new"]
        finally:
            self._updating = False

    def _changed(self, _change) -> None:
        if not self._updating:
            self.update()

    # -- the one function every control calls -------------------------------
    def update(self) -> None:
        """Rerun the engine for the current settings and redraw."""
        ids = X.era_ids(self.eras.value)
        if not ids:
            self.table.value = "<p>Select at least one era.</p>"
            return
        nr, thps, pins, procs = self.size.value, self.thps.value, min(self.pins.value, self.thps.value), self.procs.value
        points = X.vfio_write_costs(nr, ids)
        totals = X.workload(nr, thps, pins, procs, ids)
        self.results = {"settings": dict(nr=nr, thps=thps, pins=pins, procs=procs, eras=ids),
                        "fault": points, "workload": totals}
        figs = [plots.false_cow_figure(nr, ids, points=points),
                plots.workload_figure(nr, thps, pins, procs, ids, totals=totals)]
        self.figures = figs
        self.fault_image.value = plots.png_bytes(figs[0], dpi=80)
        self.workload_image.value = plots.png_bytes(figs[1], dpi=80)
        self.table.value = self._table(ids, points, totals)

    @staticmethod
    def _table(ids, points, totals) -> str:
        head = ("<tr><th>era</th><th>vfio write</th><th>lines</th><th>guest: bytes copied</th>"
                "<th>pins lost</th><th>struct pages read</th><th>violations</th></tr>")
        rows = []
        for e in ids:
            p, t = points[e], totals[e]
            rows.append(
                f"<tr><td>{html.escape(e)}</td><td>{html.escape(p.decision)}</td>"
                f"<td>{p.cost['struct_page_lines'] + p.cost['data_lines']}</td>"
                f"<td>{plots.format_bytes(t['bytes_copied'])}</td><td>{t['pins_lost']}</td>"
                f"<td>{t['decision_lines']}</td><td>{html.escape(' '.join(t['violations']) or 'clean')}</td></tr>"
            )
        return f"<table>{head}{''.join(rows)}</table>"

    # -- display ---------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
