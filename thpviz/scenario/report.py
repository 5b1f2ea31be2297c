"""Plain-text and JSON reports of a run (the JSON shape is fixed in DESIGN.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..invariants import EVENT_VIOLATIONS, VIOLATIONS
from ..model.events import DECISIONS
from ..model.memmap import KIND_ZERO
from ..model.mm import Pmd
from .runner import Run


def _runs(values: np.ndarray) -> list[list[int]]:
    """Run-length encode: [[first, last, value], ...]."""
    if len(values) == 0:
        return []
    cut = np.nonzero(np.diff(values) != 0)[0] + 1
    starts = np.concatenate(([0], cut))
    ends = np.concatenate((cut, [len(values)])) - 1
    return [[int(s), int(e), int(values[s])] for s, e in zip(starts, ends)]


def fault_dicts(run: Run, step) -> list[dict]:
    out = []
    world = run.world
    for fb in step.faults:
        mm = world.mms[fb.proc]
        names = list(fb.cost)
        cols = [fb.cost[k] for k in names]
        for i, (addr, dec, copied, pfn) in enumerate(zip(fb.addrs, fb.decisions, fb.copied, fb.pfns)):
            cost = {k: int(c[i]) for k, c in zip(names, cols)}
            if "struct_page_lines" in cost and "data_lines" in cost:
                cost["cache_lines"] = cost["struct_page_lines"] + cost["data_lines"]
            r = mm.region_at(int(addr))
            out.append({
                "proc": fb.proc,
                "subpage": r[1] if r else int(addr),
                "region": r[0] if r else None,
                "level": fb.level,
                "decision": DECISIONS[int(dec)],
                "copied_bytes": int(copied),
                "access": fb.access,
                "gup": fb.gup,
                "page": world.mem.name(int(pfn)) if pfn >= 0 else None,
                "cost": cost,
            })
    return out


def page_dicts(world) -> list[dict]:
    """Every page (compound or order-0) ever allocated, with the counters of
    its struct pages as the run's era keeps them.  ``pincount``: references
    taken by ``pin`` statements (FOLL_GET in the 2016 eras, FOLL_PIN --
    ``_pincount`` of a large folio -- from 5.8); ``refs``: FOLL_GET references
    of vmsplice; per-subpage values as ``[[first, last, value], ...]`` runs.
    Fields an era does not have are left out."""
    mem, era = world.mem, world.era
    out = []
    for h in mem.page_starts():
        h = int(h)
        if mem.kind[h] == KIND_ZERO:
            continue
        n = int(mem.nr[h])
        fr = slice(h, h + n)
        frames = np.arange(h, h + n)
        av = int(mem.mapping[h])
        d = {
            "name": mem.name(h),
            "subpages": n,
            "refcount": int(mem.refcount[h]),
            "compound_mapcount": int(mem.cmc[h]) if n > 1 else 0,
            "double_map": bool(mem.double_map[h]),
            "pincount": int(mem.pins[fr].sum()),
            "refs_held": int(mem.refs[fr].sum()),
            "mapcount": _runs(era.mapcount_frames(mem, frames)),
            "anon_vma": f"av{av}" if av >= 0 else None,
            "freed": bool(mem.freed[h]),
            "pins": _runs(mem.pins[fr]),
            "refs": _runs(mem.refs[fr]),
            "data": _runs(mem.data[fr]),
        }
        if era.has_anon_exclusive:
            flags = mem.anon_exclusive[fr].astype(np.int64)
            if n > 1 and mem.cmc[h] > 0:
                flags = np.full(n, int(mem.anon_exclusive[h]))  # the head's flag counts
            d["anon_exclusive"] = _runs(flags)
        if "entire_mapcount" in era.counters and n > 1:
            d["entire_mapcount"] = int(mem.cmc[h])
        if "large_mapcount" in era.counters:
            d["large_mapcount"] = int(world.large_mapcount(h)) if n > 1 else int(mem.mapcount[h])
        if era.tracks_mm_ids and n > 1:
            slots = []
            for mm_id, cnt in ((mem.slot_mm[h], mem.slot_count[h]), (mem.slot_mm2[h], mem.slot_count2[h])):
                owner = world.mm_by_id(int(mm_id)) if mm_id else None
                slots.append([owner.name if owner else None, int(cnt)])
            d["mm_slots"] = slots
            d["maybe_shared"] = bool(mem.maybe_shared[h])
        out.append(d)
    return out


def process_dicts(world) -> dict[str, dict]:
    """Per process: alive, and (eras with FOLL_PIN) ``has_pinned``."""
    out = {}
    for mm in world.mms.values():
        d = {"alive": mm.alive, "mm_id": mm.id}
        if world.era.foll_pin:
            d["has_pinned"] = bool(mm.has_pinned)
        out[mm.name] = d
    return out


def mapping_dicts(world) -> dict[str, list[dict]]:
    mem, nr = world.mem, world.nr
    out: dict[str, list[dict]] = {}
    for mm in world.alive_mms():
        rows = []
        for ext in sorted(mm.pt):
            entry = mm.pt[ext]
            base = ext * nr
            if isinstance(entry, Pmd):
                rows.append({
                    "range": mm.describe(base, base + nr), "level": "pmd",
                    "page": mem.name(entry.head), "first_subpage": 0, "writable": bool(entry.write),
                    "dirty": bool(entry.dirty),
                })
                continue
            pf, wr, dt = entry.pfn, entry.write, entry.dirty
            present = pf >= 0
            heads = np.where(present, mem.head[np.maximum(pf, 0)], -1)
            zero = present & (mem.kind[np.maximum(pf, 0)] == KIND_ZERO)
            # zero-page PTEs all map one frame; number them so a run of them
            # stays one run
            off = np.where(zero, np.arange(nr), np.where(present, pf - heads, -1))
            # a new run starts where the page changes, the subpage is not the
            # next one, the write bit changes, or presence changes
            brk = np.ones(nr, dtype=bool)
            brk[1:] = ((heads[1:] != heads[:-1]) | (off[1:] != off[:-1] + 1) | (wr[1:] != wr[:-1])
                       | (dt[1:] != dt[:-1]))
            starts = np.nonzero(brk)[0]
            ends = np.concatenate((starts[1:], [nr]))
            for s0, e0 in zip(starts, ends):
                if not present[s0]:
                    continue
                s, e = int(s0), int(e0)
                h = int(heads[s])
                rows.append({
                    "range": mm.describe(base + s, base + e), "level": "pte",
                    "page": mem.name(h), "first_subpage": 0 if zero[s] else int(off[s]),
                    "writable": bool(wr[s]), "dirty": bool(dt[s]),
                })
        out[mm.name] = rows
    return out


def run_to_json(run: Run) -> dict:
    scn = run.scenario
    steps = []
    for s in run.steps:
        d = {
            "line": s.stmt.line,
            "text": s.stmt.text,
            "faults": fault_dicts(run, s),
            "violations": sorted(s.violations),
            "violation_details": {k: v for k, v in sorted(s.violations.items())},
            "events": [{"kind": e.kind, "message": e.message} for e in s.events],
            "unshare_faults": sum(len(f) for f in s.faults if f.access == "unshare"),
        }
        if s.error:
            d["error"] = s.error
        if s.assertion is not None:
            d["assert"] = {"held": bool(s.assertion[0]), "value": s.assertion[1], "message": s.assertion[2]}
        steps.append(d)
    exp = scn.expects.get(run.era.id)
    return {
        "scenario": scn.path,
        "title": scn.title,
        "source": scn.source,
        "era": run.era.id,
        "thp": scn.thp,
        "steps": steps,
        "violations": sorted(run.violations),
        "decision": run.last_write,
        "expected": None if exp is None else {
            "decision": exp.decision, "violations": sorted(exp.violations)},
        "mismatches": run.mismatches(),
        "pages": page_dicts(run.world),
        "mappings": mapping_dicts(run.world),
        "processes": process_dicts(run.world),
    }


@dataclass
class FaultRun:
    """Consecutive faults of one batch with the same decision."""

    proc: str
    access: str
    level: str
    decision: str
    lo: int  # first faulting address
    hi: int  # last faulting address + 1
    n: int
    copied: int
    gup: bool
    where: str  # "A[3:9]"

    def line(self) -> str:
        return (
            f"{self.proc}: {self.access} fault{'s' if self.n > 1 else ''} at {self.where} "
            f"({self.level}): {self.decision}"
            + (f", copied {self.copied // 1024} KiB" if self.copied else "")
            + (" (inside GUP)" if self.gup else "")
        )


def fault_runs(world, step) -> list[FaultRun]:
    """The step's faults as runs of consecutive addresses with one decision."""
    out = []
    for fb in step.faults:
        mm = world.mms.get(fb.proc)
        decs = fb.decisions
        if len(decs) == 0:
            continue
        cut = np.nonzero((np.diff(decs) != 0) | (np.diff(fb.addrs) != 1))[0] + 1
        for part in np.split(np.arange(len(decs)), cut):
            a0, a1 = int(fb.addrs[part[0]]), int(fb.addrs[part[-1]]) + 1
            out.append(FaultRun(
                fb.proc, fb.access, fb.level, DECISIONS[int(decs[part[0]])], a0, a1, len(part),
                int(fb.copied[part].sum()), fb.gup, mm.describe(a0, a1) if mm else str(a0),
            ))
    return out


@dataclass
class Note:
    """One thing a step reported: ``kind`` is fault, refused, event, assert
    or violation (then ``violation`` names it)."""

    kind: str
    text: str
    violation: str | None = None


def step_notes(step, fault_lines: list[str]) -> list[Note]:
    """What a step reported, in a fixed order: its faults, a refusal, events
    other than violations, the assert, then every violation detail."""
    out = [Note("fault", f) for f in fault_lines]
    if step.error:
        out.append(Note("refused", f"refused: {step.error}"))
    for e in step.events:
        if e.kind not in EVENT_VIOLATIONS:
            out.append(Note("event", f"{e.kind}: {e.message}"))
    if step.assertion is not None:
        out.append(Note("assert", f"assert {'holds' if step.assertion[0] else 'FAILS'}: {step.assertion[2]}"))
    for kind in VIOLATIONS:
        for d in step.violations.get(kind, ()):
            out.append(Note("violation", d, kind))
    return out


def format_run(run: Run, hide: bool = False) -> str:
    """Readable per-step report.  ``hide`` prints ``?`` for decisions and
    violations so a reader can predict first."""
    scn = run.scenario
    out = [f"== {scn.path} under era {run.era.id}: {scn.title}"]
    for s in run.steps:
        out.append(f"  {s.stmt.line:3d}  {s.stmt.text}")
        if hide:
            if s.faults:
                out.append("      fault: ?")
            continue
        for note in step_notes(s, [r.line() for r in fault_runs(run.world, s)]):
            if note.kind == "violation":
                out.append(f"      ! {note.violation}: {note.text}")
            else:
                out.append(f"      {note.text}")
    if hide:
        out.append("  result: last write fault ?, violations ?   (run without --hide to see)")
    else:
        v = " ".join(sorted(run.violations)) or "clean"
        out.append(f"  result: last write fault {run.last_write}; violations {v}")
        for m in run.mismatches():
            out.append(f"  MISMATCH {m}")
    return "\n".join(out)
