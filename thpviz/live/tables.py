"""HTML tables of live results for the book and the workshop: the lab run
now where this machine allows it, the recorded results
(``data/measured/live-*.json``) otherwise, and the model beside each."""

from __future__ import annotations

import html
from pathlib import Path

from .record import ROOT, load, result_json

LAB = ROOT / "data" / "scenarios" / "lab"

_CSS = """<style>
table.thp-live{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}
table.thp-live th,table.thp-live td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
table.thp-live td.ok{background:#e8f5e9} table.thp-live td.bad{background:#ffebee}
table.thp-live td.skip{background:#f5f5f5;color:#555}
</style>"""


def live_or_recorded(paths=None, tag: str = "6.18"):
    """(machine, results as JSON dicts, where the numbers come from): a run on
    this kernel when the probe allows the lab, else the recorded file."""
    from .host import run_files
    from .lab import scenario_files
    from .probe import probe

    paths = [str(p) for p in (paths or [LAB])]
    caps = probe()
    if not caps.require("thp", "pin_rw", "pin_ro"):
        results = run_files(scenario_files(paths), caps)
        return caps.to_json(), [result_json(r, steps=False) for r in results], \
            f"run now, on this machine (Linux {caps.release})"
    rec = load(tag)
    if rec is None:
        return caps.to_json(), [], f"the lab cannot run here ({caps.require('thp')}) and nothing is recorded"
    wanted = {str(Path(p).resolve().relative_to(ROOT)) if Path(p).resolve().is_relative_to(ROOT) else p
              for p in paths}
    res = [r for r in rec["results"] if any(r["path"] == w or r["path"].startswith(w.rstrip("/") + "/")
                                            for w in wanted)]
    return rec["machine"], res, (f"recorded on Linux {rec['machine']['release']} ({rec['generated']}); "
                                 f"the lab cannot run here: {caps.require('thp', 'pin_rw', 'pin_ro')}")


def comparison_table(columns) -> str:
    """``columns``: list of (label, results as JSON dicts).  One row per
    scenario: per kernel its verdict, coloured by whether it matches what it
    is judged against; the model's verdict of that era beneath."""
    names: list[str] = []
    by_col = []
    for _, results in columns:
        d = {}
        for r in results:
            d[r["path"]] = r
            if r["path"] not in names:
                names.append(r["path"])
        by_col.append(d)
    head = "".join(f"<th>{html.escape(label)}</th>" for label, _ in columns)
    rows = []
    for path in names:
        cells = []
        for d in by_col:
            r = d.get(path)
            if r is None:
                cells.append("<td></td>")
                continue
            if r["status"] == "skipped":
                cells.append(f'<td class="skip" title="{html.escape(r["reason"])}">skipped</td>')
                continue
            cls = "ok" if r["status"] == "passed" else "bad"
            model = r["model"].get(r["era"])
            cells.append(f'<td class="{cls}">kernel <b>{html.escape(r["live"])}</b><br>'
                         f'{html.escape(r["judged_against"])}: {html.escape(r["expected"] or "")}<br>'
                         f'model {html.escape(r["era"])}: {html.escape(model or "-")}</td>')
        rows.append(f"<tr><td><code>{html.escape(Path(path).stem)}</code></td>{''.join(cells)}</tr>")
    return f'{_CSS}<table class="thp-live"><tr><th>scenario</th>{head}</tr>{"".join(rows)}</table>'


def skips_table(results) -> str:
    rows = "".join(f"<tr><td><code>{html.escape(r['path'])}</code></td><td>{html.escape(r['reason'])}</td></tr>"
                   for r in results if r["status"] == "skipped")
    if not rows:
        return "<p>Nothing was skipped.</p>"
    return f'{_CSS}<table class="thp-live"><tr><th>scenario</th><th>why it was skipped</th></tr>{rows}</table>'


def machine_table(machine: dict) -> str:
    keys = [("release", "kernel"), ("where", "where"), ("cpu", "CPU"), ("thp_mode", "THP"),
            ("pagemap_scan", "PAGEMAP_SCAN"), ("anon_exclusive_flags", "anon-exclusive bit"),
            ("kpagecount", "kpagecount"), ("io_uring", "io_uring"), ("pin_ro", "read-only pin")]
    rows = "".join(f"<tr><th>{label}</th><td>{html.escape(str(machine.get(k)))}</td></tr>" for k, label in keys)
    return f'{_CSS}<table class="thp-live">{rows}</table>'


def summary(results) -> str:
    p = sum(r["status"] == "passed" for r in results)
    f = sum(r["status"] == "failed" for r in results)
    s = sum(r["status"] == "skipped" for r in results)
    return f"{p} passed, {f} failed, {s} skipped"
