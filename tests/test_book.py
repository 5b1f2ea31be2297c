"""The book: it builds strictly, it links the thread exactly as
data/thread.yaml has it, what its chapters claim is what the engine
computes, and every exercise is asked before anything on its page answers it.

Each chapter states its verdicts in its front matter (``thpviz: claims:``,
see book/thpbook.py); the tests here run every claimed scenario under the
claimed era with the engine directly and compare.  Every scenario file a
chapter mentions must exist and pass ``thpviz check``.

The strict build (scripts/build_book.sh --no-setup --all, i.e.
``jupyter-book build book -W -n --keep-going --all`` with the execution cache
dropped whenever the engine or the scenarios changed) runs once per test
session; tests/test_book_browser.py and tests/test_book_site.py reuse it.
"""

from __future__ import annotations

import ast
import html as htmllib
import os
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

from thpviz.eras import ERAS
from thpviz.scenario import parse_file, run

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
HTML = BOOK / "_build" / "html"
THREAD = yaml.safe_load((ROOT / "data" / "thread.yaml").read_text(encoding="utf-8"))
MESSAGE_IDS = {m["message_id"]: m["id"] for m in THREAD["messages"]}
BY_ID = {m["id"]: m for m in THREAD["messages"]}
COMMITS = {c["id"] for c in THREAD["commits"]}
#: commits of the 4.5 THP series that the book names but the thread index
#: does not list (ids from docs/sources.md, eras.md section 2)
SERIES_COMMITS = {"eef1b3ba053a", "e9b61f19858a", "9a982250f773"}
#: messages outside the thread that the book links, each with why
RELATED_MESSAGES = {
    # Hugh Dickins' July 2016 refix of page_move_anon_rmap's debug check; the
    # 4.6 era cites it too (thpviz/eras/v4_6.py)
    "alpine.LSU.2.11.1607120444540.12528@eggly.anvils",
}

LORE = re.compile(r"https?://lore\.kernel\.org/[^\s)\"'<>]*")
LORE_EXACT = re.compile(r"^https://lore\.kernel\.org/all/([^/]+)/$")
MD_LINK = re.compile(r"\[(M\d\d)\]\((https?://lore\.kernel\.org/[^)]*)\)")
SCENARIO_REF = re.compile(r"data/scenarios/[\w./-]+?\.thp")
HEX12 = re.compile(r"(?<![\w/.-])[0-9a-f]{12}(?![\w-])")


def toc_files() -> list[str]:
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    files += [c["file"] for c in toc.get("chapters", [])]
    return files


PAGES = toc_files()
#: chapters other engineers write (their own tests check them); the style
#: rules below that are about this book's teaching apply to the other pages
OTHERS: set[str] = set()
OWN_PAGES = [p for p in PAGES if p not in OTHERS]
#: pages that are not chapters of the story: the cost model's chapter, the
#: thread appendix and the handout (generated from data), and chapters other
#: engineers own (they bring their own tests)
NOT_STORY = {"costs", "thread", "handout", "practice"}
CHAPTERS = [p for p in PAGES if p not in NOT_STORY]
#: pages with exercises in the sphinx-exercise form
EXERCISE_PAGES = [p for p in PAGES if p not in {"thread", "handout"}]


#: page -> replacement source, for the tests that check the checks
_OVERRIDE: dict[str, str] = {}


def source(page: str) -> str:
    if page in _OVERRIDE:
        return _OVERRIDE[page]
    return (BOOK / f"{page}.md").read_text(encoding="utf-8")


def front_matter(page: str) -> dict:
    m = re.match(r"^---\n(.*?)\n---\n", source(page), re.S)
    assert m, f"{page}.md has no front matter"
    return yaml.safe_load(m.group(1))


def claims(page: str) -> dict:
    return (front_matter(page).get("thpviz") or {}).get("claims") or {}


@lru_cache(maxsize=None)
def engine_verdict(rel: str, era: str) -> tuple[str, frozenset]:
    r = run(parse_file(str(ROOT / rel)), ERAS[era])
    return r.last_write, frozenset(r.violations)


def parse_verdict(text: str) -> tuple[str, frozenset]:
    toks = str(text).split()
    return toks[0], frozenset(t for t in toks[1:] if t != "clean")


# ------------------------------------------------------------ the build
_BUILD: dict = {}


def build_book() -> subprocess.CompletedProcess:
    """Run the strict build once per process (shared with the browser tests)."""
    if "result" not in _BUILD:
        env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
        _BUILD["result"] = subprocess.run(
            ["bash", str(ROOT / "scripts" / "build_book.sh"), "--no-setup", "--all"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
        )
    return _BUILD["result"]


@pytest.fixture(scope="session")
def built_book():
    res = build_book()
    if res.returncode != 0:
        tail = "\n".join((res.stdout + res.stderr).splitlines()[-60:])
        pytest.fail(f"strict book build failed (rc {res.returncode}):\n{tail}")
    return HTML


@pytest.mark.book
def test_strict_build_succeeds_and_writes_every_page(built_book):
    for page in PAGES:
        assert (built_book / f"{page}.html").is_file(), page
    assert (built_book / "index.html").is_file()


@pytest.mark.book
@pytest.mark.parametrize("page", CHAPTERS)
def test_built_chapter_shows_storyboard_claims_and_no_error(built_book, page):
    html = (built_book / f"{page}.html").read_text(encoding="utf-8")
    assert "<svg" in html, "no inline SVG"
    assert 'class="thp claims"' in html, "no claims table"
    assert "NO: the text is out of date" not in html
    assert 'class="output traceback' not in html and "Traceback (most recent call last)" not in html
    assert html.count('class="solution') >= 1, "no solution"
    assert re.search(r'class="[^"]*\btakeaways\b', html), "no takeaways box"


@pytest.mark.book
def test_every_diagram_in_the_book_is_a_readable_figure_with_alt_text(built_book):
    """No diagram is an <img> shrunk to the column: each is an inline SVG in
    a figure that opens at readable size, with alt text."""
    for f in sorted(built_book.glob("*.html")):
        html = f.read_text(encoding="utf-8")
        assert not re.search(r'<img[^>]+src="_images/[^"]+\.svg"', html), f"{f.name}: an SVG diagram as an <img>"
        for m in re.finditer(r'<div class="thpviz-pic[^"]*" role="img" aria-label="([^"]*)"', html):
            assert len(htmllib.unescape(m.group(1))) > 20, f"{f.name}: a diagram without alt text"


@pytest.mark.book
def test_built_pages_load_nothing_from_outside(built_book):
    tag = re.compile(r"<(script|link|img|iframe|source)\b[^>]*>", re.I)
    attr = re.compile(r'\b(src|href)="(https?:)?//', re.I)
    pages = list(built_book.glob("*.html")) + [built_book / "slides" / "index.html"]
    for f in pages:
        for m in tag.finditer(f.read_text(encoding="utf-8")):
            t = m.group(0)
            if m.group(1).lower() == "link" and re.search(r'rel="(canonical|prev|next)"', t):
                continue
            assert not attr.search(t), f"{f.name}: {t}"


@pytest.mark.book
def test_built_pages_link_only_known_messages(built_book):
    for f in built_book.glob("*.html"):
        for url in LORE.findall(htmllib.unescape(f.read_text(encoding="utf-8"))):
            m = LORE_EXACT.match(url)
            assert m, f"{f.name}: malformed lore link {url}"
            assert m.group(1) in MESSAGE_IDS or m.group(1) in RELATED_MESSAGES, \
                f"{f.name}: {m.group(1)} is not in data/thread.yaml"


@pytest.mark.book
def test_exercises_are_numbered_and_each_has_its_solution(built_book):
    """sphinx-exercise numbers every exercise across the book, and each
    solution names its exercise."""
    numbers = []
    for page in EXERCISE_PAGES:
        html = (built_book / f"{page}.html").read_text(encoding="utf-8")
        found = [int(n) for n in re.findall(r'<span class="caption-number">Exercise (\d+)', html)]
        if not found:
            found = [int(n) for n in re.findall(r"Exercise (\d+) \(", html)]
        assert found, f"{page}: no numbered exercise"
        numbers += found
        for label in re.findall(r":label: ([\w-]+)", source(page)):
            assert re.search(rf'id="{re.escape(label)}"', html), f"{page}: exercise {label} missing"
    assert len(set(numbers)) >= 20


# ------------------------------------------------------- the sources
@pytest.mark.parametrize("page", PAGES)
def test_chapter_is_a_myst_notebook(page):
    fm = front_matter(page)
    assert fm["jupytext"]["text_representation"]["format_name"] == "myst"
    assert fm["kernelspec"]["name"] == "python3"
    prose = re.sub(r"^(`{3,})[^\n]*\n.*?^\1\s*$", "", source(page), flags=re.S | re.M)
    assert len(re.findall(r"^# ", prose, re.M)) == 1, "one H1 per chapter"


@pytest.mark.parametrize("page", PAGES)
def test_lore_links_are_exact_and_known(page):
    text = source(page)
    for url in LORE.findall(text):
        m = LORE_EXACT.match(url)
        assert m, f"malformed lore link {url}"
        if m.group(1) in RELATED_MESSAGES:
            continue
        assert m.group(1) in MESSAGE_IDS, f"{m.group(1)} is not in data/thread.yaml"
        assert url == BY_ID[MESSAGE_IDS[m.group(1)]]["link"]
    for label, url in MD_LINK.findall(text):
        assert url == BY_ID[label]["link"], f"[{label}] links to {url}"


@pytest.mark.parametrize("page", CHAPTERS)
def test_commit_ids_are_known(page):
    for cid in HEX12.findall(source(page)):
        assert cid in COMMITS | SERIES_COMMITS, f"{page}.md names unknown commit {cid}"


@pytest.mark.parametrize("page", PAGES)
def test_no_page_writes_the_repository_url(page):
    """The repository URL lives in _config.yml only (the Colab cell of the
    downloadable notebooks is written from it at build time)."""
    assert "github.com" not in source(page), f"{page}.md writes a GitHub URL; use book/_config.yml"
    assert "google.colab" not in source(page), f"{page}.md carries its own Colab cell"


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_has_central_scenario_claims_exercises_and_takeaways(page):
    fm = front_matter(page).get("thpviz") or {}
    text = source(page)
    central = fm.get("central")
    assert central and central in claims(page), "the central scenario must carry claims"
    assert "tb.claims_table(" in text
    assert len(re.findall(r"^:{3,}\{exercise\}", text, re.M)) >= 1
    takeaways = [m.start() for m in re.finditer(r"^:::\{admonition\} Takeaways", text, re.M)]
    assert len(takeaways) == 1, "one takeaways box"
    # it closes the chapter: after it only the build-time check
    rest = text[takeaways[0]:]
    assert not re.search(r"^:{3,}\{exercise\}", rest, re.M), "an exercise after the takeaways"


def test_every_central_scenario_has_one_storyboard_in_the_book():
    shown = {}
    for page in PAGES:
        for rel in _storyboards(page):
            shown.setdefault(rel, []).append(page)
    for page in CHAPTERS:
        central = front_matter(page)["thpviz"]["central"]
        assert central in shown, f"{page}: no storyboard of its central scenario {central} in the book"


# ------------------------------------------------------- code cells
def code_cells(page: str) -> list[tuple[int, list[str], str]]:
    """(offset, tags, code) of every code cell of a page."""
    out = []
    for m in re.finditer(r"^```\{code-cell\}[^\n]*\n(.*?)^```\s*$", source(page), re.S | re.M):
        body = m.group(1)
        tags = []
        tm = re.match(r"^:tags: \[([^\]]*)\]\n", body)
        if tm:
            tags = [t.strip() for t in tm.group(1).split(",")]
            body = body[tm.end():]
        out.append((m.start(), tags, body))
    return out


def names(page: str) -> dict[str, str]:
    """Variables bound to scenario paths in a page's code cells."""
    return {n: p for n, p in re.findall(r'^(\w+) = "(data/scenarios/[^"]+)"', source(page), re.M)}


def _resolve(arg: str, page: str) -> str | None:
    arg = arg.strip()
    if arg.startswith('"') and arg.endswith('"'):
        return arg.strip('"') if arg.strip('"').startswith("data/scenarios/") else None
    return names(page).get(arg)


def _storyboards(page: str) -> list[str]:
    out = []
    for _, _, code in code_cells(page):
        for arg in re.findall(r"tb\.storyboard\(\s*(\w+|\"[^\"]+\")", code):
            rel = _resolve(arg, page)
            if rel:
                out.append(rel)
    return out


def test_one_canonical_listing_and_storyboard_per_scenario():
    """Each scenario file is listed once and stepped through once in the
    whole book; other places link to it or show a table."""
    listed, boarded = {}, {}
    for page in OWN_PAGES:
        for _, _, code in code_cells(page):
            for arg in re.findall(r"tb\.show_scenario\(\s*(\w+|\"[^\"]+\")", code):
                rel = _resolve(arg, page)
                if rel:
                    listed.setdefault(rel, []).append(page)
        for rel in _storyboards(page):
            boarded.setdefault(rel, []).append(page)
    for kind, seen in (("listed", listed), ("stepped through", boarded)):
        for rel, pages in seen.items():
            assert len(pages) == 1, f"{rel} is {kind} on {pages}"


@pytest.mark.parametrize("page", OWN_PAGES)
def test_helper_calls_hide_their_input(page):
    """A cell that only calls the book's helpers shows its output, not its
    plumbing (hide-input, remove-input or remove-cell)."""
    for _, tags, code in code_cells(page):
        calls = re.findall(r"^(?:display\()?(?:tb|tt)\.\w+\(", code, re.M)
        if not calls:
            continue
        lines = [ln for ln in code.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        plumbing = all(re.match(r"^(display\()?(tb|tt)\.|^\w+ = |^import |^from |^\s", ln) for ln in lines)
        if plumbing:
            assert {"hide-input", "remove-input", "remove-cell"} & set(tags), \
                f"{page}: helper cell without hide-input:\n{code}"


# ---------------------------------------------- predict, then reveal
#: helpers whose output reveals something about a scenario: its verdict,
#: counters, rmap or a drawing of its state
ANSWERS = {"verdict_table", "counters_table", "rmap_table", "storyboard", "diagram", "verdict", "counters",
           "rmap", "check_prediction"}


def _step_of(rel: str, after: str | None) -> float:
    """Index of the first statement starting with ``after`` (inf: the end)."""
    if after is None:
        return float("inf")
    for i, st in enumerate(parse_file(str(ROOT / rel)).statements):
        if st.text.startswith(after):
            return i
    raise AssertionError(f"{rel} has no statement starting with {after!r}")


def answer_cells(page: str) -> list[tuple[int, str, float]]:
    """(offset, scenario, step) for every cell that reveals something about
    a scenario up to that step (inf: its verdict or every step)."""
    out = []
    for pos, _, code in code_cells(page):
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ANSWERS):
                continue
            args = list(node.args)
            if not args:
                continue
            first = ast.unparse(args[0])
            rels = []
            if isinstance(args[0], ast.List):
                rels = [_resolve(ast.unparse(e), page) for e in args[0].elts]
            else:
                rels = [_resolve(first, page)]
            after = None
            for kw in node.keywords:
                if kw.arg == "after" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                    after = kw.value.value
            if node.func.attr in ("diagram", "counters", "rmap") and len(args) > 2 and \
                    isinstance(args[2], ast.Constant) and isinstance(args[2].value, str):
                after = args[2].value
            if node.func.attr in ("verdict_table", "verdict", "storyboard", "check_prediction"):
                after = None
            for rel in rels:
                if rel:
                    out.append((pos, rel, _step_of(rel, after)))
        if "tb.claims_table(" in code:
            for rel in claims(page):
                out.append((pos, rel, float("inf")))
    return out


@lru_cache(maxsize=None)
def decisive_index(rel: str) -> int:
    """The earliest statement (0-based) at which one of the thread's eras
    takes the write fault its verdict names: a state from there on answers
    a question about the verdict."""
    from thpviz.render.storyboard import decisive_step

    scn = parse_file(str(ROOT / rel))
    eras = [ERAS[e] for e in ("4.4", "4.5", "kirill-k1", "andrea-v1", "4.6") if e in ERAS]
    return min(decisive_step(run(scn, e)) for e in eras) - 1


def exercises(page: str) -> list[tuple[int, str, list[tuple[str, float]]]]:
    """(offset, label, [(scenario, first step it asks about)]) per exercise.
    The scenarios are the files its text names, asked about from their
    decisive step on (:func:`decisive_index`); a ``% about: FILE after
    "STATEMENT"`` comment moves that to the given statement."""
    text = source(page)
    by_stem = {}
    for p in (ROOT / "data" / "scenarios").rglob("*.thp"):
        by_stem[p.name] = str(p.relative_to(ROOT))
    out = []
    for m in re.finditer(r"^(:{3,})\{exercise\}[^\n]*\n(.*?)^\1\s*$", text, re.S | re.M):
        body = m.group(2)
        label = re.search(r":label: ([\w-]+)", body).group(1)
        subjects = {}
        for name in re.findall(r"([\w-]+\.thp)", body):
            if name in by_stem:
                subjects[by_stem[name]] = decisive_index(by_stem[name])
        for rel in SCENARIO_REF.findall(body):
            subjects[rel] = decisive_index(rel)
        for name, stmt in re.findall(r'^% about: ([\w.-]+) after "([^"]+)"', body, re.M):
            rel = by_stem[name]
            step = _step_of(rel, stmt)
            # the state before that statement is the question's premise
            subjects[rel] = step
        out.append((m.start(), label, sorted(subjects.items())))
    return out


@pytest.mark.parametrize("page", EXERCISE_PAGES)
def test_no_exercise_is_answered_above_itself(page):
    """Predict, then reveal: nothing above an exercise on its page shows the
    verdict of a scenario it asks about, or its state at or after the step
    it asks about."""
    cells = answer_cells(page)
    for pos, label, subjects in exercises(page):
        for rel, step in subjects:
            for cpos, crel, cstep in cells:
                if cpos < pos and crel == rel:
                    assert cstep < step, (f"{page}: exercise {label} asks about {rel} (from step {step}), "
                                          f"but a cell above it shows that scenario at step {cstep}")


@pytest.mark.parametrize("inserted,caught", [
    ("tb.verdict_table(FORK)", True),                               # the verdict, above the question
    ('tb.counters_table(FORK, after="P: write A[7]", at="A[7]")', True),  # the state after the write
    ('tb.counters_table(FORK, after="C: exit", at="A[7]")', False),  # the premise, before the write
    ('tb.diagram(TOUR, "4.5", after="P: split_pmd")', False),       # another scenario
])
def test_the_order_check_catches_an_answer_above_its_exercise(inserted, caught, monkeypatch):
    """The check above is not vacuous: an answer moved above its exercise is
    reported, and a cell about something else is not."""
    page = "intro"
    text = source(page)
    ex = text.index(":::{exercise} The whole story")
    moved = text[:ex] + f"```{{code-cell}} ipython3\n{inserted}\n```\n\n" + text[ex:]
    moved = moved.replace('FORK = "', 'TOUR = "data/scenarios/book/primer-tour.thp"\nFORK = "', 1)
    monkeypatch.setitem(_OVERRIDE, page, moved)
    if caught:
        with pytest.raises(AssertionError, match="intro-story"):
            test_no_exercise_is_answered_above_itself(page)
    else:
        test_no_exercise_is_answered_above_itself(page)


def test_the_order_check_respects_the_step_an_exercise_asks_about(monkeypatch):
    """An exercise about the state after a statement may come after a
    diagram of an earlier step, not of that step."""
    page = "primer"
    text = source(page)
    ex = text.index(":::{exercise} Splitting a pinned PMD")
    for after, caught in (("P: pin", False), ("P: split_pmd", True), ("P: fork", True)):
        cell = f'```{{code-cell}} ipython3\ntb.diagram(TOUR, "4.5", after="{after}")\n```\n\n'
        monkeypatch.setitem(_OVERRIDE, page, text[:ex] + cell + text[ex:])
        if caught:
            with pytest.raises(AssertionError, match="primer-split"):
                test_no_exercise_is_answered_above_itself(page)
        else:
            test_no_exercise_is_answered_above_itself(page)


def test_every_exercise_names_what_it_asks_about():
    for page in EXERCISE_PAGES:
        if page in ("costs", "practice"):
            continue  # their exercises are about generated scenarios, printed in the page
        for _, label, subjects in exercises(page):
            if page == "language" and label == "language-errors":
                continue  # about the text of the cell above, not a file
            if label == "analysis-practice":
                continue  # a generated puzzle, printed in the cell below it
            assert subjects, f"{page}: exercise {label} names no scenario file"


def _scenario_refs():
    out = []
    for page in PAGES:
        refs = set(SCENARIO_REF.findall(source(page)))
        if page in CHAPTERS:
            refs |= set(claims(page))
        out += [(page, r) for r in sorted(refs)]
    return out


@pytest.mark.parametrize("page,rel", _scenario_refs())
def test_cited_scenario_exists(page, rel):
    assert (ROOT / rel).is_file(), f"{page}.md cites missing {rel}"


@pytest.mark.parametrize("page", sorted({p for p, _ in _scenario_refs()}))
def test_cited_scenarios_pass_thpviz_check(page):
    refs = sorted({r for p, r in _scenario_refs() if p == page})
    res = subprocess.run([sys.executable, "-m", "thpviz.cli", "check", *refs], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"\b0 failed\b", res.stdout)


def _claims():
    return [(page, rel, str(era), str(v)) for page in CHAPTERS
            for rel, by_era in claims(page).items() for era, v in by_era.items()]


@pytest.mark.parametrize("page,rel,era,claimed", _claims())
def test_chapter_claim_matches_engine(page, rel, era, claimed):
    assert era in ERAS, f"{page}.md claims an unknown era {era}"
    assert engine_verdict(rel, era) == parse_verdict(claimed), (
        f"{page}.md says {claimed} for {rel} under {era}; thpviz computes "
        f"{engine_verdict(rel, era)[0]} {' '.join(sorted(engine_verdict(rel, era)[1])) or 'clean'}"
    )


def test_claim_checker_catches_a_wrong_claim():
    """The comparison above is not vacuous: a flipped verdict is caught."""
    rel, era = "data/scenarios/regression/pin-fork-exit-write.thp", "4.5"
    got = engine_verdict(rel, era)
    assert got != parse_verdict("reuse clean")
    assert got == parse_verdict(" ".join([got[0], *sorted(got[1])]) or "clean")


def test_every_chapter_claims_something():
    assert all(claims(p) for p in CHAPTERS)
