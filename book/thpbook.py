"""Glue between the book's chapters and thpviz.

Every number or verdict a chapter shows comes from a run of the engine on a
scenario file in ``data/scenarios/``; this module only runs scenarios, reads
snapshots and formats what the engine computed.  It never decides a verdict
itself.  Drawing is delegated to ``thpviz.render`` (graphviz SVG, storyboards)
and ``thpviz.cost``; the thread timeline by ``thpviz.render.timeline`` from
``data/thread.yaml``.

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

#: the eras the 2016 chapters discuss, in chronological order (DESIGN.md
#: ids); the aftermath chapter passes the later ones explicitly
ERA_IDS = tuple(THREAD_ERAS)
ALL_ERAS = tuple(ERAS)
LATER_ERAS = tuple(MODERN_ERAS)
ERA_LABELS = {e: ERAS[e].title for e in ERA_IDS}
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


_CSS = """<style>
table.thp {border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0;}
table.thp th, table.thp td {border: 1px solid #9995; padding: 2px 6px; text-align: left;}
table.thp td.bad {background: #f4433622;} table.thp td.ok {background: #4caf5022;}
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


def show_scenario(rel: str):
    """The scenario file as a listing, with its path."""
    from IPython.display import Markdown

    p = scenario_path(rel)
    return Markdown(f"`{_rel(p)}`\n\n```text\n{p.read_text(encoding='utf-8').rstrip()}\n```")


# ------------------------------------------------------------------ drawings
def storyboard(rel: str, eras=("4.4", "4.5", "4.6")):
    """A static storyboard (inline SVG frames and a slider, no kernel needed)
    of the scenario under each era, drawn by ``thpviz.render``."""
    from thpviz.render.storyboard import storyboard_html

    return _html(storyboard_html(str(scenario_path(rel)), list(eras)))


def diagram(rel: str, era: str, after: int | str = -1, legend: bool = False):
    """The graphviz state diagram (``thpviz.render.diagram``) of the world
    after one step, with what that step changed marked."""
    from thpviz.render import diagram as _diagram

    r = engine_run(rel, era, snapshots=True)
    return _diagram(r, step=_step_index(r, after) + 1, legend=legend)


# ------------------------------------------------------------------- thread
@lru_cache(maxsize=None)
def thread() -> dict:
    return yaml.safe_load(THREAD.read_text(encoding="utf-8"))


def messages() -> dict[str, dict]:
    return {m["id"]: m for m in thread()["messages"]}


def timeline(highlight=()):
    """Every message of the thread on a time axis, drawn by
    :func:`thpviz.render.timeline.timeline_figure` from ``data/thread.yaml``;
    ``highlight``: message ids drawn larger.  Returns a PNG image output."""
    from thpviz.render.timeline import timeline_figure

    return figure(timeline_figure(thread(), highlight))


def figure(fig, dpi: int = 100):
    """A matplotlib figure as a PNG image output, shown the same way whatever
    matplotlib backend the kernel runs with."""
    import io

    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return Image(data=buf.getvalue(), format="png")


def links(*ids: str) -> str:
    """Markdown links for message ids (M01...), as in data/thread.yaml."""
    ms = messages()
    return ", ".join(f"[{i}]({ms[i]['link']})" for i in ids)
