"""Bad input: every error names FILE:LINE:COL, the CLI exits 2 and runs nothing."""

import os
import re
import subprocess
import sys

import pytest
from conftest import ERROR_LINE, ROOT, time_limit

from thpviz.eras import ERAS
from thpviz.scenario import ScenarioError, check_eras, parse_file, parse_text
from thpviz.scenario.parser import (
    MAX_FILE_BYTES,
    MAX_SUBPAGES,
    check_statement_line,
    format_header,
    header_value,
    parse_verdict,
)

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
    # ranges that once crashed the parser (int('-')) or reached int() with
    # thousands of digits
    ("P: mmap A\nP: write A[-]\n", 5, 10, "bad range"),
    ("P: mmap A\nP: write A[-:]\n", 5, 10, "bad range"),
    ("P: mmap A\nP: write A[1:2:3]\n", 5, 10, "bad range"),
    ("P: mmap A\nP: write A[]\n", 5, 10, "empty index"),
    ("P: mmap A\nP: write A[-1]\n", 5, 10, "outside region"),
    ("P: mmap A\nP: write A[" + "9" * 5000 + "]\n", 5, 10, "outside region"),
    ("P: mmap A\nP: write A[1:" + "9" * 5000 + "]\n", 5, 10, "outside region"),
    ("P: mmap A\nP: write A[\u0663]\n", 5, 10, "bad range"),  # an Arabic-Indic digit is not a digit here
    ("P: mmap A " + "9" * 5000 + "\n", 4, 11, "extent count"),
    ("P: mmap A 65\n", 4, 11, "extent count"),
    ("P: mmap A\nP: write A\nassert page_count(A) == " + "9" * 5000 + "\n", 6, 25, "out of range"),
    ("P: mmap A\nP: write A\nassert page_count(A) == -" + "9" * 5000 + "\n", 6, 25, "out of range"),
    ("P: mmap A\nassert page_count(A) == 1 2\n", 5, 8, "assert needs the form"),
    ("P: mmap A\nassert page_count(A B) == 1\n", 5, 8, "assert needs the form"),
    ("P: mmap A\nassert page_count() == 1\n", 5, 8, "assert needs the form"),
    ("P: mmap A\nP: mmap B\nP: mremap A C sideways\n", 6, 15, "usage"),
    ("P: mmap A\nP: mremap A 9B\n", 5, 13, "bad region name"),
    ("P: mmap A\nP: fork 9C\n", 5, 9, "bad process name"),
    ("P: mmap A\nP: pin A rw as 9d\n", 5, 16, "bad pin name"),
    ("P: mmap A\ndeferred_split now\n", 5, 16, "takes nothing"),
    ("P: mmap A\ndma_write\n", 5, 1, "needs a pin name"),
    ("P: mmap A\nP: pin A rw as d\ndma_write d d\n", 6, 13, "unexpected"),
    ("P: mmap A\nP:\n", 5, 3, "missing operation"),
    ("P: mmap A\nexpect\n", 5, 1, "expect needs the form"),
    ("P: mmap A\nexpect 4.6:\n", 5, 12, "no tokens"),
    # characters that could hide a line or a word: only LF ends a line
    ("P: mmap A\n# note\x0bP: write A\n", 5, 7, "vertical tab"),
    ("P: mmap A\n# note\x0cP: write A\n", 5, 7, "form feed"),
    ("P: mmap A\n# note\x85P: write A\n", 5, 7, "next line (NEL)"),
    ("P: mmap A\n# note\u2028P: write A\n", 5, 7, "line separator"),
    ("P: mmap A\n# note\u2029P: write A\n", 5, 7, "paragraph separator"),
    ("P: mmap A\n# note\rP: write A\n", 5, 7, "carriage return"),
    ("P: mmap A\nP: write\x00 A\n", 5, 9, "NUL"),
    ("P: mmap A\nP: write A # \u202eevil\n", 5, 14, "U+202E"),
    ("P: mmap A\n\ufeffP: write A\n", 5, 1, "byte order mark"),
    ("P: mmap A\nP: write\x1c A\n", 5, 9, "control character U+001C"),
]


@pytest.mark.parametrize("body,line,col,msg", CASES, ids=[c[3] for c in CASES])
def test_error_names_file_line_and_column(body, line, col, msg):
    with pytest.raises(ScenarioError) as ei:
        parse_text(HEAD + body, "bad.thp")
    first = ei.value.errors[0]
    assert first.startswith(f"bad.thp:{line}:{col}: "), first
    assert msg in first, first


@pytest.mark.parametrize("value", ["12", "1", "0", "524288", "9" * 5000, "\u0668", "-8", "8 8"])
def test_bad_thp_header(value):
    with pytest.raises(ScenarioError) as ei:
        parse_text(f"thp: {value}\nP: mmap A\n", "h.thp")
    assert ei.value.errors[0].startswith("h.thp:1:6: thp: must be a power of two")
    assert len(ei.value.errors[0]) < 200  # a long value is cut in the message


def test_a_model_larger_than_the_limit_is_refused_up_front():
    with pytest.raises(ScenarioError) as ei:
        parse_text("thp: 262144\nP: mmap A 64\n", "big.thp")
    assert ei.value.errors[0].startswith("big.thp:2:11: too much memory for the model")
    assert str(MAX_SUBPAGES) in ei.value.errors[0]
    # the limit counts every mmap of the file, across processes
    n = MAX_SUBPAGES // 262144
    ok = "thp: 262144\n" + "".join(f"P{i}: mmap A\n" for i in range(n))
    assert len(parse_text(ok).statements) == n
    with pytest.raises(ScenarioError, match=r":\d+:\d+: too much memory"):
        parse_text(ok + "Q: mmap A\n")


def test_a_statement_hidden_behind_a_line_separator_never_runs():
    """str.splitlines() would have made 'P: write A' a statement of its own."""
    for sep in ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\r"):
        with pytest.raises(ScenarioError) as ei:
            parse_text(HEAD + "P: mmap A\n# a comment" + sep + "P: write A\n", "s.thp")
        assert ei.value.errors[0].startswith("s.thp:5:12: "), (repr(sep), ei.value.errors)


def test_crlf_and_a_bom_read_as_plain_lines():
    text = HEAD + "P: mmap A\nP: write A # first touch\nexpect 4.6: new clean\n"
    plain = parse_text(text, "x.thp")
    for variant in (text.replace("\n", "\r\n"), "\ufeff" + text, "\ufeff" + text.replace("\n", "\r\n")):
        got = parse_text(variant, "x.thp")
        assert got.title == plain.title and got.thp == plain.thp
        assert [(s.line, s.col, s.text) for s in got.statements] == [(s.line, s.col, s.text) for s in plain.statements]
        assert got.expects == plain.expects
    with pytest.raises(ScenarioError) as ei:  # a BOM moves no column
        parse_text("\ufeffthp: 8\nP: mmap A\nP: write A[9]\n", "b.thp")
    assert ei.value.errors[0].startswith("b.thp:3:10: ")


def test_non_utf8_bytes_are_reported_where_they_are(tmp_path):
    f = tmp_path / "latin1.thp"
    f.write_bytes(b"title: caf\xc3\xa9\nthp: 8\nP: mmap A\nP: wr\xffite A\n")
    with pytest.raises(ScenarioError) as ei:
        parse_file(str(f))
    assert ei.value.errors == [f"{f}:4:6: not UTF-8 text (byte 0xff); save the file as UTF-8"]
    f.write_bytes(b"title: caf\xc3\xa9 \xe9t\xe9\nthp: 8\n")  # latin-1 after a valid UTF-8 character
    with pytest.raises(ScenarioError) as ei:
        parse_file(str(f))
    assert ei.value.errors[0].startswith(f"{f}:1:13: not UTF-8 text (byte 0xe9)")
    f.write_bytes(b"\xef\xbb\xbftitle: ok\nthp: 8\nP: mmap A\n")  # a UTF-8 BOM is fine
    assert parse_file(str(f)).title == "ok"


def test_long_runs_of_blanks_parse_in_linear_time():
    """The old expect/assert regular expressions backtracked quadratically
    (about 30 s for 100,000 blanks); a hang detector, not a timing."""
    blanks = " " * 100_000
    bodies = [
        "expect 4.6" + blanks + "x: new\n",
        "expect" + blanks + "4.6" + blanks + "\n",
        "expect 4.6:" + blanks + "new" + blanks + "x\n",
        "assert page_count(" + blanks + "A" + blanks + ") ==" + blanks + "x\n",
        "assert 4.6" + blanks + ",4.5" + blanks + "page_count(A) == 1\n",
        "P:" + blanks + "write" + blanks + "A" + blanks + "x\n",
        "P: write A[" + "1" * 100_000 + "\n",
        "title" + blanks + "\n",
    ]
    for body in bodies:
        with time_limit(10, "parsing a line of 100,000 blanks"):
            with pytest.raises(ScenarioError) as ei:
                parse_text(HEAD + "P: mmap A\n" + body, "b.thp")
        assert ei.value.errors[0].startswith("b.thp:5:"), ei.value.errors[0][:100]
        assert len(ei.value.errors[0]) < 400


def test_a_file_of_100000_lines_parses(tmp_path):
    f = tmp_path / "long.thp"
    f.write_text("thp: 8\nP: mmap A\n" + "P: write A[3]   # again\n" * 100_000)
    with time_limit(60, "parsing 100,000 lines"):
        scn = parse_file(str(f))
    assert len(scn.statements) == 100_001 and scn.statements[-1].line == 100_002


def file_error(path):
    with time_limit(10, f"reading {path}"):
        with pytest.raises(ScenarioError) as ei:
            parse_file(str(path))
    (msg,) = ei.value.errors
    assert msg.startswith(f"{path}:0:0: "), msg
    return msg


def test_only_regular_files_of_bounded_size_are_read(tmp_path):
    fifo = tmp_path / "fifo.thp"
    os.mkfifo(fifo)  # nobody writes: opening it for reading would wait forever
    assert "not a regular file" in file_error(fifo)
    zero = tmp_path / "zero.thp"
    zero.symlink_to("/dev/zero")
    assert "not a regular file" in file_error(zero)
    loop = tmp_path / "loop.thp"
    loop.symlink_to(loop)
    assert "cannot read: Too many levels of symbolic links" in file_error(loop)
    assert "is a folder" in file_error(tmp_path)
    big = tmp_path / "big.thp"
    with open(big, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk
    assert "too large" in file_error(big)
    assert "cannot read: No such file or directory" in file_error(tmp_path / "missing.thp")


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


def test_every_message_has_a_position(tmp_path):
    assert all(ERROR_LINE.match(f"x.thp:{line}:{col}: {msg}") for _, line, col, msg in CASES)


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


def test_parse_verdict_reads_tokens_as_an_expect_line_does():
    assert parse_verdict("cow-huge pin-lost") == ("cow-huge", frozenset({"pin-lost"}))
    assert parse_verdict("reuse clean") == ("reuse", frozenset())
    assert parse_verdict("  rmap-broken   bug ") == (None, frozenset({"rmap-broken", "bug"}))
    for bad in ("", "sideways", "reuse cow", "clean bug"):
        with pytest.raises(ValueError):
            parse_verdict(bad)
    tokens = ["reuse", "cow", "cow-small", "cow-huge", "new", "none", "clean", "pin-lost", "rmap-broken", "leak",
              "stray-write", "bug", "x"]
    import itertools

    for n in (1, 2, 3):
        for combo in itertools.permutations(tokens, n):
            text = " ".join(combo)
            try:
                scn = parse_text(f"thp: 8\nP: mmap A\nexpect 4.6: {text}\n")
            except ScenarioError:
                with pytest.raises(ValueError):
                    parse_verdict(text)
                continue
            e = scn.expects["4.6"]
            assert parse_verdict(text) == (e.decision, e.violations), text


def test_one_statement_line_for_front_ends():
    check_statement_line("P: write A")
    for bad in ("", "   ", "# a comment", "title: t", "thp: 8", "expect 4.6: reuse", "P: write A\nP: exit",
                "P: write\x0bA"):
        with pytest.raises(ScenarioError):
            check_statement_line(bad)


@pytest.mark.parametrize("title", ["plain", "  padded  ", "tabs\tinside", "caf\u00e9 \u2603", "a: b [c] (d)"])
def test_a_written_header_reads_back(title):
    text = "\n".join(format_header(title=title, source="thpviz sandbox", thp=8)) + "\n"
    scn = parse_text(text)
    assert scn.title == header_value("title", title) == title.strip()
    assert scn.source == "thpviz sandbox" and scn.thp == 8


@pytest.mark.parametrize("title", ["a # b", "two\nlines", "cr\r", "esc\x1b[31m", "nel\x85", "ls\u2028"])
def test_a_header_the_language_cannot_hold_is_refused(title):
    with pytest.raises(ValueError):
        format_header(title=title)


def test_unreadable_file(tmp_path):
    r = subprocess.run([sys.executable, "-m", "thpviz.cli", "run", str(tmp_path / "missing.thp")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "missing.thp:0:0: cannot read" in r.stderr
