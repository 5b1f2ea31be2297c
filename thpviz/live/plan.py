"""Compile a parsed scenario into a plan for the executor, or say why the
kernel cannot express it.

The plan is line-based text (``executor.c`` reads it): a header (``thp``,
``procs``, ``rings``) and one ``step K LINE OP ARGS`` line per statement.
Processes, regions and pins get small integer ids.  Besides the text, the
compiler keeps what judging needs and the kernel does not tell: for every
step, where each pin's pages are expected in its owner (``watch``) -- the
scenario's own bookkeeping of which addresses a pin promises anything for
(an owner that unmaps, discards or exits excuses them; mremap moves them),
the same rule ``thpviz.invariants.pin_lost`` states.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from ..scenario.parser import Scenario

REGION_BASE = 0x600000000000
REGION_STRIDE = 0x10000000
PAGE = 4096
NR = 512
MAX_PROCS = 32
MAX_REGIONS = 64
MAX_PINS = 32
RO_PIN_MAX = 1024  # pages process_vm_readv pins in one batch


class Unexpressible(Exception):
    """The kernel (or this machine) cannot run the scenario; the message says why."""


@dataclass
class PinInfo:
    name: str
    id: int
    owner: str
    kind: str        # rw (io_uring) | ro (process_vm_readv) | ref (vmsplice)
    region: str
    lo: int
    hi: int
    step: int        # step index (1-based) that took it


@dataclass
class Plan:
    scenario: Scenario
    text: str
    procs: list[str]
    regions: dict[str, int]
    pins: dict[str, PinInfo]
    #: per step (1-based; index 0 unused): pin name -> (owner alive, list of
    #: (region, subpage) or None per pinned subpage, None = excused)
    watch: list[dict] = field(default_factory=list)
    #: per step: pin names active after the step
    active: list[set] = field(default_factory=list)

    def proc_index(self, name: str) -> int:
        return self.procs.index(name)


def needed_features(scn: Scenario) -> list[str]:
    feats = []
    for st in scn.statements:
        if st.op == "mmap" and st.args.get("huge", True):
            feats.append("thp")
        elif st.op == "pin":
            feats.append("pin_rw" if st.args["write"] else "pin_ro")
        elif st.op == "split_page":
            feats.append("split_page")
        elif st.op == "deferred_split":
            feats.append("deferred_split")
    return list(dict.fromkeys(feats))


class _Proc:
    def __init__(self) -> None:
        self.regions: dict[str, list] = {}   # name -> [rid, n, offset_subpages, dontcopy list]
        self.alive = True


def compile_plan(scn: Scenario, caps=None) -> Plan:
    """Raise :class:`Unexpressible` with the reason when the scenario cannot
    run here (``caps``: :class:`thpviz.live.probe.Capabilities` or None)."""
    if scn.thp != NR:
        raise Unexpressible(f"thp: {scn.thp}: this kernel's THP has {NR} subpages (only thp: 512 can run live)")
    if caps is not None:
        reason = caps.require(*needed_features(scn))
        if reason:
            raise Unexpressible(reason)
    procs: list[str] = []
    regions: dict[str, int] = {}
    pins: dict[str, PinInfo] = {}
    state: dict[str, _Proc] = {}
    lines = [f"thp {NR}"]
    steps: list[str] = []
    # pin bookkeeping: name -> {"owner", "loc": list[(region, sub)|None], "active", "spent"}
    pstate: dict[str, dict] = {}
    watch: list[dict] = [{}]
    active: list[set] = [set()]
    spent_ro: dict[str, int] = {}     # ro pin -> line of its dma_read
    dead_ro: dict[str, int] = {}      # ro pin whose owner exited -> line

    def pidx(name):
        if name not in procs:
            if len(procs) >= MAX_PROCS:
                raise Unexpressible(f"more than {MAX_PROCS} processes")
            procs.append(name)
        return procs.index(name)

    def rid(name):
        if name not in regions:
            if len(regions) >= MAX_REGIONS:
                raise Unexpressible(f"more than {MAX_REGIONS} regions")
            regions[name] = len(regions)
        return regions[name]

    def rng(proc, r):
        reg = state[proc].regions[r.region]
        lo, hi = r.bounds(reg[1])
        return reg, lo, hi

    for k, st in enumerate(scn.statements, 1):
        for name in list(spent_ro) + list(dead_ro):
            if st.op == "unpin" and st.args["pin"] == name:
                continue
            if st.op in ("assert",) or (st.op in ("dma_read", "dma_write") and st.args["pin"] != name):
                continue
            if name in spent_ro:
                raise Unexpressible(
                    f"line {st.line}: the read-only pin {name} ends with its device read on line {spent_ro[name]} "
                    "(process_vm_readv completes then), but the scenario goes on while it is held")
            raise Unexpressible(
                f"line {st.line}: the read-only pin {name} is a thread of its owner and cannot outlive the owner's "
                f"exit on line {dead_ro[name]}")
        # every op below that uses ``p`` is a process statement (``P: ...``),
        # which the parser always gives a process
        op, a, p = st.op, st.args, cast(str, st.proc)
        args: list = []
        if op == "mmap":
            i = pidx(p)
            state.setdefault(p, _Proc())
            r = rid(a["region"])
            n = a["extents"] * NR
            state[p].regions[a["region"]] = [r, n, 0, [False] * n]
            args = [i, r, n, 1 if a.get("huge", True) else 0]
        elif op in ("read", "write", "munmap", "dontneed", "dontfork", "dofork", "split_pmd", "split_page", "mprotect"):
            i = pidx(p)
            reg, lo, hi = rng(p, a["range"])
            if op == "split_page":
                args = [i, reg[0], lo, lo + 1, 0]
            elif op == "mprotect":
                args = [i, reg[0], lo, hi, 1 if a["write"] else 0]
            elif op == "split_pmd":
                # bit e of the mask: the second subpage of the e-th 2 MiB
                # extent (counted from the aligned start) is VM_DONTCOPY
                mask = 0
                off = reg[2]
                for e in range((off + reg[1] + NR - 1) // NR + 1):
                    s = e * NR + 1 - off
                    if 0 <= s < reg[1] and reg[3][s]:
                        mask |= 1 << e
                args = [i, reg[0], lo, hi, mask]
            else:
                args = [i, reg[0], lo, hi]
            if op in ("dontfork", "dofork"):
                for s in range(lo, hi):
                    reg[3][s] = op == "dontfork"
            if op in ("munmap", "dontneed"):
                _excuse(pstate, p, a["range"].region, lo, hi)
        elif op == "mremap":
            i = pidx(p)
            reg, lo, hi = rng(p, a["range"])
            new = rid(a["new"])
            off = (reg[2] + lo) % NR + (0 if a.get("aligned", True) else 1)
            state[p].regions[a["new"]] = [new, hi - lo, off, reg[3][lo:hi]]
            args = [i, reg[0], lo, hi, new, 1 if a.get("aligned", True) else 0]
            for ps in pstate.values():
                if ps["owner"] != p:
                    continue
                moved = []
                for loc in ps["loc"]:
                    if loc is not None and loc[0] == a["range"].region and lo <= loc[1] < hi:
                        loc = (a["new"], loc[1] - lo)
                    moved.append(loc)
                ps["loc"] = moved
        elif op in ("pin", "vmsplice"):
            i = pidx(p)
            reg, lo, hi = rng(p, a["range"])
            name = a["name"]
            if len(pins) >= MAX_PINS:
                raise Unexpressible(f"more than {MAX_PINS} pins")
            kind = "ref" if op == "vmsplice" else ("rw" if a["write"] else "ro")
            if kind == "ro" and hi - lo > RO_PIN_MAX:
                raise Unexpressible(f"line {st.line}: a read-only pin of more than {RO_PIN_MAX} pages")
            if kind == "ref" and hi - lo > 16 * 256:
                raise Unexpressible(f"line {st.line}: a vmsplice of more than 4096 pages")
            pin = PinInfo(name, len(pins), p, kind, a["range"].region, lo, hi, k)
            pins[name] = pin
            pstate[name] = {"owner": p, "loc": [(a["range"].region, s) for s in range(lo, hi)], "active": True}
            if op == "pin":
                args = [i, reg[0], lo, hi, pin.id, 1 if a["write"] else 0]
            else:
                args = [i, reg[0], lo, hi, pin.id]
        elif op == "unpin":
            pin = pins[a["pin"]]
            pstate[a["pin"]]["active"] = False
            spent_ro.pop(a["pin"], None)
            dead_ro.pop(a["pin"], None)
            args = [pin.id]
        elif op in ("dma_read", "dma_write"):
            pin = pins[a["pin"]]
            if op == "dma_read":
                ps = pstate[pin.name]
                owner = pin.owner
                loc = [x for x in ps["loc"] if x is not None]
                where = [-1, 0, 0, 0]
                if state[owner].alive and loc and len(loc) == len(ps["loc"]):
                    region = loc[0][0]
                    subs = [s for r_, s in loc]
                    if all(r_ == region for r_, _ in loc) and subs == list(range(subs[0], subs[0] + len(subs))):
                        where = [procs.index(owner), state[owner].regions[region][0], subs[0], subs[-1] + 1]
                args = [pin.id] + where
                if pin.kind == "ro":
                    spent_ro[pin.name] = st.line
            else:
                args = [pin.id]
        elif op == "fork":
            i = pidx(p)
            c = pidx(a["child"])
            child = _Proc()
            for name, reg in state[p].regions.items():
                child.regions[name] = [reg[0], reg[1], reg[2], list(reg[3])]
            state[a["child"]] = child
            args = [i, c]
        elif op == "exit":
            i = pidx(p)
            state[p].alive = False
            for name, ps in pstate.items():
                if ps["owner"] == p:
                    ps["loc"] = [None] * len(ps["loc"])
                    if ps["active"] and pins[name].kind == "ro" and name not in spent_ro:
                        dead_ro[name] = st.line
            args = [i]
        elif op == "deferred_split":
            args = []
        elif op == "assert":
            op, args = "nop", []
        else:  # pragma: no cover - the parser only produces the ops above
            raise Unexpressible(f"line {st.line}: {op} has no kernel counterpart")
        steps.append(f"step {k} {st.line} {op} " + " ".join(str(x) for x in args))
        watch.append({name: (state[ps["owner"]].alive, list(ps["loc"]))
                      for name, ps in pstate.items() if ps["active"]})
        active.append({name for name, ps in pstate.items() if ps["active"]})
    nrings = max([pin.id + 1 for pin in pins.values() if pin.kind == "rw"], default=0)
    lines.append(f"procs {max(len(procs), 1)}")
    if nrings:
        lines.append(f"rings {nrings}")
    text = "\n".join(lines + steps + ["end"]) + "\n"
    return Plan(scn, text, procs, regions, pins, watch, active)


def _excuse(pstate: dict, proc: str, region: str, lo: int, hi: int) -> None:
    """The owner unmapped or discarded these subpages itself."""
    for ps in pstate.values():
        if ps["owner"] == proc:
            ps["loc"] = [None if (x is not None and x[0] == region and lo <= x[1] < hi) else x for x in ps["loc"]]
