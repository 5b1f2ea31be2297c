"""One scenario through the lab, wherever it runs: load and plan it
(:func:`prepare`), then judge the executor's output (:func:`finish`).
:mod:`.host` runs plans on this kernel, :mod:`.qemu` in a guest."""

from __future__ import annotations

import os

from .judge import ScenarioResult, compare, kernel_to_era
from .observe import build_run, parse_lines
from .plan import Unexpressible, compile_plan


def scenario_files(paths) -> list[str]:
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                out.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(".thp"))
        else:
            out.append(p)
    return out


def load(path: str):
    """Parse a scenario; ``expect`` lines may name eras not implemented yet."""
    from ..eras import ALL_IDS
    from ..scenario import parse_text
    from ..scenario.parser import ScenarioError

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ScenarioError([f"{path}:0:0: cannot read: {e.strerror}"]) from None
    except UnicodeDecodeError:
        raise ScenarioError([f"{path}:0:0: not UTF-8 text"]) from None
    return parse_text(text, path, known_eras=ALL_IDS, planned_eras=())


def target_era(caps, era_override: str | None) -> tuple[str, str]:
    if era_override:
        return era_override, "chosen with --era"
    return kernel_to_era(caps.release)


def prepare(path: str, caps, era_override: str | None = None):
    """(scenario, plan, result): ``plan`` is None when the result is already
    final (skipped, with the reason)."""
    scn = load(path)
    era, note = target_era(caps, era_override)
    res = ScenarioResult(path, scn.title, era=era, era_note=note)
    try:
        plan = compile_plan(scn, caps)
    except Unexpressible as e:
        res.status, res.reason = "skipped", str(e)
        return scn, None, res
    return scn, plan, res


def _multi_vma_mremap(caps, res: ScenarioResult, scn, run) -> str | None:
    """Linux 6.17 moves a range that spans several VMAs in one mremap
    ("mm/mremap: permit mremap() move of multiple VMAs", Lorenzo Stoakes);
    every era modelled here refuses it (-EFAULT).  On such a kernel a
    scenario whose mremap the model refuses for that reason and the kernel
    carries out is skipped, with the reason: a newer kernel's rule, not a
    disagreement."""
    import re

    from .judge import model_runs

    m = re.match(r"(\d+)\.(\d+)", caps.release or "")
    if not m or (int(m.group(1)), int(m.group(2))) < (6, 17):
        return None
    model = model_runs(scn, [res.era]).get(res.era)
    if model is None or isinstance(model, str):
        return None
    for ls, ms in zip(run.steps, model.steps):
        if ls.op == "mremap" and not ls.errors and ms.error and "not inside one VMA" in ms.error:
            return (f"line {ls.line}: the range spans several VMAs; Linux 6.17 moves it (\"mm/mremap: permit "
                    f"mremap() move of multiple VMAs\"), era {res.era} refuses it with -EFAULT")
    return None


def finish(res: ScenarioResult, scn, plan, output: str, caps, problem: str | None = None) -> ScenarioResult:
    run = build_run(plan, parse_lines(output), caps)
    res.run = run
    if problem or not run.ok:
        res.status = "skipped"
        res.reason = f"the lab did not complete: {problem or run.problem}"
        return res
    compare(res, run, scn, res.era)
    moved = _multi_vma_mremap(caps, res, scn, run)
    if moved:
        res.status, res.reason, res.mismatches = "skipped", moved, []
        return res
    short = [n for n in run.pinned_zero if plan.pins[n].kind == "ro"]
    if short and res.era in ("6.12", "6.15"):   # 6.2+: long-term R/O pins unshare the zero page
        # a modelling limit of the lab, not a verdict: see docs/live-lab.md
        res.status = "skipped"
        res.reason = (f"the read-only pin {short[0]} holds the zero page: the lab's read-only pin is a "
                      "short-term FOLL_PIN (process_vm_readv), which does not unshare the zero page; the "
                      "scenario's long-term pin (vfio) does from 6.2 (84209e87c696)")
        res.mismatches = []
    return res
