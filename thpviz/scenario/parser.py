"""Parser of the ``.thp`` scenario language (DESIGN.md, "Scenario language";
docs/scenario-language.md is the reference).

The parser checks everything it can before anything runs: syntax, ranges
against region sizes, that processes, regions and pins exist at the point
they are used, era ids, the model's size limits, and (given the eras to run)
that every asserted counter function exists in those eras.  Every error is
``FILE:LINE:COL: message`` (``LINE:COL`` ``0:0`` for a file that cannot be
read at all); a file with any error runs nothing.

One small function per statement kind: :data:`_WORLD_STATEMENTS` and
:data:`_PROC_STATEMENTS` map a verb to the function that parses it.  No
regular expression with nested or overlapping repetition is used, so parsing
takes time linear in the size of the input.

Extensions, compatible with the fixed language: ``assert`` and ``expect``
accept a comma-separated list of eras (``assert 4.5,kirill-k1: ...``);
ranges accept open ends (``A[256:]``); ``unpin NAME`` may omit the process
(the device keeps a pin after its owner exits).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

HEADER_KEYS = ("title", "source", "thp")
DECISION_TOKENS = ("reuse", "cow", "cow-small", "cow-huge", "new", "none")
VIOLATION_TOKENS = ("pin-lost", "rmap-broken", "leak", "stray-write", "bug")
FUNCS = (
    "page_count", "page_mapcount", "total_mapcount", "compound_mapcount",
    "page_trans_huge_mapcount", "mapcount", "double_map", "pincount", "anon_exclusive",
    "large_mapcount", "entire_mapcount", "maybe_shared", "mapping",
)
OPS = ("==", "!=", "<=", ">=", "<", ">")
#: operations on a range of one process's region
RANGE_VERBS = ("read", "write", "munmap", "dontneed", "dontfork", "dofork", "split_pmd", "split_page")
PROC_VERBS = (
    "mmap", "read", "write", "munmap", "dontneed", "dontfork", "dofork", "mprotect", "mremap",
    "split_pmd", "split_page", "pin", "vmsplice", "unpin", "fork", "exit", "assert",
)

# -- limits (docs/scenario-language.md, "Limits") --------------------------------
#: largest scenario file read
MAX_FILE_BYTES = 4 << 20
#: largest ``thp:``
MAX_THP = 262144
#: most extents of one ``mmap``
MAX_EXTENTS = 64
#: most subpages all ``mmap`` statements of a file may map together (1 GiB of
#: 4 KiB pages): the model keeps several arrays per 4 KiB frame and copies
#: them at every step, so this bounds its memory and time
MAX_SUBPAGES = 1 << 18
#: a number with more digits than this is out of every range (and is never
#: handed to ``int()``)
MAX_DIGITS = 12

_BLANKS = " \t"
_ASCII_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_ASCII_DIGITS = frozenset("0123456789")
_IDENT_CHARS = _ASCII_LETTERS | _ASCII_DIGITS
_ERA_CHARS = _IDENT_CHARS | frozenset(".-")
#: characters a scenario may not contain (after an optional UTF-8 BOM at its
#: start): C0 controls but the tab, DEL, C1 controls (NEL among them), the
#: Unicode line and paragraph separators, bidirectional controls and a BOM
#: anywhere else.  Lines end only at ``\n`` (an ``\r`` right before it is
#: dropped), so no other character can start a hidden line.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_CONTROL_NAMES = {
    "\x00": "NUL", "\n": "line break", "\x0b": "vertical tab", "\x0c": "form feed", "\r": "carriage return",
    "\x1b": "escape", "\x7f": "delete", "\x85": "next line (NEL)", "\u2028": "line separator",
    "\u2029": "paragraph separator", "\ufeff": "byte order mark",
}
_TOKEN = re.compile("[^ \t]+")
#: (these have no nested or overlapping repetition: linear time)
_IDENT_RE = re.compile("[A-Za-z_][A-Za-z0-9_]*")
_IDENT_PREFIX = re.compile("[A-Za-z0-9_]*")


class ScenarioError(Exception):
    """One or more ``FILE:LINE:COL: message`` errors."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Range:
    region: str
    lo: int | None
    hi: int | None
    text: str

    def bounds(self, size: int) -> tuple[int, int]:
        lo = 0 if self.lo is None else self.lo
        hi = size if self.hi is None else self.hi
        return lo, hi


@dataclass
class Statement:
    line: int
    col: int
    text: str
    proc: str | None
    op: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class Expect:
    line: int
    col: int
    era: str
    decision: str | None
    violations: frozenset[str]


@dataclass
class Scenario:
    path: str
    title: str = ""
    source: str = ""
    thp: int = 512
    statements: list[Statement] = field(default_factory=list)
    expects: dict[str, Expect] = field(default_factory=dict)

    def named_eras(self) -> list[str]:
        """Eras named in ``expect`` and ``assert`` lines, in order of appearance."""
        seen: list[str] = []
        for st in self.statements:
            for e in st.args.get("eras") or ():
                if e not in seen:
                    seen.append(e)
        for e in self.expects:
            if e not in seen:
                seen.append(e)
        return seen


# ---------------------------------------------------------------- small pieces
def show(text: str, limit: int = 40) -> str:
    """``repr`` of a piece of input for a message, cut to ``limit`` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def _cut(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def is_ident(text: str) -> bool:
    """An ASCII identifier: a letter or ``_``, then letters, digits, ``_``."""
    return _IDENT_RE.fullmatch(text) is not None


def _natural(text: str) -> int | None:
    """``text`` as a non-negative decimal integer (ASCII digits only), or None;
    a number longer than MAX_DIGITS is returned as 10**MAX_DIGITS (out of
    every range) without converting it."""
    if not (text.isascii() and text.isdigit()):
        return None
    return int(text) if len(text) <= MAX_DIGITS else 10 ** MAX_DIGITS


def _integer(text: str) -> int | None:
    """An optionally negative decimal integer (see :func:`_natural`)."""
    if text.startswith("-"):
        n = _natural(text[1:])
        return None if n is None else -n
    return _natural(text)


def _tokens(text: str, col: int) -> list[tuple[str, int]]:
    """Blank-separated tokens of ``text`` with their 1-based columns, given
    that ``text`` starts at column ``col``."""
    return [(m.group(), col + m.start()) for m in _TOKEN.finditer(text)]


def _lstrip_col(text: str, col: int) -> tuple[str, int]:
    """``text`` without leading blanks, and the column it then starts at."""
    rest = text.lstrip(_BLANKS)
    return rest, col + len(text) - len(rest)


def split_lines(text: str) -> list[str]:
    """The lines of a scenario: split only at ``\\n``; one ``\\r`` before it
    is dropped (CRLF files).  A BOM at the start is dropped."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def control_char(line: str) -> tuple[int, str] | None:
    """(1-based column, description) of the first character of ``line`` a
    scenario may not contain, or None."""
    m = _CONTROL.search(line)
    if m is None:
        return None
    ch = m.group()
    name = _CONTROL_NAMES.get(ch, "control character")
    return m.start() + 1, f"{name} U+{ord(ch):04X}"


# ------------------------------------------------------------------ verdicts
def _verdict(tokens: list[tuple[str, int]], col: int,
             err: Callable[[int, str], None]) -> tuple[str | None, frozenset[str]] | None:
    """Decision and violations of ``expect`` tokens; None after reporting an
    error through ``err(col, message)``."""
    decision: str | None = None
    viols: set[str] = set()
    ok, clean = True, False
    for t, c in tokens:
        if t in DECISION_TOKENS:
            if decision is not None:
                err(c, f"two decision tokens: {decision} and {t}")
                ok = False
            decision = t
        elif t in VIOLATION_TOKENS:
            viols.add(t)
        elif t == "clean":
            clean = True
        else:
            err(c, f"unknown expectation token {show(t)} (decisions: {', '.join(DECISION_TOKENS)};"
                   f" violations: {', '.join(VIOLATION_TOKENS)}, clean)")
            ok = False
    if clean and viols:
        err(col, "'clean' together with violations")
        ok = False
    if not tokens:
        err(col, "expect line has no tokens")
        ok = False
    return (decision, frozenset(viols)) if ok else None


def parse_verdict(text: str) -> tuple[str | None, frozenset[str]]:
    """The tokens of an ``expect`` line (``"cow-huge pin-lost"``, ``"reuse
    clean"``) as (decision or None, violations).  Raises ValueError for
    anything an ``expect`` line would reject."""
    problems: list[str] = []
    got = _verdict(_tokens(str(text), 1), 1, lambda c, m: problems.append(f"column {c}: {m}"))
    if got is None:
        raise ValueError("; ".join(problems))
    return got


# ------------------------------------------------------------------ the state
@dataclass
class _Line:
    """One statement line being parsed."""

    no: int          # line number
    col: int         # column of its first character
    text: str        # without comment and surrounding blanks
    proc: str | None = None
    verb: str = ""
    vcol: int = 0    # column of the verb
    args: list[tuple[str, int]] = field(default_factory=list)
    rest: str = ""   # the text after ``P:``
    rcol: int = 0


class _State:
    """What the parser knows at the current line: the scenario so far, live
    processes and their regions, pins, and the errors found."""

    def __init__(self, path: str, known_eras: Iterable[str], planned_eras: Iterable[str]):
        self.path = path
        self.known = tuple(known_eras)
        self.planned = tuple(planned_eras)
        self.errors: list[str] = []
        self.lineno = 0
        self.scn = Scenario(path)
        self.procs: dict[str, dict[str, int]] = {}  # live process -> region -> size
        self.ever: set[str] = set()
        self.pins: dict[str, bool] = {}  # name -> active
        self.in_header = True
        self.mapped = 0  # subpages mapped by all mmap statements so far

    def err(self, col: int, msg: str) -> None:
        self.errors.append(f"{self.path}:{self.lineno}:{col}: {msg}")

    def add(self, ln: _Line, op: str, args: dict[str, Any], proc: str | None = None) -> None:
        self.scn.statements.append(Statement(ln.no, ln.col, ln.text, proc, op, args))

    # -- era ids ---------------------------------------------------------------
    def eras(self, text: str, col: int) -> tuple[str, ...] | None:
        out = []
        pos = 0
        for part in text.split(","):
            e = part.strip(_BLANKS)
            c = col + pos + (len(part) - len(part.lstrip(_BLANKS)))
            pos += len(part) + 1
            if e in self.known:
                out.append(e)
            elif e in self.planned:
                self.err(c, f"era {e} is not implemented yet")
                return None
            else:
                self.err(c, f"unknown era {show(e)} (known: {', '.join(self.known)})")
                return None
        return tuple(out)

    # -- ranges ----------------------------------------------------------------
    def range(self, tok: str, col: int, regions: dict[str, int]) -> Range | None:
        """``A``, ``A[i]``, ``A[i:j]``, ``A[i:]``, ``A[:j]`` checked against
        the region sizes in ``regions``."""
        n = _IDENT_PREFIX.match(tok).end()  # type: ignore[union-attr]  # matches the empty string
        name, rest = tok[:n], tok[n:]
        if not is_ident(name):
            self.err(col, f"bad range {show(tok)}: expected NAME, NAME[i] or NAME[i:j]")
            return None
        lo: int | None = None
        hi: int | None = None
        if rest:
            parts = rest[1:-1].split(":")
            nums = [None if p == "" else _integer(p) for p in parts]
            if (len(rest) < 2 or rest[0] != "[" or rest[-1] != "]" or len(parts) > 2
                    or any(p != "" and v is None for p, v in zip(parts, nums))):
                self.err(col, f"bad range {show(tok)}: expected NAME, NAME[i] or NAME[i:j]")
                return None
            if len(parts) == 1:
                if nums[0] is None:
                    self.err(col, f"bad range {show(tok)}: empty index")
                    return None
                lo, hi = nums[0], nums[0] + 1
            else:
                lo, hi = nums
        if name not in regions:
            self.err(col, f"unknown region {show(name)} in this process")
            return None
        size = regions[name]
        first, end = (0 if lo is None else lo), (size if hi is None else hi)
        if first < 0 or end > size or first >= end:
            self.err(col, f"range {_cut(tok)} is outside region {name} (subpages 0..{size - 1})")
            return None
        return Range(name, lo, hi, tok)

    def usage(self, ln: _Line, n_min: int, n_max: int, usage: str) -> bool:
        """Whether ``ln`` has n_min..n_max arguments (else an error)."""
        if n_min <= len(ln.args) <= n_max:
            return True
        col = ln.args[n_max][1] if len(ln.args) > n_max else ln.vcol
        self.err(col, f"usage: P: {usage}")
        return False

    def new_name(self, tok: str, col: int, what: str) -> bool:
        if is_ident(tok):
            return True
        self.err(col, f"bad {what} name {show(tok)}")
        return False


# --------------------------------------------------------------- header lines
def _header(s: _State, ln: _Line) -> bool:
    """``title:``, ``source:``, ``thp:``; False if ``ln`` is not one."""
    colon = ln.text.find(":")
    key = ln.text[:colon].rstrip(_BLANKS) if colon > 0 else ""
    if key not in HEADER_KEYS:
        return False
    val, vcol = _lstrip_col(ln.text[colon + 1:], ln.col + colon + 1)
    if not s.in_header:
        s.err(ln.col, f"header line {key}: after the first statement")
        return True
    if key == "thp":
        n = _natural(val)
        if n is None or n < 2 or n & (n - 1) or n > MAX_THP:
            s.err(vcol, f"thp: must be a power of two between 2 and {MAX_THP}, not {show(val)}")
        else:
            s.scn.thp = n
    elif key == "title":
        s.scn.title = val
    else:
        s.scn.source = val
    return True


def _expect(s: _State, ln: _Line) -> None:
    """``expect ERA[,ERA...]: TOKENS``"""
    rest, rcol = _lstrip_col(ln.text[len("expect"):], ln.col + len("expect"))
    colon = rest.find(":")
    eras_text = rest[:colon].rstrip(_BLANKS) if colon > 0 else ""
    if not eras_text:
        s.err(ln.col, "expect needs the form 'expect ERA: TOKENS'")
        return
    eras = s.eras(eras_text, rcol)
    if eras is None:
        return
    toks_text, tcol = _lstrip_col(rest[colon + 1:], rcol + colon + 1)
    got = _verdict(_tokens(toks_text, tcol), tcol, s.err)
    if got is None:
        return
    decision, viols = got
    for e in eras:
        if e in s.scn.expects:
            s.err(ln.col, f"a second expect line for era {e} (first on line {s.scn.expects[e].line})")
            continue
        s.scn.expects[e] = Expect(ln.no, ln.col, e, decision, viols)


# ------------------------------------------------------------ world statements
def _deferred_split(s: _State, ln: _Line) -> None:
    """``deferred_split``: the deferred-split shrinker runs."""
    if ln.args:
        extra = ln.text[ln.args[0][1] - ln.col:]
        s.err(ln.args[0][1], f"unexpected {show(extra)}: deferred_split takes nothing")
        return
    s.add(ln, "deferred_split", {})


def _dma(s: _State, ln: _Line) -> None:
    """``dma_write NAME`` / ``dma_read NAME``: the device through a pin."""
    if not ln.args:
        s.err(ln.col, f"{ln.verb} needs a pin name")
        return
    name, c = ln.args[0]
    if len(ln.args) > 1:
        extra = ln.text[ln.args[1][1] - ln.col:]
        s.err(ln.args[1][1], f"unexpected {show(extra)}")
        return
    if not s.pins.get(name):
        s.err(c, f"no active pin named {show(name)}")
        return
    s.add(ln, ln.verb, {"pin": name})


def _unpin(s: _State, ln: _Line) -> None:
    """``[P:] unpin NAME``"""
    if ln.proc is not None and not s.usage(ln, 1, 1, "unpin NAME"):
        return
    name, c = ln.args[0]
    if not s.pins.get(name):
        s.err(c, f"no active pin named {show(name)}")
        return
    s.pins[name] = False
    s.add(ln, "unpin", {"pin": name}, ln.proc)


_WORLD_STATEMENTS: dict[str, Callable[[_State, _Line], None]] = {
    "deferred_split": _deferred_split, "dma_write": _dma, "dma_read": _dma,
}


# ---------------------------------------------------------- process statements
def _mmap(s: _State, ln: _Line) -> None:
    """``P: mmap A [N] [nohuge]``"""
    huge = True
    if len(ln.args) >= 2 and ln.args[-1][0] == "nohuge":
        huge = False
        ln.args = ln.args[:-1]
    if not s.usage(ln, 1, 2, "mmap REGION [N] [nohuge]"):
        return
    name, c = ln.args[0]
    if not s.new_name(name, c, "region"):
        return
    n, ncol = 1, c
    if len(ln.args) == 2:
        text, ncol = ln.args[1]
        got = _natural(text)
        if got is None or not 1 <= got <= MAX_EXTENTS:
            s.err(ncol, f"extent count must be an integer 1..{MAX_EXTENTS}, not {show(text)}")
            return
        n = got
    proc = ln.proc
    assert proc is not None
    if proc in s.ever and proc not in s.procs:
        s.err(ln.col, f"process {proc} has exited")
        return
    regs = s.procs.setdefault(proc, {})
    s.ever.add(proc)
    if name in regs:
        s.err(c, f"{proc} already has a region {name}")
        return
    size = n * s.scn.thp
    if s.mapped + size > MAX_SUBPAGES:
        s.err(ncol, f"too much memory for the model: this mmap brings the subpages mapped by the file to "
                    f"{s.mapped + size} (at most {MAX_SUBPAGES}, 1 GiB of 4 KiB pages; use a smaller thp: "
                    f"or fewer extents)")
        return
    s.mapped += size
    regs[name] = size
    s.add(ln, "mmap", {"region": name, "extents": n, "huge": huge}, proc)


def _range_op(s: _State, ln: _Line, regs: dict[str, int]) -> None:
    """``P: read|write|munmap|dontneed|dontfork|dofork|split_pmd|split_page R``"""
    if not s.usage(ln, 1, 1, f"{ln.verb} RANGE"):
        return
    r = s.range(*ln.args[0], regs)
    if r:
        s.add(ln, ln.verb, {"range": r}, ln.proc)


def _ro_rw(s: _State, tok: str, col: int, verb: str) -> bool:
    if tok in ("ro", "rw"):
        return True
    s.err(col, f"{verb} takes ro or rw, not {show(tok)}")
    return False


def _mprotect(s: _State, ln: _Line, regs: dict[str, int]) -> None:
    """``P: mprotect R ro|rw``"""
    if not s.usage(ln, 2, 2, "mprotect RANGE ro|rw"):
        return
    r = s.range(*ln.args[0], regs)
    ok = _ro_rw(s, *ln.args[1], "mprotect")
    if r and ok:
        s.add(ln, "mprotect", {"range": r, "write": ln.args[1][0] == "rw"}, ln.proc)


def _mremap(s: _State, ln: _Line, regs: dict[str, int]) -> None:
    """``P: mremap R B [unaligned]``"""
    aligned = True
    if len(ln.args) == 3 and ln.args[2][0] == "unaligned":
        aligned = False
        ln.args = ln.args[:2]
    if not s.usage(ln, 2, 2, "mremap RANGE NEWREGION [unaligned]"):
        return
    r = s.range(*ln.args[0], regs)
    new, c = ln.args[1]
    ok = s.new_name(new, c, "region")
    if ok and new in regs:
        s.err(c, f"{ln.proc} already has a region {new}")
        ok = False
    if r and ok:
        lo, hi = r.bounds(regs[r.region])
        regs[new] = hi - lo
        s.add(ln, "mremap", {"range": r, "new": new, "aligned": aligned}, ln.proc)


def _pin(s: _State, ln: _Line, regs: dict[str, int]) -> None:
    """``P: pin R ro|rw as NAME`` / ``P: vmsplice R as NAME``"""
    usage = "pin RANGE ro|rw as NAME" if ln.verb == "pin" else "vmsplice RANGE as NAME"
    k = 4 if ln.verb == "pin" else 3
    if not s.usage(ln, k, k, usage):
        return
    r = s.range(*ln.args[0], regs)
    ok = ln.verb != "pin" or _ro_rw(s, *ln.args[1], "pin")
    write = ln.verb == "pin" and ln.args[1][0] == "rw"
    if ln.args[k - 2][0] != "as":
        s.err(ln.args[k - 2][1], f"expected 'as', found {show(ln.args[k - 2][0])}")
        ok = False
    name, c = ln.args[k - 1]
    if not s.new_name(name, c, "pin"):
        ok = False
    elif name in s.pins:
        s.err(c, f"a pin named {name} already exists")
        ok = False
    if r and ok:
        s.pins[name] = True
        s.add(ln, ln.verb, {"range": r, "write": write, "name": name}, ln.proc)


def _fork(s: _State, ln: _Line, regs: dict[str, int]) -> None:
    """``P: fork C``"""
    if not s.usage(ln, 1, 1, "fork CHILD"):
        return
    child, c = ln.args[0]
    if not s.new_name(child, c, "process"):
        return
    if child in s.ever:
        s.err(c, f"process {child} already exists" if child in s.procs else f"process name {child} was used before")
        return
    s.procs[child] = dict(regs)
    s.ever.add(child)
    s.add(ln, "fork", {"child": child}, ln.proc)


def _exit(s: _State, ln: _Line, regs: dict[str, int]) -> None:
    """``P: exit``"""
    if not s.usage(ln, 0, 0, "exit"):
        return
    assert ln.proc is not None
    del s.procs[ln.proc]
    s.add(ln, "exit", {}, ln.proc)


def _unpin_of(s: _State, ln: _Line, regs: dict[str, int]) -> None:
    _unpin(s, ln)


_PROC_STATEMENTS: dict[str, Callable[[_State, _Line, dict[str, int]], None]] = {
    **{v: _range_op for v in RANGE_VERBS},
    "mprotect": _mprotect, "mremap": _mremap, "pin": _pin, "vmsplice": _pin,
    "unpin": _unpin_of, "fork": _fork, "exit": _exit,
}


# ---------------------------------------------------------------- assert lines
def _era_prefix(body: str) -> int:
    """Position of the ``:`` ending an era list at the start of an assert's
    body (``4.5,kirill-k1: ...``), or -1."""
    colon = body.find(":")
    if colon <= 0:
        return -1
    for part in body[:colon].split(","):
        e = part.strip(_BLANKS)
        if not e or not all(c in _ERA_CHARS for c in e):
            return -1
    return colon


def _assert(s: _State, ln: _Line) -> None:
    """``[P:] assert [ERA[,ERA...]:] FUNC(R) OP INT``"""
    body, bcol = _lstrip_col(ln.rest[len("assert"):], ln.vcol + len("assert"))
    eras = None
    colon = _era_prefix(body)
    if colon > 0:
        eras = s.eras(body[:colon].rstrip(_BLANKS), bcol)
        if eras is None:
            return
        body, bcol = _lstrip_col(body[colon + 1:], bcol + colon + 1)
    form = "assert needs the form 'assert [ERA:] FUNC(RANGE) OP INT'"
    # FUNC ( RANGE ) OP VALUE, blanks allowed between the parts
    n = _IDENT_PREFIX.match(body).end()  # type: ignore[union-attr]  # matches the empty string
    func = body[:n]
    after, acol = _lstrip_col(body[n:], bcol + n)
    close = after.find(")")
    if not is_ident(func) or not after.startswith("(") or close < 0:
        s.err(bcol, form)
        return
    rng_text, rcol = _lstrip_col(after[1:close], acol + 1)
    rng_text = rng_text.rstrip(_BLANKS)
    tail, tcol = _lstrip_col(after[close + 1:], acol + close + 1)
    op = next((o for o in OPS if tail.startswith(o)), None)
    if not rng_text or any(c in _BLANKS for c in rng_text) or op is None:
        s.err(bcol, form)
        return
    val, vcol = _lstrip_col(tail[len(op):], tcol + len(op))
    val = val.rstrip(_BLANKS)
    if not val or any(c in _BLANKS for c in val):
        s.err(bcol, form)
        return
    if func not in FUNCS:
        s.err(bcol, f"unknown counter function {show(func)} (known: {', '.join(FUNCS)})")
        return
    value = _integer(val)
    if value is None:
        s.err(vcol, f"assert compares with an integer, not {show(val)}")
        return
    if abs(value) >= 10 ** MAX_DIGITS:
        s.err(vcol, f"assert value {_cut(val)} is out of range (at most {MAX_DIGITS} digits)")
        return
    if ln.proc is not None:
        if ln.proc not in s.procs:
            s.err(ln.col, f"process {ln.proc} does not exist")
            return
        regions = s.procs[ln.proc]
    else:
        regions = {}
        for regs in s.procs.values():
            for k, v in regs.items():
                regions.setdefault(k, v)
    r = s.range(rng_text, rcol, regions)
    if r is None:
        return
    s.add(ln, "assert", {"eras": eras, "func": func, "range": r, "cmp": op, "value": value,
                         "func_col": bcol}, ln.proc)


# ------------------------------------------------------------------ one line
def _statement(s: _State, ln: _Line) -> None:
    """A statement line (not a header or expect line)."""
    first = _TOKEN.match(ln.text)
    handler = _WORLD_STATEMENTS.get(first.group()) if first else None
    if handler is not None:
        toks = _tokens(ln.text, ln.col)
        ln.verb, ln.vcol = toks[0]
        ln.args = toks[1:]
        handler(s, ln)
        return
    colon = ln.text.find(":")
    head = ln.text[:colon].rstrip(_BLANKS) if colon > 0 else ""
    if is_ident(head) and head not in ("assert", "expect"):
        ln.proc = head
        ln.rest, ln.rcol = _lstrip_col(ln.text[colon + 1:], ln.col + colon + 1)
    else:
        ln.rest, ln.rcol = ln.text, ln.col
    toks = _tokens(ln.rest, ln.rcol)
    if not toks:
        s.err(ln.rcol, "missing operation after the process name")
        return
    (ln.verb, ln.vcol), ln.args = toks[0], toks[1:]
    if ln.verb == "assert":
        _assert(s, ln)
        return
    if ln.proc is None and ln.verb == "unpin" and len(ln.args) == 1:
        _unpin(s, ln)
        return
    if ln.proc is None:
        s.err(ln.vcol, f"unknown statement {show(ln.verb)}" if ln.verb not in PROC_VERBS
              else f"{ln.verb} needs a process: 'P: {ln.verb} ...'")
        return
    if ln.verb not in PROC_VERBS:
        s.err(ln.vcol, f"unknown operation {show(ln.verb)} (known: {', '.join(PROC_VERBS)})")
        return
    if ln.verb == "mmap":
        _mmap(s, ln)
        return
    if ln.proc not in s.procs:
        s.err(ln.col, f"process {ln.proc} does not exist" + (
            " (it has exited)" if ln.proc in s.ever else " (a process exists once it maps something or is forked)"))
        return
    _PROC_STATEMENTS[ln.verb](s, ln, s.procs[ln.proc])


def _line(s: _State, no: int, raw: str) -> None:
    s.lineno = no
    bad = control_char(raw)
    if bad is not None:
        col, what = bad
        s.err(col, f"{what} is not allowed in a scenario (only spaces and tabs separate words, "
                   "and a line ends at a line feed)")
        return
    body = raw.split("#", 1)[0]
    text, col = _lstrip_col(body, 1)
    text = text.rstrip(_BLANKS)
    if not text:
        return
    ln = _Line(no, col, text)
    if _header(s, ln):
        return
    s.in_header = False
    if text.startswith("expect") and (len(text) == 6 or text[6] in _BLANKS):
        _expect(s, ln)
        return
    _statement(s, ln)


# ------------------------------------------------------------------ entry points
def parse_text(text: str, path: str = "<string>", known_eras: Iterable[str] | None = None,
               planned_eras: Iterable[str] | None = None) -> Scenario:
    """Parse a scenario.  ``known_eras`` defaults to the implemented eras."""
    if known_eras is None or planned_eras is None:
        from ..eras import ERAS, PLANNED

        known_eras = tuple(ERAS) if known_eras is None else known_eras
        planned_eras = tuple(PLANNED) if planned_eras is None else planned_eras
    s = _State(path, known_eras, planned_eras)
    for no, raw in enumerate(split_lines(text), 1):
        _line(s, no, raw)
    if s.errors:
        raise ScenarioError(s.errors)
    return s.scn


def check_eras(scn: Scenario, eras) -> None:
    """Raise ScenarioError if an assert that applies to one of ``eras`` names a
    counter function that does not exist in that era."""
    errors = []
    for st in scn.statements:
        if st.op != "assert":
            continue
        for era in eras:
            if st.args["eras"] is not None and era.id not in st.args["eras"]:
                continue
            if st.args["func"] not in era.counters:
                errors.append(
                    f"{scn.path}:{st.line}:{st.args['func_col']}: {st.args['func']} does not exist in era "
                    f"{era.id}" + ("" if st.args["eras"] else " (prefix the assert with the eras it is for)")
                )
                break
    if errors:
        raise ScenarioError(errors)


def check_statement_line(line: str, path: str = "<statement>") -> None:
    """Raise ScenarioError unless ``line`` is one statement line: not blank,
    not only a comment, not a header or ``expect`` line, no line break.  (For
    front ends that append statements one at a time, such as the Sandbox.)"""
    where = f"{path}:1:1:"
    if "\n" in line or "\r" in line:
        raise ScenarioError([f"{where} one statement, without a line break"])
    bad = control_char(line)
    if bad is not None:
        raise ScenarioError([f"{path}:1:{bad[0]}: {bad[1]} is not allowed in a scenario"])
    text = line.split("#", 1)[0].strip(_BLANKS)
    if not text:
        raise ScenarioError([f"{where} a statement is needed, not a blank or comment line"])
    colon = text.find(":")
    if colon > 0 and text[:colon].rstrip(_BLANKS) in HEADER_KEYS:
        raise ScenarioError([f"{where} a statement is needed, not a header line"])
    if text.startswith("expect") and (len(text) == 6 or text[6] in _BLANKS):
        raise ScenarioError([f"{where} a statement is needed, not an expect line"])


def header_value(key: str, value: str) -> str:
    """``value`` as it reads back from a ``key:`` header line (surrounding
    blanks dropped).  Raises ValueError for a value the language cannot hold:
    a ``#`` (it starts a comment), a line break or another control
    character."""
    if key not in HEADER_KEYS:
        raise ValueError(f"unknown header key {key!r} (known: {', '.join(HEADER_KEYS)})")
    value = str(value)
    bad = control_char(value)
    if bad is not None:
        raise ValueError(f"a {key} cannot contain {bad[1]} (a control character)")
    if "#" in value:
        raise ValueError(f"a {key} cannot contain '#' (it starts a comment in a scenario)")
    return value.strip(_BLANKS)


def range_text(region: str, size: int, lo: int, hi: int) -> str:
    """The scenario language's text for subpages [lo, hi) of a region of
    ``size`` subpages: ``A``, ``A[3]`` or ``A[2:6]``."""
    if lo == 0 and hi == size:
        return region
    if hi - lo == 1:
        return f"{region}[{lo}]"
    return f"{region}[{lo}:{hi}]"


def format_header(title: str = "", source: str = "", thp: int | None = None) -> list[str]:
    """Header lines for a scenario written by a program; every value reads
    back unchanged (see :func:`header_value`)."""
    out = []
    if title:
        out.append(f"title: {header_value('title', title)}")
    if source:
        out.append(f"source: {header_value('source', source)}")
    if thp is not None:
        if not isinstance(thp, int) or thp < 2 or thp & (thp - 1) or thp > MAX_THP:
            raise ValueError(f"thp must be a power of two between 2 and {MAX_THP}, not {thp!r}")
        out.append(f"thp: {thp}")
    return out


def decode(data: bytes, path: str) -> str:
    """The text of a scenario file's bytes: UTF-8, an optional BOM at the
    start dropped.  Raises ScenarioError naming the line and column of the
    first byte that is not UTF-8."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        start = e.start
        line = data.count(b"\n", 0, start) + 1
        line_start = data.rfind(b"\n", 0, start) + 1
        col = len(data[line_start:start].decode("utf-8", errors="replace")) + 1
        raise ScenarioError([f"{path}:{line}:{col}: not UTF-8 text (byte 0x{data[start]:02x}); "
                             "save the file as UTF-8"]) from None


def read_file(path: str) -> str:
    """The text of a scenario file.  Only a regular file of at most
    MAX_FILE_BYTES is read (a FIFO, a device or a folder is refused without
    waiting on it); raises ScenarioError."""
    def fail(msg: str) -> ScenarioError:
        return ScenarioError([f"{path}:0:0: {msg}"])

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise fail(f"cannot read: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise fail("is a folder, not a scenario file")
        if not stat.S_ISREG(st.st_mode):
            raise fail("not a regular file (a FIFO, socket or device is not read)")
        if st.st_size > MAX_FILE_BYTES:
            raise fail(f"too large: {st.st_size} bytes (a scenario has at most {MAX_FILE_BYTES})")
        chunks, got = [], 0
        while got <= MAX_FILE_BYTES:
            b = os.read(fd, min(1 << 20, MAX_FILE_BYTES + 1 - got))
            if not b:
                break
            chunks.append(b)
            got += len(b)
        if got > MAX_FILE_BYTES:
            raise fail(f"too large (a scenario has at most {MAX_FILE_BYTES} bytes)")
    except OSError as e:
        raise fail(f"cannot read: {e.strerror}") from None
    finally:
        os.close(fd)
    return decode(b"".join(chunks), path)


def parse_file(path: str) -> Scenario:
    return parse_text(read_file(path), path)
