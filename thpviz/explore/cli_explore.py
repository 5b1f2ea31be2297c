"""``thpviz explore``: bounded exhaustive search for the shortest trace that
shows a violation under an era (``--find``), that two eras decide
differently (``--differ``), or the report that none exists up to the bound
(``--prove``).  Imports nothing heavy until it runs.

Exit status: 0 done; 1 ``--prove`` failed (a trace exists, or the time limit
stopped the search before the bound); 2 bad arguments; 3 the engine reported
an internal inconsistency on some trace (printed; a thpviz bug).
"""

from __future__ import annotations

import os
import sys

from .ops import ALL_OPS, DEFAULT_OPS, GOALS

#: the default bound: every statement sequence of at most this many
#: statements over the default alphabet.  Chosen so that ``--prove`` for 4.6 /
#: rmap-broken completes in well under a minute on a 2-core machine (about
#: 20 s there; depth 7 takes several minutes) while still covering the
#: 6-statement rmap breakage the explorer finds under andrea-v1.
DEFAULT_DEPTH = 6


def add_parser(subparsers, name: str, help: str):
    p = subparsers.add_parser(name, help=help, description=(
        "Breadth-first search over statement sequences from an empty world, so the first trace found is a "
        "shortest one; equivalent states are visited once.  The bound is the depth together with the "
        "alphabet (--thp, --procs, --regions, --extents, --pins, --ops, --cuts).  See docs/explorer.md."))
    g = p.add_argument_group("goal (default: --find all under every era)")
    g.add_argument("--era", action="append", help="era id (repeatable); default: every implemented era")
    g.add_argument("--find", action="append", metavar="VIOLATION",
                   help=f"violation to find: {', '.join(GOALS)} or all (repeatable, or comma-separated)")
    g.add_argument("--differ", nargs=2, metavar=("ERA1", "ERA2"),
                   help="find a shortest trace on which the two eras decide or violate differently")
    g.add_argument("--prove", action="store_true",
                   help="claim that no such trace exists up to the bound; exit 1 if one does")
    g.add_argument("--count-refs", action="store_true",
                   help="pin-lost: also count a lost vmsplice (FOLL_GET) reference, not only pins")
    b = p.add_argument_group("bound")
    b.add_argument("--depth", type=int, default=DEFAULT_DEPTH, help=f"statements per trace (default {DEFAULT_DEPTH})")
    b.add_argument("--thp", type=int, choices=(4, 8, 16), default=8, help="subpages per huge page (default 8)")
    b.add_argument("--procs", type=int, default=2, help="processes alive at once, P included (default 2)")
    b.add_argument("--regions", type=int, default=1, help="regions (mmap and mremap targets; default 1)")
    b.add_argument("--extents", type=int, default=1, help="huge pages per region (default 1)")
    b.add_argument("--pins", type=int, default=1, help="pins and vmsplice references held at once (default 1)")
    b.add_argument("--ops", help=f"comma-separated operations from {', '.join(ALL_OPS)}, or all "
                                 f"(default: {','.join(DEFAULT_OPS)})")
    b.add_argument("--cuts", help="comma-separated cut points inside a huge page (0 is always one; "
                                  "default: 0 and the middle); ranges run between cut points")
    b.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="stop each search after this many seconds")
    o = p.add_argument_group("output")
    o.add_argument("-o", "--output", help="write each trace as a .thp file: FILE for one trace, else "
                                          "FILE-ERA-GOAL.thp (or DIR/ERA-GOAL.thp if FILE is a directory)")
    o.add_argument("--json", action="store_true", help="print the results as JSON")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=run_explore)
    return p


def _alphabet(args):
    from .alphabet import Alphabet

    if args.ops is None:
        ops = DEFAULT_OPS
    elif args.ops.strip() == "all":
        ops = ALL_OPS
    else:
        ops = tuple(o.strip() for o in args.ops.split(",") if o.strip())
        if "mmap" not in ops:
            ops = ("mmap",) + ops
    cuts = None
    if args.cuts:
        try:
            cuts = tuple(int(c) for c in args.cuts.split(",") if c.strip())
        except ValueError:
            raise ValueError(f"--cuts takes integers, not {args.cuts!r}") from None
    return Alphabet(thp=args.thp, procs=args.procs, regions=args.regions, extents=args.extents,
                    pins=args.pins, ops=ops, cuts=cuts)


def command_line(args) -> str:
    """The command, as a reader would type it again."""
    out = ["thpviz explore"]
    if args.differ:
        out.append("--differ " + " ".join(args.differ))
    for e in args.era or ():
        out.append(f"--era {e}")
    for f in args.find or ():
        out.append(f"--find {f}")
    if args.prove:
        out.append("--prove")
    if args.count_refs:
        out.append("--count-refs")
    defaults = {"depth": DEFAULT_DEPTH, "thp": 8, "procs": 2, "regions": 1, "extents": 1, "pins": 1}
    for k, d in defaults.items():
        if getattr(args, k) != d:
            out.append(f"--{k} {getattr(args, k)}")
    if args.ops:
        out.append(f"--ops {args.ops}")
    if args.cuts:
        out.append(f"--cuts {args.cuts}")
    return " ".join(out)


def _goals(args) -> list[str]:
    if not args.find:
        return list(GOALS)
    out = []
    for f in args.find:
        for g in f.split(","):
            g = g.strip()
            if g == "all":
                out += [x for x in GOALS if x not in out]
            elif g not in GOALS:
                raise ValueError(f"unknown violation {g!r} (known: {', '.join(GOALS)}, all)")
            elif g not in out:
                out.append(g)
    return out


class _Progress:
    """A tqdm bar per search depth: states visited, states per second, time
    left (against --time-limit)."""

    def __init__(self, label: str, time_limit):
        from tqdm import tqdm

        self.tqdm = tqdm
        self.label = label
        self.limit = time_limit
        self.bar = None
        self.depth = None

    def __call__(self, depth, done, total, res):
        if depth != self.depth:
            if self.bar is not None:
                self.bar.close()
            self.depth = depth
            self.bar = self.tqdm(total=total, desc=f"{self.label} depth {depth}/{res.depth}", unit="node",
                                 leave=False, dynamic_ncols=True, file=sys.stderr)
        rate = res.states / res.seconds if res.seconds > 0 else 0.0
        post = {"states": res.states, "states/s": f"{rate:.0f}"}
        if self.limit:
            post["left"] = f"{max(0.0, self.limit - res.seconds):.0f}s"
        self.bar.set_postfix(post, refresh=False)
        self.bar.n = done
        self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _have_tqdm() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:  # the engine alone needs only numpy; progress is optional
        return False
    return True


def run_explore(args) -> int:
    from ..eras import ERAS, get
    from .report import differ_text, found_text, prove_text, results_json, table_text
    from .search import search

    try:
        alphabet = _alphabet(args)
        goals = _goals(args)
        if args.depth < 1:
            raise ValueError("--depth must be at least 1")
        if args.differ:
            if args.find:
                raise ValueError("--differ and --find do not go together")
            eras = [get(e) for e in args.differ]
        else:
            eras = [get(e) for e in args.era] if args.era else list(ERAS.values())
    except (KeyError, ValueError) as e:
        print(f"thpviz explore: {e.args[0]}", file=sys.stderr)
        return 2
    show = not args.quiet and not args.json and sys.stdout.isatty() and _have_tqdm()
    cmd = command_line(args)
    results = []
    if args.differ:
        prog = _Progress(f"{eras[0].id} vs {eras[1].id}", args.time_limit) if show else None
        results.append(search(eras, alphabet, args.depth, differ=True, time_limit=args.time_limit, progress=prog))
        if prog:
            prog.close()
    else:
        for era in eras:
            prog = _Progress(era.id, args.time_limit) if show else None
            results.append(search([era], alphabet, args.depth, goals=goals, time_limit=args.time_limit,
                                  progress=prog, count_refs=args.count_refs))
            if prog:
                prog.close()
    written = _write(args, results, cmd) if args.output else {}
    if args.json:
        import json

        json.dump(results_json(results, cmd, written), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(f"{cmd}\nbound: at most {args.depth} statements; alphabet: {alphabet.describe()}\n")
        if args.differ:
            print(differ_text(results[0], written))
        else:
            print(table_text(results, goals))
            print()
            print(prove_text(results, written) if args.prove else found_text(results, written))
    defects = [d for r in results for d in r.defects]
    if defects:
        print("\ninternal inconsistencies of the engine (thpviz bugs) met on the way:", file=sys.stderr)
        for trace, msg in defects[:5]:
            print(f"  {msg}\n    after: {'; '.join(trace)}", file=sys.stderr)
        return 3
    if args.prove and any(r.findings or not r.reached_bound for r in results):
        return 1
    return 0


def _write(args, results, cmd) -> dict:
    """Write every finding as a .thp file; returns {(era ids, goal): path}."""
    from .report import finding_scenario

    items = [(r, f) for r in results for f in r.findings.values()]
    out = {}
    target = args.output
    is_dir = os.path.isdir(target) or target.endswith(os.sep)
    for r, f in items:
        tag = "-".join(f.eras) + "-" + f.goal
        if is_dir:
            path = os.path.join(target, f"{tag}.thp")
        elif len(items) == 1:
            path = target
        else:
            stem, ext = os.path.splitext(target)
            path = f"{stem}-{tag}{ext or '.thp'}"
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(finding_scenario(r, f, cmd))
        out[(f.eras, f.goal)] = path
    return out
