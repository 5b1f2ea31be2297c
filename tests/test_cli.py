"""The command line and its JSON: the contract of DESIGN.md."""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, SCENARIOS, run_main, time_limit

from thpviz.eras import ERAS

S1 = SCENARIOS / "regression" / "pin-mprotect-cycle-write.thp"


def thpviz(*args):
    return subprocess.run([sys.executable, "-m", "thpviz.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_run_json_has_the_fixed_fields():
    r = thpviz("run", str(S1), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [d["era"] for d in data] == list(ERAS)
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
            for first, last, _value in page["mapcount"]:
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
    assert r.returncode == 0 and r.stdout.strip().endswith(f"{len(ERAS)} passed, 0 failed")


def test_eras_table():
    r = thpviz("eras", "--json")
    rows = json.loads(r.stdout)
    ids = [x["id"] for x in rows]
    # the era table of DESIGN.md, in its order
    assert ids == ["4.4", "4.5", "kirill-k1", "andrea-v1", "4.6", "5.8", "5.9", "5.18", "5.19", "6.1", "6.12",
                   "6.15"]
    assert all(x["implemented"] for x in rows)
    assert {x["id"] for x in rows if x["implemented"]} == set(ERAS)
    assert all(x["commits"] for x in rows)


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


# ---------------------------------------------------------------- robustness
# Whatever happens, the command prints one clear line and exits with a
# defined status: 2 bad input/output, 3 a thpviz bug, 130 Ctrl-C, 141 a
# closed pipe -- never a traceback, never exit 1 for anything but a check.

def no_traceback(text):
    assert "Traceback" not in text, text


def test_an_unexpected_exception_is_exit_3_saying_it_is_a_bug(monkeypatch):
    import thpviz.scenario

    def broken(*a, **k):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(thpviz.scenario, "run", broken)
    code, out, err = run_main(["run", S1])
    assert code == 3 and "this is a thpviz bug" in err and "ZeroDivisionError: boom" in err
    no_traceback(err)
    assert len(err.strip().splitlines()) == 1
    code, out, err = run_main(["run", S1], env={"THPVIZ_DEBUG": "1"})
    assert code == 3 and "Traceback" in err  # on request only


def test_check_reports_a_bug_per_run_and_still_checks_the_rest(monkeypatch, tmp_path):
    import thpviz.scenario

    real = thpviz.scenario.run

    def flaky(scn, era, **k):
        if era.id == "4.5":
            raise KeyError("x")
        return real(scn, era, **k)

    monkeypatch.setattr(thpviz.scenario, "run", flaky)
    n = len(thpviz.scenario.eras_for(thpviz.scenario.parse_file(str(S1))))
    assert n > 1
    code, out, err = run_main(["check", S1])
    assert code == 3
    assert "era 4.5: internal error (this is a thpviz bug)" in out
    assert out.strip().endswith(f"{n - 1} passed, 1 failed")


def test_ctrl_c_is_exit_130(monkeypatch):
    import thpviz.scenario

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(thpviz.scenario, "run", interrupted)
    code, out, err = run_main(["check", S1])
    assert code == 130 and err.strip() == "thpviz: interrupted"


@pytest.mark.slow
def test_ctrl_c_in_a_real_process(tmp_path):
    """SIGINT while a long check runs: one line, exit 130."""
    import signal
    import time

    f = tmp_path / "long.thp"
    f.write_text("thp: 8\nP: mmap A\n" + "P: write A[3]\n" * 200_000)
    p = subprocess.Popen([sys.executable, "-m", "thpviz.cli", "check", str(f)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # past the imports, inside the parse or the runs
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, (p.returncode, err)
    assert err.strip() == "thpviz: interrupted"


def test_a_closed_pipe_is_one_line_and_exit_141():
    """``thpviz eras --json | head``: the reader is gone before we write."""
    r, w = os.pipe()
    p = subprocess.Popen([sys.executable, "-m", "thpviz.cli", "eras", "--json"], cwd=ROOT,
                         stdout=w, stderr=subprocess.PIPE, text=True)
    os.close(w)
    os.close(r)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 141, err
    assert err.strip() == "thpviz: the output pipe was closed; output cut short"


def test_a_full_disk_on_stdout_is_one_line_and_exit_2():
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "thpviz.cli", "run", str(S1), "--json"], cwd=ROOT,
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip() == "thpviz: cannot write the output: No space left on device"


def test_output_never_overwrites_the_scenario(tmp_path):
    f = tmp_path / "x.thp"
    f.write_text(S1.read_text())
    before = f.read_bytes()
    link = tmp_path / "link.html"
    link.symlink_to(f)
    for out in (f, link, tmp_path / "." / "x.thp"):
        for cmd in (["storyboard", f, "--era", "4.5", "-o", out], ["render", f, "--era", "4.5", "--format", "dot", "-o", out]):
            code, _, err = run_main(cmd)
            assert code == 2 and "refusing to write" in err, (cmd, err)
    assert f.read_bytes() == before


def test_unwritable_or_failing_output_keeps_what_was_there(tmp_path, monkeypatch):
    import errno

    import thpviz.cli

    code, _, err = run_main(["render", S1, "--era", "4.5", "-o", tmp_path / "no" / "such" / "dir.dot"])
    assert code == 2 and err.startswith("thpviz: cannot write ") and "No such file or directory" in err
    code, _, err = run_main(["render", S1, "--era", "4.5", "-o", tmp_path, "--format", "dot"])
    assert code == 2 and "it is a folder" in err
    out = tmp_path / "old.dot"
    out.write_text("what was there")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(thpviz.cli.os, "replace", full)  # the disk fills up at the last moment
    code, _, err = run_main(["render", S1, "--era", "4.5", "-o", out])
    assert code == 2 and err.strip() == f"thpviz: cannot write {out}: No space left on device"
    assert out.read_text() == "what was there"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.dot"]  # no temporary file left


def test_a_wrong_thpviz_dot_is_one_line_and_exit_2(tmp_path):
    for dot, says in (("/nonexistent/dot", "is not an executable program"), ("/bin/false", "dot failed"),
                      (str(tmp_path), "is not an executable program")):
        code, out, err = run_main(["render", S1, "--era", "4.5", "-o", tmp_path / "x.svg"],
                                  env={"THPVIZ_DOT": dot, "THPVIZ_DOT_SERVER": "0"})
        assert code == 2 and says in err and len(err.strip().splitlines()) == 1, (dot, err)
    assert not (tmp_path / "x.svg").exists()


def test_check_never_waits_on_a_fifo_or_a_device_and_never_loops(tmp_path):
    good = tmp_path / "good.thp"
    good.write_text("thp: 8\nP: mmap A\nP: write A\nexpect 4.6: new clean\n")
    os.mkfifo(tmp_path / "not-a-scenario")  # ignored: not a .thp name
    with time_limit(60, "check of a folder with a FIFO"):
        code, out, err = run_main(["check", tmp_path])
    assert code == 0 and out.strip().endswith("1 passed, 0 failed")
    os.mkfifo(tmp_path / "fifo.thp")
    (tmp_path / "zero.thp").symlink_to("/dev/zero")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "up").symlink_to(tmp_path)  # a folder that contains itself
    with time_limit(60, "check of a folder with a FIFO, /dev/zero and a link loop"):
        code, out, err = run_main(["check", tmp_path])
    assert code == 2 and "passed" not in out
    lines = err.strip().splitlines()
    assert f"{tmp_path / 'fifo.thp'}:0:0: not a regular file" in err
    assert f"{tmp_path / 'zero.thp'}:0:0: not a regular file" in err
    assert f"{sub / 'up'}: a symbolic link loop" in err
    assert len(lines) == 3, lines


def test_check_reports_an_unreadable_folder(tmp_path, monkeypatch):
    (tmp_path / "a.thp").write_text("thp: 8\nP: mmap A\n")
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.scandir

    def scandir(path):
        if os.fspath(path) == str(locked):  # as chmod 000 does for a user who is not root
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    code, out, err = run_main(["check", tmp_path])
    assert code == 2 and err.strip() == f"{locked}: cannot read folder: Permission denied"
    assert "passed" not in out


def test_a_statement_after_a_refused_mremap_is_an_error_event(tmp_path):
    f = tmp_path / "refused.thp"
    f.write_text("thp: 8\nP: mmap A\nP: mprotect A[0:4] ro\nP: mremap A B\nP: write B\n"
                 "assert page_count(B) == 1\nexpect 4.6: none clean\n")
    code, out, err = run_main(["check", "-v", f])
    no_traceback(out + err)
    assert code == 1  # the assert fails: nothing is mapped at B
    assert "nothing is mapped at B" in out
    code, out, err = run_main(["run", f, "--era", "4.6"])
    assert code == 0 and "P has no region B" in out


def test_bad_input_in_every_subcommand_is_exit_2_with_a_position(tmp_path):
    bad = tmp_path / "bad.thp"
    bad.write_text("thp: 8\nP: mmap A\nP: write A[-]\n")
    for cmd in (["run", bad], ["check", bad], ["render", bad, "--era", "4.6"], ["storyboard", bad]):
        code, out, err = run_main(cmd)
        assert code == 2 and err.startswith(f"{bad}:3:10: bad range"), (cmd, err)
    for cmd in (["run", S1, "--era", "9.9"], ["render", S1, "--era", "9.9"], ["storyboard", S1, "--era", "9.9"]):
        code, out, err = run_main(cmd)
        assert code == 2 and "unknown era" in err and len(err.strip().splitlines()) == 1


def test_control_characters_never_reach_a_diagram(tmp_path):
    f = tmp_path / "t.thp"
    f.write_text("title: red \x1b[31m alert\nthp: 8\nP: mmap A\n")
    code, _, err = run_main(["storyboard", f, "-o", tmp_path / "t.html"])
    assert code == 2 and err.startswith(f"{f}:1:12: escape U+001B is not allowed")
    code, _, err = run_main(["storyboard", S1, "--era", "4.5", "--title", "a\x1b[31mb", "-o", tmp_path / "t.html"])
    assert code == 2 and err.strip() == "thpviz storyboard: --title: a title cannot contain escape U+001B (a control " \
                                        "character)"
    assert not (tmp_path / "t.html").exists()
