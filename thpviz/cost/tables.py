"""Small HTML tables of the engine's cost counts, for notebooks and the book.
They display themselves (``_repr_html_``) and print as plain text."""

from __future__ import annotations

import html

from ..eras.cost_rules import COST_FIELDS


class Table:
    """Rows of cells with a header; shows as HTML in a notebook."""

    def __init__(self, header: list[str], rows: list[list], caption: str = ""):
        self.header, self.rows, self.caption = header, rows, caption

    def _repr_html_(self) -> str:
        cap = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in self.header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>" for r in self.rows
        )
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __str__(self) -> str:
        cells = [self.header] + [[_fmt(c) for c in r] for r in self.rows]
        widths = [max(len(str(r[i])) for r in cells) for i in range(len(self.header))]
        return "\n".join("  ".join(str(c).rjust(w) for c, w in zip(r, widths)) for r in cells)

    __repr__ = __str__


def _fmt(c) -> str:
    return f"{c:,}" if isinstance(c, int) and not isinstance(c, bool) else str(c)


def fault_cost_table(points: dict, fields=COST_FIELDS, caption: str = "") -> Table:
    """One column per era, one row per cost field, for the one-fault records
    of :func:`thpviz.cost.experiments.vfio_write_costs`."""
    eras = list(points)
    rows = [["decision"] + [points[e].decision for e in eras]]
    rows += [[f] + [points[e].cost[f] for e in eras] for f in fields]
    return Table(["per fault"] + eras, rows, caption)
