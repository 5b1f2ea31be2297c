"""The command line and its JSON: the contract of DESIGN.md."""

import json
import subprocess
import sys

from conftest import ROOT, SCENARIOS

from thpviz.eras import ERAS

S1 = SCENARIOS / "regression" / "pin-mprotect-cycle-write.thp"


def thpviz(*args):
    return subprocess.run([sys.executable, "-m", "thpviz.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_run_json_has_the_fixed_fields():
    r = thpviz("run", str(S1), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [d["era"] for d in data] == ["4.4", "4.5", "kirill-k1", "andrea-v1", "4.6"]
    for d in data:
        for key in ("scenario", "title", "era", "thp", "steps", "violations", "pages", "mappings"):
            assert key in d
        assert d["thp"] == 512
        for step in d["steps"]:
            assert {"line", "text", "faults", "violations"} <= set(step)
            for f in step["faults"]:
                assert {"proc", "subpage", "level", "decision", "copied_bytes"} <= set(f)
                assert f["level"] in ("pmd", "pte")
        for page in d["pages"]:
            assert {"name", "subpages", "refcount", "compound_mapcount", "double_map", "pincount",
                    "mapcount", "anon_vma", "freed"} <= set(page)
            for first, last, value in page["mapcount"]:
                assert 0 <= first <= last < page["subpages"]
        for rows in d["mappings"].values():
            for m in rows:
                assert {"range", "level", "page", "first_subpage", "writable"} <= set(m)
    by_era = {d["era"]: d for d in data}
    # the false COW: the write at A[5] copies the whole THP under 4.5 only
    last = [f for s in by_era["4.5"]["steps"] for f in s["faults"]][-1]
    assert (last["decision"], last["level"], last["copied_bytes"], last["subpage"]) == ("cow-huge", "pmd", 2 << 20, 5)
    assert by_era["4.5"]["violations"] == ["pin-lost"]
    assert by_era["4.6"]["violations"] == []
    h1 = {p["name"]: p for p in by_era["4.5"]["pages"]}["H1"]
    assert h1["refcount"] == 1 and h1["compound_mapcount"] == 0 and h1["pincount"] == 1
    assert by_era["4.5"]["mappings"]["P"][0]["page"] == "H2"


def test_run_era_selection_and_readable_output():
    r = thpviz("run", str(S1), "--era", "4.5")
    assert r.returncode == 0
    assert "cow-huge" in r.stdout and "pin-lost" in r.stdout and "era 4.6" not in r.stdout


def test_run_hide_prints_question_marks():
    r = thpviz("run", str(S1), "--era", "4.5", "--hide")
    assert "?" in r.stdout and "cow-huge" not in r.stdout and "pin-lost" not in r.stdout


def test_unknown_era_is_bad_input():
    r = thpviz("run", str(S1), "--era", "4.7")
    assert r.returncode == 2 and "unknown era" in r.stderr


def test_check_reports_mismatch_and_exits_1(tmp_path):
    f = tmp_path / "wrong.thp"
    f.write_text("title: t\nsource: s\nthp: 8\nP: mmap A\nP: write A\nexpect 4.5: reuse clean\n")
    r = thpviz("check", str(f))
    assert r.returncode == 1
    assert f"{f}:6: era 4.5: expected decision reuse, got new" in r.stdout
    assert r.stdout.strip().endswith("0 passed, 1 failed")


def test_check_runs_only_named_eras_or_all(tmp_path):
    f = tmp_path / "noexp.thp"
    f.write_text("thp: 8\nP: mmap A\nP: write A\nassert page_count(A) == 1\n")
    r = thpviz("check", str(f))
    assert r.returncode == 0 and r.stdout.strip().endswith("5 passed, 0 failed")


def test_eras_table():
    r = thpviz("eras", "--json")
    rows = json.loads(r.stdout)
    ids = [x["id"] for x in rows]
    # the era table of DESIGN.md, in its order
    assert ids == ["4.4", "4.5", "kirill-k1", "andrea-v1", "4.6", "5.8", "5.9", "5.18", "5.19", "6.1", "6.12",
                   "6.15"]
    assert [x["implemented"] for x in rows][:5] == [True] * 5
    assert {x["id"] for x in rows if x["implemented"]} == set(ERAS)


def test_help_does_not_import_heavy_modules():
    code = ("import sys, thpviz.cli as c\n"
            "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('numpy','matplotlib','graphviz','ipywidgets') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.strip().endswith("[]"), r.stdout


def test_json_mapcount_is_what_the_era_stores():
    """4.4 keeps a THP's PMD count in the head's _mapcount and a tail's GUP
    references in the tail's (tail-page refcounting); 4.5+ count PTEs."""
    f = SCENARIOS / "regression" / "pin-fork-exit-write.thp"
    data = {d["era"]: d for d in json.loads(thpviz("run", str(f), "--json").stdout)}
    h1 = {p["name"]: p for p in data["4.4"]["pages"]}["H1"]
    assert h1["mapcount"] == [[0, 0, 1], [1, 6, 0], [7, 7, 1], [8, 511, 0]]
    h1 = {p["name"]: p for p in data["4.6"]["pages"]}["H1"]
    assert h1["mapcount"] == [[0, 511, 0]] and h1["compound_mapcount"] == 1
