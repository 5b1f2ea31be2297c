"""Readable per-step observations: for each process and region, runs of
subpages with the same mapping, named by their pages (the first page seen
gets ``F0`` for a THP, ``p0`` for an order-0 page, ``Z`` for the zero
page), PMD or PTE, PageAnonExclusive where kpageflags shows it, kpagecount,
and the step's faults and events."""

from __future__ import annotations

from .observe import KPF_EXCL, _bit


class Namer:
    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.thp = 0
        self.small = 0

    def page(self, x) -> str:
        if x.zero:
            return "Z"
        head = x.head if x.thp and x.head else x.pfn
        if head not in self.names:
            if x.thp:
                self.names[head] = f"F{self.thp}"
                self.thp += 1
            else:
                self.names[head] = f"p{self.small}"
                self.small += 1
        base = self.names[head]
        return f"{base}+{x.pfn - head}" if x.thp else base


def step_lines(s, namer: Namer | None = None) -> list[str]:
    namer = namer or getattr(s, "_namer", None) or Namer()
    out = [f"line {s.line}: {s.text}"]
    for e in s.events:
        out.append(f"  {e}")
    for kind, details in s.violations.items():
        out.append(f"  violation {kind}: {details[0]}")
    if s.assertion is not None:
        held, msg = s.assertion
        out.append(f"  assert {'holds' if held else 'FAILS' if held is False else 'not observable'}: {msg}")
    for proc, regs in s.state.items():
        for region, subs in regs.items():
            out.append(f"  {proc} {region}: " + "; ".join(_runs(subs, namer)))
    return out


def _runs(subs, namer) -> list[str]:
    out = []
    i = 0
    n = len(subs)
    while i < n:
        x = subs[i]
        j = i + 1
        if x is None:
            while j < n and subs[j] is None:
                j += 1
            out.append(f"[{i}:{j}] -")
            i = j
            continue
        key = (x.level, _bit(x.kflags, KPF_EXCL), _bit(x.head_kflags, KPF_EXCL), x.mapcount, x.thp, x.head)
        while j < n and subs[j] is not None and (subs[j].level, _bit(subs[j].kflags, KPF_EXCL),
                                                 _bit(subs[j].head_kflags, KPF_EXCL), subs[j].mapcount,
                                                 subs[j].thp, subs[j].head) == key:
            j += 1
        first = namer.page(x)
        last = namer.page(subs[j - 1]) if j - 1 > i else ""
        excl = "excl" if (_bit(x.head_kflags, KPF_EXCL) if x.thp and x.level == "pmd" else _bit(x.kflags, KPF_EXCL)) else "shared"
        out.append(f"[{i}:{j}] {first}{'..' + last if last else ''} {x.level} {excl} kpagecount={x.mapcount}")
        i = j
    return out
