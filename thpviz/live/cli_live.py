"""``thpviz live FILE... [--era E] [--json] [--probe] [--kernel 6.1|6.12]``:
run scenarios on the running kernel (or on a Debian kernel booted under
QEMU) and judge them like ``thpviz check``.  ``--random N`` judges N random
scenarios instead (:mod:`thpviz.live.fuzz`), step by step.  Imports nothing
heavy until it runs.

Exit status: 0 when everything passed or was skipped, 1 on a failure, 2 on
bad input (``FILE:LINE:COL: message``)."""

from __future__ import annotations

import json
import sys


def add_parser(subparsers, name: str, help: str):
    p = subparsers.add_parser(name, help=help, description=(
        "Run .thp scenarios on this machine's kernel (one real process per scenario process) "
        "and judge each against the expect line of the era that matches the kernel, with the "
        "model's verdicts beside it.  What the kernel or the machine cannot express is skipped "
        "with the reason.  docs/live-lab.md describes the method."))
    p.add_argument("paths", nargs="*", metavar="FILE", help=".thp files or folders")
    p.add_argument("--era", help="judge against this era instead of the kernel's")
    p.add_argument("--json", action="store_true", help="print JSON: the machine and every verdict")
    p.add_argument("--probe", action="store_true", help="say what this machine allows, then stop")
    p.add_argument("--kernel", choices=("6.1", "6.12"),
                   help="boot that Debian kernel under QEMU (TCG) and run the scenarios inside it")
    p.add_argument("-v", "--verbose", action="store_true", help="print every step's observations")
    p.add_argument("--timeout", type=float, default=60, help="seconds per scenario (default 60)")
    p.add_argument("--random", type=int, metavar="N",
                   help="judge N random scenarios (expect lines from the model) instead of files; any "
                        "difference from the model, in the verdict or at any step, is a failure")
    p.add_argument("--seed", type=int, default=0, help="first random scenario (default 0)")
    p.add_argument("--keep", metavar="DIR",
                   help="write the random scenarios to DIR (default: a temporary folder, kept on a failure)")
    p.set_defaults(func=run_live)
    return p


def run_live(args) -> int:
    from ..eras import ALL_IDS
    from .lab import load, scenario_files
    from .probe import probe

    if args.era and args.era not in ALL_IDS:
        print(f"thpviz live: unknown era {args.era!r} (known: {', '.join(ALL_IDS)})", file=sys.stderr)
        return 2
    if args.random is not None:
        return _run_random(args)
    files = scenario_files(args.paths)
    if not files and not args.probe:
        print("thpviz live: no .thp files given (or --probe)", file=sys.stderr)
        return 2
    from ..scenario.parser import ScenarioError

    errors = []
    for f in files:
        try:
            load(f)
        except ScenarioError as e:
            errors.extend(e.errors)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 2

    if args.kernel:
        from .qemu import run_in_guest

        prog = _progress(len(files), args)
        try:
            caps, results = run_in_guest(args.kernel, files, era=args.era, progress=prog, probe_only=args.probe)
        finally:
            if prog is not None:
                prog.bar.close()
    else:
        caps = probe()
        results = []
        if not args.probe:
            results = _run_host(files, caps, args)
    if args.probe:
        if args.json:
            json.dump(caps.to_json(), sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            print("\n".join(caps.describe()))
        if not files:
            return 0
    return report(results, caps, args)


def _run_random(args) -> int:
    """``--random N``: write the scenarios, run them, and fail any whose
    kernel run differs from the model at some step."""
    import shutil
    import tempfile
    from pathlib import Path

    from .fuzz import write_scenarios

    if args.paths:
        print("thpviz live: --random takes no files", file=sys.stderr)
        return 2
    if args.random < 1 or args.probe:
        print("thpviz live: --random needs N >= 1 (and no --probe)", file=sys.stderr)
        return 2
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="thpviz-random-"))
    try:
        files = write_scenarios(folder, args.seed, args.random)
    except OSError as e:
        print(f"thpviz live: cannot write the scenarios to {folder}: {e.strerror}", file=sys.stderr)
        return 2
    if args.kernel:
        from .qemu import run_in_guest

        prog = _progress(len(files), args)
        try:
            caps, results = run_in_guest(args.kernel, files, era=args.era, progress=prog)
        finally:
            if prog is not None:
                prog.bar.close()
    else:
        from .probe import probe

        caps = probe()
        results = _run_host(files, caps, args)
    for r in results:
        if r.status == "passed" and r.first_difference:
            r.status = "failed"
            r.mismatches.append(f"{r.path}: the kernel and the model {r.era} differ at {r.first_difference}")
    rc = report(results, caps, args)
    if rc and not args.keep:
        print(f"the scenarios are kept in {folder}", file=sys.stderr)
    elif not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return rc


class _Progress:
    """Called with each file's path as it starts; ``bar`` is the tqdm bar."""

    def __init__(self, bar):
        self.bar = bar
        self.started = False

    def __call__(self, path: str) -> None:
        if self.started:
            self.bar.update(1)
        self.started = True
        self.bar.set_description(path.rsplit("/", 1)[-1][:40])


def _progress(n: int, args) -> _Progress | None:
    """A progress bar on a terminal (tqdm) for more than one file."""
    if n < 2 or not sys.stderr.isatty() or args.json:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return _Progress(tqdm(total=n, unit="scenario", file=sys.stderr, leave=False))


def _run_host(files, caps, args):
    from .host import run_files

    prog = _progress(len(files), args)
    try:
        return run_files(files, caps, era=args.era, timeout=args.timeout, progress=prog)
    finally:
        if prog is not None:
            prog.bar.close()


def report(results, caps, args) -> int:
    from .record import results_json

    passed = sum(r.status == "passed" for r in results)
    failed = sum(r.status == "failed" for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    if args.json:
        json.dump(results_json(results, caps), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        out = []
        if results:
            era, note = results[0].era, results[0].era_note
            out.append(f"live lab on {caps.where} (Linux {caps.release}); judged as era {era}"
                       + (f" ({note})" if note else ""))
            from ..eras import ERAS
            if era not in ERAS:
                out.append(f"era {era} not implemented yet, comparing with each file's 'expect {era}' line "
                           f"(files without one are skipped; the model's verdicts appear once the era exists)")
        for r in results:
            out.extend(format_result(r, args.verbose))
        out.append(f"{passed} passed, {failed} failed, {skipped} skipped")
        print("\n".join(out))
    return 1 if failed else 0


def format_result(r, verbose: bool = False) -> list[str]:
    out = []
    if r.status == "skipped":
        seen = f" (kernel: {r.live.text()})" if r.live else ""
        out.append(f"{r.path}: skipped: {r.reason}{seen}")
    else:
        model = "; ".join(f"{e} {v.text() if hasattr(v, 'text') else '(' + v + ')'}" for e, v in r.model.items())
        out.append(f"{r.path}: {r.status}: kernel {r.live.text()}; {r.judged_against}: {r.expected.text()}"
                   f"; model: {model}")
        out.extend(f"  {m}" for m in r.mismatches)
        if r.first_difference:
            out.append(f"  kernel and model {r.era} first differ at {r.first_difference}")
        out.extend(f"  note: {n}" for n in r.notes)
    if verbose and r.run is not None:
        from .report import Namer, step_lines

        namer = Namer()
        for s in r.run.steps:
            out.extend("    " + x for x in step_lines(s, namer))
    return out
