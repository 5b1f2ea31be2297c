"""``thpviz doctor``: is this machine ready for the workshop?

One command an attendee runs before the session.  It checks, in order:

1. **Python** (3.10 or newer) and the engine itself: a four-statement
   scenario runs under every era thpviz implements;
2. **Graphviz**: the ``dot`` program is found and draws a diagram (every
   diagram and storyboard needs it);
3. **widgets**: ipywidgets 8, a Jupyter kernel (ipykernel), and the
   JupyterLab side of the widgets, so the notebooks' players and sandbox show
   up; jupytext (the notebooks are MyST markdown) and matplotlib;
4. **the live lab** (optional): if ``thpviz.live`` is installed, its
   ``probe()`` of the running kernel (Linux, root, THP mode, whether PFNs are
   visible, io_uring) and every reason it gives for skipping a part;
   otherwise it says the lab is not installed.

Each line says ``ok``, ``warn`` (works, with a limit) or ``FAIL`` and, when
not ok, what to do.  Exit status: 0 when nothing failed, 1 otherwise.  Every
check catches its own errors, so the doctor itself never ends in a
traceback.  Nothing heavy is imported until the command runs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

OK, WARN, FAIL = "ok", "warn", "FAIL"

_TINY = """thp: 8
P: mmap A
P: write A
P: pin A[5] rw as dma
P: write A[5]
"""


@dataclass
class Check:
    area: str
    status: str
    text: str
    fix: str = ""


def check_python() -> list[Check]:
    v = sys.version_info
    text = f"Python {v.major}.{v.minor}.{v.micro} ({sys.executable})"
    if v < (3, 10):
        return [Check("python", FAIL, text, "install Python 3.10 or newer (Debian/Ubuntu: apt-get install python3)")]
    out = [Check("python", OK, text)]
    try:
        from .eras import ERAS
        from .scenario import parse_text, run

        scn = parse_text(_TINY, "<doctor>")
        verdicts = {e: run(scn, era).last_write for e, era in ERAS.items()}
        out.append(Check("engine", OK, f"thpviz runs a scenario under all {len(verdicts)} eras "
                                       f"({', '.join(ERAS)})"))
    except Exception as err:  # noqa: BLE001 - report, never crash
        out.append(Check("engine", FAIL, f"the engine failed: {type(err).__name__}: {err}",
                         "reinstall thpviz from the repository: pip install -e ."))
    return out


def check_graphviz() -> list[Check]:
    try:
        from .render import graphviz_run
    except Exception as err:  # noqa: BLE001
        return [Check("graphviz", FAIL, f"cannot load the renderer: {err}", "pip install -e '.[viz]'")]
    try:
        exe = graphviz_run.dot_binary()
    except graphviz_run.GraphvizMissing as err:
        return [Check("graphviz", FAIL, f"no dot program: {err}",
                      "Debian/Ubuntu: sudo apt-get install graphviz; macOS: brew install graphviz; "
                      "conda: conda install graphviz")]
    except Exception as err:  # noqa: BLE001
        return [Check("graphviz", FAIL, f"dot could not be checked: {err}", "set THPVIZ_DOT to a working dot")]
    try:
        svg = graphviz_run.render_svg('digraph d { a -> b }', timeout=20)
        if "<svg" not in svg:
            raise RuntimeError("no SVG in dot's output")
    except Exception as err:  # noqa: BLE001
        return [Check("graphviz", FAIL, f"{exe} does not draw: {err}",
                      "reinstall graphviz (apt-get install --reinstall graphviz)")]
    return [Check("graphviz", OK, f"dot draws diagrams ({exe})")]


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001
        return None


def check_widgets() -> list[Check]:
    out = []
    ipw = _version("ipywidgets")
    if ipw is None:
        out.append(Check("widgets", FAIL, "ipywidgets is not installed", "pip install 'ipywidgets>=8,<9'"))
    elif not ipw.startswith("8."):
        out.append(Check("widgets", FAIL, f"ipywidgets {ipw}; the players need version 8",
                         "pip install 'ipywidgets>=8,<9'"))
    else:
        try:
            from .widgets import Sandbox

            sb = Sandbox("4.6", thp=8)
            ok = sb.add("P: mmap A") and sb.add("P: write A")
            out.append(Check("widgets", OK if ok else FAIL, f"ipywidgets {ipw}; a Sandbox builds and runs a scenario"
                             if ok else f"ipywidgets {ipw}, but the Sandbox refused a statement: {sb.message.value}"))
        except Exception as err:  # noqa: BLE001
            out.append(Check("widgets", FAIL, f"the widgets do not load: {type(err).__name__}: {err}",
                             "pip install -e '.[viz]'"))
    for dist, need, fix in (
        ("ipykernel", "a Python kernel for the notebooks", "pip install ipykernel"),
        ("jupyterlab_widgets", "the widgets' JupyterLab extension", "pip install 'jupyterlab_widgets>=3'"),
        ("jupytext", "opening the MyST markdown notebooks as notebooks", "pip install jupytext"),
        ("matplotlib", "the cost figures", "pip install matplotlib"),
    ):
        v = _version(dist)
        if v is None:
            status = WARN if dist in ("jupyterlab_widgets", "matplotlib") else FAIL
            out.append(Check("widgets", status, f"{dist} is missing ({need})", fix))
        else:
            out.append(Check("widgets", OK, f"{dist} {v}"))
    return out


def check_live() -> list[Check]:
    from importlib.util import find_spec

    try:
        spec = find_spec("thpviz.live")
    except Exception:  # noqa: BLE001
        spec = None
    if spec is None:
        return [Check("live lab", WARN, "the live lab (thpviz.live) is not installed in this thpviz",
                      "only needed for the 'on your own kernel' exercises; everything else works without it")]
    try:
        from importlib import import_module

        caps = import_module("thpviz.live.probe").probe()
    except Exception as err:  # noqa: BLE001
        return [Check("live lab", WARN, f"the live lab's probe failed: {type(err).__name__}: {err}",
                      "the simulator still works; see the live lab chapter for what it needs")]
    summary = [f"Linux {caps.release}" if caps.linux else "not Linux",
               "root" if getattr(caps, "root", False) else "not root",
               f"THP {caps.thp_mode or 'not in this kernel'}",
               f"PFNs {'visible' if getattr(caps, 'pfn_visible', False) else 'hidden'}",
               f"io_uring {getattr(caps, 'io_uring', '?')}"]
    blocked = caps.require("lab")
    out = [Check("live lab", OK if blocked is None else WARN, "probe of this kernel: " + ", ".join(summary),
                 "" if blocked is None else "the live exercises will be skipped here; the simulator works")]
    for feat, why in sorted((caps.reasons or {}).items()):
        if why:
            out.append(Check("live lab", WARN, f"{feat}: {why}",
                             "the live exercises that need it are skipped here (the model still runs them); "
                             "thpviz live --help shows the QEMU guest that can"))
    return out


CHECKS = (check_python, check_graphviz, check_widgets, check_live)


def diagnose() -> list[Check]:
    """Every check, in order (each catches its own errors)."""
    out: list[Check] = []
    for fn in CHECKS:
        try:
            out.extend(fn())
        except Exception as err:  # noqa: BLE001 - a check must never stop the doctor
            out.append(Check(fn.__name__.replace("check_", ""), FAIL, f"the check itself failed: {err}",
                             "report this as a thpviz bug"))
    return out


def report(checks: list[Check]) -> str:
    width = max(len(c.area) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status:<4}  {c.area:<{width}}  {c.text}")
        if c.fix and c.status != OK:
            lines.append(f"{'':<4}  {'':<{width}}  -> {c.fix}")
    failed = sum(c.status == FAIL for c in checks)
    warned = sum(c.status == WARN for c in checks)
    if failed:
        lines.append(f"\n{failed} problem(s) to fix before the workshop (see the -> lines).")
    else:
        lines.append("\nReady for the workshop" + (f" ({warned} warning(s): optional parts)." if warned else "."))
    return "\n".join(lines)


def run_doctor(args) -> int:
    checks = diagnose()
    if getattr(args, "json", False):
        import json

        json.dump([c.__dict__ for c in checks], sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(report(checks))
    return 1 if any(c.status == FAIL for c in checks) else 0


def add_parser(subparsers, name: str, help: str):
    p = subparsers.add_parser(name, help=help, description=__doc__.split("\n\n")[0].strip())
    p.add_argument("--json", action="store_true", help="one JSON object per check")
    p.set_defaults(func=run_doctor)
    return p
