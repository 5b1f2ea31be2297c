"""``thpviz storyboard FILE --era E [--era E2 ...] -o out.html``: every step
under each era as one self-contained HTML fragment (``--page``: a whole
HTML document).  Imports nothing heavy until it runs."""

from __future__ import annotations


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
    from ..cli import CliError, load_one, write_output
    from ..scenario.parser import header_value
    from .storyboard import storyboard_html, storyboard_page

    if args.title is not None:
        try:
            args.title = header_value("title", args.title)
        except ValueError as err:
            raise CliError(f"thpviz storyboard: --title: {err}") from None
    scn, eras = load_one(args.file, args.era)
    start = int(args.start) if args.start.isdigit() else args.start
    try:
        html = storyboard_html(scn, eras, title=args.title, start=start, reveal=not args.show_verdicts)
    except ValueError as err:  # a --start that names no statement
        raise CliError(f"thpviz storyboard: --start: {err}") from None
    if args.page:
        html = storyboard_page([html], title=args.title or scn.title or args.file)
    write_output(args.output, html, inputs=[args.file])
    return 0
