"""Recorded results: ``data/measured/live-<kernel>.json``, written by
``python -m thpviz.live.record`` (host) and ``... --kernel 6.1|6.12``
(QEMU guests), read by the book where the lab cannot run.

The file holds the machine (kernel release, what the probe found, CPU),
every scenario's verdicts (kernel, expect line, model) with each step's
faults, events and violations, and the fault costs of
:mod:`thpviz.live.costs`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEASURED = ROOT / "data" / "measured"


def result_json(r, steps: bool = True) -> dict:
    d = {
        "path": os.path.relpath(r.path, ROOT) if os.path.isabs(r.path) else r.path,
        "title": r.title,
        "status": r.status,
        "reason": r.reason,
        "era": r.era,
        "era_note": r.era_note,
        "judged_against": r.judged_against,
        "live": r.live.text() if r.live else None,
        "expected": r.expected.text() if r.expected else None,
        "model": {e: (v.text() if hasattr(v, "text") else None) for e, v in r.model.items()},
        "model_missing": {e: v for e, v in r.model.items() if isinstance(v, str)},
        "mismatches": r.mismatches,
        "first_difference": r.first_difference,
        "notes": r.notes,
        "seconds": round(r.seconds, 3),
    }
    if steps and r.run is not None:
        d["steps"] = [{
            "line": s.line, "text": s.text,
            "faults": [[f.proc, f.region, f.sub, f.level, f.decision, int(f.gup), f.faults, f.before, f.after]
                       for f in s.faults],
            "events": s.events,
            "violations": s.violations,
            "errors": s.errors,
            "assertion": list(s.assertion) if s.assertion else None,
            "mapping": _mapping(s),
        } for s in r.run.steps]
    return d


def _mapping(s) -> dict:
    """Per process and region: runs [first, last, level, pfn of the first,
    anon-exclusive bit, kpagecount] -- compact, raw PFNs kept."""
    from .observe import KPF_EXCL, _bit

    out: dict[str, dict[str, list[list]]] = {}
    for proc, regs in s.state.items():
        for region, subs in regs.items():
            runs: list[list] = []
            for i, x in enumerate(subs):
                if x is None:
                    continue
                ex = int(_bit(x.head_kflags if (x.thp and x.level == "pmd") else x.kflags, KPF_EXCL))
                key = (x.level, ex, x.mapcount)
                if runs and runs[-1][1] == i - 1 and tuple(runs[-1][2:3]) + tuple(runs[-1][4:6]) == key \
                        and x.pfn == runs[-1][3] + (i - runs[-1][0]):
                    runs[-1][1] = i
                else:
                    runs.append([i, i, x.level, x.pfn, ex, x.mapcount])
            out.setdefault(proc, {})[region] = runs
    return out


def results_json(results, caps, costs=None) -> dict:
    passed = sum(r.status == "passed" for r in results)
    failed = sum(r.status == "failed" for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    d = {
        "generated": datetime.date.today().isoformat(),
        "fields": {
            "faults": ["proc", "region", "subpage", "level", "decision", "gup", "minor faults",
                       "pfn before", "pfn after"],
            "mapping": "proc -> region -> runs [first subpage, last subpage, level, pfn of the first, "
                       "anon-exclusive (kpageflags bit 34, the head's for a PMD), kpagecount]",
        },
        "machine": caps.to_json(),
        "summary": {"passed": passed, "failed": failed, "skipped": skipped},
        "results": [result_json(r) for r in results],
    }
    if costs is not None:
        d["costs"] = costs
    return d


def dumps(data: dict) -> str:
    """JSON with one line per scenario result (the files stay readable in a
    diff and small)."""
    head = {k: v for k, v in data.items() if k != "results"}
    lines = json.dumps(head, indent=1)[:-2]
    body = ",\n".join("  " + json.dumps(r, separators=(",", ":")) for r in data["results"])
    return lines + ',\n "results": [\n' + body + "\n ]\n}\n"


def kernel_tag(caps) -> str:
    """``6.18`` for the host's 6.18.44, ``6.1`` / ``6.12`` for the guests."""
    parts = (caps.release or "unknown").split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else caps.release


def load(tag: str) -> dict | None:
    path = MEASURED / f"live-{tag}.json"
    if not path.exists():
        return None
    with open(path) as f:
        return json.load(f)


def available() -> list[str]:
    return sorted(p.stem[len("live-"):] for p in MEASURED.glob("live-*.json"))


def main(argv=None) -> int:
    """Regenerate a recorded file: every scenario under data/scenarios that
    the kernel can express, plus the fault costs."""
    ap = argparse.ArgumentParser(prog="python -m thpviz.live.record", description=main.__doc__)
    ap.add_argument("--kernel", choices=("6.1", "6.12"), help="a QEMU guest instead of this machine")
    ap.add_argument("--no-costs", action="store_true")
    ap.add_argument("--out", help="output file (default data/measured/live-<kernel>.json)")
    ap.add_argument("paths", nargs="*", default=[str(ROOT / "data" / "scenarios")])
    args = ap.parse_args(argv)
    from .lab import scenario_files

    files = [os.path.relpath(f, ROOT) for f in scenario_files(args.paths)]
    os.chdir(ROOT)
    if args.kernel:
        from .qemu import run_in_guest

        caps, results, costs = run_in_guest(args.kernel, files, with_costs=not args.no_costs)
    else:
        from .costs import measure
        from .host import run_files
        from .probe import probe

        caps = probe()
        if caps.require():
            print(f"record: the lab cannot run here: {caps.require()}", file=sys.stderr)
            return 1
        results = run_files(files, caps)
        costs = None if args.no_costs else measure(caps)
    if costs:
        costs["where"] = f"{caps.where} (Linux {caps.release}, {caps.cpu or caps.machine})"
    data = results_json(results, caps, costs)
    out = Path(args.out) if args.out else MEASURED / f"live-{kernel_tag(caps)}.json"
    out.write_text(dumps(data))
    s = data["summary"]
    print(f"{out}: {s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
