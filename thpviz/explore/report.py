"""What the explorer prints and writes: the era x violation table, the
findings, the proofs, and each finding as a ``.thp`` file."""

from __future__ import annotations

from .trace import scenario_text


def cell(result, goal: str) -> str:
    """One table cell: the shortest trace's length and the states visited
    when it was found; ``none <= D`` when the search reached its bound
    without one; ``none <= d*`` when the time limit stopped it after depth d."""
    f = result.findings.get(goal)
    if f is not None:
        return f"{f.length} ({f.states})"
    if result.reached_bound:
        return f"none <= {result.depth}"
    return f"none <= {result.complete_depth}*"


def table_rows(results, goals) -> list[dict]:
    """One row per search: era, a cell per goal, states visited, the depth
    explored completely, seconds."""
    rows = []
    for r in results:
        row = {"era": " vs ".join(r.eras)}
        for g in goals:
            row[g] = cell(r, g)
        row["states"] = r.states
        row["depth"] = r.complete_depth
        row["seconds"] = round(r.seconds, 1)
        rows.append(row)
    return rows


def table_text(results, goals) -> str:
    rows = table_rows(results, goals)
    cols = ["era", *goals, "states", "depth", "seconds"]
    w = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    out = ["  ".join(f"{c:<{w[c]}}" for c in cols)]
    out += ["  ".join(f"{str(r[c]):<{w[c]}}" for c in cols) for r in rows]
    out.append("cell: statements in the shortest trace (states visited when it was found); "
               "states: distinct states visited; depth: explored completely"
               + ("; * time limit reached" if any(not r.reached_bound for r in results) else ""))
    return "\n".join(out)


def _trace_lines(f) -> str:
    return "\n".join(f"      {s}" for s in f.trace)


def found_text(results, written) -> str:
    out = []
    for r in results:
        for f in r.findings.values():
            out.append(f"{'/'.join(f.eras)}: {f.goal}, {f.length} statements:\n{_trace_lines(f)}\n"
                       f"    last step: {f.detail}")
            p = written.get((f.eras, f.goal))
            if p:
                out.append(f"    written to {p}")
    return "\n".join(out) or "no trace found within the bound"


def prove_text(results, written) -> str:
    out = []
    for r in results:
        era = "/".join(r.eras)
        for g in r.goals:
            f = r.findings.get(g)
            if f is not None:
                out.append(f"NOT PROVED: {era}: {g} after {f.length} statements:\n{_trace_lines(f)}\n"
                           f"    last step: {f.detail}")
                p = written.get((f.eras, f.goal))
                if p:
                    out.append(f"    written to {p}")
            elif r.reached_bound:
                out.append(f"proved: {era}: no trace of at most {r.depth} statements shows {g} "
                           f"({r.states} states visited, {r.transitions} statements run, {r.seconds:.1f} s)")
            else:
                out.append(f"NOT PROVED: {era}: {g}: the time limit stopped the search after depth "
                           f"{r.complete_depth} of {r.depth} ({r.states} states visited)")
    return "\n".join(out)


def differ_text(r, written) -> str:
    e1, e2 = r.eras
    f = r.findings.get("differ")
    if f is None:
        if r.reached_bound:
            return (f"{e1} and {e2} decide and violate alike on every trace of at most {r.depth} statements "
                    f"({r.states} states visited, {r.seconds:.1f} s)")
        return (f"no difference found up to depth {r.complete_depth} of {r.depth}: time limit "
                f"({r.states} states visited)")
    out = [f"{e1} and {e2} first differ after {f.length} statements ({f.states} states visited):",
           _trace_lines(f), f"    last step: {f.detail}"]
    p = written.get((f.eras, f.goal))
    if p:
        out.append(f"    written to {p}")
    return "\n".join(out)


def finding_scenario(result, f, command: str) -> str:
    """A finding as a complete ``.thp`` file (expect lines for every era)."""
    era = "/".join(f.eras)
    if f.goal == "differ":
        title = f"Where {f.eras[0]} and {f.eras[1]} first differ: a shortest trace ({f.length} statements)"
    else:
        title = f"{f.goal} under {era}: a shortest trace ({f.length} statements)"
    notes = [
        "Found by the thpviz explorer (breadth-first, so no shorter trace over its alphabet exists):",
        f"  {command}",
        f"bound: {result.depth} statements; alphabet: {result.alphabet.describe()}",
        f"{f.states} distinct states visited when it was found.",
        f"last step under {era}: {f.detail}",
        "The expect lines were computed by running this file under every implemented era.",
    ]
    return scenario_text(f.trace, result.alphabet.thp, title, f"found by the thpviz explorer: {command}", notes)


def results_json(results, command: str, written=None) -> dict:
    written = written or {}
    out = []
    for r in results:
        out.append({
            "eras": list(r.eras),
            "goals": list(r.goals),
            "depth": r.depth,
            "complete_depth": r.complete_depth,
            "reached_bound": r.reached_bound,
            "timed_out": r.timed_out,
            "states": r.states,
            "transitions": r.transitions,
            "seconds": round(r.seconds, 2),
            "per_depth": r.per_depth,
            "alphabet": r.alphabet.describe(),
            "findings": {g: {"length": f.length, "trace": f.trace, "detail": f.detail, "states": f.states,
                             "file": written.get((f.eras, f.goal))} for g, f in r.findings.items()},
            "defects": [{"trace": t, "message": m} for t, m in r.defects],
        })
    return {"command": command, "results": out}


def table_html(data: dict) -> str:
    """The era x violation table of ``results_json`` output as an HTML table
    (for the book): a cell is the shortest trace's length, its statements in
    a tooltip; red where a trace exists."""
    from html import escape

    results = data["results"]
    goals = []
    for r in results:
        goals += [g for g in r["goals"] if g not in goals]
    td = "border:1px solid #9995;padding:2px 6px;text-align:left"
    head = "".join(f"<th style='{td}'>{escape(g)}</th>" for g in goals)
    rows = []
    for r in results:
        cells = []
        for g in goals:
            f = r["findings"].get(g)
            if f is not None:
                tip = escape("; ".join(f["trace"]), quote=True)
                cells.append(f"<td style='{td};background:#f4433622' title=\"{tip}\">{f['length']}</td>")
            elif g not in r["goals"]:
                cells.append(f"<td style='{td}'></td>")
            elif r["reached_bound"]:
                cells.append(f"<td style='{td};background:#4caf5022'>none &le; {r['depth']}</td>")
            else:
                cells.append(f"<td style='{td}'>none &le; {r['complete_depth']}*</td>")
        rows.append(f"<tr><td style='{td}'><b>{escape(' vs '.join(r['eras']))}</b></td>{''.join(cells)}"
                    f"<td style='{td}'>{r['states']}</td><td style='{td}'>{r['complete_depth']}</td></tr>")
    return (f"<table class='thp explore' style='border-collapse:collapse;font-size:0.85em'>"
            f"<tr><th style='{td}'>era</th>{head}<th style='{td}'>states</th><th style='{td}'>depth</th></tr>"
            f"{''.join(rows)}</table>")
