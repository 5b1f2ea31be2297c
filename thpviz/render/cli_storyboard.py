"""``thpviz storyboard FILE --era E [--era E2 ...] -o out.html``: every step
under each era as one self-contained HTML fragment (``--page``: a whole
HTML document).  Imports nothing heavy until it runs."""

from __future__ import annotations

import sys


def add_parser(subparsers, name: str, help: str):
    p = subparsers.add_parser(name, help=help, description=(
        "Write a static storyboard: pre-rendered SVG frames for every step and era, with a step slider, "
        "previous/next buttons and era tabs (our own few lines of JavaScript; no network access)."))
    p.add_argument("file")
    p.add_argument("--era", action="append", help="era id (repeatable); default: the eras the file names")
    p.add_argument("-o", "--output", default="-", help="output .html file; - for stdout")
    p.add_argument("--page", action="store_true", help="write a whole HTML document, not a fragment")
    p.add_argument("--title", help="heading (default: the scenario's title)")
    p.add_argument("--start", default="1",
                   help="the opening step: a number, 'decisive' (the last write fault) or a statement's first words")
    p.add_argument("--show-verdicts", action="store_true",
                   help="print each era's verdict under the tabs (default: behind a reveal control)")
    p.set_defaults(func=run_storyboard)
    return p


def run_storyboard(args) -> int:
    from ..eras import get
    from ..model.events import ThpvizDefect
    from ..scenario import ScenarioError, check_eras, eras_for, parse_file
    from .graphviz_run import GraphvizMissing
    from .storyboard import storyboard_html, storyboard_page

    try:
        eras = [get(e) for e in args.era] if args.era else None
    except KeyError as err:
        print(f"thpviz: {err.args[0]}", file=sys.stderr)
        return 2
    try:
        scn = parse_file(args.file)
        eras = eras or eras_for(scn)
        check_eras(scn, eras)
    except ScenarioError as err:
        print("\n".join(err.errors), file=sys.stderr)
        return 2
    start = int(args.start) if args.start.isdigit() else args.start
    try:
        html = storyboard_html(args.file, eras, title=args.title, start=start, reveal=not args.show_verdicts)
    except ValueError as err:  # a --start that names no statement
        print(f"thpviz storyboard: {err}", file=sys.stderr)
        return 2
    except GraphvizMissing as err:
        print(f"thpviz storyboard: {err}", file=sys.stderr)
        return 2
    except ThpvizDefect as err:
        print(f"thpviz: internal inconsistency (a thpviz bug): {err}", file=sys.stderr)
        return 3
    if args.page:
        html = storyboard_page([html], title=args.title or scn.title or args.file)
    if args.output == "-":
        sys.stdout.write(html)
    else:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(html)
    return 0
