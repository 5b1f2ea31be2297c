"""``thpviz render FILE --era E [--step K] -o out.svg|png|dot``: draw one
step of a scenario.  Imports nothing heavy until it runs."""

from __future__ import annotations


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
    from ..cli import CliError, load_one, write_output
    from ..scenario import run
    from .diagrams import Diagram
    from .dot import run_dot

    scn, (era,) = load_one(args.file, [args.era])
    n = len(scn.statements)
    k = n if args.step is None else args.step
    if not 0 <= k <= n:
        raise CliError(f"thpviz render: --step must be between 0 and {n}")
    fmt = args.format or (args.output.rsplit(".", 1)[-1].lower() if "." in args.output else "svg")
    if fmt not in ("svg", "png", "pdf", "dot"):
        raise CliError(f"thpviz render: unknown output format {fmt!r} (svg, png, pdf, dot)")
    r = run(scn, era, keep_snapshots=True)
    title = f"{scn.title or scn.path} — era {era.id}, step {k}/{n}"
    d = Diagram(run_dot(r, k, title=title, legend=not args.no_legend, layout=args.layout))
    write_output(args.output, d.render(fmt), inputs=[args.file])
    return 0
