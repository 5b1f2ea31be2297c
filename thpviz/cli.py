"""The ``thpviz`` command.

Exit status: 0 success; 1 a scenario's expectation or assertion failed
(``check``); 2 bad input (``FILE:LINE:COL: message``; nothing ran); 3 an
internal inconsistency of the model (a thpviz bug).

Heavy modules are imported inside the commands so ``thpviz --help`` stays
fast and never imports numpy, matplotlib, graphviz or ipywidgets.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def _scenario_files(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                out.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(".thp"))
        else:
            out.append(p)
    return out


def _load(paths, eras_requested=None):
    """Parse every file and check its eras; on any error print them all and
    return None (nothing runs)."""
    from .scenario import ScenarioError, check_eras, eras_for, parse_file

    loaded, errors = [], []
    for path in paths:
        try:
            scn = parse_file(path)
            eras = eras_for(scn, eras_requested)
            check_eras(scn, eras)
        except ScenarioError as e:
            errors.extend(e.errors)
            continue
        except KeyError as e:
            errors.append(f"{path}:0:0: {e.args[0]}")
            continue
        loaded.append((scn, eras))
    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        return None
    return loaded


def cmd_run(args) -> int:
    from .model.events import ThpvizDefect
    from .scenario import run
    from .scenario.report import format_run, run_to_json

    if args.era:
        from .eras import get

        for e in args.era:
            try:
                get(e)
            except KeyError as err:
                print(f"thpviz: {err.args[0]}", file=sys.stderr)
                return 2
    loaded = _load([args.file], args.era)
    if loaded is None:
        return 2
    scn, eras = loaded[0]
    out = []
    try:
        runs = [run(scn, era) for era in eras]
    except ThpvizDefect as e:
        print(f"thpviz: internal inconsistency (a thpviz bug): {e}", file=sys.stderr)
        return 3
    if args.json:
        json.dump([run_to_json(r) for r in runs], sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    for r in runs:
        out.append(format_run(r, hide=args.hide))
    print("\n\n".join(out))
    return 0


def cmd_check(args) -> int:
    from .model.events import ThpvizDefect
    from .scenario import run

    files = _scenario_files(args.paths)
    if not files:
        print("thpviz check: no .thp files found", file=sys.stderr)
        return 2
    loaded = _load(files)
    if loaded is None:
        return 2
    passed = failed = 0
    defect = False
    for scn, eras in loaded:
        for era in eras:
            try:
                r = run(scn, era)
            except ThpvizDefect as e:
                print(f"{scn.path}: era {era.id}: internal inconsistency (a thpviz bug): {e}")
                failed += 1
                defect = True
                continue
            bad = r.mismatches()
            if bad:
                failed += 1
                for line in bad:
                    print(line)
            else:
                passed += 1
                if args.verbose:
                    print(f"{scn.path}: era {era.id}: ok ({r.last_write}; "
                          f"{' '.join(sorted(r.violations)) or 'clean'})")
    print(f"{passed} passed, {failed} failed")
    if defect:
        return 3
    return 1 if failed else 0


def cmd_eras(args) -> int:
    from .eras import ERAS, PLANNED

    rows = [(e.id, "yes", e.title, ", ".join(c for c, _ in e.commits)) for e in ERAS.values()]
    rows += [(k, "planned", v[0], v[1]) for k, v in PLANNED.items()]
    if args.json:
        json.dump([{"id": r[0], "implemented": r[1] == "yes", "meaning": r[2], "commits": r[3]} for r in rows],
                  sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    w = max(len(r[0]) for r in rows)
    print(f"{'era':<{w}}  {'status':<7}  meaning  [commits]")
    for r in rows:
        print(f"{r[0]:<{w}}  {r[1]:<7}  {r[2]}  [{r[3]}]")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="thpviz",
        description="Model THP page state across the kernel eras of the 2016 vfio/THP thread.",
    )
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="run a scenario and print each step")
    r.add_argument("file")
    r.add_argument("--era", action="append", help="era id (repeatable); default: the eras the file names")
    r.add_argument("--json", action="store_true", help="print the JSON described in DESIGN.md")
    r.add_argument("--hide", action="store_true", help="print ? for decisions and violations (predict first)")
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("check", help="check every expect/assert in files or folders")
    c.add_argument("paths", nargs="+")
    c.add_argument("-v", "--verbose", action="store_true", help="also print a line per passing run")
    c.set_defaults(func=cmd_check)

    e = sub.add_parser("eras", help="the era table")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_eras)

    from importlib import import_module

    for name, module, help_ in SUBCOMMANDS:
        try:
            mod = import_module(module)
        except ImportError:
            continue
        mod.add_parser(sub, name, help_)
    return p


#: subcommands that live next to what they drive: (name, module with an
#: ``add_parser(sub, name, help)``, help).  The modules must import nothing
#: heavy at module level, so ``thpviz --help`` stays fast.
SUBCOMMANDS = [
    ("render", "thpviz.render.cli_render", "draw one step as SVG/PNG/DOT"),
    ("storyboard", "thpviz.render.cli_storyboard", "write a static HTML storyboard"),
    ("cowc", "thpviz.cowc", "replay the kernel's cow.c selftest families in the model, per era"),
    ("live", "thpviz.live.cli_live", "run scenarios on this kernel (or a QEMU guest) and judge them"),
    ("doctor", "thpviz.doctor", "check this machine is ready for the workshop"),
]


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
