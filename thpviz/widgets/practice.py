"""``Practice``: a practice puzzle (``thpviz practice``) in a notebook, with
"new puzzle" and "reveal" buttons.

>>> from thpviz.widgets.practice import Practice
>>> Practice(seed=3)                 # the same puzzle as `thpviz practice -s 3`

The puzzle is made by :func:`thpviz.explore.practice.puzzle` (a seeded random
walk on which the eras disagree); "reveal" shows, for every step that takes a
write fault or raises a violation, each era's decisions and violations, then
each era's verdict.  :func:`question_html` and :func:`answers_html` make the
same HTML without a kernel (the book's practice page uses them).
"""

from __future__ import annotations

from html import escape

import ipywidgets as widgets

from ..explore.practice import Puzzle, puzzle
from .panels import _BOX

_VIOL = "background:#f4433622"
_TD = "border:1px solid #9995;padding:2px 6px;text-align:left;vertical-align:top"


def _e(s) -> str:
    return escape(str(s), quote=True)


def question_html(p) -> str:
    """The puzzle's scenario, the write-fault steps marked, and what to predict."""
    rows = []
    for i, s in enumerate(p.statements):
        mark = ' <b style="color:#b35900">? decision</b>' if i in p.asked else ""
        rows.append(f"<tr><td style='{_TD}'>{i + 1}</td><td style='{_TD}'><code>{_e(s)}</code>{mark}</td></tr>")
    return (f'<div style="{_BOX}"><div><b>{_e(p.title)}</b> · thp {p.thp} · eras {_e(", ".join(p.eras))}</div>'
            f'<table style="border-collapse:collapse;margin:4px 0">{"".join(rows)}</table>'
            "<div>Predict, for each era, the decision of every write fault marked <b>?</b> "
            "(reuse, cow-small, cow-huge, new) and the violations the run reports "
            "(pin-lost, rmap-broken, leak, stray-write, bug, or clean).</div></div>")


def answers_html(p) -> str:
    """Per step (those with a write fault or a new violation) and era: the
    decisions and violations; then each era's verdict."""
    head = "".join(f"<th style='{_TD}'>{_e(e)}</th>" for e in p.eras)
    rows = []
    for i, a in enumerate(p.step_answers()):
        if not a["asked"] and not any(v["violations"] for v in a["eras"].values()):
            continue
        cells = []
        for e in p.eras:
            v = a["eras"][e]
            text = "<br>".join(_e(f.split(": ", 1)[1]) for f in v["faults"]) or "no write fault"
            if v["violations"]:
                text += "<br><b>" + _e(" ".join(v["violations"])) + "</b>"
            style = _TD + (";" + _VIOL if v["violations"] else "")
            cells.append(f"<td style='{style}'>{text}</td>")
        rows.append(f"<tr><td style='{_TD}'>{i + 1}. <code>{_e(a['statement'])}</code></td>{''.join(cells)}</tr>")
    verdicts = "".join(
        f"<td style='{_TD}{';' + _VIOL if p.runs[e].violations else ''}'><code>{_e(_verdict(p, e))}</code></td>"
        for e in p.eras)
    rows.append(f"<tr><td style='{_TD}'><b>verdict</b></td>{verdicts}</tr>")
    return (f'<div style="{_BOX};overflow:auto"><table style="border-collapse:collapse">'
            f"<tr><th style='{_TD}'>step</th>{head}</tr>{''.join(rows)}</table></div>")


def _verdict(p, era) -> str:
    from ..explore.practice import verdict

    return verdict(p.runs[era])


class Practice(widgets.VBox):
    """Puzzle number ``seed`` with ``n`` statements under ``eras`` (default:
    every implemented era)."""

    def __init__(self, seed: int = 0, n: int = 6, eras=None, thp: int = 8, **kw):
        self.eras = list(eras) if eras else None
        self.thp = thp
        self.puzzle: Puzzle | None = None
        self.seed = widgets.BoundedIntText(value=seed, min=0, max=10**9, description="puzzle",
                                           layout=widgets.Layout(width="180px"))
        self.n = widgets.IntSlider(value=n, min=3, max=10, description="statements",
                                   layout=widgets.Layout(width="280px"))
        self.new_button = widgets.Button(description="new puzzle", icon="random")
        self.reveal_button = widgets.Button(description="reveal", icon="eye", button_style="info")
        self.question = widgets.HTML()
        self.answer = widgets.HTML()
        self.new_button.on_click(lambda _: self.new())
        self.reveal_button.on_click(lambda _: self.reveal())
        self.seed.observe(lambda _: self.show(), names="value")
        self.n.observe(lambda _: self.show(), names="value")
        super().__init__([widgets.HBox([self.seed, self.n, self.new_button, self.reveal_button]),
                          self.question, self.answer], **kw)
        self.show()

    def new(self) -> None:
        """The next puzzle."""
        self.seed.value += 1  # observed: shows it

    def show(self) -> None:
        try:
            self.puzzle = puzzle(self.seed.value, self.n.value, self.eras, self.thp)
        except ValueError as err:
            self.puzzle = None
            self.question.value = f'<div style="{_BOX}">{_e(err)}</div>'
        else:
            self.question.value = question_html(self.puzzle)
        self.answer.value = ""
        self.reveal_button.disabled = self.puzzle is None

    def reveal(self) -> None:
        if self.puzzle is not None:
            self.answer.value = answers_html(self.puzzle)
