"""The live lab on real kernels (marker ``live``): this machine's kernel when
it allows the lab (root, THP, io_uring), and Debian's 6.1 and 6.12 under QEMU
when qemu-system-x86_64 is installed (scripts/setup_live.sh).  Every test
skips with the probe's reason where the machine cannot run it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from thpviz.eras import ERAS
from thpviz.live.judge import kernel_to_era
from thpviz.live.lab import scenario_files

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "data" / "scenarios" / "lab"


@pytest.fixture(scope="module")
def caps():
    from thpviz.live.probe import probe

    c = probe()
    why = c.require("thp", "pin_rw", "pin_ro")
    if why:
        pytest.skip(f"the live lab cannot run here: {why}")
    return c


@pytest.fixture(scope="module")
def lab_results(caps):
    from thpviz.live.host import run_files

    return {Path(r.path).stem: r for r in run_files(scenario_files([str(LAB)]), caps)}


def test_lab_agrees_with_the_recorded_observations(caps, lab_results):
    era = kernel_to_era(caps.release)[0]
    if era not in ("6.1", "6.12", "6.15"):
        pytest.skip(f"no recorded observations for era {era} (kernel {caps.release})")
    bad = {k: r.mismatches or r.reason for k, r in lab_results.items() if r.status != "passed"}
    assert not bad


def test_lab_agrees_with_the_model_of_its_era(caps, lab_results):
    era = kernel_to_era(caps.release)[0]
    if era not in ERAS:
        pytest.skip(f"era {era} is not implemented yet")
    diff = {k: r.first_difference for k, r in lab_results.items() if r.first_difference}
    assert not diff


def test_random_scenarios_agree_with_the_model_step_by_step(caps, tmp_path):
    """Random statement sequences (thpviz.live.fuzz): the kernel and the
    model of its era decide every write fault and see every violation
    alike, at every step."""
    from thpviz.live.fuzz import write_scenarios
    from thpviz.live.host import run_files

    era = kernel_to_era(caps.release)[0]
    if era not in ERAS:
        pytest.skip(f"era {era} is not implemented yet")
    results = run_files(write_scenarios(tmp_path, 0, 60), caps)
    assert sum(r.status == "passed" for r in results) >= 30
    bad = {Path(r.path).stem: r.mismatches or r.first_difference for r in results
           if r.status == "failed" or (r.status == "passed" and r.first_difference)}
    assert not bad


def _step(r, line_text):
    return next(s for s in r.run.steps if s.text.startswith(line_text))


def test_observations_of_modern_eras_3b(caps, lab_results):
    """Step-level facts of research/modern-eras.md §3b on a 6.15+ kernel."""
    if kernel_to_era(caps.release)[0] != "6.15":
        pytest.skip("the §3b observations were made on 6.18")
    l01 = lab_results["l01-pin-rw-fork-parent-writes"]
    fork = _step(l01, "P: fork C")
    assert "fork copied 512 pages for C" in fork.events          # C 0/512 shared
    p_before = [x.pfn for x in _step(l01, "P: pin").state["P"]["A"]]
    assert [x.pfn for x in fork.state["P"]["A"]] == p_before     # P keeps all 512
    assert {x.level for x in fork.state["P"]["A"]} == {"pte"}   # its PMD was split
    assert not _step(l01, "P: write A[3]").faults                 # no fault
    reads = [e for s in l01.run.steps for e in s.events if e.startswith("device reads")]
    assert len(reads) == 2 and all("same data as the CPU" in e for e in reads)

    l03 = lab_results["l03-fork-pin-ro-parent-writes"]
    pin = _step(l03, "P: pin")
    assert any("got a new page (unshare)" in e for e in pin.events)
    assert pin.state["C"]["A"][511].level == "pmd"                 # C keeps its PMD
    assert [f.decision for f in _step(l03, "P: write A[511]").faults] == ["reuse"]

    l04 = lab_results["l04-fork-exit-pin-ro-parent-writes"]
    pin = _step(l04, "P: pin")
    assert pin.state["P"]["A"][511].level == "pmd"
    assert any("made exclusive in place" in e for e in pin.events)

    for name in ("l09-split-fork-exit-writes", "l12-three-mms-second-writes", "l13-three-mms-first-writes"):
        for f in lab_results[name].run.steps[-1].faults:
            assert f.decision == "reuse" and f.before == f.after
    l11 = lab_results["l11-three-mms-third-writes"]
    last = l11.run.steps[-1]
    assert [f.decision for f in last.faults] == ["cow-small"]
    for name in ("l05-child-vmsplice-unmap-parent-writes", "l06-vmsplice-fork-parent-unmaps-child-writes",
                 "l18-fork-parent-vmsplice-unmap-child-writes"):
        read = next(e for e in lab_results[name].run.steps[-1].events if e.startswith("device reads"))
        assert "step 2 by" in read                                  # the pipe reads the old data


def _executor_processes(exe: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.readlink(d / "exe") == exe:
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def test_nothing_is_left_running_or_pinned(caps, lab_results):
    assert lab_results  # the lab ran in this module
    assert _executor_processes(caps.executor) == []
    vmpin = [l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmPin")]
    assert vmpin and vmpin[0].split()[1] == "0"


def test_a_timeout_kills_the_whole_tree(caps, tmp_path):
    from thpviz.live.host import run_plan
    from thpviz.live.lab import prepare

    path = tmp_path / "fork.thp"
    path.write_text("P: mmap A\nP: write A\nP: pin A[0] rw as d\nP: fork C\nC: fork D\n")
    scn, plan, res = prepare(str(path), caps)
    out, problem = run_plan(plan, caps.executor, timeout=0.001)
    assert problem and "timed out" in problem
    assert _executor_processes(caps.executor) == []


def test_without_root_the_probe_sees_zero_pfns_and_skips(caps, tmp_path):
    """Really unprivileged (uid 65534), with the system's Python (the probe
    needs nothing outside the standard library): the executor's own probe
    reads PFN 0 and a closed kpageflags, and the lab refuses to run."""
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to another user")
    py = shutil.which("python3", path="/usr/bin:/bin")
    if py is None:
        pytest.skip("no system python3")
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="thpviz-nobody-", dir="/tmp"))
    cache = tmp / "cache"
    (cache / "live").mkdir(parents=True)
    shutil.copy2(caps.executor, cache / "live" / Path(caps.executor).name)
    for d in (tmp, cache, cache / "live"):
        os.chmod(d, 0o755)
    tmp_path = tmp
    code = ("import json; from thpviz.live.probe import probe; c = probe(); "
            "print(json.dumps([c.root, c.pfn_visible, c.kpageflags, c.require('thp')]))")

    def drop():
        os.setgid(65534)
        os.setuid(65534)
    env = {"PATH": "/usr/bin:/bin", "THPVIZ_CACHE": str(cache), "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    try:
        r = subprocess.run([py, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                           preexec_fn=drop, timeout=120)
    except PermissionError as e:
        pytest.skip(f"uid 65534 cannot run {py}: {e}")
    if r.returncode != 0 and ("Permission denied" in r.stderr or "No module named" in r.stderr):
        pytest.skip(f"the checkout is not readable by uid 65534: {r.stderr.strip()[-200:]}")
    assert r.returncode == 0, r.stderr
    import json

    shutil.rmtree(tmp, ignore_errors=True)
    root, pfn_visible, kpageflags, reason = json.loads(r.stdout)
    assert not root and not pfn_visible and not kpageflags
    assert reason and "not root" in reason


def _qemu_or_skip():
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (scripts/setup_live.sh)")


@pytest.mark.parametrize("kernel", ["6.1", "6.12"])
def test_guest_kernel_agrees_with_its_era(kernel):
    from thpviz.live.qemu import run_in_guest

    _qemu_or_skip()
    caps, results = run_in_guest(kernel, scenario_files([str(LAB)]))
    if caps.require() and all(r.status == "skipped" for r in results):
        pytest.skip(f"the {kernel} guest could not run: {caps.require()}")
    assert caps.release.startswith(kernel + ".")
    assert all(r.era == kernel for r in results)
    bad = {Path(r.path).stem: r.mismatches or r.reason for r in results if r.status != "passed"}
    assert not bad
    if kernel in ERAS:
        assert not [r.first_difference for r in results if r.first_difference]
