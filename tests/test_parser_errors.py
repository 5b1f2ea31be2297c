"""Bad input: every error names FILE:LINE:COL, the CLI exits 2 and runs nothing."""

import re
import subprocess
import sys

import pytest

from conftest import ROOT
from thpviz.eras import ERAS
from thpviz.scenario import ScenarioError, check_eras, parse_text

HEAD = "title: t\nsource: s\nthp: 8\n"

# (scenario body after the header, line, column, part of the message)
CASES = [
    ("P: mmap A\nP: frobnicate A\n", 5, 4, "unknown operation"),
    ("P: mmap A\nP: write A[9]\n", 5, 10, "outside region"),
    ("P: mmap A\nP: write A[3:3]\n", 5, 10, "outside region"),
    ("P: mmap A\nP: write B\n", 5, 10, "unknown region"),
    ("P: mmap A\nP: write A[x]\n", 5, 10, "bad range"),
    ("P: mmap A\nQ: write A\n", 5, 1, "process Q does not exist"),
    ("P: mmap A\nP: exit\nP: write A\n", 6, 1, "has exited"),
    ("P: mmap A\nP: fork P\n", 5, 9, "already exists"),
    ("P: mmap A\nP: mmap A\n", 5, 9, "already has a region"),
    ("P: mmap A 0\n", 4, 11, "extent count"),
    ("P: mmap A\nP: mprotect A rx\n", 5, 15, "ro or rw"),
    ("P: mmap A\nP: pin A rw with dma\n", 5, 13, "expected 'as'"),
    ("P: mmap A\nP: pin A rw as d\nP: pin A ro as d\n", 6, 16, "already exists"),
    ("P: mmap A\nP: unpin nope\n", 5, 10, "no active pin"),
    ("P: mmap A\ndma_write nope\n", 5, 11, "no active pin"),
    ("P: mmap A\nexpect 9.9: reuse\n", 5, 8, "unknown era"),
    ("P: mmap A\nexpect 4.5: reuse sideways\n", 5, 19, "unknown expectation token"),
    ("P: mmap A\nexpect 4.5: reuse cow\n", 5, 19, "two decision tokens"),
    ("P: mmap A\nexpect 4.5: clean bug\n", 5, 13, "'clean' together"),
    ("P: mmap A\nexpect 4.5: reuse\nexpect 4.5: cow\n", 6, 1, "a second expect line"),
    ("P: mmap A\nassert page_count(A) = 1\n", 5, 8, "assert needs the form"),
    ("P: mmap A\nassert refcount(A) == 1\n", 5, 8, "unknown counter function"),
    ("P: mmap A\nassert page_count(A) == one\n", 5, 25, "integer"),
    ("P: mmap A\nassert 4.7: page_count(A) == 1\n", 5, 8, "unknown era"),
    ("P: mmap A\nassert page_count(Z) == 1\n", 5, 19, "unknown region"),
    ("P: mmap A\ntitle: late\n", 5, 1, "after the first statement"),
    ("P: mmap A\nwrite A\n", 5, 1, "needs a process"),
    ("P: mmap A\nP: write\n", 5, 4, "usage"),
    ("P: mmap A\nP: mremap A A\n", 5, 13, "already has a region"),
]


@pytest.mark.parametrize("body,line,col,msg", CASES, ids=[c[3] for c in CASES])
def test_error_names_file_line_and_column(body, line, col, msg):
    with pytest.raises(ScenarioError) as ei:
        parse_text(HEAD + body, "bad.thp")
    first = ei.value.errors[0]
    assert first.startswith(f"bad.thp:{line}:{col}: "), first
    assert msg in first, first


def test_bad_thp_header():
    with pytest.raises(ScenarioError) as ei:
        parse_text("thp: 12\nP: mmap A\n", "h.thp")
    assert ei.value.errors[0].startswith("h.thp:1:6: thp: must be a power of two")


def test_all_errors_of_a_file_are_reported():
    with pytest.raises(ScenarioError) as ei:
        parse_text(HEAD + "P: mmap A\nP: jump\nQ: write A\n", "x.thp")
    assert len(ei.value.errors) == 2


def test_counter_missing_in_an_era_is_an_error():
    scn = parse_text(HEAD + "P: mmap A\nP: write A\nassert page_trans_huge_mapcount(A) == 1\n", "c.thp")
    with pytest.raises(ScenarioError) as ei:
        check_eras(scn, [ERAS["4.5"]])
    assert re.match(r"c\.thp:6:8: page_trans_huge_mapcount does not exist in era 4\.5", ei.value.errors[0])
    check_eras(scn, [ERAS["4.6"]])  # exists there


def test_cli_exits_2_and_runs_nothing(tmp_path):
    bad = tmp_path / "bad.thp"
    bad.write_text(HEAD + "P: mmap A\nP: write A[99]\n")
    good = tmp_path / "good.thp"
    good.write_text(HEAD + "P: mmap A\nP: write A\nexpect 4.6: new clean\n")
    r = subprocess.run([sys.executable, "-m", "thpviz.cli", "check", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2
    assert f"{bad}:5:10:" in r.stderr
    assert "passed" not in r.stdout  # nothing ran, not even the good file


def test_unreadable_file(tmp_path):
    r = subprocess.run([sys.executable, "-m", "thpviz.cli", "run", str(tmp_path / "missing.thp")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "missing.thp:0:0: cannot read" in r.stderr
