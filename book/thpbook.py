"""Glue between the book's chapters and thpviz.

Every number or verdict a chapter shows comes from a run of the engine on a
scenario file in ``data/scenarios/``; this module only runs scenarios, reads
snapshots and formats what the engine computed.  It never decides a verdict
itself.  Drawing is delegated to ``thpviz.render`` (readable SVG figures,
storyboards) and ``thpviz.cost``; the thread appendix, which is about the
emails rather than the model, is made by ``thpthread.py`` from
``data/thread.yaml``.

Predict, then reveal: a scenario listing shows its headers and statements
(``assert`` values as ``?``) and keeps the whole file, comments and ``expect``
lines included, behind a reveal control; storyboards hide each era's verdict
the same way.  Tables of verdicts and counters are
answers: a chapter shows them only after the exercises that ask about them
(``tests/test_book.py`` checks the order).

Chapters state their verdicts in a machine-readable ``thpviz: claims:`` key of
their front matter::

    thpviz:
      central: data/scenarios/regression/pin-fork-exit-write.thp
      claims:
        data/scenarios/regression/pin-fork-exit-write.thp:
          "4.5": cow-huge pin-lost

A verdict is the same token list as an ``expect`` line: the decision of the
last write fault, then the violations (or ``clean``).  :func:`claims_table`
shows each claim next to the engine's answer, and ``tests/test_book.py``
fails when they differ.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from pathlib import Path

import yaml

from thpviz.eras import ERAS, MODERN_ERAS, THREAD_ERAS
from thpviz.scenario import parse_file, parse_verdict, run

BOOK = Path(__file__).resolve().parent
ROOT = BOOK.parent
SCENARIOS = ROOT / "data" / "scenarios"
THREAD = ROOT / "data" / "thread.yaml"
CONFIG = BOOK / "_config.yml"

#: the eras the 2016 chapters discuss, in chronological order (DESIGN.md
#: ids); the aftermath chapter passes the later ones explicitly
ERA_IDS = tuple(THREAD_ERAS)
ALL_ERAS = tuple(ERAS)
ALL_ERA_IDS = ALL_ERAS
LATER_ERAS = tuple(MODERN_ERAS)
ERA_LABELS = {e: ERAS[e].title for e in ALL_ERAS}
LORE = "https://lore.kernel.org/all/{}/"


# ----------------------------------------------------------------- scenarios
def scenario_path(rel: str | Path) -> Path:
    """Resolve ``data/scenarios/x/y.thp`` or ``x/y.thp`` to a file."""
    p = Path(rel)
    if p.is_absolute():
        return p
    if p.parts[:2] == ("data", "scenarios"):
        return ROOT / p
    return SCENARIOS / p


def _rel(path: Path) -> str:
    return path.resolve().relative_to(ROOT).as_posix()


@lru_cache(maxsize=None)
def scenario(rel: str):
    """The parsed scenario (cached per book build)."""
    return parse_file(str(scenario_path(rel)))


@lru_cache(maxsize=None)
def engine_run(rel: str, era: str, snapshots: bool = False):
    """A :class:`thpviz.scenario.Run` of the file under one era."""
    return run(scenario(rel), ERAS[era], keep_snapshots=snapshots)


def verdict(rel: str, era: str) -> str:
    """The engine's verdict in ``expect`` form: ``DECISION VIOLATIONS|clean``."""
    return _verdict_of(engine_run(rel, era))


def same_verdict(claimed: str, engine: str) -> bool:
    return parse_verdict(claimed) == parse_verdict(engine)


# ------------------------------------------------------------------- display
def _html(s: str):
    from IPython.display import HTML

    return HTML(s)


#: table and listing styles.  In dark mode myst-nb draws HTML outputs on a
#: light panel, so these set their own dark-on-light colours in both themes
#: instead of inheriting the theme's (light) text colour.
_CSS = """<style>
table.thp {border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; display: block; overflow-x: auto; width: fit-content;
  max-width: 100%; background: #fff; color: #1a1a1a;}
table.thp th, table.thp td {border: 1px solid #9995; padding: 2px 6px; text-align: left; vertical-align: top;
  color: #1a1a1a;}
table.thp th {background: #f0f0f0;}
table.thp td code, .thp-listing p code {white-space: normal; overflow-wrap: anywhere; background: transparent;
  color: #1a1a1a; border: 0; padding: 0;}
table.thp td.bad {background: #fbe3d8; color: #5a1a00;} table.thp td.ok {background: #e3f2e5; color: #123b16;}
table.thp a {color: #0b5394;}
.thp-listing pre {white-space: pre; overflow-x: auto; max-width: 100%; font-size: 0.85em; padding: 0.5em;
  border: 1px solid #9995; border-radius: 4px; background: #f7f7f7; color: #1a1a1a;}
.thp-listing details {margin: 0.2em 0 0.8em 0; color: #1a1a1a;} .thp-listing summary {cursor: pointer;}
</style>"""


def _cell(v: str) -> str:
    bad = any(t in v for t in ("pin-lost", "rmap-broken", "leak", "stray-write", "bug"))
    return f'<td class="{"bad" if bad else "ok"}"><code>{html.escape(v)}</code></td>'


def verdict_table(rels, eras=ERA_IDS):
    """Scenario x era table of the engine's verdicts (a fresh run each)."""
    rels = [rels] if isinstance(rels, (str, Path)) else list(rels)
    head = "".join(f"<th>{html.escape(e)}</th>" for e in eras)
    rows = []
    for rel in rels:
        scn = scenario(str(rel))
        name = html.escape(Path(scn.path).stem)
        cells = "".join(_cell(verdict(str(rel), e)) for e in eras)
        rows.append(f'<tr><td title="{html.escape(scn.title)}"><code>{name}</code></td>{cells}</tr>')
    return _html(f'{_CSS}<table class="thp verdicts"><tr><th>scenario</th>{head}</tr>{"".join(rows)}</table>')


def check_prediction(source: str, prediction: dict):
    """Compare a reader's prediction (era -> verdict tokens, e.g.
    ``{"4.5": "cow-huge pin-lost"}``) with the engine.  ``source`` is a
    scenario path or scenario text.  An era without a prediction keeps the
    engine's answer hidden, so the reader predicts before seeing it."""
    from thpviz.scenario import parse_text

    if "\n" in source:
        scn = parse_text(source, "<your scenario>")
        got = {e: _verdict_of(run(scn, ERAS[e])) for e in prediction}
    else:
        got = {e: verdict(source, e) for e in prediction}
    rows = []
    for era, said in prediction.items():
        said = str(said or "").strip()
        if not said:  # predict first: the engine's answer stays hidden
            rows.append(f"<tr><td>{html.escape(era)}</td><td>(no prediction yet)</td>"
                        "<td>hidden until you predict</td><td></td></tr>")
            continue
        mark = "right" if same_verdict(said, got[era]) else "not quite"
        rows.append(f"<tr><td>{html.escape(era)}</td><td><code>{html.escape(said)}</code></td>"
                    f"{_cell(got[era])}<td>{mark}</td></tr>")
    return _html(f'{_CSS}<table class="thp check"><tr><th>era</th><th>you said</th><th>thpviz computes</th>'
                 f'<th></th></tr>{"".join(rows)}</table>')


def _verdict_of(r) -> str:
    return " ".join([r.last_write, *(sorted(r.violations) or ["clean"])])


def front_matter(chapter: str | Path) -> dict:
    """The YAML front matter of a chapter (``book/<chapter>.md``)."""
    p = Path(chapter)
    if not p.suffix:
        p = p.with_suffix(".md")
    if not p.is_absolute():
        p = BOOK / p
    text = p.read_text(encoding="utf-8")
    m = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    return yaml.safe_load(m.group(1)) if m else {}


def chapter_claims(chapter) -> list[tuple[str, str, str, str]]:
    """(scenario, era, claimed verdict, engine verdict) for every claim."""
    claims = (front_matter(chapter).get("thpviz") or {}).get("claims") or {}
    out = []
    for rel, by_era in claims.items():
        for era, claimed in by_era.items():
            out.append((rel, str(era), str(claimed), verdict(rel, str(era))))
    return out


def claims_table(chapter):
    """The chapter's stated verdicts next to the engine's, run now."""
    rows = []
    for rel, era, claimed, got in chapter_claims(chapter):
        ok = same_verdict(claimed, got)
        mark = "yes" if ok else "NO: the text is out of date"
        rows.append(
            f"<tr><td><code>{html.escape(Path(rel).stem)}</code></td><td>{html.escape(era)}</td>"
            f"<td><code>{html.escape(claimed)}</code></td>{_cell(got)}<td>{mark}</td></tr>"
        )
    return _html(
        f'{_CSS}<table class="thp claims"><tr><th>scenario</th><th>era</th>'
        f'<th>this chapter says</th><th>thpviz computes</th><th>agree</th></tr>{"".join(rows)}</table>'
    )


def glue(name: str, value) -> None:
    """``myst_nb.glue`` without display, so prose can quote an engine result
    with ``{glue:text}`name```; a no-op where myst-nb is not installed."""
    try:
        from myst_nb import glue as _glue
    except ImportError:  # Colab without the book toolchain
        return
    _glue(name, value, display=False)


# -------------------------------------------------------------------- counters
COUNTER_ORDER = (
    "page_count", "page_mapcount", "compound_mapcount", "mapcount", "double_map",
    "total_mapcount", "page_trans_huge_mapcount", "pincount", "anon_exclusive",
    "entire_mapcount", "large_mapcount", "maybe_shared", "mapping",
)


def counters(rel: str, era: str, after: int | str = -1, at: str = "A[0]", proc: str | None = None) -> dict:
    """Counter values, as the era's kernel functions compute them, of the page
    mapped at ``at`` (``REGION[i]``) after a step.  ``after`` is a statement
    index or the start of a statement's text (first match)."""
    r = engine_run(rel, era, snapshots=True)
    i = _step_index(r, after)
    world = r.snapshots[i + 1]
    region, sub = re.fullmatch(r"(\w+)\[(\d+)\]", at).groups()
    mms = [world.mms[proc]] if proc else [m for m in world.mms.values() if m.alive]
    for mm in mms:
        if region in mm.regions:
            pfn, _, _ = world.lookup_one(mm, mm.regions[region][0] + int(sub))
            if pfn >= 0:
                break
    else:
        raise ValueError(f"nothing mapped at {at} after step {i}")
    e = ERAS[era]
    out = {"page": world.mem.name(int(pfn))}
    for f in COUNTER_ORDER:
        if f in e.counters:
            v = e.counter(f, world.mem, int(pfn))
            out[f] = v[0] if isinstance(v, tuple) else v
    return out


def _step_index(r, after) -> int:
    if isinstance(after, int):
        return after if after >= 0 else len(r.steps) + after
    for i, s in enumerate(r.steps):
        if s.stmt.text.startswith(after):
            return i
    raise ValueError(f"no statement starts with {after!r}")


def counters_table(rel: str, eras=ERA_IDS, after: int | str = -1, at: str = "A[0]", proc: str | None = None):
    """Counters of one page after one step, one column per era."""
    vals = {e: counters(rel, e, after, at, proc) for e in eras}
    names = [n for n in ("page", *COUNTER_ORDER) if any(n in v for v in vals.values())]
    head = "".join(f"<th>{html.escape(e)}</th>" for e in eras)
    rows = "".join(
        f"<tr><td><code>{n}</code></td>"
        + "".join(f"<td>{html.escape(str(vals[e].get(n, '—')))}</td>" for e in eras)
        + "</tr>"
        for n in names
    )
    return _html(f'{_CSS}<table class="thp counters"><tr><th>{html.escape(at)}</th>{head}</tr>{rows}</table>')


def rmap(rel: str, era: str, after: int | str = -1, page: str = "H1") -> dict:
    """``rmap_walk`` of a page (by thpviz name) after a step: the anon_vma
    ``page->mapping`` points to, and the mappings the walk reaches and misses."""
    r = engine_run(rel, era, snapshots=True)
    world = r.snapshots[_step_index(r, after) + 1]
    mem = world.mem
    heads = [int(h) for h in mem.page_starts() if mem.name(int(h)) == page]
    if not heads:
        return {"page": page, "mapping": "(no such page: split or freed)", "reached": [], "missed": []}
    h = heads[0]
    reached, missed = world.rmap_walk(h)

    def fmt(runs):
        return [f"{mm.name} {mm.describe(lo, hi)} ({level})" for mm, lo, hi, level in runs]

    av = int(mem.mapping[h])
    return {"page": page, "mapping": world.anon_vmas[av].name if av >= 0 else "none",
            "reached": fmt(reached), "missed": fmt(missed)}


def rmap_table(rel: str, eras=ERA_IDS, after: int | str = -1, page: str = "H1"):
    """Where ``page->mapping`` points and what the rmap walk finds, per era."""
    rows = []
    for e in eras:
        w = rmap(rel, e, after, page)
        miss = ", ".join(w["missed"]) or "nothing"
        rows.append(
            f"<tr><td>{html.escape(e)}</td><td><code>{html.escape(w['mapping'])}</code></td>"
            f"<td>{html.escape(', '.join(w['reached']) or 'nothing')}</td>"
            f'<td class="{"bad" if w["missed"] else "ok"}">{html.escape(miss)}</td></tr>'
        )
    return _html(
        f'{_CSS}<table class="thp rmap"><tr><th>era</th><th>{html.escape(page)}->mapping</th>'
        f'<th>rmap walk reaches</th><th>rmap walk misses</th></tr>{"".join(rows)}</table>'
    )


def listing_parts(text: str) -> tuple[list[str], str]:
    """A scenario file split for predict-then-reveal: (the lines shown: its
    headers and statements, with ``assert`` values replaced by ``?`` and
    without comments or ``expect`` lines, which often give the answer away;
    the whole file, unchanged, for the reveal)."""
    from thpviz.render.storyboard import mask_assert

    shown = []
    for line in text.rstrip().splitlines():
        body = line.split("#", 1)[0].rstrip()
        if body.strip().startswith("expect "):
            continue
        if not body.strip():
            if line.strip() and not body.strip():
                continue  # a comment line
            if shown and shown[-1] == "":
                continue
            shown.append("")
            continue
        shown.append(mask_assert(body))
    while shown and not shown[-1].strip():
        shown.pop()
    return shown, text.rstrip()


def show_scenario(rel: str):
    """The scenario file as a listing, with its path: headers and
    statements only (assert values as ``?``); the whole file, comments and
    ``expect`` lines included, is behind a reveal control."""
    p = scenario_path(rel)
    shown, whole = listing_parts(p.read_text(encoding="utf-8"))
    reveal = ("<details class=\"thp-reveal\"><summary>Predict first, then reveal the whole file: its comments, "
              f"the expected outcomes and the counter values</summary><pre>{html.escape(whole)}</pre></details>")
    return _html(f'{_CSS}<div class="thp-listing" id="scn-{html.escape(p.stem)}"><p><code>{html.escape(_rel(p))}'
                 f'</code></p><pre>{html.escape(chr(10).join(shown))}</pre>{reveal}</div>')


# ------------------------------------------------------------------ drawings
def storyboard(rel: str, eras=("4.4", "4.5", "4.6"), start: int | str = 1):
    """A static storyboard (readable SVG frames and a slider, no kernel
    needed) of the scenario under each era, drawn by ``thpviz.render``; the
    verdicts are behind a reveal control.  ``start``: the opening step, a
    statement's first words, or ``"decisive"`` (the last write fault)."""
    from thpviz.render.storyboard import storyboard_html

    return _html(storyboard_html(str(scenario_path(rel)), list(eras), start=start))


def diagram(rel: str, era: str, after: int | str = -1):
    """The state diagram of the world after one step, as a readable figure
    (readable size, fit/enlarge controls, alt text from the step's notes,
    the counter table on a phone)."""
    from thpviz.render.scene import build_scene
    from thpviz.render.storyboard import scene_figure_html

    r = engine_run(rel, era, snapshots=True)
    k = _step_index(r, after) + 1
    scene = build_scene(r.snapshots[k], r.snapshots[k - 1], r.steps[k - 1])
    uid = "thpviz-fig-" + re.sub(r"[^\w-]", "-", f"{Path(rel).stem}-{era}-{k}")
    return _html(scene_figure_html(scene, uid))


# ------------------------------------------------------------------ config
@lru_cache(maxsize=None)
def config() -> dict:
    """The book's ``_config.yml``."""
    return yaml.safe_load(CONFIG.read_text(encoding="utf-8"))


def repository_url() -> str:
    """The repository's URL: the one place it is written is ``repository.url``
    in ``book/_config.yml`` (launch buttons, footer, notebooks' Colab cells
    and the README are checked against it)."""
    return config()["repository"]["url"].rstrip("/")


def binder_url(path: str) -> str:
    """A mybinder.org link that opens ``path`` (relative to the repository)
    in JupyterLab, with the branch the book is built from."""
    repo = repository_url()
    m = re.match(r"https://github\.com/([^/]+)/([^/]+)$", repo)
    if not m:
        raise ValueError(f"repository.url is not a GitHub repository: {repo}")
    branch = config()["repository"].get("branch", "main")
    hub = config().get("launch_buttons", {}).get("binderhub_url", "https://mybinder.org").rstrip("/")
    return f"{hub}/v2/gh/{m.group(1)}/{m.group(2)}/{branch}?urlpath=lab/tree/{path}"


NOTEBOOKS = ROOT / "notebooks"


def workshop_table():
    """The workshop notebooks: title, a Binder link that opens each one, and
    its notebook file for download (written at build time, see
    ``_ext/notebook_downloads.py``)."""
    rows = []
    for p in sorted(NOTEBOOKS.glob("*.md")):
        if p.name.lower() == "readme.md":
            continue
        text = p.read_text(encoding="utf-8")
        m = re.search(r"^# (.+)$", text, re.M)
        title = m.group(1).strip() if m else p.stem
        rows.append(
            f"<tr><td>{html.escape(title)}</td>"
            f'<td><a href="{html.escape(binder_url("notebooks/" + p.name))}">open on Binder</a></td>'
            f'<td><a href="_notebooks/{html.escape(p.stem)}.ipynb" download>{html.escape(p.stem)}.ipynb</a></td></tr>'
        )
    return _html(f'{_CSS}<table class="thp workshop"><tr><th>notebook</th><th>live</th><th>download</th></tr>'
                 f'{"".join(rows)}</table>')


# ------------------------------------------------------------------- costs
def cost_explorer_static(explorer):
    """What a :class:`thpviz.widgets.CostExplorer` shows in its first state,
    as plain images and a table (the static book runs no Python, so the
    widget itself would be an empty box there)."""
    from IPython.display import HTML, display

    for fig in explorer.figures:
        display(figure(fig))
    s = explorer.results["settings"]
    display(HTML(f"{_CSS}<p>Settings: {s['nr']} subpages per THP, {s['thps']} guest THPs, {s['pins']} pinned, "
                 f"{s['procs']} fork+exit cycle(s), eras {', '.join(s['eras'])}.</p>"
                 + explorer.table.value.replace("<table>", '<table class="thp">', 1)))


# ------------------------------------------------------------------- thread
@lru_cache(maxsize=None)
def thread() -> dict:
    return yaml.safe_load(THREAD.read_text(encoding="utf-8"))


def messages() -> dict[str, dict]:
    return {m["id"]: m for m in thread()["messages"]}


def figure(fig, dpi: int = 100):
    """A matplotlib figure as a PNG image output, shown the same way whatever
    matplotlib backend the kernel runs with."""
    import io

    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return Image(data=buf.getvalue(), format="png")


# ------------------------------------------------------------- reader's key
#: the annotated diagram of the introduction: (graphviz title of a node or
#: edge, where on it the marker goes, what it means)
KEY_MARKS = (
    ("anon_vma tree", "topleft", "The **anon_vma tree** (green box): av0 is the root, av1 its child made by the "
                                 "fork, indented under it."),
    ("anon_vma tree:e->P:w", "mid", "A **dotted green edge** is an `anon_vma_chain` link: the VMA at its end is "
                                    "searched by an rmap walk that starts at that anon_vma."),
    ("P", "topleft", "A **process** (`mm`), one colour each: its VMA on the first row (range, protection, "
                     "anon_vma and chain links), then its page-table entries as runs."),
    ("C:r0->H1:w", "mid", "An edge from a run of entries to the subpages it maps: **thin** for PTEs, **thick** for "
                          "a PMD. An **open arrow head** means the entries are write-protected (the next write "
                          "faults); a filled one means writable."),
    ("H1", "topleft", "A **THP** (`H1`): the head's counters on top, then its subpages in runs with their logical "
                      "`_mapcount` (`mc`, also the shade) and the version of their data (`v1`, `v2`)."),
    ("H1:h->anon_vma tree:av1", "mid", "The **thick green edge** is `page->mapping`: the anon_vma an rmap walk of "
                                       "this page starts from. Here it has just moved (yellow: changed in this step)."),
    ("P:r0->H1:w", "mid", "A **dashed vermillion edge** is a violation: here a mapping the rmap walk cannot reach "
                          "(`rmap-broken`); for `pin-lost` it joins a pin to the page the CPU no longer maps."),
)


def _svg_point(svg: str, title: str, where: str) -> tuple[float, float] | None:
    """Where to put a marker on the node or edge titled ``title`` in a
    graphviz SVG (graph coordinates): a node's top left corner, or a point
    on an edge's curve half way along it, kept inside the picture."""
    t = html.escape(title).replace("-", "&#45;")
    i = svg.find(f"<title>{t}</title>")
    if i < 0:
        return None
    chunk = svg[i:svg.find("</g>", i)]
    m = re.search(r'(?:points="|\bd="M)([^"]+)"', chunk)
    if not m:
        return None
    pts = [tuple(map(float, p.split(","))) for p in re.findall(r"-?[\d.]+,-?[\d.]+", m.group(1))]
    if where == "topleft":
        x, y = min(p[0] for p in pts) - 4, min(p[1] for p in pts) - 4
    else:
        # a cubic path: a start point, then (control, control, point) per
        # segment; the marker sits half way along the middle segment
        segs = [pts[i:i + 4] for i in range(0, len(pts) - 3, 3)]
        if not segs:
            return None
        p0, c1, c2, p3 = segs[len(segs) // 2]
        x = (p0[0] + 3 * c1[0] + 3 * c2[0] + p3[0]) / 8
        y = (p0[1] + 3 * c1[1] + 3 * c2[1] + p3[1]) / 8
    g = re.search(r'<g id="graph0"[^>]*translate\(([-\d.]+) ([-\d.]+)\)', svg)
    vb = re.search(r'viewBox="[-\d.]+ [-\d.]+ ([\d.]+) ([\d.]+)"', svg)
    if g and vb:
        tx, ty, w, h = (float(g.group(1)), float(g.group(2)), float(vb.group(1)), float(vb.group(2)))
        x = min(max(x, 11 - tx), w - 11 - tx)
        y = min(max(y, 11 - ty), h - 11 - ty)
    return x, y


def annotated_key(scenario_text: str, era: str = "andrea-v1"):
    """The introduction's annotated diagram: the last step of ``scenario_text``
    under ``era``, with a numbered marker on each kind of box and edge
    (:data:`KEY_MARKS`) and the numbered list of what they mean."""
    from thpviz.render.scene import build_scene
    from thpviz.render.storyboard import figure_html, page_assets, render_svgs, scene_dots
    from thpviz.scenario import parse_text

    r = run(parse_text(scenario_text, "<key>"), ERAS[era], keep_snapshots=True)
    k = len(r.steps)
    scene = build_scene(r.snapshots[k], r.snapshots[k - 1], r.steps[k - 1])
    wide, _ = scene_dots(scene, "thpviz-key", narrow=False)
    svg = render_svgs([wide])[0]
    marks, items = [], []
    for n, (title, where, text) in enumerate(KEY_MARKS, 1):
        pt = _svg_point(svg, title, where)
        if pt is None:
            raise ValueError(f"the key's diagram has no {title!r}: the scenario or the renderer changed")
        x, y = pt
        marks.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="9" fill="#1A1A1A" stroke="#FBFAF6" stroke-width="1.5"/>'
                     f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" font-size="11" font-weight="bold" '
                     f'font-family="Helvetica,Arial,sans-serif" fill="#FBFAF6">{n}</text>')
        items.append(text)
    end = svg.rfind("</g>")
    svg = svg[:end] + "".join(marks) + svg[end:]
    alt = ("A diagram of Kirill's counterexample under Andrea's v1, after the child's write, with numbered "
           "markers: " + " ".join(f"{n}. {re.sub(r'[*`]', '', t)}" for n, t in enumerate(items, 1)))
    fig = figure_html(svg, uid="thpviz-key", alt=alt)
    lis = "".join(f"<li>{_md_inline(t)}</li>" for t in items)
    return _html(page_assets() + fig + f'<ol class="thpviz-key">{lis}</ol>')


def _md_inline(text: str) -> str:
    """**bold** and `code` of a short text, as HTML."""
    out = html.escape(text)
    out = re.sub(r"`(.+?)`", lambda m: "<code>" + m.group(1).replace("*", "&#42;") + "</code>", out)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    return re.sub(r"\*(.+?)\*", r"<i>\1</i>", out)


# ----------------------------------------------------------------- workshop
_EXERCISE = re.compile(r"^\*\*Exercise (\w+)\.\*\*\n(.*?)(?=\n\n|\n```|\Z)", re.M | re.S)


def workshop_exercises() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(notebook title, notebook file name, [(exercise id, text)]) for each
    workshop notebook, read from ``notebooks/*.md`` (the exercises are the
    paragraphs that start with ``**Exercise X.**``); the handout and the
    slides are made from these, so they say what the notebooks say."""
    out = []
    for p in sorted(NOTEBOOKS.glob("*.md")):
        text = p.read_text(encoding="utf-8")
        items = [(m.group(1), " ".join(m.group(2).split())) for m in _EXERCISE.finditer(text)]
        if not items:
            continue
        m = re.search(r"^# (.+)$", text, re.M)
        out.append((m.group(1).strip() if m else p.stem, p.name, items))
    return out


def handout():
    """The workshop's exercises on one printable page, with the verdict
    vocabulary and the statements a scenario is made of."""
    parts = ['<div class="handout">']
    for title, name, items in workshop_exercises():
        parts.append(f"<h2>{html.escape(title)} <small>(notebooks/{html.escape(name)})</small></h2><ol>")
        for ex, text in items:
            parts.append(f"<li><b>{html.escape(ex)}.</b> {_md_inline(text)}</li>")
        parts.append("</ol>")
    parts.append(
        "<h2>Vocabulary</h2><p><b>Decisions</b> of the last write fault: <code>reuse</code>, <code>cow-small</code>,"
        " <code>cow-huge</code>, <code>new</code>, <code>none</code>. <b>Violations</b>: <code>pin-lost</code>,"
        " <code>rmap-broken</code>, <code>leak</code>, <code>stray-write</code>, <code>bug</code>, or"
        " <code>clean</code>.</p><p><b>Statements</b>: <code>P: mmap A</code>, <code>P: read|write R</code>,"
        " <code>P: pin R ro|rw as NAME</code>, <code>P: vmsplice R as NAME</code>, <code>P: unpin NAME</code>,"
        " <code>P: fork C</code>, <code>P: exit</code>, <code>P: munmap|dontneed|dontfork R</code>,"
        " <code>P: mprotect R ro|rw</code>, <code>P: mremap R B</code>, <code>P: split_pmd|split_page R</code>,"
        " <code>dma_write|dma_read NAME</code>; ranges <code>A</code>, <code>A[i]</code>, <code>A[i:j]</code>.</p>"
        "<p>Before the session: <code>thpviz doctor</code>.</p>")
    parts.append("</div>")
    return _html("".join(parts))
