"""Property-based tests of the engine's internal consistency (hypothesis).

A rule-based state machine drives random statement sequences -- several
processes, small and 512-subpage THPs -- through every era.  After each step:

* the counters agree with the page tables and pins (``check_counters``; a
  mismatch raises ThpvizDefect, a bug of thpviz);
* the scoped check (``ScopedChecker``, what the runner uses) finds exactly
  what the full check finds: the same violations with the same details, and
  the same defect if there is one;
* the vectorised rmap check agrees with the kernel-shaped ``rmap_walk``;
* a refused operation left the world exactly as it was -- it changed nothing
  before refusing, and rolling back its journal changes nothing either;
* a clone taken before the step still shows the world as it was (the clone
  shares arrays and page tables copy-on-write);
* the snapshot recorder rebuilds the world of the last step, and of an
  earlier step chosen at random, exactly;
* under ``4.6`` (the merged fix) no step reports ``rmap-broken`` or ``bug``.

The struct page arrays are read-only except inside the engine's tracked
writes (``MemMap.set_strict``), so a write that bypasses the undo journal
fails where it happens.

Every step is noted as a ``.thp`` line, so a shrunk failure prints a
scenario that ``thpviz run`` reproduces.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from thpviz import invariants
from thpviz.eras import ERAS
from thpviz.model.events import OpError, ThpvizDefect
from thpviz.model.snapshots import Recorder, Snapshots
from thpviz.model.world import World
from thpviz.scenario.report import mapping_dicts, page_dicts

PROCS = ("P", "C1", "C2", "C3")


def fingerprint(world):
    pins = {k: (p.active, p.pfns.tolist(), p.vas.tolist(), p.excused.tolist()) for k, p in world.pins.items()}
    vmas = {m.name: [(v.start, v.end, v.write, v.dontcopy, v.anon_vma, v.avcs) for v in m.vmas]
            for m in world.mms.values()}
    return (page_dicts(world), mapping_dicts(world), pins, vmas, len(world.anon_vmas))


def full_state(world):
    """Everything the world holds, for exact comparisons (every memmap field
    frame by frame, every page-table entry, process, pin and counter)."""
    mem = world.mem
    fields = {name: getattr(mem, name)[: mem.size].tolist() for name, _, _ in mem._FIELDS}
    mms = {}
    for m in world.mms.values():
        pt = {}
        for ext, e in m.pt.items():
            pt[ext] = ("pmd", e.head, e.write, e.dirty) if hasattr(e, "head") else (
                "pte", e.pfn.tolist(), e.write.tolist(), e.dirty.tolist())
        mms[m.name] = (m.id, m.alive, m.has_pinned, dict(m.regions), pt,
                       [(v.start, v.end, v.pgoff, v.write, v.dontcopy, v.huge, v.anon_vma, v.avcs) for v in m.vmas])
    pins = {k: (p.owner, p.kind, p.write, p.active, p.pfns.tolist(), p.vas.tolist(), p.excused.tolist())
            for k, p in world.pins.items()}
    return (fields, mms, list(mms), pins, list(pins), list(world.anon_vmas),
            (world.clock, world.next_va, world.mm_serial, mem.size, mem.thp_serial, mem.small_serial))


def outcome(check, world):
    """What a check returns, or the defect it raises."""
    try:
        return check(world)
    except ThpvizDefect as e:
        return ("defect", str(e))


def rmap_walk_broken(world):
    """Mappings the kernel-shaped rmap walk misses, page by page."""
    mem = world.mem
    missed = 0
    for h in mem.page_starts():
        if mem.kind[h] == 2 or mem.freed[h]:
            continue
        _, m = world.rmap_walk(int(h))
        missed += len(m)
    return missed


class EngineMachine(RuleBasedStateMachine):
    era_id = "4.6"

    @initialize(nr=st.sampled_from([4, 8, 512]))
    def setup(self, nr):
        self.world = World(ERAS[self.era_id], nr)
        self.world.mem.set_strict(True)
        self.checker = invariants.scoped_checker(self.world)
        self.recorder = Recorder(self.world)
        self.states = [full_state(self.world)]
        self.nr = nr
        self.lines = [f"thp: {nr}"]
        self.n_regions = 0
        self.n_pins = 0
        self.n_procs = 1
        self.step_events = []
        self._do("P", "mmap", lambda w: w.mmap("P", "A", 2), "mmap A 2")

    # -- helpers --------------------------------------------------------------
    def _alive(self):
        return [m for m in self.world.mms.values() if m.alive]

    def _do(self, proc, op, fn, text):
        line = f"{proc}: {text}" if proc else text
        note(line)
        self.lines.append(line)
        before = self.world.clone()
        fp = fingerprint(before)
        state = full_state(before)
        self.world.log.faults.clear()
        self.world.log.events.clear()
        try:
            fn(self.world)
        except OpError:
            # a refused operation raises before it changes anything (the
            # runner also rolls back its journal, as a second line of defence)
            assert fingerprint(self.world) == fp, f"{line} was refused but changed the world"
            self.world.rollback()
            assert full_state(self.world) == state, f"rolling back the refused {line} changed the world"
            self.world.log.events.clear()
        self.world.commit()
        self.step_events = [e.kind for e in self.world.log.events]
        # the clone shares arrays and page tables with the world: it must
        # not have seen the step
        assert full_state(before) == state, f"{line} changed a clone taken before it"
        self.recorder.snap(self.world)
        self.states.append(full_state(self.world))

    def _range(self, data, mm):
        names = sorted(mm.regions)
        name = data.draw(st.sampled_from(names))
        start, size = mm.regions[name]
        cuts = sorted({0, 1, self.nr // 2, self.nr - 1, self.nr, size - 1, size} & set(range(size + 1)))
        lo = data.draw(st.sampled_from(cuts[:-1]))
        hi = data.draw(st.sampled_from([c for c in cuts if c > lo]))
        text = name if (lo, hi) == (0, size) else (f"{name}[{lo}]" if hi == lo + 1 else f"{name}[{lo}:{hi}]")
        return start + lo, start + hi, text

    def _proc(self, data):
        return data.draw(st.sampled_from(sorted(m.name for m in self._alive())))

    # -- rules ----------------------------------------------------------------
    @precondition(lambda self: any(m.alive for m in self.world.mms.values()))
    @rule(data=st.data(), write=st.booleans())
    def access(self, data, write):
        p = self._proc(data)
        lo, hi, t = self._range(data, self.world.mms[p])
        self._do(p, "access", lambda w: w.access(p, lo, hi, write), f"{'write' if write else 'read'} {t}")

    @precondition(lambda self: any(m.alive for m in self.world.mms.values()))
    @rule(data=st.data(), op=st.sampled_from(["munmap", "dontneed", "dontfork", "split_pmd", "split_page"]))
    def range_op(self, data, op):
        p = self._proc(data)
        lo, hi, t = self._range(data, self.world.mms[p])
        fn = {
            "munmap": lambda w: w.munmap(p, lo, hi),
            "dontneed": lambda w: w.madvise_dontneed(p, lo, hi),
            "dontfork": lambda w: w.madvise_dontfork(p, lo, hi),
            "split_pmd": lambda w: w.split_pmd(p, lo, hi),
            "split_page": lambda w: w.split_page(p, lo),
        }[op]
        self._do(p, op, fn, f"{op} {t}")

    @precondition(lambda self: any(m.alive for m in self.world.mms.values()))
    @rule(data=st.data(), write=st.booleans())
    def mprotect(self, data, write):
        p = self._proc(data)
        lo, hi, t = self._range(data, self.world.mms[p])
        self._do(p, "mprotect", lambda w: w.mprotect(p, lo, hi, write), f"mprotect {t} {'rw' if write else 'ro'}")

    @precondition(lambda self: any(m.alive for m in self.world.mms.values()))
    @rule(data=st.data())
    def mremap(self, data):
        p = self._proc(data)
        lo, hi, t = self._range(data, self.world.mms[p])
        self.n_regions += 1
        name = f"R{self.n_regions}"
        self._do(p, "mremap", lambda w: w.mremap(p, lo, hi, name), f"mremap {t} {name}")

    @precondition(lambda self: any(m.alive for m in self.world.mms.values()))
    @rule(data=st.data(), kind=st.sampled_from(["pin ro", "pin rw", "vmsplice"]))
    def gup(self, data, kind):
        p = self._proc(data)
        lo, hi, t = self._range(data, self.world.mms[p])
        hi = min(hi, lo + 3)
        t = self.world.mms[p].describe(lo, hi)
        self.n_pins += 1
        name = f"g{self.n_pins}"
        write = kind == "pin rw"
        k = "ref" if kind == "vmsplice" else "pin"
        text = f"{kind.split()[0]} {t} {'rw ' if write else ('ro ' if k == 'pin' else '')}as {name}"
        self._do(p, "gup", lambda w: w.gup(p, lo, hi, write, k, name), text)

    @precondition(lambda self: any(p.active for p in self.world.pins.values()))
    @rule(data=st.data())
    def unpin(self, data):
        name = data.draw(st.sampled_from(sorted(k for k, p in self.world.pins.items() if p.active)))
        self._do(None, "unpin", lambda w: w.unpin(name), f"unpin {name}")

    @precondition(lambda self: any(p.active and p.write for p in self.world.pins.values()))
    @rule(data=st.data())
    def dma_write(self, data):
        name = data.draw(st.sampled_from(sorted(k for k, p in self.world.pins.items() if p.active and p.write)))
        self._do(None, "dma_write", lambda w: w.dma_write(name), f"dma_write {name}")

    @precondition(lambda self: self.n_procs < len(PROCS) and any(m.alive for m in self.world.mms.values()))
    @rule(data=st.data())
    def fork(self, data):
        p = self._proc(data)
        child = PROCS[self.n_procs]
        self.n_procs += 1
        self._do(p, "fork", lambda w: w.fork(p, child), f"fork {child}")

    @precondition(lambda self: len([m for m in self.world.mms.values() if m.alive]) > 1)
    @rule(data=st.data())
    def exit(self, data):
        p = self._proc(data)
        self._do(p, "exit", lambda w: w.exit(p), "exit")

    # -- invariants -------------------------------------------------------------
    @invariant()
    def scoped_check_agrees(self):
        """The scoped check finds what the full check finds, defects included."""
        if not hasattr(self, "world"):
            return
        full = outcome(invariants.check, self.world)
        scoped = outcome(self.checker.check, self.world)
        assert scoped == full, f"scoped check {scoped!r} != full check {full!r}"

    @invariant()
    def snapshots_rebuild_the_steps(self):
        if not hasattr(self, "world"):
            return
        snaps = Snapshots(self.recorder)
        assert len(snaps) == len(self.states)
        assert full_state(snaps[-1]) == self.states[-1], "the last snapshot differs from the world"
        k = len(self.states) * 7 // 11
        assert full_state(snaps[k]) == self.states[k], f"snapshot {k} differs from the world at step {k}"

    @invariant()
    def counters_consistent(self):
        if not hasattr(self, "world"):
            return
        found = invariants.check(self.world)  # raises ThpvizDefect on a mismatch
        broken_fast = "rmap-broken" in found
        broken_walk = rmap_walk_broken(self.world) > 0
        assert broken_fast == broken_walk, "vectorised rmap check disagrees with rmap_walk"
        if self.era_id == "4.6":
            assert not broken_fast, "4.6 broke the rmap"
            assert "bug" not in self.step_events, "4.6 hit a BUG"
        if self.era_id == "4.4":
            mem = self.world.mem
            # 4.4 never maps a THP with PTEs
            for m in self._alive():
                for e in m.pt.values():
                    if hasattr(e, "pfn"):
                        p = e.pfn[e.pfn >= 0]
                        assert not (mem.nr[mem.head[p]] > 1).any()


def machine_for(era_id):
    cls = type(f"Machine_{era_id.replace('.', '_').replace('-', '_')}", (EngineMachine,), {"era_id": era_id})
    return cls


@pytest.mark.parametrize("era_id", list(ERAS))
def test_engine_consistency(era_id):
    machine = machine_for(era_id)
    machine.TestCase.settings = settings(
        # THPVIZ_HYPOTHESIS_EXAMPLES raises the budget for a long local hunt
        max_examples=int(os.environ.get("THPVIZ_HYPOTHESIS_EXAMPLES", 60)),
        stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    machine.TestCase().runTest()


def test_max_based_batch_matches_sequential_faults():
    """The closed form in eras.base.max_based_batch equals deciding the
    faults one by one, lowering the counter after each copy."""
    from thpviz.eras.base import max_based_batch
    from thpviz.model.memmap import MemMap

    rng = np.random.default_rng(7)
    for _ in range(300):
        nr = int(rng.choice([4, 8, 16]))
        mem = MemMap(64)
        h = mem.alloc_compound(nr)
        dm = bool(rng.integers(0, 2))
        cmc = int(rng.integers(1, 3)) if dm else int(rng.integers(0, 2))
        mc = rng.integers(1, 4, size=nr) + dm
        mem.mapcount[h : h + nr] = mc
        mem.cmc[h], mem.double_map[h] = cmc, dm
        k = int(rng.integers(1, nr + 1))
        subs = np.sort(rng.choice(nr, size=k, replace=False))
        n_cow, total = max_based_batch(mem, h, subs)
        # sequential reference
        cur = mc.copy()
        seq_cow = 0
        for s in subs:
            if cur.max() - dm + cmc <= 1:
                break
            cur[s] -= 1
            seq_cow += 1
        assert n_cow == seq_cow
        assert total == int(cur.sum()) - nr * dm + cmc
