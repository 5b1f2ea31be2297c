"""Fuzz the scenario parser and the ``check`` command.

Two sources of input: hypothesis over the language's grammar (statements
built from its verbs, names, ranges, numbers, eras and tokens, with blanks,
comments and stray characters mixed in), and byte-level mutations of every
litmus file under data/scenarios.  For every input, ``thpviz check`` (run in
this process) must

* finish (a hang detector with a generous bound per input, not a timing),
* never raise and never print a traceback,
* exit 0 or 1 with its ``N passed, N failed`` line when the file loads, or
* exit 2 with every message ``FILE:LINE:COL: ...`` naming a line of the file.

The default tier has a fixed budget (about ten seconds); ``slow`` tests hunt
longer, and THPVIZ_FUZZ_EXAMPLES / THPVIZ_FUZZ_MUTATIONS raise either budget.
"""

import os
import random
import re

import pytest
from conftest import IN_CI, SCENARIOS, run_main, time_limit
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from thpviz.eras import ERAS, PLANNED
from thpviz.scenario.parser import DECISION_TOKENS, FUNCS, OPS, PROC_VERBS, VIOLATION_TOKENS

#: seconds one input may take before it counts as a hang
PER_INPUT = 60
LITMUS = sorted(SCENARIOS.rglob("*.thp"))
SUMMARY = re.compile(r"^\d+ passed, \d+ failed$")


def check_bytes(data: bytes, path) -> int:
    """Run ``thpviz check`` on ``data`` written to ``path``; assert the
    contract above; return the exit status."""
    path.write_bytes(data)
    with time_limit(PER_INPUT, f"thpviz check of {data[:200]!r}"):
        code, out, err = run_main(["check", path])
    assert "Traceback" not in out + err
    if code == 2:
        lines = err.splitlines()
        assert lines, "exit 2 without a message"
        n_lines = data.count(b"\n") + 1
        prefix = re.escape(str(path))
        for msg in lines:
            m = re.match(prefix + r":(\d+):(\d+): \S", msg)
            assert m, msg[:300]
            assert 1 <= int(m.group(1)) <= n_lines and int(m.group(2)) >= 1, msg[:300]
        assert "passed" not in out  # nothing ran
    else:
        assert code in (0, 1), (code, out[-2000:], err[-2000:])
        assert SUMMARY.match(out.strip().splitlines()[-1]), out[-500:]
        assert err == ""
    return code


# ------------------------------------------------------------ the grammar
_ERA_IDS = list(ERAS) + list(PLANNED)
_NAMES = st.sampled_from(["P", "C", "D", "A", "B", "G", "x", "_", "9", "P1", "A" * 60, "P:", "é"])
_NUMBERS = st.one_of(
    st.integers(-3, 20).map(str),
    st.sampled_from(["", "-", "--1", "+1", "9" * 5000, "0" * 30 + "1", "\u0663", "1e3", "0x10", "1_0", " 1"]),
)


@st.composite
def _range(draw):
    name = draw(_NAMES)
    shape = draw(st.integers(0, 5))
    a, b = draw(_NUMBERS), draw(_NUMBERS)
    return [name, f"{name}[{a}]", f"{name}[{a}:{b}]", f"{name}[{a}:]", f"{name}[:{b}]",
            f"{name}[{a}:{b}:{a}]"][shape]


@st.composite
def _eras(draw):
    ids = draw(st.lists(st.sampled_from(_ERA_IDS + ["9.9", "", " ", "4.6 4.5"]), min_size=1, max_size=3))
    return ",".join(ids)


@st.composite
def _statement(draw):
    verb = draw(st.sampled_from(PROC_VERBS + ("dma_write", "dma_read", "deferred_split", "expect", "frob")))
    proc = draw(st.one_of(st.just(""), _NAMES.map(lambda n: f"{n}: ")))
    if verb == "mmap":
        args = [draw(_NAMES)] + draw(st.lists(st.one_of(_NUMBERS, st.just("nohuge")), max_size=2))
    elif verb in ("mprotect", "pin"):
        args = [draw(_range()), draw(st.sampled_from(["ro", "rw", "rx", ""]))]
        if verb == "pin":
            args += [draw(st.sampled_from(["as", "with"])), draw(_NAMES)]
    elif verb == "vmsplice":
        args = [draw(_range()), "as", draw(_NAMES)]
    elif verb == "mremap":
        args = [draw(_range()), draw(_NAMES)] + draw(st.lists(st.sampled_from(["unaligned", "x"]), max_size=1))
    elif verb in ("unpin", "dma_write", "dma_read", "fork"):
        args = draw(st.lists(_NAMES, max_size=2))
    elif verb in ("exit", "deferred_split"):
        args = draw(st.lists(_NAMES, max_size=1))
    elif verb == "assert":
        eras = draw(st.one_of(st.just(""), _eras().map(lambda e: e + ": ")))
        func = draw(st.sampled_from(FUNCS + ("refcount", "")))
        op = draw(st.sampled_from(OPS + ("=", "=<", "")))
        return f"{proc}assert {eras}{func}({draw(_range())}) {op} {draw(_NUMBERS)}"
    elif verb == "expect":
        toks = draw(st.lists(st.sampled_from(DECISION_TOKENS + VIOLATION_TOKENS + ("clean", "x")), max_size=4))
        return f"expect {draw(_eras())}: {' '.join(toks)}"
    else:
        args = [draw(_range())]
    return proc + " ".join([verb] + args)


_STRAY = st.sampled_from(["\t", "  ", "#", ":", "[", "]", ",", "(", ")", "\x0b", "\x0c", "\r", "\x85", "\u2028",
                          "\u2029", "\x00", "\x1b", "\ufeff", "\u202e", "\xa0", "é", " " * 2000])


@st.composite
def _line(draw):
    line = draw(_statement())
    if draw(st.booleans()):
        line = draw(st.sampled_from(["", " ", "\t"])) + line + draw(st.sampled_from(["", "   # a comment", "#"]))
    if draw(st.integers(0, 9)) == 0:  # a stray character somewhere
        i = draw(st.integers(0, len(line)))
        line = line[:i] + draw(_STRAY) + line[i:]
    return line


@st.composite
def scenarios(draw):
    """A scenario of the grammar's pieces: small THPs, so every run is quick
    (the header's own values are fuzzed in test_header_values)."""
    head = [f"thp: {draw(st.sampled_from([2, 4, 8, 16]))}"]
    if draw(st.booleans()):
        head.insert(0, "title: " + draw(st.text(max_size=30)).replace("\n", " "))
    body = ["P: mmap A", "P: write A"] if draw(st.booleans()) else []
    body += draw(st.lists(_line(), max_size=14))
    return "\n".join(head + body) + "\n"


FAST = settings(max_examples=int(os.environ.get("THPVIZ_FUZZ_EXAMPLES", 120)), deadline=None, derandomize=IN_CI,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])


@FAST
@given(text=scenarios())
@example(text="thp: 8\nP: mmap A\nP: write A[-]\n")
@example(text="thp: 8\nP: mmap A\nP: mprotect A[0:4] ro\nP: mremap A B\nP: write B\nassert page_count(B) == 1\n")
@example(text="thp: 8\nP: mmap A\n# hidden\x0bP: write A\n")
def test_grammar_fuzz(text, tmp_path):
    check_bytes(text.encode("utf-8", errors="surrogatepass"), tmp_path / "g.thp")


@FAST
@given(value=st.one_of(st.text(max_size=20), _NUMBERS), extents=_NUMBERS)
def test_header_values(value, extents, tmp_path):
    check_bytes(f"thp: {value}\nP: mmap A {extents}\nP: write A[0]\n".encode("utf-8", errors="surrogatepass"),
                tmp_path / "h.thp")


@FAST
@given(data=st.binary(max_size=300))
def test_raw_bytes(data, tmp_path):
    check_bytes(b"thp: 8\nP: mmap A\n" + data, tmp_path / "b.thp")


# ------------------------------------------------------- byte mutations
_INTERESTING = [b"\x00", b"\x0b", b"\x0c", b"\r", b"\r\n", b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9",
                b"\xef\xbb\xbf", b"\xff", b"\xc3", b"\xe2\x80", b"#", b":", b"[", b"]", b"-", b" ", b"\t", b"\n",
                b",", b"(", b")", b"9" * 5000, b" " * 5000, b"A", b"P: ", b"expect 4.6: ", b"assert "]


def mutate(data: bytes, rng: random.Random, donors: list[bytes]) -> bytes:
    """One to four random edits of ``data``."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        i = rng.randrange(len(b) + 1)
        if op == 0 and b:  # flip a bit
            j = rng.randrange(len(b))
            b[j] ^= 1 << rng.randrange(8)
        elif op == 1:  # insert something interesting
            b[i:i] = rng.choice(_INTERESTING)
        elif op == 2 and b:  # overwrite with something interesting
            b[i:i + 1] = rng.choice(_INTERESTING)
        elif op == 3:  # delete a run
            del b[i:i + rng.randint(1, 16)]
        elif op == 4:  # truncate
            del b[i:]
        else:  # repeat, move or borrow whole lines
            lines = bytes(b).split(b"\n")
            donor = rng.choice(donors).split(b"\n")
            k = rng.randrange(len(lines))
            if op == 5:
                lines[k:k] = [lines[k]] * rng.randint(1, 50)
            elif op == 6:
                m = rng.randrange(len(lines))
                lines[k], lines[m] = lines[m], lines[k]
            else:
                lines.insert(k, rng.choice(donor))
            b = bytearray(b"\n".join(lines))
    return bytes(b)


def mutation_run(n_per_file: int, seed: int, tmp_path) -> dict:
    donors = [f.read_bytes() for f in LITMUS]
    codes: dict[int, int] = {}
    for f, data in zip(LITMUS, donors):
        rng = random.Random(f"{seed}:{f.relative_to(SCENARIOS)}")
        for _ in range(n_per_file):
            code = check_bytes(mutate(data, rng, donors), tmp_path / f.name)
            codes[code] = codes.get(code, 0) + 1
    return codes


def test_litmus_mutations(tmp_path):
    """A fixed budget of mutations of every litmus file (a different seed per
    file, the same on every run)."""
    assert LITMUS
    codes = mutation_run(int(os.environ.get("THPVIZ_FUZZ_MUTATIONS", 6)), 0, tmp_path)
    assert codes.get(2, 0) > 0  # the mutations do reach the error paths
    assert codes.get(0, 0) + codes.get(1, 0) > 0  # ... and the runs


@pytest.mark.slow
def test_litmus_mutations_long_hunt(tmp_path):
    codes = mutation_run(int(os.environ.get("THPVIZ_FUZZ_MUTATIONS", 60)), random.randrange(1 << 30), tmp_path)
    assert sum(codes.values()) == len(LITMUS) * int(os.environ.get("THPVIZ_FUZZ_MUTATIONS", 60))


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("THPVIZ_FUZZ_EXAMPLES", 2000)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(text=scenarios())
def test_grammar_fuzz_long_hunt(text, tmp_path):
    check_bytes(text.encode("utf-8", errors="surrogatepass"), tmp_path / "g.thp")
