"""Which era a kernel is judged against, and the verdicts side by side: the
kernel's (from :mod:`.observe`), the file's ``expect`` line, and the model's
for that era and the eras around it.

A scenario passes when the live verdict matches the ``expect`` line of the
kernel's era; without such a line, when it matches the model's verdict for
that era; with neither (the era not implemented yet) it is skipped with that
reason.  A live-vs-model disagreement is reported with the first step that
differs, whatever the expect line says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .observe import UNOBSERVABLE

if TYPE_CHECKING:
    from ..scenario.runner import Run

NEWEST = "6.15"


def kernel_to_era(release: str) -> tuple[str, str]:
    """(era id, note) for a kernel release string such as ``6.1.0-57-cloud-amd64``
    or ``6.18.44``.  Exact for 6.1.x and 6.12.x; every kernel from 6.15 on is
    judged as ``6.15`` (the newest era); others by the closest era."""
    m = re.match(r"(\d+)\.(\d+)", release or "")
    if not m:
        return NEWEST, f"cannot read a version from {release!r}; judged as the newest era"
    v = (int(m.group(1)), int(m.group(2)))
    table = [
        ((4, 5), "4.4", "before the 4.5 redesign"),
        ((4, 6), "4.5", ""),
        ((5, 8), "4.6", "4.6 rules up to 5.7"),
        ((5, 9), "5.8", ""),
        ((5, 18), "5.9", "5.9 rules up to 5.17"),
        ((5, 19), "5.18", ""),
        ((6, 1), "5.19", "5.19 rules (6.0 adds the PTE mprotect upgrade: closest era)"),
        ((6, 2), "6.1", ""),
        ((6, 13), "6.12", ""),
        ((6, 15), "6.12", "closest era: 6.12 (the 6.2 mprotect changes, no large-folio reuse; but like 6.15, "
                          "6.13 maps a new THP on a write to the huge zero page, and 6.14 also frees a PTE "
                          "table that MADV_DONTNEED emptied)"),
    ]
    for upto, era, note in table:
        if v < upto:
            return era, note
    return NEWEST, "" if v == (6, 15) else f"{v[0]}.{v[1]} is judged as the newest era, 6.15"


def era_window(era_id: str) -> list[str]:
    """The era and its neighbours in chronological order."""
    from ..eras import ALL_IDS

    ids = list(ALL_IDS)
    if era_id not in ids:
        return [era_id]
    i = ids.index(era_id)
    return ids[max(0, i - 1): i + 2]


@dataclass
class Verdict:
    decision: str
    violations: frozenset

    def text(self) -> str:
        return f"{self.decision} {' '.join(sorted(self.violations)) or 'clean'}"


@dataclass
class ScenarioResult:
    path: str
    title: str = ""
    status: str = "skipped"          # passed | failed | skipped
    reason: str = ""
    era: str = ""
    era_note: str = ""
    judged_against: str = ""         # "expect 6.15" | "model 6.15"
    live: Verdict | None = None
    expected: Verdict | None = None
    model: dict = field(default_factory=dict)   # era -> Verdict | str (why not run)
    mismatches: list = field(default_factory=list)
    first_difference: str | None = None
    notes: list = field(default_factory=list)
    run: object = None
    seconds: float = 0.0


def decision_matches(expected: str, got: str) -> bool:
    if expected == "cow":
        return got in ("cow-small", "cow-huge")
    return expected == got


def model_runs(scn, eras: list[str]) -> dict:
    """Model verdicts (or the reason there is none) for each era id."""
    from ..eras import ERAS
    from ..scenario import ScenarioError, check_eras, run

    out: dict[str, Run | str] = {}
    for e in eras:
        era = ERAS.get(e)
        if era is None:
            out[e] = "not implemented yet"
            continue
        try:
            check_eras(scn, [era])
            out[e] = run(scn, era)
        except ScenarioError as err:
            out[e] = "; ".join(err.errors)
        except Exception as err:  # a model defect must not stop the lab
            out[e] = f"model error: {err}"
    return out


def compare(result: ScenarioResult, live, scn, era_id: str) -> None:
    """Fill ``result`` from a LiveRun ``live``."""
    result.live = Verdict(live.last_write, frozenset(live.violations))
    window = era_window(era_id)
    runs = model_runs(scn, window)
    for e, r in runs.items():
        result.model[e] = Verdict(r.last_write, frozenset(r.violations)) if not isinstance(r, str) else r
    exp = scn.expects.get(era_id)
    target = None
    if exp is not None:
        target = Verdict(exp.decision or "", frozenset(exp.violations))
        result.judged_against = f"expect {era_id}"
        where = f"{scn.path}:{exp.line}"
    elif isinstance(result.model.get(era_id), Verdict):
        target = result.model[era_id]
        result.judged_against = f"model {era_id}"
        where = scn.path
    if target is None:
        result.status = "skipped"
        nearest = [e for e, v in result.model.items() if isinstance(v, Verdict)]
        result.reason = (f"no expect line for era {era_id} and the era is not implemented yet"
                         + (f" (model beside it: {', '.join(nearest)})" if nearest else ""))
        return
    result.expected = target
    hidden = set(target.violations) & UNOBSERVABLE
    if hidden:
        result.notes.append(f"{', '.join(sorted(hidden))} cannot be observed from user space: not judged")
    want_v = set(target.violations) - UNOBSERVABLE
    if target.decision and not decision_matches(target.decision, live.last_write):
        result.mismatches.append(f"{where}: live (era {era_id}): expected decision {target.decision}, "
                                 f"got {live.last_write}")
    if want_v != set(live.violations):
        result.mismatches.append(f"{where}: live (era {era_id}): expected violations "
                                 f"{' '.join(sorted(want_v)) or 'clean'}, got "
                                 f"{' '.join(sorted(live.violations)) or 'clean'}")
    for s in live.steps:
        eras = scn.statements[s.k - 1].args.get("eras")
        if s.assertion is not None and s.assertion[0] is False and (eras is None or era_id in eras):
            result.mismatches.append(f"{scn.path}:{s.line}: live (era {era_id}): assert failed: {s.assertion[1]}")
    result.status = "failed" if result.mismatches else "passed"
    model = runs.get(era_id)
    if not isinstance(model, str) and model is not None:
        result.first_difference = first_difference(live, model)


def first_difference(live, model) -> str | None:
    """The first statement where the kernel and the model disagree on the
    write decisions of the step, on the violations present after it, or on
    whether the statement was refused at all."""
    from ..model.events import DECISIONS

    for ls, ms in zip(live.steps, model.steps):
        ld = sorted(set(ls.decisions()))
        md = sorted({DECISIONS[int(d)] for f in ms.write_faults for d in f.decisions})
        lv = sorted(ls.violations)
        mv = sorted(k for k in ms.violations if k not in UNOBSERVABLE)
        if bool(ls.errors) != bool(ms.error):
            said = ls.errors[0] if ls.errors else ms.error
            who = "the kernel refused it, the model did not" if ls.errors else "the model refused it, the kernel did not"
            return f"line {ls.line} ({ls.text}): {who} ({said})"
        if ld != md or lv != mv:
            parts = []
            if ld != md:
                parts.append(f"write decisions: kernel {', '.join(ld) or 'none'}, model {', '.join(md) or 'none'}")
            if lv != mv:
                parts.append(f"violations: kernel {', '.join(lv) or 'clean'}, model {', '.join(mv) or 'clean'}")
            return f"line {ls.line} ({ls.text}): " + "; ".join(parts)
    return None
