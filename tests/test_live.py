"""The live lab's fast tier: probe and skip paths by simulation, the plan
compiler, the decision rules on synthetic observations, kernel -> era,
the initramfs format, recorded results.  Nothing here needs root or QEMU;
what runs a real kernel is in test_live_kernel.py (marker ``live``)."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from thpviz.live import observe, plan, probe as probe_mod
from thpviz.live.judge import ScenarioResult, compare, era_window, kernel_to_era
from thpviz.live.lab import load
from thpviz.scenario import parse_text

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "data" / "scenarios" / "lab"
PY = sys.executable


def cli(*args, env=None, timeout=300):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([PY, "-m", "thpviz.cli", "live", *args], capture_output=True, text=True,
                          env=e, cwd=ROOT, timeout=timeout)


# ------------------------------------------------------------------ probe
def test_probe_never_raises_and_nonlinux_skips_everything():
    c = probe_mod.probe("nonlinux")
    assert not c.linux
    assert "needs Linux" in c.require("thp")
    assert c.executor is None  # nothing was built or run


@pytest.mark.parametrize("sim,feature,words", [
    ("noroot", "lab", "not root"),
    ("zeropfn", "lab", "PFNs read as 0"),
    ("nothp", "thp", "THP disabled"),
    ("nouring", "pin_rw", "io_uring is disabled"),
])
def test_probe_simulations_give_reasons(sim, feature, words):
    if not sys.platform.startswith("linux"):
        pytest.skip("simulations start from a Linux machine")
    c = probe_mod.probe(sim, run_executor=False)
    reason = c.reasons.get(feature)
    assert reason and words in reason, reason


def test_unknown_simulation_is_an_error():
    with pytest.raises(ValueError, match="unknown simulation"):
        probe_mod.probe("nokernel", run_executor=False)


def test_probe_describe_names_every_fact():
    c = probe_mod.probe("noroot", run_executor=False)
    text = "\n".join(c.describe())
    for word in ("Linux:", "root:", "PFNs visible:", "THP:", "io_uring:", "cannot run [lab]"):
        assert word in text


# --------------------------------------------------- skip paths, end to end
@pytest.mark.parametrize("sim", ["nonlinux", "noroot", "zeropfn"])
def test_cli_skips_everything_with_reasons_and_exit_0(sim):
    r = cli(str(LAB), env={"THPVIZ_LIVE_SIMULATE": sim})
    assert r.returncode == 0, r.stderr
    n = len(list(LAB.glob("*.thp")))
    assert r.stdout.strip().splitlines()[-1] == f"0 passed, 0 failed, {n} skipped"
    skipped = [l for l in r.stdout.splitlines() if ": skipped: " in l]
    assert len(skipped) == n and all(l.split(": skipped: ", 1)[1] for l in skipped)


def test_cli_without_thp_skips_thp_scenarios_only():
    files = [str(LAB / "l01-pin-rw-fork-parent-writes.thp"), str(LAB / "l09-split-fork-exit-writes.thp")]
    r = cli(*files, env={"THPVIZ_LIVE_SIMULATE": "nothp,noroot"})
    assert r.returncode == 0
    assert r.stdout.strip().endswith("0 passed, 0 failed, 2 skipped")


def test_cli_without_io_uring_names_io_uring():
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("needs root on Linux to get past the PFN check")
    why = probe_mod.probe().require()
    if why:
        pytest.skip(f"the lab cannot run here at all: {why}")
    r = cli(str(LAB / "l01-pin-rw-fork-parent-writes.thp"), env={"THPVIZ_LIVE_SIMULATE": "nouring"})
    assert r.returncode == 0
    assert "io_uring is disabled" in r.stdout and "1 skipped" in r.stdout


def test_cli_probe_json_describes_the_machine():
    r = cli("--probe", "--json", env={"THPVIZ_LIVE_SIMULATE": "noroot"})
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for key in ("release", "cpu", "thp_mode", "pfn_visible", "kpagecount", "io_uring", "reasons"):
        assert key in d
    assert d["simulated"] == ["noroot"]


def test_cli_bad_input():
    r = cli("no/such/file.thp")
    assert r.returncode == 2 and "no/such/file.thp:0:0: cannot read" in r.stderr
    r = cli(str(LAB), "--era", "9.9")
    assert r.returncode == 2 and "unknown era" in r.stderr


def test_cli_json_has_machine_and_results():
    r = cli(str(LAB / "l05-child-vmsplice-unmap-parent-writes.thp"), "--json",
            env={"THPVIZ_LIVE_SIMULATE": "noroot"})
    d = json.loads(r.stdout)
    assert d["machine"]["simulated"] == ["noroot"]
    assert d["summary"] == {"passed": 0, "failed": 0, "skipped": 1}
    assert d["results"][0]["status"] == "skipped" and d["results"][0]["reason"]


# ------------------------------------------------------- random scenarios
def test_random_scenarios_are_reproducible_and_pass_check(tmp_path):
    from thpviz.live.fuzz import random_scenario, write_scenarios

    assert random_scenario(7) == random_scenario(7)
    assert random_scenario(7) != random_scenario(8)
    files = write_scenarios(tmp_path, 0, 12)
    assert len(files) == 12
    for f in files:
        s = load(f)
        assert s.thp == 512 and s.statements[-1].op == "write"
        assert set(s.expects) >= {"6.1", "6.12", "6.15"}
    r = subprocess.run([PY, "-m", "thpviz.cli", "check", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_cli_random_skips_without_the_lab_and_cleans_up(tmp_path):
    keep = tmp_path / "kept"
    r = cli("--random", "3", "--seed", "5", "--keep", str(keep), env={"THPVIZ_LIVE_SIMULATE": "noroot"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("0 passed, 0 failed, 3 skipped")
    assert sorted(p.name for p in keep.iterdir()) == ["random-5.thp", "random-6.thp", "random-7.thp"]
    r = cli("--random", "2", str(LAB))
    assert r.returncode == 2 and "--random takes no files" in r.stderr
    r = cli("--random", "0")
    assert r.returncode == 2


# ------------------------------------------------------------------- plan
def scn(text):
    return parse_text(text, "<t>")


def test_plan_refuses_other_thp_sizes():
    with pytest.raises(plan.Unexpressible, match="thp: 8"):
        plan.compile_plan(scn("thp: 8\nP: mmap A\nP: write A\n"))


def test_plan_text_and_ids():
    p = plan.compile_plan(scn("P: mmap A\nP: write A[3]\nP: pin A[3] rw as d\nP: fork C\nC: write A\n"
                              "dma_read d\n"))
    lines = p.text.splitlines()
    assert lines[:3] == ["thp 512", "procs 2", "rings 1"]
    assert "step 3 3 pin 0 0 3 4 0 1" in lines
    assert "step 4 4 fork 0 1" in lines
    assert "step 6 6 dma_read 0 0 0 3 4" in lines  # owner P maps the pinned page at A[3]
    assert lines[-1] == "end"


def test_plan_watch_follows_munmap_mremap_and_exit():
    p = plan.compile_plan(scn("P: mmap A\nP: write A\nP: pin A[0:4] rw as d\nP: munmap A[0:1]\n"
                              "P: mremap A[2:4] B\nP: exit\n"))
    alive, locs = p.watch[4]["d"]
    assert locs[0] is None and locs[1] == ("A", 1)        # unmapped by its owner: excused
    assert p.watch[5]["d"][1][2:] == [("B", 0), ("B", 1)]  # moved with the pages
    assert p.watch[6]["d"][0] is False                    # owner gone


def test_plan_read_only_pin_cannot_outlive_its_read():
    with pytest.raises(plan.Unexpressible, match="ends with its device read"):
        plan.compile_plan(scn("P: mmap A\nP: write A\nP: pin A[1] ro as d\ndma_read d\nP: fork C\n"))


def test_plan_split_pmd_mask_follows_dontfork():
    p = plan.compile_plan(scn("P: mmap A 2\nP: write A\nP: dontfork A[512:]\nP: split_pmd A\n"))
    assert "step 4 4 split_pmd 0 0 0 1024 2" in p.text.splitlines()


def test_plan_features_need_the_machine():
    c = probe_mod.probe("noroot", run_executor=False)
    c.reasons.pop("lab", None)
    with pytest.raises(plan.Unexpressible, match="split_huge_page"):
        plan.compile_plan(scn("P: mmap A\nP: write A\nP: split_page A\n"), c)
    with pytest.raises(plan.Unexpressible, match="deferred-split"):
        plan.compile_plan(scn("P: mmap A\nP: write A\ndeferred_split\n"), c)


# --------------------------------------------------------------- observe
P = 1 << 63


@pytest.mark.parametrize("before,after,kb,ka,want", [
    (0, P | 100, 0, 0, "new"),
    (P | 7, P | 100, 1 << observe.KPF_ZERO, 0, "new"),
    (P | 100, P | 100, 0, 0, "reuse"),
    (P | 100, P | 200, 0, 0, "cow-small"),
    (P | 100, P | 512, 0, 1 << observe.KPF_THP, "cow-huge"),
])
def test_classify(before, after, kb, ka, want):
    assert observe.classify(before, after, kb, ka) == want


def _snap(k, procs):
    """procs: {p: [(rid, [(first, count, pfn, lvl, kf)])]}"""
    return {"t": "snap", "k": k, "procs": [
        {"p": p, "pid": 1, "regions": [{"r": r, "base": 0x600000000000, "n": 512,
                                        "runs": [[f, c, pfn, 1, lvl, 0, 1, kf, 0, 0] for f, c, pfn, lvl, kf in runs]}
                                       for r, runs in regs]} for p, regs in procs.items()]}


def test_build_run_derives_decisions_and_pin_lost():
    s = scn("P: mmap A\nP: write A\nP: pin A[3] rw as d\nP: fork C\nP: write A[3]\n")
    p = plan.compile_plan(s)
    recs = [{"t": "step", "k": 1}, _snap(1, {0: [(0, [])]}),
            {"t": "step", "k": 2},
            {"t": "faults", "k": 2, "p": 0, "r": 0, "access": "write",
             "recs": [[0, 0, P | 1024, 1, 0, 2, 0, 1 << observe.KPF_THP]], "nofault": 511},
            _snap(2, {0: [(0, [(0, 512, 1024, 2, 0)])]}),
            {"t": "step", "k": 3}, {"t": "gup", "k": 3, "p": 0, "r": 0, "what": "pin", "lo": 3, "faults": 0,
                                    "changed": []},
            _snap(3, {0: [(0, [(0, 512, 1024, 2, 0)])]}),
            {"t": "step", "k": 4}, _snap(4, {0: [(0, [(0, 512, 1024, 2, 0)])], 1: [(0, [(0, 512, 1024, 2, 0)])]}),
            {"t": "step", "k": 5},
            # the write copies A[3]: the pinned page is no longer P's
            {"t": "faults", "k": 5, "p": 0, "r": 0, "access": "write",
             "recs": [[3, P | 1027, P | 5000, 1, 1, 1, 0, 0]], "nofault": 0},
            _snap(5, {0: [(0, [(0, 3, 1024, 1, 0), (3, 1, 5000, 1, 0), (4, 508, 1028, 1, 0)])],
                      1: [(0, [(0, 512, 1024, 2, 0)])]}),
            {"t": "end"}]
    run = observe.build_run(p, recs)
    assert run.ok
    assert run.last_write == "cow-small"
    assert run.violations == {"pin-lost"}
    assert "pin-lost" in run.steps[4].violations and "pin-lost" not in run.steps[3].violations
    assert any("pfn 0x403" in m for m in run.steps[4].violations["pin-lost"])


def test_build_run_reports_an_incomplete_run():
    s = scn("P: mmap A\nP: write A\n")
    run = observe.build_run(plan.compile_plan(s), [{"t": "step", "k": 1}])
    assert not run.ok and "stopped after 1 of 2" in run.problem


# ------------------------------------------------------------------ judge
@pytest.mark.parametrize("release,era", [
    ("6.1.0-57-cloud-amd64", "6.1"), ("6.12.117+deb12-cloud-amd64", "6.12"), ("6.18.44-fc", "6.15"),
    ("6.15.0", "6.15"), ("6.6.30", "6.12"), ("5.19.1", "5.19"), ("5.10.0", "5.9"), ("4.19.0", "4.6"),
    ("4.5.0", "4.5"), ("3.10.0", "4.4"),
])
def test_kernel_to_era(release, era):
    assert kernel_to_era(release)[0] == era


def test_era_window_is_chronological():
    assert era_window("6.12") == ["6.1", "6.12", "6.15"]
    assert era_window("6.15")[-1] == "6.15"


class _FakeRun:
    def __init__(self, last, viol, steps=()):
        self.last_write, self.violations, self.steps = last, viol, list(steps)


def test_compare_against_expect_and_model():
    s = load(str(LAB / "l09-split-fork-exit-writes.thp"))
    res = ScenarioResult(s.path, era="6.15")
    compare(res, _FakeRun("cow-small", set()), s, "6.15")
    assert res.status == "failed" and res.judged_against == "expect 6.15"
    assert "expected decision reuse, got cow-small" in res.mismatches[0]
    res = ScenarioResult(s.path, era="6.1")
    compare(res, _FakeRun("cow-small", set()), s, "6.1")
    assert res.status == "passed"


def test_first_difference_includes_a_refused_statement():
    from thpviz.eras import ERAS
    from thpviz.live.judge import first_difference
    from thpviz.live.observe import LiveStep
    from thpviz.scenario import run

    s = scn("P: mmap A\nP: mprotect A[0:256] ro\nP: mremap A M\n")
    model = run(s, ERAS["6.12"])
    assert model.steps[2].error and "not inside one VMA" in model.steps[2].error
    steps = [LiveStep(k + 1, st.line, st.text, st.op) for k, st in enumerate(s.statements)]
    assert "the model refused it, the kernel did not" in first_difference(_FakeRun("none", set(), steps), model)
    steps[2].errors.append("mremap: Bad address")
    assert first_difference(_FakeRun("none", set(), steps), model) is None
    steps[1].errors.append("mprotect: Cannot allocate memory")
    diff = first_difference(_FakeRun("none", set(), steps), model)
    assert diff.startswith("line 2") and "the kernel refused it" in diff


def test_lab_files_parse_and_expect_only_modern_eras():
    files = sorted(LAB.glob("*.thp"))
    assert len(files) == 20
    readme = (LAB / "README.md").read_text()
    for f in files:
        s = load(str(f))
        assert {"6.1", "6.12", "6.15"} <= set(s.expects), f
        assert f.name in readme, f"{f.name} missing from the README"
        assert s.title and s.source


# ------------------------------------------------------------ qemu pieces
def test_initramfs_is_newc_cpio():
    from thpviz.live.qemu import _cpio_newc

    data = _cpio_newc([("bin", 0o40755, None), ("init", 0o100755, b"#!/bin/sh\n")])
    assert data.startswith(b"070701")
    assert b"init\0" in data and b"TRAILER!!!\0" in data
    assert len(data) % 4 == 0


def test_split_output_finds_probe_plans_and_costs():
    from thpviz.live.qemu import split_output

    text = ('noise\n==THPVIZ-PROBE==\n{"t":"probe","release":"6.1.0"}\n==THPVIZ-BEGIN /plans/0001.plan==\n'
            '{"t":"start"}\n==THPVIZ-END /plans/0001.plan rc=0==\n{"t":"costs","release":"6.1.0"}\n')
    probe, plans, costs = split_output(text)
    assert probe["release"] == "6.1.0" and plans == {1: '{"t":"start"}'} and costs.startswith('{"t":"costs"')


def test_guest_boot_failure_skips_with_reason(monkeypatch):
    from thpviz.live import qemu
    from thpviz.live.build import LabUnavailable

    def no_kernel(k):
        raise LabUnavailable("no Debian package for Linux 6.1 (test)")
    monkeypatch.setattr(qemu, "fetch_kernel", no_kernel)
    caps, results = qemu.run_in_guest("6.1", [str(LAB / "l01-pin-rw-fork-parent-writes.thp")])
    assert results[0].status == "skipped" and "no Debian package" in results[0].reason
    assert results[0].era == "6.1"


# -------------------------------------------------------- recorded results
@pytest.mark.parametrize("tag,era", [("6.18", "6.15"), ("6.1", "6.1"), ("6.12", "6.12")])
def test_recorded_results_describe_the_machine(tag, era):
    from thpviz.live.record import load as load_rec

    d = load_rec(tag)
    assert d is not None, f"data/measured/live-{tag}.json is missing"
    m = d["machine"]
    assert m["release"].startswith(tag + ".") and m["cpu"]
    assert m["pfn_visible"] and m["kpageflags"]
    lab = [r for r in d["results"] if "/lab/" in r["path"]]
    assert len(lab) == 20 and all(r["era"] == era for r in lab)
    assert all(r["status"] == "passed" for r in lab), [r["path"] for r in lab if r["status"] != "passed"]
    for r in d["results"]:
        assert r["status"] != "skipped" or r["reason"]


def test_costs_modelled_and_plot():
    from thpviz.live.costs import ROWS, modelled, plot_measured
    from thpviz.live.record import load as load_rec

    m = modelled("6.15")
    assert m["thp_cow"]["decision"] == "cow-small" and m["thp_reuse"]["decision"] == "reuse"
    assert m["fork_pinned"]["bytes_copied"] == 512 * 4096 and m["fork_unpinned"]["bytes_copied"] == 0
    d = load_rec("6.18")
    assert d and d.get("costs"), "no recorded costs"
    for key, _ in ROWS:
        assert d["costs"][key]["median_ns"] > 0
    fig = plot_measured(d["costs"])
    assert len(fig.axes) == 2
