"""``thpviz render FILE --era E [--step K] -o out.svg|png|dot``: draw one
step of a scenario.  Imports nothing heavy until it runs."""

from __future__ import annotations

import sys


def add_parser(subparsers, name: str, help: str):
    p = subparsers.add_parser(name, help=help, description=(
        "Draw the state after statement K (0: before the first; default: the last) of a scenario "
        "under one era, as SVG, PNG or DOT text (chosen by the -o extension or --format)."))
    p.add_argument("file")
    p.add_argument("--era", required=True, help="era id")
    p.add_argument("--step", type=int, default=None, help="statements executed (0..N; default N)")
    p.add_argument("-o", "--output", default="-", help="output file (.svg, .png, .pdf, .dot); - for stdout")
    p.add_argument("--format", choices=("svg", "png", "pdf", "dot"), help="output format (default: from -o)")
    p.add_argument("--no-legend", action="store_true", help="leave the legend out")
    p.add_argument("--layout", choices=("wide", "narrow"), default="wide",
                   help="wide: left to right (default); narrow: one column, top to bottom")
    p.set_defaults(func=run_render)
    return p


def run_render(args) -> int:
    from ..eras import get
    from ..model.events import ThpvizDefect
    from ..scenario import ScenarioError, check_eras, parse_file, run
    from .diagrams import Diagram
    from .dot import run_dot
    from .graphviz_run import DotError, GraphvizMissing, LayoutTimeout

    try:
        era = get(args.era)
    except KeyError as err:
        print(f"thpviz: {err.args[0]}", file=sys.stderr)
        return 2
    try:
        scn = parse_file(args.file)
        check_eras(scn, [era])
    except ScenarioError as err:
        print("\n".join(err.errors), file=sys.stderr)
        return 2
    n = len(scn.statements)
    k = n if args.step is None else args.step
    if not 0 <= k <= n:
        print(f"thpviz render: --step must be between 0 and {n}", file=sys.stderr)
        return 2
    fmt = args.format or (args.output.rsplit(".", 1)[-1].lower() if "." in args.output else "svg")
    if fmt not in ("svg", "png", "pdf", "dot"):
        print(f"thpviz render: unknown output format {fmt!r} (svg, png, pdf, dot)", file=sys.stderr)
        return 2
    try:
        r = run(scn, era, keep_snapshots=True)
    except ThpvizDefect as err:
        print(f"thpviz: internal inconsistency (a thpviz bug): {err}", file=sys.stderr)
        return 3
    title = f"{scn.title or scn.path} — era {era.id}, step {k}/{n}"
    d = Diagram(run_dot(r, k, title=title, legend=not args.no_legend, layout=args.layout))
    try:
        data = d.render(fmt)
    except (GraphvizMissing, LayoutTimeout, DotError) as err:
        print(f"thpviz render: {err}", file=sys.stderr)
        return 2
    if args.output == "-":
        sys.stdout.buffer.write(data)
    else:
        with open(args.output, "wb") as f:
            f.write(data)
    return 0
