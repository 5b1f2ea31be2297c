"""Diagrams stay bounded and legible at any scale, and never hide a violation.

The size budget is checked on the DOT text itself (nodes, edges, subpage
cells, bytes counted here, not taken from the planner's own statistics) for
fork chains and trees of 2-120 processes, THPs of 16-65,536 subpages, 1-64
extents and a 256-run comb (benchmarks/bench_render.py goes to 200
processes, 262,144 subpages and 1,024 runs).  Folding and summaries appear exactly when they should,
and a page or mapping that carries a violation stays drawn and named.
The cache, the recycling of the long-lived ``dot`` and the remembered
timeouts are checked with counters and a fake ``dot``, never with a clock.
"""

import functools
import os
import re
import stat
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest
from conftest import IN_CI, KIRILL

from thpviz import invariants
from thpviz.eras import get
from thpviz.model.world import World
from thpviz.render import graphviz_run, stress
from thpviz.render.diagrams import Diagram, accessible_svg, alt_of, render_async, smallest_text_px
from thpviz.render.dot import RMAP, scene_dot
from thpviz.render.fold import DEFAULT_BUDGET, Budget, plan
from thpviz.render.scene import build_scene, violations_of
from thpviz.scenario import parse_text
from thpviz.scenario.runner import execute

dot_missing = not graphviz_run.available()
needs_dot = pytest.mark.skipif(dot_missing and not IN_CI, reason="graphviz's dot is not installed")


@functools.lru_cache(maxsize=32)
def last_scene(text, era="4.5"):
    """The scene after the last statement (keeping only two worlds, so a
    262,144-subpage scenario does not hold a snapshot per step).  Cached:
    drawing never changes a scene."""
    scn = parse_text(text, "<scale>")
    era = get(era)
    world = World(era, scn.thp)
    prev, step = None, None
    for st in scn.statements:
        prev = world
        world, step = execute(world.clone(), era, st)
    return build_scene(world, prev, step)


NODE = re.compile(r'^("(?:[^"\\]|\\.)*") \[label=', re.M)
EDGE = re.compile(r'^"(?:[^"\\]|\\.)*"(?::\w+)*(?::\w)? -> ', re.M)


def measure(dot):
    """(nodes, visible edges, subpage cells, bytes) counted in DOT text."""
    nodes = len(NODE.findall(dot))
    edges = sum(1 for line in dot.splitlines() if EDGE.match(line) and "style=invis" not in line)
    cells = len(re.findall(r'<TD PORT="s\d+"', dot))
    return nodes, edges, cells, len(dot.encode())


SCALES = (
    [("chain", n) for n in (2, 10, 30, 50, 120)]
    + [("tree", n) for n in (2, 10, 50, 120)]
    + [("thp", s) for s in (16, 512, 4096, 65536)]
    + [("extents", e) for e in (1, 8, 64)]
    + [("comb", 512)]
)


def scale_text(kind, n):
    return {
        "chain": lambda: stress.fork_chain(n),
        "tree": lambda: stress.fork_tree(n),
        "thp": lambda: stress.big_thp(n),
        "extents": lambda: stress.extents(n),
        "comb": lambda: stress.comb(n),
    }[kind]()


@pytest.mark.parametrize("kind,n", SCALES)
@pytest.mark.parametrize("layout", ["wide", "narrow"])
def test_the_size_budget_holds_at_every_scale(kind, n, layout):
    sc = last_scene(scale_text(kind, n))
    dot = scene_dot(sc, legend=False, layout=layout)
    nodes, edges, cells, size = measure(dot)
    b = DEFAULT_BUDGET
    assert nodes <= b.nodes and edges <= b.edges and cells <= b.cells and size <= b.dot_bytes, \
        (kind, n, nodes, edges, cells, size)
    # every alive process is drawn, folded into a group, or counted in a summary
    drawn = set(re.findall(r'^"([^"]+)" \[label=', dot, re.M))
    folded = set()
    for tip in re.findall(r'tooltip="([^"]*)"', dot):
        folded.update(tip.split(", "))
    for pr in sc.procs:
        if pr.alive:
            assert pr.name in drawn or pr.name in folded or '"summary"' in dot, (kind, n, pr.name)


def test_a_fork_chain_folds_alike_processes_and_summarises_anon_vma_chains():
    sc = last_scene(stress.fork_chain(50))
    d = plan(sc)
    assert d.summary is None
    links = sum(len(v.avcs) for p in sc.procs for v in p.vmas)
    assert links == 50 * 51 // 2
    dot = scene_dot(sc, legend=False)
    # the last child wrote (a COW fault): drawn in full; the 48 before it
    # did nothing this step and map H1 as P does: one node
    [fold] = d.proc_folds
    assert fold.like == "P" and fold.names == [f"C{i}" for i in range(1, 49)]
    assert "<B>C1…C48</B>: 48 processes" in dot and "like P" in dot
    assert {p.name for p in d.procs} == {"P", "C49"}
    # anon_vma_chain: each drawn VMA keeps its own anon_vma and the one its
    # page's page->mapping points at
    avc = re.findall(r'^"anon_vma tree":(av\d+):e -> "([^"]+)":v\d+:w', dot, re.M)
    assert d.avc_summarised and len(avc) < 10
    assert ("av0", "P") in avc and ("av0", "C49") in avc and ("av49", "C49") in avc
    assert "avc av0…av49 (50)" in dot
    # the tree shows the elided chain
    rows = {r.id: r for r in d.av_rows}
    assert rows["av49"].parent == "av0" and rows["av49"].via == 48
    assert "folded to stay legible: 48 alike processes" in dot


def test_small_scenarios_are_drawn_in_full():
    for text in (stress.fork_chain(5), stress.fork_tree(5), KIRILL, stress.split_two()):
        d = plan(last_scene(text))
        assert not d.folded and d.summary is None
        assert not d.proc_folds and not d.page_folds and not d.avc_summarised


def test_extents_fold_alike_thps_and_merge_their_rows():
    sc = last_scene(stress.extents(64))
    d = plan(sc)
    [fold] = d.page_folds
    # H1 (its PMD split in P), H64 (C copied it), H65 (C's copy) differ;
    # H2 is drawn for H3...H63
    assert fold.like == "H2" and fold.titles == [f"H{i}" for i in range(3, 64)]
    p = next(p for p in d.procs if p.name == "P")
    merged = [r for v in p.vmas for r in v.rows if r.runs > 1]
    assert len(merged) == 1 and merged[0].what == "62 PMDs" and merged[0].target == "H2…H63"
    assert {n for n, _ in merged[0].heads} == {"H2", fold.id}


def test_a_comb_merges_vmas_rows_and_cells_but_keeps_what_changed():
    sc = last_scene(stress.comb(512))
    d = plan(sc)
    assert d.summary is None
    c = next(p for p in d.procs if p.name == "C")
    assert len(c.vmas) <= DEFAULT_BUDGET.vmas_per_proc and any(v.count > 100 for v in c.vmas)
    [h1] = [p for p in d.pages if p.id == "H1"]
    assert len(h1.cells) <= DEFAULT_BUDGET.cells_per_page
    # the cell the last munmap changed is its own, uniform, cell
    changed = [cl for cl in h1.cells if cl.changed]
    assert changed and all(cl.runs == 1 for cl in changed)
    # merged cells tile the page and give each field's range
    assert [cl.lo for cl in h1.cells][0] == 0 and h1.cells[-1].hi == h1.n
    assert all(a.hi == b.lo for a, b in zip(h1.cells, h1.cells[1:]))
    mixed = [cl for cl in h1.cells if cl.runs > 1]
    assert mixed and all(cl.ranges["mapcount"][0] < cl.ranges["mapcount"][1] for cl in mixed)


# ----------------------------------------------------------- violations stay
def pinned_chain(n):
    """P pins a subpage, forks a chain of n-1, then writes the pinned
    subpage: under 4.5 the write copies the THP (page_count > 1) and the
    device keeps the old one (the vfio regression with many processes)."""
    lines = ["thp: 512", "P: mmap A", "P: write A", "P: pin A[5] rw as dma"]
    names = ["P"] + [f"C{i}" for i in range(1, n)]
    lines += [f"{a}: fork {b}" for a, b in zip(names, names[1:])]
    lines.append("P: write A[5]")
    return "\n".join(lines) + "\n"


def broken_many(n):
    """Kirill's counterexample (andrea-v1 moves page->mapping to C's
    anon_vma), then P forks n children: each maps what P maps, which the
    rmap walk from C's anon_vma cannot reach."""
    lines = KIRILL.strip().splitlines() + [f"P: fork D{i}" for i in range(1, n + 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("n", [3, 30, 120])
def test_a_lost_pin_stays_drawn_and_named_among_folded_processes(n):
    sc = last_scene(pinned_chain(n))
    assert "pin-lost" in sc.violations
    d = plan(sc)
    dot = scene_dot(sc, legend=False)
    assert d.summary is None
    assert "P" in {p.name for p in d.procs}  # the owner is never folded
    lab = re.search(r'^"dma" \[label=(<.*?>)\];$', dot, re.M).group(1)
    assert "<B>pin-lost</B>" in lab
    assert re.search(r'^"dma":h -> "H1":s\d+:w \[color="#D55E00"', dot, re.M)  # what the device holds
    assert re.search(r'^"dma":h -> "H2":s\d+:w \[style=dashed', dot, re.M)  # what P's CPU maps
    assert "H1" in {p.id for p in d.pages} and "H2" in {p.id for p in d.pages}
    for detail in sc.violations["pin-lost"]:
        assert detail.replace("'", "&#x27;") in dot or detail in dot


@pytest.mark.parametrize("n", [2, 12, 60])
def test_rmap_broken_mappings_are_never_folded(n):
    sc = last_scene(broken_many(n), "andrea-v1")
    assert "rmap-broken" in sc.violations
    bad = {pr.name for pr in sc.procs for v in pr.vmas for r in v.rows if r.unreachable}
    assert {"P"} | {f"D{i}" for i in range(1, n + 1)} <= bad
    d = plan(sc)
    dot = scene_dot(sc, legend=False)
    if d.summary is None:
        drawn = {p.name for p in d.procs}
        assert bad <= drawn
        dashed = set(re.findall(r'^"([^"]+)":r\d+ -> "[^"]+":\w+(?::w)? \[[^]]*style=dashed, '
                                r'label="rmap walk from av\d+', dot, re.M))
        assert dashed == bad
    else:
        # too many to draw: the summary names the violation and its details
        assert '"summary"' in dot and "rmap-broken" in dot
        first = sc.violations["rmap-broken"][0]
        assert first.split(" (")[0] in dot
    assert "rmap-broken" in alt_of(dot)


def test_over_the_budget_the_summary_lists_every_violation_kind():
    sc = last_scene(pinned_chain(8))
    tiny = Budget(nodes=2)
    d = plan(sc, tiny)
    assert d.summary and "nodes" in d.summary
    dot = scene_dot(sc, legend=False, budget=tiny)
    assert '"summary"' in dot and "Too much to draw legibly" in dot
    for kind in sc.violations:
        assert kind in dot
    # the DOT byte limit is checked on the text itself
    dot = scene_dot(sc, legend=False, budget=Budget(dot_bytes=500))
    assert '"summary"' in dot and "DOT text" in dot


def test_a_new_violation_kind_is_drawn_without_a_change_in_the_renderer(monkeypatch):
    """The caption, the alt text and the summary list whatever kinds the
    step reports; a snapshot without a step asks invariants.check itself."""
    scn = parse_text(stress.split_two(), "<new-kind>")
    era = get("4.5")
    world = World(era, scn.thp)
    for st in scn.statements:
        prev = world
        world, step = execute(world.clone(), era, st)
    step = replace(step, violations={**step.violations, "stray-write": ["C wrote H1[384] that P maps"]})
    sc = build_scene(world, prev, step)
    dot = scene_dot(sc, legend=False)
    assert "<B>stray-write</B>: C wrote H1[384] that P maps" in dot
    assert "stray-write: C wrote H1[384] that P maps" in alt_of(dot)
    assert "stray-write" in scene_dot(sc, legend=False, budget=Budget(nodes=1))

    calls = []

    def fake_check(w):
        calls.append(w)
        return {"pin-lost": ["x"], "stray-write": ["y"]}

    monkeypatch.setattr(invariants, "check", fake_check)
    assert violations_of(world) == {"pin-lost": ["x"], "stray-write": ["y"]} and calls == [world]
    dot = scene_dot(build_scene(world), legend=False)
    assert "<B>stray-write</B>: y" in dot


# ----------------------------------------------------------------- alt text
def test_every_diagram_has_alt_text_from_its_step_notes():
    from thpviz.scenario.report import step_notes

    sc = last_scene(pinned_chain(3))
    dot = scene_dot(sc, legend=False, title="the vfio regression, forked")
    alt = alt_of(dot)
    assert alt.startswith("the vfio regression, forked.")
    assert f"line {sc.step.stmt.line}, {sc.step.stmt.text}," in alt and "era 4.5" in alt
    for n in step_notes(sc.step, sc.faults):
        assert n.text in alt
    svg = accessible_svg('<?xml version="1.0"?>\n<svg width="10pt" height="10pt" viewBox="0 0 10 10"><g/></svg>',
                         alt)
    root = ET.fromstring(svg.encode())
    assert root.get("role") == "img" and root.get("aria-label") == alt
    assert root[0].tag.endswith("title") and root[0].text == alt
    assert Diagram(dot).alt == alt


# --------------------------------------------------------------- legibility
@needs_dot
def test_a_split_thp_in_two_processes_is_legible_at_book_width():
    """Text at least 11 px when the SVG is shrunk to a 750 px column."""
    sc = last_scene(stress.split_two(512))
    for legend in (False, True):
        svg = Diagram(scene_dot(sc, legend=legend, title="a split THP in two processes")).svg()
        assert smallest_text_px(svg, 750) >= 11
    narrow = Diagram(scene_dot(sc, legend=False, layout="narrow")).svg()
    assert smallest_text_px(narrow, 480) >= 10


def test_smallest_text_px_reads_the_svg():
    svg = ('<svg width="1500pt" height="10pt" viewBox="0.00 0.00 1500.00 10.00">'
           '<text font-size="10.00">a</text><text font-size="8.00">b</text></svg>')
    # 1500 pt = 2000 px shrunk to 750 px: 8 * 750 / 1500
    assert smallest_text_px(svg, 750) == pytest.approx(4.0)
    small = svg.replace("1500", "300")
    # 300 pt = 400 px, shown at natural size: 8 pt = 10.67 px
    assert smallest_text_px(small, 750) == pytest.approx(8 * 4 / 3)


# ----------------------------------------------------- cache and recycling
@pytest.fixture
def fresh_graphviz(monkeypatch):
    """A clean cache and server for one test, restored afterwards."""
    graphviz_run._close_server()
    monkeypatch.setattr(graphviz_run, "_cache", graphviz_run._Lru(graphviz_run.CACHE_ITEMS,
                                                                  graphviz_run.CACHE_BYTES))
    monkeypatch.setattr(graphviz_run, "_failed", type(graphviz_run._failed)())
    yield graphviz_run
    graphviz_run._close_server()


def small_graphs(n):
    return [f'digraph g{i} {{ a{i} -> b{i} [label="{i}"]; }}\n' for i in range(n)]


@needs_dot
def test_svg_is_cached_by_dot_text(fresh_graphviz):
    g = fresh_graphviz
    a, b = small_graphs(2)
    first = g.render_svg(a)
    info = g.cache_info()
    assert info["items"] == 1 and info["server"]["graphs"] == 1
    assert g.render_svg(a) == first
    info = g.cache_info()
    assert info["hits"] >= 1 and info["server"]["graphs"] == 1  # not laid out again
    assert g.cached_svg(a) == first and g.cached_svg(b) is None
    # render_many_svg takes what it can from the cache
    assert g.render_many_svg([a, b]) == [first, g.render(b, "svg").decode()]


@needs_dot
def test_the_cache_is_a_bounded_lru(fresh_graphviz, monkeypatch):
    g = fresh_graphviz
    monkeypatch.setattr(g, "_cache", g._Lru(3, 10 ** 9))
    graphs = small_graphs(5)
    for t in graphs[:3]:
        g.render_svg(t)
    g.render_svg(graphs[0])  # touch: the oldest is now graphs[1]
    for t in graphs[3:]:
        g.render_svg(t)
    assert len(g._cache.data) == 3
    assert g.cached_svg(graphs[1]) is None and g.cached_svg(graphs[2]) is None
    assert g.cached_svg(graphs[0]) is not None
    monkeypatch.setattr(g, "_cache", g._Lru(100, 3000))
    for t in graphs:
        g.render_svg(t)
    assert g._cache.size <= 3000


@needs_dot
def test_the_long_lived_dot_is_recycled(fresh_graphviz, monkeypatch):
    g = fresh_graphviz
    monkeypatch.setattr(g, "RECYCLE_GRAPHS", 3)
    started = g.cache_info()["servers_started"]
    graphs = small_graphs(7)
    pids = set()
    for t in graphs:
        assert g.render_svg(t) == g.render(t, "svg").decode()
        pids.add(g.cache_info()["server"]["pid"])
        assert g.cache_info()["server"]["graphs"] <= 3
    assert len(pids) == 3 and g.cache_info()["servers_started"] - started == 3
    # and by its resident size
    monkeypatch.setattr(g, "RECYCLE_GRAPHS", 10 ** 6)
    monkeypatch.setattr(g, "RECYCLE_RSS_KIB", 1)
    monkeypatch.setattr(g, "_RSS_EVERY", 1)
    pids = set()
    for t in small_graphs(10)[7:]:
        g.render_svg(t + "// again\n")
        pids.add(g.cache_info()["server"]["pid"])
    assert len(pids) == 3


@pytest.fixture
def slow_dot(tmp_path, monkeypatch, fresh_graphviz):
    """A fake ``dot`` that logs each start and never answers."""
    log = tmp_path / "starts"
    script = tmp_path / "dot"
    script.write_text(f"#!{sys.executable}\nimport time\nopen({str(log)!r}, 'a').write('x')\ntime.sleep(30)\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("THPVIZ_DOT", str(script))
    return log


@pytest.mark.skipif(os.name != "posix", reason="fake dot is a script")
@pytest.mark.parametrize("server", ["1", "0"])
def test_a_layout_that_timed_out_is_not_tried_again(slow_dot, monkeypatch, server):
    monkeypatch.setenv("THPVIZ_DOT_SERVER", server)
    g = graphviz_run
    text = small_graphs(1)[0]
    with pytest.raises(g.LayoutTimeout):
        g.render_svg(text, timeout=0.5)
    with pytest.raises(g.LayoutTimeout, match="remembered"):
        g.render_svg(text, timeout=0.5)
    assert slow_dot.read_text() == "x"  # dot was started once
    fut = render_async(text, timeout=0.5)
    with pytest.raises(g.LayoutTimeout):
        fut.result(timeout=20)
    assert slow_dot.read_text() == "x"


@needs_dot
def test_render_async_gives_the_svg_and_calls_back(fresh_graphviz):
    import threading

    sc = last_scene(stress.split_two(16))
    got = []
    done = threading.Event()

    def cb(svg, err):
        got.append((svg, err))
        done.set()

    fut = render_async(sc, cb, layout="narrow", legend=False)
    svg = fut.result(timeout=30)
    assert done.wait(30)
    assert got == [(svg, None)]
    text = scene_dot(sc, layout="narrow", legend=False)
    assert svg == accessible_svg(graphviz_run.render_svg(text), alt_of(text))
    assert 'role="img"' in svg
    # a bad graph reports its error through the callback
    done.clear()
    got.clear()
    fut = render_async("digraph { a -> ; }", cb)
    assert done.wait(30)
    assert got[0][0] is None and isinstance(got[0][1], graphviz_run.DotError)
    with pytest.raises(graphviz_run.DotError):
        fut.result()


def test_placeholder_svg_needs_no_dot():
    svg = graphviz_run.placeholder_svg("laying out step 3…")
    root = ET.fromstring(svg.encode())
    assert root.get("role") == "img" and root.get("aria-label") == "laying out step 3…"


def test_rmap_node_id_cannot_clash_with_a_process_or_pin_name():
    # process and pin names are identifiers; the tree's node id has a space
    assert " " in RMAP


@needs_dot
def test_control_characters_in_a_title_never_reach_the_dot_text():
    sc = last_scene(stress.split_two(16))
    title = "a\x0bhidden\nline\u2028and\x00more \"quoted\" <b>"
    dot = scene_dot(sc, title=title)
    first, rest = dot.split("\n", 1)
    assert first.startswith("// alt: ") and "\n" not in alt_of(dot)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\u2028\u2029]", dot)
    svg = Diagram(dot).svg()
    assert ET.fromstring(svg.encode()).get("aria-label").startswith("a hidden line and more")


@pytest.mark.parametrize("n", [7, 20])
def test_a_vma_with_many_links_is_summarised_even_when_few_processes_are_drawn(n):
    """A fork chain folds into P, a group and the last child: few links in
    all, but the last child alone links n anon_vmas."""
    d = plan(last_scene(stress.fork_chain(n)))
    last = next(p for p in d.procs if p.name == f"C{n - 1}")
    [v] = last.vmas
    assert len(v.avcs) == n and d.avc_summarised
    assert set(v.avc_drawn) == {"av0", f"av{n - 1}"}
    assert len(d.av_rows) == 2


def test_children_that_each_copied_their_own_thp_fold_with_their_pages():
    n = 30
    lines = ["thp: 512", "P: mmap A", "P: write A"] + [f"P: fork C{i}" for i in range(1, n)]
    lines += [f"C{i}: write A[5]" for i in range(1, n)]
    sc = last_scene("\n".join(lines) + "\n")
    d = plan(sc)
    [pf] = d.page_folds
    [f] = d.proc_folds
    # C1 and its copy H2 are drawn; C2..C28 and their copies H3..H29 are one
    # node each, and the group of processes points at the group of pages
    assert f.like == "C1" and f.names == [f"C{i}" for i in range(2, 29)]
    assert pf.like == "H2" and pf.titles == [f"H{i}" for i in range(3, 30)]
    assert d.fold_edges == [(f.id, pf.id, "h", 27)]
    assert pf.mappings == [f"av{i}" for i in range(2, 29)]
    dot = scene_dot(sc, legend=False)
    assert "v1–v2" in dot
