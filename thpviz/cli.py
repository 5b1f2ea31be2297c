"""The ``thpviz`` command.

Exit status (every subcommand):

* 0 success;
* 1 a scenario's expectation or assertion failed (``check``);
* 2 bad input or output: a scenario error (``FILE:LINE:COL: message``; nothing
  ran), an unknown era, an unreadable file or folder, an output that cannot
  be written (or that would overwrite an input), graphviz missing or failing;
* 3 a thpviz bug: an internal inconsistency of the model, or any unexpected
  exception (one line on stderr; ``THPVIZ_DEBUG=1`` adds the traceback);
* 130 interrupted (Ctrl-C); 141 the reader of the output went away (a closed
  pipe, as in ``thpviz eras --json | head -1``).

No path prints a Python traceback unless ``THPVIZ_DEBUG`` is set.

Every subcommand loads its scenarios with :func:`load` (or :func:`load_one`)
and writes a ``-o`` file with :func:`write_output`; :func:`main` turns what
they raise into a message and an exit status.  Heavy modules are imported
inside the commands so ``thpviz --help`` stays fast and never imports numpy,
matplotlib, graphviz or ipywidgets.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import stat
import sys
import tempfile

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_BUG = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_PIPE = 130, 141


class CliError(Exception):
    """Bad input or output: every message is printed, the exit status is 2."""

    def __init__(self, *messages: str):
        super().__init__("\n".join(messages))
        self.messages = list(messages)


# ------------------------------------------------------------------ input
def scenario_files(paths: list[str]) -> tuple[list[str], list[str]]:
    """(files, errors): the ``.thp`` files named or found (recursively, in
    name order) in ``paths``, and one error per folder that could not be
    read.  Folders are read without following a symbolic link back into a
    folder being walked (a link loop is an error); an unreadable folder is an
    error, never skipped.  Only names ending in ``.thp`` inside folders are
    taken, and :func:`thpviz.scenario.parser.read_file` opens only regular
    files, so a FIFO or a device is never waited on."""
    out: list[str] = []
    errors: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            _walk(p, out, errors)
        else:
            out.append(p)
    return out, errors


def _walk(top: str, out: list[str], errors: list[str]) -> None:
    # an explicit stack (no recursion limit); each entry carries the
    # (device, inode) of the folders above it, to detect a link loop
    stack: list[tuple[str, frozenset]] = [(top, frozenset())]
    while stack:
        folder, above = stack.pop()
        try:
            st = os.stat(folder)
            key = (st.st_dev, st.st_ino)
            if key in above:
                errors.append(f"{folder}: a symbolic link loop (this folder contains itself)")
                continue
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            errors.append(f"{folder}: cannot read folder: {e.strerror}")
            continue
        subfolders = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                subfolders.append(entry.path)
            elif entry.name.endswith(".thp"):
                out.append(entry.path)
        stack.extend((f, above | {key}) for f in reversed(subfolders))


def eras_named(era_ids) -> list | None:
    """Era objects for ``--era`` ids (None if none given); CliError for an
    unknown or not yet implemented one."""
    if not era_ids:
        return None
    from .eras import get

    out = []
    for e in era_ids:
        try:
            out.append(get(e))
        except KeyError as err:
            raise CliError(f"thpviz: {err.args[0]}") from None
    return out


def load(paths: list[str], era_ids=None) -> list[tuple]:
    """Parse every file and choose and check its eras (``era_ids``, else the
    eras it names, else all).  Raises CliError with every error of every
    file: nothing runs unless everything loads."""
    from .scenario import ScenarioError, check_eras, eras_for, parse_file

    chosen = eras_named(era_ids)
    loaded, errors = [], []
    for path in paths:
        try:
            scn = parse_file(path)
            eras = chosen or eras_for(scn)
            check_eras(scn, eras)
        except ScenarioError as e:
            errors.extend(e.errors)
            continue
        loaded.append((scn, eras))
    if errors:
        raise CliError(*errors)
    return loaded


def load_one(path: str, era_ids=None) -> tuple:
    """(Scenario, eras) of one file; see :func:`load`."""
    return load([path], era_ids)[0]


# ------------------------------------------------------------------ output
def write_output(path: str, data: bytes | str, inputs=()) -> None:
    """Write ``data`` to ``path`` (``-``: standard output).  Never overwrites
    one of ``inputs``; a regular file is written to a temporary file beside
    it and renamed into place, so a failure (a full disk, no permission)
    leaves what was there untouched.  Raises CliError."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if path == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()
        return
    for inp in inputs:
        try:
            same = os.path.samefile(path, inp)
        except OSError:
            same = os.path.abspath(path) == os.path.abspath(inp)
        if same:
            raise CliError(f"thpviz: refusing to write {path}: it is the input {inp}")
    try:
        st = os.stat(path)
    except OSError:
        st = None
    try:
        if st is not None and not stat.S_ISREG(st.st_mode):
            if stat.S_ISDIR(st.st_mode):
                raise CliError(f"thpviz: cannot write {path}: it is a folder")
            with open(path, "wb") as f:  # a device or a pipe the user named
                f.write(raw)
            return
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
            if st is not None:
                os.chmod(tmp, stat.S_IMODE(st.st_mode))
            else:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError as e:
        raise CliError(f"thpviz: cannot write {path}: {e.strerror or e}") from None


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=1)
    sys.stdout.write("\n")


# ------------------------------------------------------------------ commands
def cmd_run(args) -> int:
    from .scenario import run
    from .scenario.report import format_run, run_to_json

    scn, eras = load_one(args.file, args.era)
    runs = [run(scn, era) for era in eras]
    if args.json:
        print_json([run_to_json(r) for r in runs])
        return EXIT_OK
    print("\n\n".join(format_run(r, hide=args.hide) for r in runs))
    return EXIT_OK


def cmd_check(args) -> int:
    from .model.events import ThpvizDefect
    from .scenario import run

    files, errors = scenario_files(args.paths)
    if not files and not errors:
        raise CliError("thpviz check: no .thp files found")
    try:
        loaded = load(files)
    except CliError as e:
        errors += e.messages
    if errors:
        raise CliError(*errors)
    passed = failed = 0
    defect = False
    for scn, eras in loaded:
        for era in eras:
            try:
                r = run(scn, era)
            except ThpvizDefect as e:
                print(f"{scn.path}: era {era.id}: internal inconsistency of the model (this is a thpviz bug): {e}")
                failed += 1
                defect = True
                continue
            except (KeyboardInterrupt, MemoryError):
                raise
            except Exception as e:  # noqa: BLE001 - reported, the other files still run
                print(f"{scn.path}: era {era.id}: internal error (this is a thpviz bug): {_one_line(e)}")
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
        return EXIT_BUG
    return EXIT_FAILED if failed else EXIT_OK


def cmd_eras(args) -> int:
    from .eras import ERAS, PLANNED

    rows = [(e.id, "yes", e.title, ", ".join(c for c, _ in e.commits)) for e in ERAS.values()]
    rows += [(k, "planned", v[0], v[1]) for k, v in PLANNED.items()]
    if args.json:
        print_json([{"id": r[0], "implemented": r[1] == "yes", "meaning": r[2], "commits": r[3]} for r in rows])
        return EXIT_OK
    w = max(len(r[0]) for r in rows)
    print(f"{'era':<{w}}  {'status':<7}  meaning  [commits]")
    for r in rows:
        print(f"{r[0]:<{w}}  {r[1]:<7}  {r[2]}  [{r[3]}]")
    return EXIT_OK


#: subcommands that live next to what they drive: (name, module with an
#: ``add_parser(sub, name, help)``, help).  The modules must import nothing
#: heavy at module level, so ``thpviz --help`` stays fast.
SUBCOMMANDS = [
    ("render", "thpviz.render.cli_render", "draw one step as SVG/PNG/DOT"),
    ("storyboard", "thpviz.render.cli_storyboard", "write a static HTML storyboard"),
    ("cowc", "thpviz.cowc", "replay the kernel's cow.c selftest families in the model, per era"),
    ("live", "thpviz.live.cli_live", "run scenarios on this kernel (or a QEMU guest) and judge them"),
    ("doctor", "thpviz.doctor", "check this machine is ready for the workshop"),
    ("explore", "thpviz.explore.cli_explore", "search for the shortest trace that shows a violation"),
    ("practice", "thpviz.explore.cli_practice", "a random puzzle: predict the decisions (-c shows them)"),
]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="thpviz",
        description="Model THP page state across the kernel eras of the 2016 vfio/THP thread.",
        epilog="exit status: 0 ok, 1 a check failed, 2 bad input or output, 3 a thpviz bug, "
               "130 interrupted, 141 output pipe closed",
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


# ------------------------------------------------------------------ errors
def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or "(no message)"
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(e).__name__}: {text}"


def _say(msg: str) -> None:
    try:
        print(msg, file=sys.stderr)
        sys.stderr.flush()
    except OSError:
        pass


def _quiet_stdout() -> None:
    """After the reader of stdout went away: point stdout at /dev/null so
    the interpreter's final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


#: errno values that mean "the output could not be written", not a bug
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS, errno.EACCES, errno.EPERM}


def exit_status(exc: BaseException) -> int:
    """Print the one-line message for ``exc`` and return the exit status
    (the single place where an exception becomes an exit status)."""
    from .scenario import ScenarioError

    if isinstance(exc, CliError):
        for m in exc.messages:
            _say(m)
        return EXIT_BAD_INPUT
    if isinstance(exc, ScenarioError):
        for m in exc.errors:
            _say(m)
        return EXIT_BAD_INPUT
    if isinstance(exc, KeyboardInterrupt):
        _say("thpviz: interrupted")
        return EXIT_INTERRUPTED
    if isinstance(exc, BrokenPipeError):
        _quiet_stdout()
        _say("thpviz: the output pipe was closed; output cut short")
        return EXIT_PIPE
    if isinstance(exc, OSError) and exc.errno in _OUTPUT_ERRNOS:
        _quiet_stdout()
        _say(f"thpviz: cannot write the output: {exc.strerror}")
        return EXIT_BAD_INPUT
    from .render.graphviz_run import GraphvizError

    if isinstance(exc, GraphvizError):
        _say(f"thpviz: {' '.join(str(exc).split())[:500]}")
        return EXIT_BAD_INPUT
    from .model.events import ThpvizDefect

    if isinstance(exc, ThpvizDefect):
        _say(f"thpviz: internal inconsistency of the model (this is a thpviz bug): {exc}")
    else:
        _say(f"thpviz: internal error (this is a thpviz bug; please report it with the command and its input): "
             f"{_one_line(exc)}")
    if os.environ.get("THPVIZ_DEBUG"):
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    return EXIT_BUG


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        code = args.func(args)
        sys.stdout.flush()
        return code
    except SystemExit:
        raise  # argparse: usage errors exit 2, --help exits 0
    except BaseException as exc:  # noqa: BLE001 - every exception becomes an exit status
        return exit_status(exc)


if __name__ == "__main__":  # pragma: no cover
    # ``python -m thpviz.cli``: run the imported module's main, so that the
    # subcommands (which import thpviz.cli) share its exception classes
    from thpviz.cli import main as _main

    sys.exit(_main())
