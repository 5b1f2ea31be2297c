"""The repository stands alone: docs/sources.md is where its citations of
the research notes resolve, every thread message it links is in the message
index, every commit it names is one the index or the eras name, every file it
points at exists, and no file points outside the repository."""

import re
import subprocess

import yaml
from conftest import ROOT

SOURCES = (ROOT / "docs" / "sources.md").read_text(encoding="utf-8")
THREAD = yaml.safe_load((ROOT / "data" / "thread.yaml").read_text(encoding="utf-8"))
#: Hugh Dickins' refix of the DEBUG_VM check, after the thread (the 4.6 era includes it)
LATER_MESSAGES = {"alpine.LSU.2.11.1607120444540.12528@eggly.anvils"}


def tracked_files():
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / p for p in out.splitlines() if (ROOT / p).is_file()]


def test_no_file_points_outside_the_repository():
    outside = re.compile("/" + "work/|[.][.]/" + "shared/")  # (spelled so this file does not match)
    bad = []
    for f in tracked_files():
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        bad += [f"{f.relative_to(ROOT)}:{n}" for n, line in enumerate(text.splitlines(), 1) if outside.search(line)]
    assert not bad, bad


def test_every_linked_message_is_in_the_index():
    known = {m["message_id"] for m in THREAD["messages"]} | LATER_MESSAGES
    links = re.findall(r"https://lore\.kernel\.org/all/([^/\s<>]+)/", SOURCES)
    assert len(links) >= 10
    assert set(links) <= known, set(links) - known
    # and each table row's id matches its link
    by_id = {m["id"]: m["message_id"] for m in THREAD["messages"]}
    for mid, link in re.findall(r"^\| (M\d\d) \|.*\| https://lore\.kernel\.org/all/([^/\s]+)/ \|$", SOURCES, re.M):
        assert by_id[mid] == link, mid


def test_every_named_commit_is_one_the_project_names_elsewhere():
    ids = set(re.findall(r"(?<![\w/.-])[0-9a-f]{12}(?![\w-])", SOURCES))
    assert len(ids) >= 10
    elsewhere = {c["id"] for c in THREAD["commits"]}
    for f in list((ROOT / "thpviz" / "eras").glob("*.py")) + list((ROOT / "data" / "scenarios").rglob("*.thp")):
        elsewhere |= set(re.findall(r"[0-9a-f]{12}", f.read_text(encoding="utf-8")))
    # the 4.5 series commits the book names without the index listing them
    elsewhere |= {"eef1b3ba053a", "e9b61f19858a", "9a982250f773"}
    assert ids <= elsewhere, ids - elsewhere


def test_every_file_it_points_at_exists():
    paths = set(re.findall(r"`((?:data|tests|thpviz|docs|book)/[\w./*-]+)`", SOURCES))
    paths |= {f"data/scenarios/{p}" for p in re.findall(r"`((?:regression|gup|counterexample|sharing|book)/[\w.*-]+)`",
                                                          SOURCES)}
    assert len(paths) >= 15
    for p in paths:
        assert list(ROOT.glob(p.rstrip("/"))), p


def test_every_cited_section_of_the_notes_resolves_here():
    """Each 'thread.md section X', 'eras.md section Y', 'modern-eras.md §Z'
    cited in the repository has its heading here, and each lab case cited
    ('lab l01', 'x01') is described here."""
    cite = re.compile(r"(?<![\w-])(thread|eras|modern-eras)\.md,? (?:section |§ ?)?([0-9]+(?:\.[0-9]+)?)"
                      r"(?:\(([a-h])\))?")
    labs = re.compile(r"\b(?:lab|Lab) ([lx][0-9]{2})\b")
    cited, cited_labs = set(), set()
    for f in tracked_files():
        if f.suffix not in (".py", ".md", ".thp", ".yaml") or f.name in ("sources.md", "test_sources.py"):
            continue
        text = f.read_text(encoding="utf-8")
        cited |= set(cite.findall(text))
        cited_labs |= set(labs.findall(text))
    assert ("thread", "3", "") in cited  # the counters section, cited by tests/test_counters.py
    headings = "\n".join(re.findall(r"^#+ .*$", SOURCES, re.M))
    for note, section, sub in sorted(cited):
        assert f"{note}.md section {section}" in headings, (note, section)
        if sub:
            assert f"### {section}({sub})" in headings or (sub in "defgh" and "### 2(d) to 2(h)" in headings), sub
    for lab in cited_labs:
        assert lab in SOURCES or (lab.startswith("l") and "l01 to l19" in headings), lab
