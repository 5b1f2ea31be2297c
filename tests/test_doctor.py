"""``thpviz doctor``: it runs from the command line as one subcommand,
imports nothing heavy until it runs, says ok on a machine that has
everything, and says what to fix when something is missing (never a
traceback)."""

import json
import subprocess
import sys

import pytest

from thpviz import doctor
from thpviz.cli import SUBCOMMANDS, main


def test_doctor_is_one_registered_subcommand_and_light_to_import():
    assert [(n, m) for n, m, _ in SUBCOMMANDS if n == "doctor"] == [("doctor", "thpviz.doctor")]
    code = ("import sys, thpviz.doctor; heavy = {'numpy', 'matplotlib', 'ipywidgets', 'graphviz'} & set(sys.modules);"
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_doctor_passes_here_and_reports_each_area(capsys):
    rc = main(["doctor", "--json"])
    checks = json.loads(capsys.readouterr().out)
    areas = {c["area"] for c in checks}
    assert {"python", "engine", "graphviz", "widgets", "live lab"} <= areas
    failed = [c for c in checks if c["status"] == doctor.FAIL]
    assert rc == (1 if failed else 0)
    assert not [c for c in failed if c["area"] in ("python", "engine")], failed


def test_missing_dot_is_a_failure_with_a_fix(monkeypatch, capsys):
    from thpviz.render import graphviz_run

    def missing():
        raise graphviz_run.GraphvizMissing("dot not found on PATH")

    monkeypatch.setattr(graphviz_run, "dot_binary", missing)
    rc = main(["doctor"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "FAIL  graphviz" in out and "apt-get install graphviz" in out
    assert "problem(s) to fix" in out


def test_a_check_that_crashes_is_reported_not_raised(monkeypatch):
    def boom():
        raise RuntimeError("unexpected")

    monkeypatch.setattr(doctor, "CHECKS", (boom, doctor.check_python))
    checks = doctor.diagnose()
    assert checks[0].status == doctor.FAIL and "unexpected" in checks[0].text
    assert any(c.area == "python" and c.status == doctor.OK for c in checks)


def test_live_lab_absent(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    (c,) = doctor.check_live()
    assert c.status == doctor.WARN and "not installed" in c.text


def test_live_lab_probe_reasons_are_warnings_not_failures(monkeypatch):
    pytest.importorskip("thpviz.live.probe")
    monkeypatch.setenv("THPVIZ_LIVE_SIMULATE", "nonlinux")
    checks = doctor.check_live()
    assert checks[0].area == "live lab" and "not Linux" in checks[0].text
    assert checks[0].status == doctor.WARN and all(c.status != doctor.FAIL for c in checks)
    assert any("Linux" in c.text for c in checks[1:]), "the probe's reason is passed on"


@pytest.mark.parametrize("ipw,status", [(None, doctor.FAIL), ("7.8.1", doctor.FAIL)])
def test_widgets_version_checked(monkeypatch, ipw, status):
    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda d: ipw if d == "ipywidgets" else real(d))
    first = doctor.check_widgets()[0]
    assert first.status == status and "ipywidgets" in first.fix
