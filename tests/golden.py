"""Run history, kept as the Linux kernel memory model keeps its litmus
history: the full ``thpviz run --json`` of every litmus file under every era
it names, stored under ``tests/golden/`` (canonical JSON, gzip-compressed so
the history stays small) and compared on every test run by
``tests/test_golden.py``.

After a reviewed change that is meant to alter results, regenerate with::

    .venv/bin/python tests/golden.py            # rewrite, print what changed
    .venv/bin/python tests/golden.py --check    # only report differences

and commit the regenerated files together with the change.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "data" / "scenarios"
GOLDEN = ROOT / "tests" / "golden"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def scenario_files() -> list[Path]:
    return sorted(SCENARIOS.rglob("*.thp"))


def golden_path(thp: Path) -> Path:
    return GOLDEN / thp.relative_to(SCENARIOS).with_suffix(".json.gz")


def current(thp: Path) -> list:
    """What ``thpviz run FILE --json`` prints, as data (paths relative to
    the repository so the history does not depend on where it is checked out)."""
    from thpviz.scenario import check_eras, eras_for, parse_file, run
    from thpviz.scenario.report import run_to_json

    rel = str(thp.relative_to(ROOT))
    scn = parse_file(str(thp))
    scn.path = rel
    eras = eras_for(scn)
    check_eras(scn, eras)
    return json.loads(json.dumps([run_to_json(run(scn, e)) for e in eras]))


def canonical(data) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def load(path: Path):
    return json.loads(gzip.decompress(path.read_bytes()))


def save(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(canonical(data), compresslevel=9, mtime=0))


def first_difference(old, new, where: str = "") -> str | None:
    """The first JSON path at which two values differ, with both values."""
    if type(old) is not type(new):
        return f"{where or '/'}: {json.dumps(old)[:200]} -> {json.dumps(new)[:200]}"
    if isinstance(old, dict):
        for k in sorted(set(old) | set(new)):
            if k not in old or k not in new:
                return f"{where}/{k}: {'added' if k in new else 'removed'}"
            d = first_difference(old[k], new[k], f"{where}/{k}")
            if d:
                return d
        return None
    if isinstance(old, list):
        for i, (a, b) in enumerate(zip(old, new)):
            d = first_difference(a, b, f"{where}[{i}]")
            if d:
                return d
        if len(old) != len(new):
            return f"{where}: {len(old)} items -> {len(new)} items"
        return None
    if old != new:
        return f"{where or '/'}: {json.dumps(old)[:200]} -> {json.dumps(new)[:200]}"
    return None


def compare() -> list[str]:
    """One line per litmus file whose run differs from its history (or has
    none), and per history file without a litmus file."""
    out = []
    files = scenario_files()
    for thp in files:
        g = golden_path(thp)
        rel = thp.relative_to(ROOT)
        if not g.exists():
            out.append(f"{rel}: no run history (tests/golden.py writes it)")
            continue
        d = first_difference(load(g), current(thp))
        if d:
            out.append(f"{rel}: {d}")
    known = {golden_path(t) for t in files}
    for g in sorted(GOLDEN.rglob("*.json.gz")):
        if g not in known:
            out.append(f"{g.relative_to(ROOT)}: history of a litmus file that no longer exists")
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--check" in argv:
        diffs = compare()
        print("\n".join(diffs) or "run history matches")
        return 1 if diffs else 0
    changed = 0
    for thp in scenario_files():
        g = golden_path(thp)
        new = current(thp)
        if g.exists():
            d = first_difference(load(g), new)
            if d is None:
                continue
            print(f"changed {thp.relative_to(ROOT)}: {d}")
        else:
            print(f"new     {thp.relative_to(ROOT)}")
        save(g, new)
        changed += 1
    known = {golden_path(t) for t in scenario_files()}
    for g in sorted(GOLDEN.rglob("*.json.gz")):
        if g not in known:
            print(f"removed {g.relative_to(ROOT)}")
            g.unlink()
            changed += 1
    print(f"{changed} history file(s) written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
