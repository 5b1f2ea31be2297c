"""Parser of the ``.thp`` scenario language (DESIGN.md, "Scenario language").

The parser checks everything it can before anything runs: syntax, ranges
against region sizes, that processes, regions and pins exist at the point
they are used, era ids, and (given the eras to run) that every asserted
counter function exists in those eras.  Every error is ``FILE:LINE:COL:
message``; a file with any error runs nothing.

Extensions, compatible with the fixed language: ``assert`` and ``expect``
accept a comma-separated list of eras (``assert 4.5,kirill-k1: ...``);
ranges accept open ends (``A[256:]``); ``unpin NAME`` may omit the process
(the device keeps a pin after its owner exits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

HEADER_KEYS = ("title", "source", "thp")
DECISION_TOKENS = ("reuse", "cow", "cow-small", "cow-huge", "new", "none")
VIOLATION_TOKENS = ("pin-lost", "rmap-broken", "leak", "stray-write", "bug")
FUNCS = (
    "page_count", "page_mapcount", "total_mapcount", "compound_mapcount",
    "page_trans_huge_mapcount", "mapcount", "double_map", "pincount", "anon_exclusive",
    "large_mapcount", "entire_mapcount", "maybe_shared", "mapping",
)
OPS = ("==", "!=", "<=", ">=", "<", ">")
PROC_VERBS = (
    "mmap", "read", "write", "munmap", "dontneed", "dontfork", "dofork", "mprotect", "mremap",
    "split_pmd", "split_page", "pin", "vmsplice", "unpin", "fork", "exit", "assert",
)
#: statements without a process
WORLD_VERBS = ("dma_write", "dma_read", "unpin", "deferred_split")

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_IDENT_RE = re.compile(rf"^{_IDENT}$")
_RANGE_RE = re.compile(rf"^({_IDENT})(?:\[(-?\d*)(?::(-?\d*))?\])?$")
_ASSERT_RE = re.compile(
    rf"^({_IDENT})\s*\(\s*(\S+?)\s*\)\s*(==|!=|<=|>=|<|>)\s*(\S+)\s*$"
)


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
    args: dict = field(default_factory=dict)


@dataclass
class Expect:
    line: int
    col: int
    era: str
    decision: str | None
    violations: frozenset


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


class _Tokens:
    """Whitespace-separated tokens of a line with their 1-based columns."""

    def __init__(self, text: str, start_col: int = 1):
        self.items = [(m.group(), start_col + m.start()) for m in re.finditer(r"\S+", text)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class Parser:
    def __init__(self, path: str, known_eras, planned_eras=()):
        self.path = path
        self.known = tuple(known_eras)
        self.planned = tuple(planned_eras)
        self.errors: list[str] = []
        self.line = 0

    def err(self, col: int, msg: str) -> None:
        self.errors.append(f"{self.path}:{self.line}:{col}: {msg}")

    # -- era ids -----------------------------------------------------------------
    def _eras(self, text: str, col: int) -> tuple[str, ...] | None:
        out = []
        pos = 0
        for part in text.split(","):
            e = part.strip()
            c = col + pos + (len(part) - len(part.lstrip()))
            pos += len(part) + 1
            if e in self.known:
                out.append(e)
            elif e in self.planned:
                self.err(c, f"era {e} is not implemented yet")
                return None
            else:
                self.err(c, f"unknown era {e!r} (known: {', '.join(self.known)})")
                return None
        return tuple(out)

    # -- ranges ------------------------------------------------------------------
    def _range(self, tok: str, col: int, regions: dict | None) -> Range | None:
        m = _RANGE_RE.match(tok)
        if not m:
            self.err(col, f"bad range {tok!r}: expected NAME, NAME[i] or NAME[i:j]")
            return None
        name, a, b = m.group(1), m.group(2), m.group(3)
        has_colon = ":" in tok
        if "[" in tok and not has_colon and a == "":
            self.err(col, f"bad range {tok!r}: empty index")
            return None
        lo = int(a) if a else None
        hi = int(b) if b else None
        if "[" in tok and not has_colon:
            hi = lo + 1
        if regions is not None:
            if name not in regions:
                self.err(col, f"unknown region {name!r} in this process")
                return None
            size = regions[name]
            l, h = (0 if lo is None else lo), (size if hi is None else hi)
            if l < 0 or h > size or l >= h:
                self.err(col, f"range {tok} is outside region {name} (subpages 0..{size - 1})")
                return None
        return Range(name, lo, hi, tok)


def parse_text(text: str, path: str = "<string>", known_eras=None, planned_eras=None) -> Scenario:
    """Parse a scenario.  ``known_eras`` defaults to the implemented eras."""
    if known_eras is None or planned_eras is None:
        from ..eras import ERAS, PLANNED

        known_eras = tuple(ERAS) if known_eras is None else known_eras
        planned_eras = tuple(PLANNED) if planned_eras is None else planned_eras
    p = Parser(path, known_eras, planned_eras)
    scn = Scenario(path)
    procs: dict[str, dict[str, int]] = {}  # live process -> region -> size
    ever: set[str] = set()
    pins: dict[str, bool] = {}  # name -> active
    in_header = True

    for lineno, raw in enumerate(text.splitlines(), 1):
        p.line = lineno
        body = raw.split("#", 1)[0].rstrip()
        if not body.strip():
            continue
        indent = len(body) - len(body.lstrip())
        stripped = body.strip()
        col0 = indent + 1

        hm = re.match(r"^([a-z]+)\s*:\s*(.*)$", stripped)
        if hm and hm.group(1) in HEADER_KEYS:
            key, val = hm.group(1), hm.group(2).strip()
            vcol = col0 + hm.start(2)
            if not in_header:
                p.err(col0, f"header line {key}: after the first statement")
                continue
            if key == "thp":
                if not re.fullmatch(r"\d+", val) or int(val) < 2 or int(val) & (int(val) - 1) or int(val) > 262144:
                    p.err(vcol, f"thp: must be a power of two between 2 and 262144, not {val!r}")
                else:
                    scn.thp = int(val)
            elif key == "title":
                scn.title = val
            else:
                scn.source = val
            continue
        in_header = False

        # expect ERA: TOKENS
        if stripped.startswith("expect") and (len(stripped) == 6 or stripped[6].isspace()):
            em = re.match(r"^expect\s+([^:\s][^:]*?)\s*:\s*(.*)$", stripped)
            if not em:
                p.err(col0, "expect needs the form 'expect ERA: TOKENS'")
                continue
            eras = p._eras(em.group(1), col0 + em.start(1))
            if eras is None:
                continue
            decision, viols, ok = None, set(), True
            toks = _Tokens(em.group(2), col0 + em.start(2))
            clean = False
            for t, c in toks.items:
                if t in DECISION_TOKENS:
                    if decision is not None:
                        p.err(c, f"two decision tokens: {decision} and {t}")
                        ok = False
                    decision = t
                elif t in VIOLATION_TOKENS:
                    viols.add(t)
                elif t == "clean":
                    clean = True
                else:
                    p.err(c, f"unknown expectation token {t!r} (decisions: {', '.join(DECISION_TOKENS)};"
                             f" violations: {', '.join(VIOLATION_TOKENS)}, clean)")
                    ok = False
            if clean and viols:
                p.err(col0 + em.start(2), "'clean' together with violations")
                ok = False
            if not toks.items:
                p.err(col0 + em.start(2), "expect line has no tokens")
                ok = False
            if not ok:
                continue
            for e in eras:
                if e in scn.expects:
                    p.err(col0, f"a second expect line for era {e} (first on line {scn.expects[e].line})")
                    continue
                scn.expects[e] = Expect(lineno, col0, e, decision, frozenset(viols))
            continue

        if stripped == "deferred_split" or stripped.startswith("deferred_split "):
            extra = stripped[len("deferred_split"):].strip()
            if extra:
                p.err(col0 + len("deferred_split") + 1, f"unexpected {extra!r}: deferred_split takes nothing")
                continue
            scn.statements.append(Statement(lineno, col0, stripped, None, "deferred_split", {}))
            continue

        # device statements
        dm = re.match(r"^(dma_write|dma_read)(?:\s+(\S+))?\s*(.*)$", stripped)
        if dm:
            name = dm.group(2)
            if not name:
                p.err(col0, f"{dm.group(1)} needs a pin name")
                continue
            if dm.group(3):
                p.err(col0 + dm.start(3), f"unexpected {dm.group(3)!r}")
                continue
            if not pins.get(name):
                p.err(col0 + dm.start(2), f"no active pin named {name!r}")
                continue
            scn.statements.append(Statement(lineno, col0, stripped, None, dm.group(1), {"pin": name}))
            continue

        proc = None
        rest, rcol = stripped, col0
        pm = re.match(rf"^({_IDENT})\s*:\s*(.*)$", stripped)
        if pm and pm.group(1) not in ("assert", "expect"):
            proc = pm.group(1)
            rest, rcol = pm.group(2), col0 + pm.start(2)
        toks = _Tokens(rest, rcol)
        if not toks.items:
            p.err(rcol, "missing operation after the process name")
            continue
        verb, vcol = toks[0]

        if verb == "assert":
            st = _parse_assert(p, lineno, col0, stripped, proc, rest, rcol, procs)
            if st:
                scn.statements.append(st)
            continue

        if proc is None and verb == "unpin" and len(toks) == 2:
            name, c = toks[1]
            if not pins.get(name):
                p.err(c, f"no active pin named {name!r}")
            else:
                pins[name] = False
                scn.statements.append(Statement(lineno, col0, stripped, None, verb, {"pin": name}))
            continue
        if proc is None:
            p.err(vcol, f"unknown statement {verb!r}" if verb not in PROC_VERBS
                  else f"{verb} needs a process: 'P: {verb} ...'")
            continue
        if verb not in PROC_VERBS:
            p.err(vcol, f"unknown operation {verb!r} (known: {', '.join(PROC_VERBS)})")
            continue

        args = [t for t in toks.items[1:]]
        nerr = len(p.errors)

        def need(n_min, n_max, usage):
            if not (n_min <= len(args) <= n_max):
                col = args[n_max][1] if len(args) > n_max else vcol
                p.err(col, f"usage: P: {usage}")
                return False
            return True

        if verb == "mmap":
            huge = True
            if len(args) >= 2 and args[-1][0] == "nohuge":
                huge = False
                args = args[:-1]
            if not need(1, 2, "mmap REGION [N] [nohuge]"):
                continue
            name, c = args[0]
            if not _IDENT_RE.match(name):
                p.err(c, f"bad region name {name!r}")
                continue
            n = 1
            if len(args) == 2:
                if not re.fullmatch(r"\d+", args[1][0]) or int(args[1][0]) < 1 or int(args[1][0]) > 64:
                    p.err(args[1][1], f"extent count must be an integer 1..64, not {args[1][0]!r}")
                    continue
                n = int(args[1][0])
            if proc in ever and proc not in procs:
                p.err(col0, f"process {proc} has exited")
                continue
            regs = procs.setdefault(proc, {})
            ever.add(proc)
            if name in regs:
                p.err(c, f"{proc} already has a region {name}")
                continue
            regs[name] = n * scn.thp
            scn.statements.append(Statement(lineno, col0, stripped, proc, verb,
                                            {"region": name, "extents": n, "huge": huge}))
            continue

        if proc not in procs:
            p.err(col0, f"process {proc} does not exist" + (" (it has exited)" if proc in ever else
                        " (a process exists once it maps something or is forked)"))
            continue
        regs = procs[proc]

        if verb in ("read", "write", "munmap", "dontneed", "dontfork", "dofork", "split_pmd", "split_page"):
            if not need(1, 1, f"{verb} RANGE"):
                continue
            r = p._range(args[0][0], args[0][1], regs)
            if r:
                scn.statements.append(Statement(lineno, col0, stripped, proc, verb, {"range": r}))
        elif verb == "mprotect":
            if not need(2, 2, "mprotect RANGE ro|rw"):
                continue
            r = p._range(args[0][0], args[0][1], regs)
            if args[1][0] not in ("ro", "rw"):
                p.err(args[1][1], f"mprotect takes ro or rw, not {args[1][0]!r}")
            if r and len(p.errors) == nerr:
                scn.statements.append(Statement(lineno, col0, stripped, proc, verb,
                                                {"range": r, "write": args[1][0] == "rw"}))
        elif verb == "mremap":
            aligned = True
            if len(args) == 3 and args[2][0] == "unaligned":
                aligned = False
                args = args[:2]
            if not need(2, 2, "mremap RANGE NEWREGION [unaligned]"):
                continue
            r = p._range(args[0][0], args[0][1], regs)
            new, c = args[1]
            if not _IDENT_RE.match(new):
                p.err(c, f"bad region name {new!r}")
            elif new in regs:
                p.err(c, f"{proc} already has a region {new}")
            if r and len(p.errors) == nerr:
                lo, hi = r.bounds(regs[r.region])
                regs[new] = hi - lo
                scn.statements.append(Statement(lineno, col0, stripped, proc, verb,
                                                {"range": r, "new": new, "aligned": aligned}))
        elif verb in ("pin", "vmsplice"):
            usage = "pin RANGE ro|rw as NAME" if verb == "pin" else "vmsplice RANGE as NAME"
            k = 4 if verb == "pin" else 3
            if not need(k, k, usage):
                continue
            r = p._range(args[0][0], args[0][1], regs)
            write = False
            if verb == "pin":
                if args[1][0] not in ("ro", "rw"):
                    p.err(args[1][1], f"pin takes ro or rw, not {args[1][0]!r}")
                write = args[1][0] == "rw"
            if args[k - 2][0] != "as":
                p.err(args[k - 2][1], f"expected 'as', found {args[k - 2][0]!r}")
            name, c = args[k - 1]
            if not _IDENT_RE.match(name):
                p.err(c, f"bad pin name {name!r}")
            elif name in pins:
                p.err(c, f"a pin named {name} already exists")
            if r and len(p.errors) == nerr:
                pins[name] = True
                scn.statements.append(Statement(lineno, col0, stripped, proc, verb,
                                                {"range": r, "write": write, "name": name}))
        elif verb == "unpin":
            if not need(1, 1, "unpin NAME"):
                continue
            name, c = args[0]
            if not pins.get(name):
                p.err(c, f"no active pin named {name!r}")
                continue
            pins[name] = False
            scn.statements.append(Statement(lineno, col0, stripped, proc, verb, {"pin": name}))
        elif verb == "fork":
            if not need(1, 1, "fork CHILD"):
                continue
            child, c = args[0]
            if not _IDENT_RE.match(child):
                p.err(c, f"bad process name {child!r}")
            elif child in ever:
                p.err(c, f"process {child} already exists" if child in procs else f"process name {child} was used before")
            else:
                procs[child] = dict(regs)
                ever.add(child)
                scn.statements.append(Statement(lineno, col0, stripped, proc, verb, {"child": child}))
        elif verb == "exit":
            if not need(0, 0, "exit"):
                continue
            del procs[proc]
            scn.statements.append(Statement(lineno, col0, stripped, proc, verb, {}))

    if p.errors:
        raise ScenarioError(p.errors)
    return scn


def _parse_assert(p: Parser, lineno, col0, stripped, proc, rest, rcol, procs):
    am = re.match(r"^assert\b\s*(.*)$", rest)
    body, bcol = am.group(1), rcol + am.start(1)
    eras = None
    em = re.match(r"^([A-Za-z0-9_.\-]+(?:\s*,\s*[A-Za-z0-9_.\-]+)*)\s*:\s*(.*)$", body)
    if em:
        eras = p._eras(em.group(1), bcol + em.start(1))
        if eras is None:
            return None
        body, bcol = em.group(2), bcol + em.start(2)
    m = _ASSERT_RE.match(body)
    if not m:
        p.err(bcol, "assert needs the form 'assert [ERA:] FUNC(RANGE) OP INT'")
        return None
    func, rng, op, val = m.groups()
    if func not in FUNCS:
        p.err(bcol + m.start(1), f"unknown counter function {func!r} (known: {', '.join(FUNCS)})")
        return None
    if not re.fullmatch(r"-?\d+", val):
        p.err(bcol + m.start(4), f"assert compares with an integer, not {val!r}")
        return None
    if proc is not None:
        if proc not in procs:
            p.err(col0, f"process {proc} does not exist")
            return None
        regions = procs[proc]
    else:
        regions = {}
        for r in procs.values():
            for k, v in r.items():
                regions.setdefault(k, v)
    r = p._range(rng, bcol + m.start(2), regions)
    if r is None:
        return None
    return Statement(lineno, col0, stripped, proc, "assert",
                     {"eras": eras, "func": func, "range": r, "cmp": op, "value": int(val),
                      "func_col": bcol + m.start(1)})


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


def parse_file(path: str) -> Scenario:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ScenarioError([f"{path}:0:0: cannot read: {e.strerror}"]) from None
    except UnicodeDecodeError:
        raise ScenarioError([f"{path}:0:0: not UTF-8 text"]) from None
    return parse_text(text, path)
