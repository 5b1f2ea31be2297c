"""Numbers reported by others, kept apart from what thpviz counts.

``data/measured/*.yaml`` holds two kinds of record: ``reported in the
thread`` (timings someone gave in the 2016 thread: whole-test wall times,
not per-fault measurements) and -- when we have them -- ``measured`` (our own
measurements, each with the machine it ran on).  Only the second kind may be
drawn beside the model's counts; the first is shown as a labelled table.
"""

from __future__ import annotations

import html
from pathlib import Path

MEASURED = Path(__file__).resolve().parents[2] / "data" / "measured"
REPORTED = "reported in the thread"


def _load(directory: Path = MEASURED) -> list[dict]:
    import yaml

    out = []
    for p in sorted(directory.glob("*.yaml")):
        for rec in yaml.safe_load(p.read_text()) or []:
            rec = dict(rec)
            rec["file"] = p.name
            out.append(rec)
    return out


def reported_timings(directory: Path = MEASURED) -> list[dict]:
    """Records of timings reported in the thread."""
    return [r for r in _load(directory) if r.get("kind") == REPORTED]


def measurements(directory: Path = MEASURED) -> list[dict]:
    """Our own measurements (kind ``measured``, each naming its machine)."""
    return [r for r in _load(directory) if r.get("kind") == "measured" and r.get("machine")]


def reported_timings_html(directory: Path = MEASURED) -> str:
    """The reported timings as an HTML table, every row labelled as reported
    and linked to its message."""
    rows = []
    for rec in reported_timings(directory):
        for res in rec["results"]:
            secs = "no number given" if res.get("seconds") is None else f"{res['seconds']} s"
            rows.append(
                "<tr>"
                f"<td><a href=\"{html.escape(rec['link'])}\">{html.escape(rec['message'])}</a>, "
                f"{html.escape(rec['reporter'])}</td>"
                f"<td>{html.escape(res['fix'])}</td>"
                f"<td>{html.escape(res.get('era') or '(no era)')}</td>"
                f"<td>{html.escape(secs)}</td>"
                f"<td>{html.escape(rec['conditions'])}</td>"
                "</tr>"
            )
    head = ("<tr><th>reported in</th><th>fix</th><th>thpviz era</th><th>time (reported)</th>"
            "<th>conditions</th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"
