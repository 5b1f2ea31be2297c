"""Turn the executor's JSON lines into a :class:`LiveRun`: per step the
observed state of every process, the faults with the decision each one
shows, events, and the violations -- all derived from observations.

Decisions of a write fault (the subpage's pagemap entry before and after
the faulting store, kpageflags of both pages):

* ``new``: nothing was mapped there, or the zero page (kpageflags ZERO_PAGE);
* ``reuse``: the same PFN before and after;
* ``cow-huge``: a different PFN that belongs to a THP (kpageflags THP);
* ``cow-small``: a different PFN of an order-0 page.

Violations (the rules of DESIGN.md, judged on what the kernel shows):

* ``pin-lost``: an active pin's or reference's page (its PFN when it was
  taken) is not the page its owner maps at the pinned address now, where the
  owner did not unmap, discard or move that address itself;
* ``leak``: after a process writes, a device or a pipe held by another
  process reads the stamp of that very write (for a read-only pin, which
  cannot be read without ending it: the written PFN is the pinned one);
* ``stray-write``: a CPU store or a device write lands in a 4 KiB page that
  another live process maps.

``rmap-broken`` and ``bug`` cannot be observed from user space.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .plan import Plan

KPF_ANON, KPF_HEAD, KPF_TAIL, KPF_THP, KPF_ZERO, KPF_EXCL = 12, 15, 16, 22, 24, 34
LEVELS = {0: "none", 1: "pte", 2: "pmd", 3: "zero", 4: "huge-zero", -1: "?"}
UNOBSERVABLE = frozenset({"rmap-broken", "bug"})
DEVICE = 1000


def _present(e: int) -> bool:
    return bool((e >> 63) & 1)


def _pfn(e: int) -> int:
    return e & ((1 << 55) - 1)


def _bit(v: int, b: int) -> bool:
    return bool((v >> b) & 1)


@dataclass
class Sub:
    """One subpage as a process maps it."""
    pfn: int
    level: str
    excl56: bool
    mapcount: int        # kpagecount
    kflags: int
    head_kflags: int
    head: int

    @property
    def thp(self) -> bool:
        return _bit(self.kflags, KPF_THP) and not _bit(self.kflags, KPF_ZERO)

    @property
    def zero(self) -> bool:
        return _bit(self.kflags, KPF_ZERO)


@dataclass
class Fault:
    proc: str
    region: str
    sub: int
    addr: int
    access: str          # write (a CPU store or a write GUP)
    decision: str
    level: str
    faults: int
    before: int | None   # PFN
    after: int | None
    gup: bool = False


@dataclass
class LiveStep:
    k: int
    line: int
    text: str
    op: str
    errors: list = field(default_factory=list)
    faults: list = field(default_factory=list)
    events: list = field(default_factory=list)
    violations: dict = field(default_factory=dict)
    #: proc -> region -> list[Sub | None]
    state: dict = field(default_factory=dict)
    vmstat: dict = field(default_factory=dict)
    assertion: tuple | None = None   # (held or None when not observable, message)
    raw: list = field(default_factory=list)

    @property
    def write_faults(self):
        return [f for f in self.faults if f.access == "write"]

    def decisions(self) -> list[str]:
        return [f.decision for f in sorted(self.write_faults, key=lambda f: f.addr)]


@dataclass
class LiveRun:
    plan: Plan
    steps: list
    ok: bool = True
    problem: str | None = None       # the lab itself failed (not the kernel's verdict)
    pinned_zero: set = field(default_factory=set)   # pins that hold a zero page

    @property
    def violations(self) -> set:
        out = set()
        for s in self.steps:
            out.update(s.violations)
        return out

    @property
    def last_write(self) -> str:
        for s in reversed(self.steps):
            wf = s.write_faults
            if wf:
                return max(wf, key=lambda f: f.addr).decision
        return "none"


def classify(before: int, after: int, kf_before: int, kf_after: int) -> str:
    if not _present(before) or _bit(kf_before, KPF_ZERO):
        return "new"
    if _present(after) and _pfn(after) == _pfn(before):
        return "reuse"
    if _bit(kf_after, KPF_THP) and not _bit(kf_after, KPF_ZERO):
        return "cow-huge"
    return "cow-small"


def parse_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def build_run(plan, records: list[dict], caps=None) -> LiveRun:
    """Assemble a LiveRun from the executor's records for ``plan``."""
    scn = plan.scenario
    stmts = scn.statements
    names = {i: n for i, n in enumerate(plan.procs)}
    rnames = {v: k for k, v in plan.regions.items()}
    pin_by_id = {p.id: p for p in plan.pins.values()}
    steps: list[LiveStep] = []
    cur: LiveStep | None = None
    ended = False
    for rec in records:
        t = rec.get("t")
        if t == "step":
            k = rec["k"]
            st = stmts[k - 1]
            cur = LiveStep(k, st.line, st.text, st.op)
            steps.append(cur)
            continue
        if t == "end":
            ended = True
            continue
        if cur is None:
            continue
        cur.raw.append(rec)
        if t == "snap":
            cur.state = _state(rec, names, rnames)
            cur.vmstat = rec.get("vmstat", {})
        elif t == "error":
            cur.errors.append(f"{rec.get('op')}: {rec.get('msg')}")
    run = LiveRun(plan, steps)
    if len(steps) != len(stmts) or not ended:
        run.ok = False
        run.problem = (f"the executor stopped after {len(steps)} of {len(stmts)} statements"
                       if len(steps) != len(stmts) else "the executor did not finish cleanly")
    _derive(run, names, rnames, pin_by_id, caps)
    return run


def _state(rec, names, rnames) -> dict:
    out: dict = {}
    for pr in rec.get("procs", []):
        regs = out.setdefault(names.get(pr["p"], str(pr["p"])), {})
        for rg in pr.get("regions", []):
            subs: list = [None] * rg["n"]
            for first, count, pfn, stride, lvl, ex, kc, kf, hkf, head in rg["runs"]:
                if pfn == 0 and lvl == 0:
                    continue
                for j in range(count):
                    subs[first + j] = Sub(pfn + stride * j, LEVELS.get(lvl, "?"), bool(ex), kc, kf, hkf, head)
            regs[rnames.get(rg["r"], str(rg["r"]))] = subs
    return out


def _name_pfn(pfn: int | None) -> str:
    return "nothing" if pfn is None else f"pfn {pfn:#x}"


def _derive(run: LiveRun, names, rnames, pin_by_id, caps) -> None:
    plan = run.plan
    pinned: dict[str, list] = {}
    prev_state: dict = {}
    for s in run.steps:
        st = plan.scenario.statements[s.k - 1]
        recs = s.raw
        # ---------------------------------------------------------- faults
        for rec in recs:
            t = rec.get("t")
            if t == "faults" and rec.get("access") == "write":
                proc, region = names[rec["p"]], rnames[rec["r"]]
                base = _base(s, proc, region, rec["r"])
                for sub, before, after, nflt, lb, la, kb, ka in rec["recs"]:
                    dec = classify(before, after, kb, ka)
                    lvl = LEVELS.get(la if dec == "new" else lb, "?")
                    s.faults.append(Fault(proc, region, sub, base + sub, "write", dec,
                                          "pmd" if lvl in ("pmd", "huge-zero") else "pte", nflt,
                                          _pfn(before) if _present(before) else None,
                                          _pfn(after) if _present(after) else None))
                c = Counter(f.decision for f in s.faults if f.proc == proc)
                s.events.append(f"{proc} wrote {st.args['range'].text}: {sum(c.values())} write fault(s)"
                                + (" (" + ", ".join(f"{d} x{n}" for d, n in sorted(c.items())) + ")" if c else "")
                                + f", {rec.get('nofault', 0)} store(s) without a fault")
                if "segv" in rec:
                    s.errors.append(f"write {proc} {region}[{rec['segv']}]: the kernel refused the store (SIGSEGV)")
            elif t == "faults" and rec.get("access") == "read":
                proc = names[rec["p"]]
                s.events.append(f"{proc} read {st.args['range'].text}: {rec.get('count', 0)} fault(s)")
                if "segv" in rec:
                    s.errors.append(f"read {proc} {rnames[rec['r']]}[{rec['segv']}]: the kernel refused the load (SIGSEGV)")
            elif t == "gup":
                proc, region = names[rec["p"]], rnames[rec["r"]]
                pin = plan.pins[st.args["name"]]
                changed = rec["changed"]
                nflt = rec["faults"]
                base = _base(s, proc, region, rec["r"])
                if pin.kind == "rw" and nflt > 0:
                    decs = []
                    for sub, before, after, kb, ka in changed:
                        if _present(after):
                            decs.append((sub, classify(before, after, kb, ka), before, after))
                    if not decs:
                        decs = [(pin.hi - 1, "reuse", None, None)]
                    for sub, dec, before, after in decs:
                        s.faults.append(Fault(proc, region, sub, base + sub, "write", dec, "pte", 1,
                                              _pfn(before) if before and _present(before) else None,
                                              _pfn(after) if after and _present(after) else None, gup=True))
                what = {"rw": "io_uring fixed buffer (FOLL_PIN|FOLL_WRITE)",
                        "ro": "read-only pin (process_vm_readv, FOLL_PIN)",
                        "ref": "vmsplice references (FOLL_GET)"}[pin.kind]
                moved = [c for c in changed if _present(c[1]) and _present(c[2]) and _pfn(c[1]) != _pfn(c[2])]
                new = [c for c in changed if not _present(c[1]) and _present(c[2])]
                msg = f"{pin.name}: {what} on {st.args['range'].text}, {nflt} fault(s)"
                if moved:
                    msg += f"; {len(moved)} subpage(s) got a new page" + (" (unshare)" if pin.kind == "ro" else "")
                if new:
                    msg += f"; {len(new)} subpage(s) faulted in"
                s.events.append(msg)
            elif t == "fork":
                s.events.append(f"fork took {rec['ns'] / 1000:.0f} us")
            elif t == "split":
                s.events.append(f"split_pmd: {rec['pmds']} PMD(s) split (a VMA split at one subpage, undone)")
        # ------------------------------------------------ fork-time copies
        if st.op == "fork":
            par, ch = s.state.get(st.proc, {}), s.state.get(st.args["child"], {})
            copied = sum(1 for r in ch for a, b in zip(par.get(r, []), ch[r])
                         if a is not None and b is not None and a.pfn != b.pfn and not b.zero)
            if copied:
                s.events.append(f"fork copied {copied} pages for {st.args['child']}")
        # ----------------------------------------------------- pins taken
        if st.op in ("pin", "vmsplice") and not s.errors:
            pin = plan.pins[st.args["name"]]
            regs = s.state.get(pin.owner, {})
            subs = regs.get(pin.region, [])
            pinned[pin.name] = [subs[i].pfn if i < len(subs) and subs[i] is not None else None
                                for i in range(pin.lo, pin.hi)]
            if any(subs[i].zero for i in range(pin.lo, min(pin.hi, len(subs))) if subs[i] is not None):
                run.pinned_zero.add(pin.name)
            if pin.kind == "ro":
                before = prev_state.get(pin.owner, {}).get(pin.region, [])
                made = 0
                for i in range(pin.lo, pin.hi):
                    a = before[i] if i < len(before) else None
                    b = subs[i] if i < len(subs) else None
                    if a is not None and b is not None and a.pfn == b.pfn:
                        ea, eb = _excl(a, caps), _excl(b, caps)
                        if ea is False and eb is True:
                            made += 1
                if made:
                    s.events.append(f"unshare: {pin.name}'s page made exclusive in place ({made} subpage(s))")
        # ----------------------------------------------------- device views
        for rec in recs:
            if rec.get("t") == "devview" and rec.get("why") == "dma_read" or (
                    rec.get("t") == "devview" and "why" not in rec):
                pin = pin_by_id[rec["pin"]]
                cpu = next((r for r in recs if r.get("t") == "cpuview"), None)
                dev = rec["stamps"]
                if cpu is None:
                    s.events.append(f"device reads {pin.name}: {_stamps_text(dev)} ({pin.owner} maps nothing there)")
                else:
                    differ = sum(1 for a, b in zip(dev, cpu["stamps"]) if a != b)
                    s.events.append(f"device reads {pin.name}: " + ("same data as the CPU" if differ == 0 else
                                    f"{differ} subpage(s) differ from what {pin.owner}'s CPU sees")
                                    + f" ({_stamps_text(dev)})")
        if st.op == "dma_write" and not s.errors:
            s.events.append(f"device wrote through {st.args['pin']}")
        # ------------------------------------------------------ violations
        lost = []
        for name, (alive, locs) in plan.watch[s.k].items():
            if not alive or name not in pinned:
                continue
            pin = plan.pins[name]
            regs = s.state.get(pin.owner, {})
            bad = []
            for idx, loc in enumerate(locs):
                if loc is None:
                    continue
                subs = regs.get(loc[0], [])
                cur = subs[loc[1]] if loc[1] < len(subs) and subs[loc[1]] is not None else None
                now = cur.pfn if cur is not None else None
                if now != pinned[name][idx]:
                    bad.append((loc, pinned[name][idx], now))
            if bad:
                (r, i), was, now = bad[0]
                lost.append(f"{name}: the pin holds {_name_pfn(was)}, {pin.owner} maps {_name_pfn(now)} at "
                            f"{r}[{i}] ({len(bad)} subpage(s))")
        if lost:
            s.violations["pin-lost"] = lost
        if st.op == "write" and not s.errors:
            w = st.proc
            widx = plan.procs.index(w)
            stamp = s.k * 10000 + widx
            lo, hi = st.args["range"].bounds(len(s.state.get(w, {}).get(st.args["range"].region, [])))
            wsubs = s.state.get(w, {}).get(st.args["range"].region, [])[lo:hi]
            written = {x.pfn for x in wsubs if x is not None}
            for rec in recs:
                if rec.get("t") == "devview" and rec.get("why") == "leakcheck" and stamp in rec["stamps"]:
                    pin = pin_by_id[rec["pin"]]
                    s.violations.setdefault("leak", []).append(
                        f"{w} wrote {st.args['range'].text}; {pin.owner}'s {pin.name} reads that data")
            for name in plan.active[s.k]:
                pin = plan.pins[name]
                if pin.kind == "ro" and pin.owner != w and written & set(pinned.get(name, [])):
                    s.violations.setdefault("leak", []).append(
                        f"{w} wrote {st.args['range'].text}, a page {pin.owner} pins through {name}")
            stray = _mapped_elsewhere(s.state, w, written)
            if stray:
                s.violations["stray-write"] = [f"{w}'s store to {st.args['range'].text} landed in a page "
                                               f"{', '.join(sorted(stray))} map(s)"]
        if st.op == "dma_write" and not s.errors:
            pin = plan.pins[st.args["pin"]]
            stray = _mapped_elsewhere(s.state, pin.owner, set(pinned.get(pin.name, [])) - {None})
            if stray:
                s.violations["stray-write"] = [f"the device wrote through {pin.name} into a page "
                                               f"{', '.join(sorted(stray))} map(s)"]
        for e in s.errors:
            s.events.append(f"error: {e}")
        if st.op == "assert":
            s.assertion = evaluate_assert(s, st, caps)
        if s.state:
            prev_state = s.state


def _base(s, proc, region, rid) -> int:
    from .plan import PAGE, REGION_BASE, REGION_STRIDE

    for rec in s.raw:
        if rec.get("t") == "snap":
            for pr in rec["procs"]:
                for rg in pr["regions"]:
                    if rg["r"] == rid:
                        return rg["base"] // PAGE
    return (REGION_BASE + rid * REGION_STRIDE) // PAGE


def _mapped_elsewhere(state: dict, proc: str, pfns: set) -> set:
    if not pfns:
        return set()
    out = set()
    for other, regs in state.items():
        if other == proc:
            continue
        for subs in regs.values():
            if any(x is not None and not x.zero and x.pfn in pfns for x in subs):
                out.add(other)
    return out


def _stamps_text(stamps) -> str:
    c: Counter[str] = Counter()
    for v in stamps:
        if v < 0:
            c["no stamp"] += 1
        else:
            k, w = divmod(v, 10000)
            c[f"step {k} by {'the device' if w == DEVICE else f'process #{w}'}"] += 1
    return ", ".join(f"{n} x {t}" for t, n in c.most_common(3))


def _excl(x: Sub, caps) -> bool | None:
    """PageAnonExclusive of the page as the model reads it (a PMD-mapped THP:
    the head's flag), or None where kpageflags cannot tell: on kernels that
    report the folio's flags (6.9+) a PTE-mapped THP subpage shows the head's."""
    mode = getattr(caps, "anon_exclusive_flags", "folio")
    if mode == "none":
        return None
    if not x.thp:
        return _bit(x.kflags, KPF_EXCL)
    if x.level == "pmd":
        return _bit(x.head_kflags, KPF_EXCL)
    if mode == "page":
        return _bit(x.kflags, KPF_EXCL)
    return None


def evaluate_assert(s: LiveStep, st, caps) -> tuple:
    """(held, message); held is None where the kernel does not show the counter."""
    a = st.args
    text = f"{a['func']}({a['range'].text}) {a['cmp']} {a['value']}"
    func = a["func"]
    rng = a["range"]
    cands = [st.proc] if st.proc else list(s.state)
    sub = who = None
    for p in cands:
        subs = s.state.get(p, {}).get(rng.region)
        if not subs:
            continue
        lo, _ = rng.bounds(len(subs))
        if lo < len(subs) and subs[lo] is not None:
            sub, who = subs[lo], p
            break
    if sub is None:
        return None, f"{text}: nothing observable is mapped at {rng.text}"
    if func == "page_mapcount" and getattr(caps, "kpagecount", "precise") == "precise" and not sub.zero:
        value = sub.mapcount
    elif func == "anon_exclusive" and not sub.zero:
        value = _excl(sub, caps)
        if value is None:
            return None, f"{text}: kpageflags shows the folio's flag, not this subpage's"
        value = int(value)
    else:
        return None, f"{text}: not observable from user space (only page_mapcount via kpagecount and " \
                     f"anon_exclusive via kpageflags are)"
    import operator
    ops = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
           ">": operator.gt, ">=": operator.ge}
    held = ops[a["cmp"]](value, a["value"])
    return held, f"{text}: {func} is {value} (as {who} maps it)"
