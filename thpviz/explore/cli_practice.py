"""``thpviz practice -s SEED [-n N] [--era E ...] [-c]``: a random but
meaningful scenario with its decisions hidden; ``-c`` prints the answers
(as OSTEP's homework simulators do).  Imports nothing heavy until it runs."""

from __future__ import annotations

import sys


def add_parser(subparsers, name: str, help: str):
    p = subparsers.add_parser(name, help=help, description=(
        "Print a random scenario (the same for the same seed) on which the eras disagree about a write "
        "fault or some era reports a violation.  Predict the decisions, then run again with -c."))
    p.add_argument("-s", "--seed", type=int, default=0, help="puzzle number (default 0)")
    p.add_argument("-n", type=int, default=6, help="statements (default 6)")
    p.add_argument("--era", action="append", help="era id (repeatable); default: every implemented era")
    p.add_argument("-c", "--compute", action="store_true", help="show the answers")
    p.add_argument("--thp", type=int, choices=(4, 8, 16), default=8, help="subpages per huge page (default 8)")
    p.set_defaults(func=run_practice)
    return p


def run_practice(args) -> int:
    from .practice import puzzle

    try:
        p = puzzle(args.seed, args.n, args.era, args.thp)
    except (KeyError, ValueError) as e:
        print(f"thpviz practice: {e.args[0]}", file=sys.stderr)
        return 2
    print(p.question())
    if args.compute:
        print()
        print(p.answers())
    return 0
