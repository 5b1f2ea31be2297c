"""The published site around the book: one repository URL, the Pages
workflow, Binder's configuration, the thread appendix made from
data/thread.yaml, the workshop deck and handout made from the notebooks,
and the notebooks offered for download (with their Colab cell).

The tests on built output reuse the strict build of tests/test_book.py.
"""

from __future__ import annotations

import html as htmllib
import re
import sys
from html.parser import HTMLParser

import pytest
import yaml
from test_book import BOOK, ROOT, built_book  # noqa: F401  (shared session build)

sys.path.insert(0, str(BOOK))
import thpbook as tb  # noqa: E402
import thpthread as tt  # noqa: E402

CONFIG = yaml.safe_load((BOOK / "_config.yml").read_text(encoding="utf-8"))
REPO = CONFIG["repository"]["url"].rstrip("/")
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
GITHUB_URL = re.compile(r"https://github\.com/[\w.-]+/[\w.-]+")


# ----------------------------------------------------------- the URL
def test_the_repository_url_is_written_in_one_place():
    """_config.yml holds it; the README's links and the footer agree; no
    chapter, notebook or script writes another."""
    assert GITHUB_URL.fullmatch(REPO), REPO
    assert tb.repository_url() == REPO
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for url in GITHUB_URL.findall(readme):
        assert url == REPO, f"README.md links {url}, _config.yml says {REPO}"
    assert f"mybinder.org/v2/gh/{REPO.split('github.com/')[1]}/" in readme, "no workshop Binder badge"
    assert REPO in CONFIG["html"]["extra_footer"]
    for folder in ("book", "notebooks", "slides", "binder"):
        for f in (ROOT / folder).rglob("*"):
            if f.is_file() and f.suffix in (".md", ".py", ".yml", ".txt") and "_build" not in f.parts \
                    and "vendor" not in f.parts and f.name != "_config.yml":
                for url in GITHUB_URL.findall(f.read_text(encoding="utf-8")):
                    pytest.fail(f"{f.relative_to(ROOT)} writes {url}; read it from book/_config.yml")


def test_binder_links_are_made_from_the_url():
    url = tb.binder_url("notebooks/01-false-cow.md")
    owner_repo = REPO.split("github.com/")[1]
    assert url == (f"https://mybinder.org/v2/gh/{owner_repo}/{CONFIG['repository']['branch']}"
                   "?urlpath=lab/tree/notebooks/01-false-cow.md")


def test_no_colab_launch_button():
    """Colab opens notebooks from GitHub only, and the repository holds MyST
    markdown: the button would open nothing."""
    assert "colab_url" not in (CONFIG.get("launch_buttons") or {})


# ------------------------------------------------------ the workflow
def test_pages_workflow_is_valid_and_builds_strictly_before_publishing():
    wf = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as True
    assert "push" in on and on["push"]["branches"] == ["main"]
    jobs = wf["jobs"]
    build, deploy = jobs["build"], jobs["deploy"]
    for job in (build, deploy):
        assert job["runs-on"].startswith("ubuntu")
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"a step needs exactly one of uses/run: {step}"
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]
    runs = [s.get("run", "") for s in build["steps"]]
    assert any("scripts/build_book.sh" in r for r in runs), "the workflow must run the strict build"
    uses = {s["uses"].split("@")[0]: s for s in build["steps"] if "uses" in s}
    assert uses["actions/upload-pages-artifact"]["with"]["path"] == "book/_build/html"
    assert deploy["needs"] == "build"
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in deploy["steps"])
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    # the build script it calls is the one that is strict
    script = (ROOT / "scripts" / "build_book.sh").read_text(encoding="utf-8")
    assert "-W -n" in script


# --------------------------------------------------------- Binder
def _pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "binder" / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"binder/requirements.txt: {line} is not pinned"
            out[name.lower().replace("_", "-")] = version
    return out


def test_binder_is_pinned_and_complete():
    pins = _pins()
    for need in ("jupyterlab", "jupyterlab-myst", "jupytext", "ipywidgets", "ipykernel", "graphviz",
                 "numpy", "matplotlib", "pyyaml"):
        assert need in pins, f"binder/requirements.txt lacks {need}"
    runtime = (ROOT / "binder" / "runtime.txt").read_text(encoding="utf-8").strip()
    assert re.fullmatch(r"python-3\.\d+", runtime)
    assert "graphviz" in (ROOT / "binder" / "apt.txt").read_text(encoding="utf-8").split()
    post = (ROOT / "binder" / "postBuild").read_text(encoding="utf-8")
    assert "pip install --no-deps -e ." in post and "Jupytext Notebook" in post


def test_binder_pins_lie_in_the_ranges_the_project_allows():
    from packaging.requirements import Requirement

    pins = _pins()
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        name = req.name.lower().replace("_", "-")
        if name in pins:
            assert req.specifier.contains(pins[name], prereleases=True), \
                f"binder pins {name}=={pins[name]}, requirements.txt wants {req.specifier}"


# ---------------------------------------------------- the appendix
class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])


def test_messages_table_has_one_row_per_message_with_its_link():
    html = tt.messages_table()
    msgs = tt.thread()["messages"]
    rows = re.findall(r'<tr id="(m\d\d)">', html)
    assert sorted(rows) == sorted(m["id"].lower() for m in msgs)
    p = _Links()
    p.feed(html)
    for m in msgs:
        assert m["link"] in p.hrefs, m["id"]
        assert m["author"] in html


def test_every_commit_id_in_the_appendix_links_upstream():
    for html in (tt.commits_table(), tt.messages_table()):
        text = re.sub(r"<[^>]+>", " ", html)
        p = _Links()
        p.feed(html)
        for cid in re.findall(r"(?<![\w/.-])([0-9a-f]{12})(?![\w-])", text):
            if cid in tt.commit_ids():
                assert tt.COMMIT_URL.format(cid) in p.hrefs, cid
    assert len(re.findall(r"<tr><td><a href", tt.commits_table())) == len(tt.thread()["commits"])


def test_timeline_points_link_their_messages_in_time_order():
    svg = tt.timeline_svg(highlight=["M01"])
    msgs = sorted(tt.thread()["messages"], key=tt.when)
    points = re.findall(r'<a href="(https://lore\.kernel\.org/all/[^"]+/)"[^>]*><title>[^<]*</title>'
                        r'<(?:circle|rect)[^>]*?(?:cy="([\d.]+)"|y="([\d.]+)")', svg)
    assert [h for h, *_ in points] == [m["link"] for m in msgs]
    ys = [float(a or b) for _, a, b in points]
    assert ys == sorted(ys), "points are not in time order"
    sizes = [float(x) for x in re.findall(r'font-size="([\d.]+)"', svg)]
    assert min(sizes) >= 11, "the timeline's text must be readable at its natural size"


# ------------------------------------------------ workshop materials
def test_handout_has_every_notebook_exercise():
    found = tb.workshop_exercises()
    names = {name for _, name, _ in found}
    assert {"01-false-cow.md", "02-fixes.md", "03-sandbox.md"} <= names
    html = tb.handout().data
    for _, _name, items in found:
        assert items
        for ex, text in items:
            assert text.split()[0] in htmllib.unescape(html) and f"<b>{ex}.</b>" in html


@pytest.mark.book
def test_slides_are_built_offline_with_steppable_storyboards(built_book):  # noqa: F811
    page = built_book / "slides" / "index.html"
    html = page.read_text(encoding="utf-8")
    assert html.count("<section") >= 8
    assert html.count('class="thpviz-storyboard"') >= 3
    for src in re.findall(r'(?:src|href)="([^"#]+)"', html):
        if src.startswith(("data:", "https://lore.kernel.org/", "https://git.kernel.org/")):
            continue
        assert not src.startswith(("http:", "https:", "//")), src
        assert (page.parent / src).is_file(), f"the deck needs {src}"
    # its exercises are the words of the notebooks it takes them from
    deck = (ROOT / "slides" / "workshop.md").read_text(encoding="utf-8")
    in_deck = set(re.findall(r"^::: exercises notebooks/([\w.-]+)$", deck, re.M))
    assert {"01-false-cow.md", "02-fixes.md", "03-sandbox.md"} <= in_deck
    for _, name, items in tb.workshop_exercises():
        if name not in in_deck:
            continue
        for ex, _ in items:
            assert f"<b>{ex}.</b>" in html


@pytest.mark.book
def test_notebooks_to_download_carry_a_colab_cell_with_the_url(built_book):  # noqa: F811
    import nbformat

    for md in sorted((ROOT / "notebooks").glob("*.md")):
        nb = nbformat.read(built_book / "_notebooks" / f"{md.stem}.ipynb", as_version=4)
        first = nb.cells[0]
        assert "google.colab" in first.source and REPO in first.source
        assert sum("google.colab" in c.source for c in nb.cells) == 1
    for ipynb in (built_book / "_sources").glob("*.ipynb"):
        nb = nbformat.read(ipynb, as_version=4)
        assert REPO in nb.cells[0].source, ipynb.name


def test_the_deck_source_only_uses_known_directives():
    text = (ROOT / "slides" / "workshop.md").read_text(encoding="utf-8")
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    for kind, arg in re.findall(r"^::: (\w+) (.*)$", text, re.M):
        assert kind in ("section", "storyboard", "exercises", "verdicts"), kind
        target = arg.split()[0]
        assert (ROOT / target).is_file(), f"the deck names a missing file {target}"
