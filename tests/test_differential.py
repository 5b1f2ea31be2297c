"""Differential tests: one random sequence, every era, and the agreements the
thread states.

* kirill-k1 and the merged fix decide every PMD fault alike: on a PMD-mapped
  THP ``total_mapcount == 1`` and ``page_trans_huge_mapcount == 1`` mean the
  same thing (Kirill and Andrea agreed on the PMD path;
  https://lore.kernel.org/all/20160502152307.GA12310@redhat.com/).
* 4.5 and 4.6 decide the PMD path alike when nothing holds a GUP reference
  on the THP (the regression is the page_count test seeing a pin).
* 4.6 moves ``page->mapping`` exactly when ``total_mapcount`` was 1 at the
  reusing fault (the "two counts" answer to Kirill's counterexample).
* Modern invariants: from 5.19 no leak, and no lost FOLL_PIN except a
  read-only pin of the zero page before 6.2 (a FOLL_GET reference such as
  vmsplice's still gets lost: that is its accepted semantics); a FOLL_PIN-ned anonymous page is
  exclusive; from 5.9 no stray write; no era ever writes a CPU store into a
  page another process maps.
"""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thpviz.eras import ERAS, MODERN_ERAS
from thpviz.eras import counters as C
from thpviz.eras.v4_6 import Era46
from thpviz.model.memmap import KIND_ZERO
from thpviz.model.mm import Pmd
from thpviz.scenario import parse_text, run

NR = 8
RANGES = ("A", "A[0]", "A[3]", "A[0:4]", "A[4:8]", "A[2:6]", "A[7]")


@st.composite
def programs(draw):
    """A valid ``.thp`` program: processes, pins and regions tracked as it is
    drawn, so every statement names things that exist."""
    lines = [f"thp: {NR}", "P: mmap A" + draw(st.sampled_from(["", "", " nohuge"])), "P: write A"]
    alive, used, pins, n = ["P"], {"P"}, [], 0
    for _ in range(draw(st.integers(2, 12))):
        p = draw(st.sampled_from(alive))
        r = draw(st.sampled_from(RANGES))
        op = draw(st.sampled_from([
            "write", "write", "read", "fork", "exit", "munmap", "dontneed", "mprotect ro", "mprotect rw",
            "split_pmd", "pin rw", "pin ro", "vmsplice", "unpin", "dma_write", "dontfork", "dofork",
            "deferred_split", "split_page", "mremap", "mremap unaligned",
        ]))
        if op == "fork":
            if len(used) >= 4:
                continue
            c = f"C{len(used)}"
            used.add(c)
            alive.append(c)
            lines.append(f"{p}: fork {c}")
        elif op == "exit":
            if len(alive) == 1:
                continue
            alive.remove(p)
            lines.append(f"{p}: exit")
        elif op in ("pin rw", "pin ro", "vmsplice"):
            n += 1
            kind, mode = op.split()[0], (op.split() + [""])[1]
            lines.append(f"{p}: {kind} {r} {mode + ' ' if mode else ''}as g{n}")
            pins.append((f"g{n}", mode == "rw"))
        elif op == "unpin":
            if pins:
                lines.append(f"unpin {pins.pop(0)[0]}")
        elif op == "dma_write":
            w = [name for name, rw in pins if rw]
            if w:
                lines.append(f"dma_write {w[-1]}")
        elif op.startswith("mremap"):
            n += 1
            lines.append(f"{p}: mremap {r} M{n}{' unaligned' if ' ' in op else ''}")
        elif op == "deferred_split":
            lines.append("deferred_split")
        elif op.startswith("mprotect"):
            lines.append(f"{p}: mprotect {r} {op.split()[1]}")
        else:
            lines.append(f"{p}: {op} {r}")
    return "\n".join(lines) + "\n"


SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def pmd_heads(world):
    for mm in world.alive_mms():
        for entry in mm.pt.values():
            if isinstance(entry, Pmd) and world.mem.kind[entry.head] != KIND_ZERO:
                yield mm, entry.head


@SETTINGS
@given(programs())
def test_pmd_decisions_agree_as_the_thread_says(text):
    scn = parse_text(text)
    r = run(scn, ERAS["4.6"], keep_snapshots=True)
    k1, e45, e46 = ERAS["kirill-k1"], ERAS["4.5"], ERAS["4.6"]
    for w in r.snapshots:
        for mm, h in pmd_heads(w):
            d46 = e46.do_huge_pmd_wp_page(w, mm, h).reuse
            assert k1.do_huge_pmd_wp_page(w, mm, h).reuse == d46
            n = int(w.mem.nr[h])
            if w.mem.pins[h : h + n].sum() + w.mem.refs[h : h + n].sum() == 0:
                assert e45.do_huge_pmd_wp_page(w, mm, h).reuse == d46


class Recording46(Era46):
    """4.6 that records, per run of PTE faults on a THP, the total_mapcount
    the first reusing fault saw (computed independently of the era: the total
    before the run minus the copies made before it) and whether it moved."""

    def __init__(self):
        self.calls = []

    def do_wp_page_thp(self, world, mm, h, subs, unshare=False):
        total_before = C.total_mapcount(world.mem, h)
        b = super().do_wp_page_thp(world, mm, h, subs, unshare)
        if b.reuse.any():
            first = int(np.argmax(b.reuse))
            self.calls.append((total_before - first, bool(b.move.any())))
        return b


@SETTINGS
@given(programs())
def test_46_moves_the_anon_vma_exactly_when_the_total_was_one(text):
    era = Recording46()
    run(parse_text(text), era)
    for total, moved in era.calls:
        assert moved == (total == 1), f"total_mapcount {total} at the reusing fault, moved={moved}"


@SETTINGS
@given(programs())
def test_modern_guarantees(text):
    scn = parse_text(text)
    for era_id in MODERN_ERAS:
        era = ERAS[era_id]
        r = run(scn, era)
        got = r.violations
        assert "rmap-broken" not in got and "bug" not in got
        if era_id in ("5.9", "5.18", "5.19", "6.1", "6.12", "6.15"):
            assert "stray-write" not in got, (era_id, text)
        if not era.has_anon_exclusive:
            continue
        assert "leak" not in got, (era_id, text)
        for step in r.steps:
            for detail in step.violations.get("pin-lost", ()):
                if r.world.pins[detail.split(":")[0]].kind != "pin":
                    continue  # a FOLL_GET reference (vmsplice) never promised to follow the page
                # a FOLL_PIN is lost only as a read-only pin of the zero page, before 6.2 (84209e87c696)
                assert not era.unshare_zero_page and "zero_page" in detail, (era_id, detail, text)
        w = r.world
        for pin in w.pins.values():
            if pin.kind != "pin" or not pin.active or not w.mms[pin.owner].alive:
                continue
            live = ~pin.excused
            anon = w.mem.kind[pin.pfns] != KIND_ZERO
            for p in pin.pfns[live & anon]:
                assert C.anon_exclusive(w.mem, int(p)) == 1, (era_id, pin.name, text)


@SETTINGS
@given(programs())
def test_no_era_lets_a_cpu_write_reach_another_process(text):
    scn = parse_text(text)
    for era in ERAS.values():
        r = run(scn, era)
        for step in r.steps:
            for e in step.events:
                if e.kind == "stray-write":
                    assert e.message.startswith("the device"), (era.id, e.message, text)
