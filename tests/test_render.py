"""The state diagram says what the engine says.

Structural tests of the DOT text (no ``dot`` needed) and of the scene it is
drawn from: every alive process, VMA, anon_vma and active pin has its node;
the reverse-map edges are the VMAs' anon_vma_chain links and the pages'
``page->mapping``; violations are drawn exactly where the engine reports
them; page-table entries and subpages are run-length encoded.
"""

import io
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from conftest import IN_CI, KIRILL, SCENARIOS

from thpviz.eras import ERAS, get
from thpviz.render import graphviz_run
from thpviz.render.dot import CHANGED, RMAP, run_dot, scene_dot
from thpviz.render.fold import plan
from thpviz.render.scene import HEAD_COUNTERS, build_scene
from thpviz.scenario import parse_file, parse_text, run

VFIO = SCENARIOS / "regression" / "pin-mprotect-cycle-write.thp"


# three processes, two THPs of 512 subpages, a PTE-mapped part with
# PageDoubleMap, a DMA pin and a vmsplice reference
BIG = """\
thp: 512
P: mmap A 2
P: write A
P: pin A[5] rw as dma
P: fork C
C: fork D
P: split_pmd A[0:512]
C: mprotect A[100:200] ro
D: write A[600:610]
C: write A[300]
D: vmsplice A[700:704] as pipe1
C: exit
"""

SPLIT = """\
thp: 8
P: mmap A
P: mmap B
P: read B
P: write A
P: split_pmd B
P: write B[2:4]
P: fork C
P: split_page A
C: write A[0:3]
P: munmap A[4:8]
"""


def snapshots(text_or_path, era):
    scn = parse_file(str(text_or_path)) if not isinstance(text_or_path, str) else parse_text(text_or_path)
    r = run(scn, get(era), keep_snapshots=True)
    return r


def head_of(w, name):
    """pfn of the page the engine names ``name``."""
    for h in w.mem.page_starts():
        if w.mem.name(int(h)) == name:
            return int(h)
    raise KeyError(name)


def all_frames(r):
    """(k, world, dot) for every snapshot of a run."""
    for k in range(len(r.snapshots)):
        yield k, r.snapshots[k], run_dot(r, k, legend=False, caption=False)


NODE = re.compile(r'^"((?:[^"\\]|\\.)*)" \[label=', re.M)


def nodes(dot):
    return set(NODE.findall(dot))


def node_label(dot, node_id):
    m = re.search(r'^"' + re.escape(node_id) + r'" \[label=(<.*?>)\];$', dot, re.M)
    assert m, f"no node {node_id}"
    return m.group(1)


def av_ports(dot):
    """The anon_vmas drawn as rows of the anon_vma tree table."""
    if RMAP not in nodes(dot):
        return set()
    return set(re.findall(r'PORT="(av\d+)"', node_label(dot, RMAP)))


def vma_ports(dot, proc):
    """{port: VMA id} from a process node's label."""
    lab = node_label(dot, proc)
    return dict(re.findall(r'PORT="(v\d+)" ID="([^"]+)"', lab))


def svg_id(s):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in s)


CASES = [(VFIO, "4.5"), (VFIO, "4.6"), (KIRILL, "andrea-v1"), (KIRILL, "4.6"), (BIG, "4.5"),
         (BIG, "4.6"), (SPLIT, "4.5"), (SPLIT, "4.4")]
# the same states under the eras after the thread (each skips until main has it)
MODERN = ("5.8", "5.9", "5.19", "6.1", "6.12", "6.15")
CASES += [pytest.param(src, era, marks=pytest.mark.skipif(era not in ERAS, reason=f"era {era} not implemented yet"))
          for src in (VFIO, BIG, SPLIT) for era in MODERN]


@pytest.mark.parametrize("src,era", CASES)
def test_every_alive_process_vma_anon_vma_and_active_pin_has_a_node(src, era):
    r = snapshots(src, era)
    for k, w, dot in all_frames(r):
        ids = nodes(dot)
        for mm in w.alive_mms():
            assert mm.name in ids, (k, mm.name)
            ports = vma_ports(dot, mm.name)
            want = {svg_id(f"{mm.name}.{mm.describe(v.start, v.end)}") for v in mm.vmas}
            assert set(ports.values()) == want, k
        avs = {f"av{a}" for mm in w.alive_mms() for v in mm.vmas for a in v.avcs}
        assert avs <= av_ports(dot), k
        for name, pin in w.pins.items():
            if pin.active:
                assert name in ids or f"pin:{name}" in ids, (k, name)
        # no node for a pin that was released
        for name, pin in w.pins.items():
            if not pin.active:
                assert name not in ids or name in w.mms


@pytest.mark.parametrize("src,era", CASES)
def test_rmap_edges_are_the_vmas_anon_vma_chains_and_page_mapping(src, era):
    r = snapshots(src, era)
    for k, w, dot in all_frames(r):
        drawn = set()
        for av, proc, port in re.findall(r'^"anon_vma tree":(av\d+):e -> "([^"]+)":(v\d+):w \[[^]]*style=dotted',
                                         dot, re.M):
            drawn.add((av, vma_ports(dot, proc)[port]))
        engine = {(f"av{a}", svg_id(f"{mm.name}.{mm.describe(v.start, v.end)}"))
                  for mm in w.alive_mms() for v in mm.vmas for a in v.avcs}
        assert drawn == engine, k
        # page->mapping of every live THP
        mem = w.mem
        for h in mem.page_starts():
            if mem.nr[h] > 1 and mem.kind[h] == 0 and not mem.freed[h]:
                name, av = mem.name(h), int(mem.mapping[h])
                assert re.search(rf'^"{re.escape(name)}":h -> "anon_vma tree":av{av} ', dot, re.M), (k, name)
        # the anon_vma tree: every drawn anon_vma sits right under its parent
        prev = r.snapshots[k - 1] if k else None
        d = plan(build_scene(w, prev, r.steps[k - 1] if k else None))
        parent = {a.id: a.parent for a in w.anon_vmas}
        for row in d.av_rows:
            n = int(row.id[2:])
            if parent[n] == n:
                assert row.parent is None and row.depth == 0, (k, row)
            else:
                assert row.parent == f"av{parent[n]}" and row.via == 0, (k, row)
        assert {row.id for row in d.av_rows} == av_ports(dot)


def test_pin_lost_is_drawn_exactly_where_the_engine_reports_it():
    """vfio regression under 4.5: the write to the pinned THP copies it
    (do_huge_pmd_wp_page: page_count 2), the device keeps H1, the CPU gets
    H2.  https://lore.kernel.org/all/20160428102051.17d1c728@t450s.home/"""
    for era in ("4.5", "4.6"):
        r = snapshots(VFIO, era)
        seen = False
        for k, w, dot in all_frames(r):
            engine = k > 0 and "pin-lost" in r.steps[k - 1].violations
            lab = node_label(dot, "dma") if "dma" in nodes(dot) else ""
            drawn = "<B>pin-lost</B>" in lab
            assert drawn == engine, (era, k)
            if engine:
                seen = True
                pin = w.pins["dma"]
                mm = w.mms[pin.owner]
                dev = int(pin.pfns[0])
                cpu = int(w.lookup(mm, pin.vas)[0])
                assert dev != cpu
                mem = w.mem
                assert f"device sees {mem.name(dev)}" in lab.replace("&#160;", " ")
                assert f'label="device sees v{mem.data[dev]}"' in dot
                assert f"CPU sees v{mem.data[cpu]}" in dot
                # the dashed edge points at the page the CPU maps
                cpu_page = mem.name(int(mem.head[cpu]))
                assert re.search(rf'^"dma":h -> "{cpu_page}":s\d+:w \[style=dashed', dot, re.M)
                # the solid one at the frame the device holds
                dev_page = mem.name(int(mem.head[dev]))
                assert re.search(rf'^"dma":h -> "{dev_page}":s\d+:w \[color="#D55E00"', dot, re.M)
        assert seen == (era == "4.5")


def test_rmap_broken_is_drawn_on_the_mappings_rmap_walk_misses():
    """Kirill's counterexample: andrea-v1 moves the whole THP to the child's
    anon_vma, so the walk from page->mapping misses the parent's PTEs; 4.6
    does not move it.
    https://lore.kernel.org/all/20160502104119.GA23305@node.shutemov.name/"""
    for era in ("andrea-v1", "4.6"):
        r = snapshots(KIRILL, era)
        for k, w, dot in all_frames(r):
            engine = k > 0 and "rmap-broken" in r.steps[k - 1].violations
            edges = re.findall(
                r'^"([^"]+)":r\d+ -> "[^"]+":\w+(?::w)? \[[^]]*style=dashed, label="rmap walk from (av\d+)', dot, re.M)
            assert bool(edges) == engine, (era, k)
            if engine:
                h = head_of(w, "H1")
                _, missed = w.rmap_walk(h)
                assert {mm.name for mm, *_ in missed} == {p for p, _ in edges}
                assert {a for _, a in edges} == {f"av{w.mem.mapping[h]}"}
        final = run_dot(r, None, legend=False)
        moved = re.search(r'^"H1":h -> "anon_vma tree":(av\d+) \[color="[^"]+", penwidth=3, '
                          r'label="page->mapping \(moved', final, re.M)
        if era == "andrea-v1":
            assert moved and moved.group(1) == f"av{r.world.mem.mapping[head_of(r.world, 'H1')]}"
            assert r.snapshots[-2].mem.mapping[head_of(r.world, "H1")] != r.world.mem.mapping[head_of(r.world, "H1")]
        else:
            assert moved is None


def test_ptes_and_subpages_are_runs_not_one_box_per_subpage():
    r = snapshots(BIG, "4.5")
    for k, w, dot in all_frames(r):
        sc = build_scene(w)
        for p in sc.pages:
            if p.kind == "thp":
                assert len(p.cells) <= 12, (k, p.id, len(p.cells))
                # the cells tile the page
                assert [c.lo for c in p.cells][0] == 0 and p.cells[-1].hi == p.n
                assert all(a.hi == b.lo for a, b in zip(p.cells, p.cells[1:]))
        rows = sum(len(v.rows) for pr in sc.procs for v in pr.vmas)
        assert rows <= 16, (k, rows)
        assert len(dot) < 40_000, (k, len(dot))


@pytest.mark.parametrize("src,era", CASES)
def test_every_run_is_uniform_in_the_engine_state(src, era):
    """A cell or row is a faithful summary: every frame it covers has the
    values it shows, read from world.mem and the era's counters."""
    r = snapshots(src, era)
    for k, w, _ in all_frames(r):
        mem, era_obj = w.mem, w.era
        sc = build_scene(w)
        for p in sc.pages:
            if p.kind == "zero":
                continue
            for c in p.cells:
                fr = np.arange(p.start + c.lo, p.start + c.hi)
                assert (era_obj.mapcount_frames(mem, fr) == c.mapcount).all()
                assert c.mapcount == era_obj.counter("mapcount", mem, int(fr[0]))
                assert (mem.pins[fr] == c.pins).all()
                # every per-subpage field of the era is uniform; the data
                # version is not a field: the cell gives its range
                for f in sc.fields:
                    if f.order0 and p.kind != "order0":
                        continue
                    assert (np.asarray(f.values(w, fr)) == c.values[f.name]).all(), (k, p.id, f.name)
                assert (mem.data[fr].min(), mem.data[fr].max()) == (c.data, c.data_hi)
                if "anon_exclusive" in era_obj.counters:
                    for f in fr[:3].tolist() + fr[-3:].tolist():
                        assert era_obj.counter("anon_exclusive", mem, f) == c.values["anon_exclusive"], (k, p.id)
                assert c.page_mapcount == era_obj.counter("page_mapcount", mem, int(fr[0]))
            if p.kind == "thp":
                for name in HEAD_COUNTERS:
                    if name in era_obj.counters:
                        assert p.head_counters[name] == era_obj.counter(name, mem, p.start)
                assert p.double_map == bool(mem.double_map[p.start])
        for pr in sc.procs:
            mm = w.mms[pr.name]
            for v in pr.vmas:
                for row in v.rows:
                    addrs = np.arange(row.lo, row.hi)
                    pf = w.lookup(mm, addrs)
                    page = sc.page(row.page)
                    assert (pf >= 0).all()
                    if page.kind != "zero":
                        assert (pf == page.start + row.page_lo + np.arange(len(addrs))).all()
                    for a in (row.lo, row.hi - 1):
                        _, level, wr = w.lookup_one(mm, int(a))
                        assert level == row.level and wr == row.write


def test_doublemap_bias_is_its_own_mark():
    r = snapshots(BIG, "4.5")
    k = 6  # after P: split_pmd A[0:512], while C and D still map H1 by PMD
    w = r.snapshots[k]
    h = head_of(w, "H1")
    assert w.mem.double_map[h]
    dot = run_dot(r, k, legend=False)
    lab = node_label(dot, "H1")
    pte = int(w.mem.mapcount[h + 10]) - 1
    assert f"mc {pte + 1} = {pte}+DM" in lab
    pairs = dict(re.findall(r'<TD ALIGN="LEFT"[^>]*>([^<]+)</TD><TD ALIGN="RIGHT"[^>]*><B>([^<]+)</B></TD>', lab))
    assert pairs["PageDoubleMap"] == "yes"
    assert pairs["compound_mapcount"] == str(w.mem.cmc[h])
    assert pairs["page_count"] == str(w.mem.refcount[h])


def test_only_what_changed_is_highlighted():
    r = snapshots(VFIO, "4.5")
    for k, st in enumerate(r.steps, 1):
        dot = run_dot(r, k, legend=False)
        if st.stmt.op == "assert":
            assert CHANGED not in dot, k
        if st.stmt.text == "P: write A[5]":
            assert CHANGED in node_label(dot, "H2")  # the new THP
            assert CHANGED in node_label(dot, "P")  # the PMD now maps H2


def test_exited_process_disappears_and_its_pin_stays_with_the_device():
    r = snapshots(BIG, "4.5")
    w = r.world
    dot = run_dot(r, None, legend=False)
    assert "C" not in w.alive_mms() and "C" in nodes(dot)  # shown once, as exited
    assert "exited" in node_label(dot, "C")
    later = scene_dot(build_scene(w, w, None), legend=False)
    assert "C" not in nodes(later)
    assert "dma" in nodes(later) and '"device" -> "dma":h' in later


def test_caption_and_legend():
    r = snapshots(VFIO, "4.5")
    dot = run_dot(r, 7, title="vfio")
    assert "line 16: P: write A[5]" in dot
    assert "cow-huge" in dot and "legend" not in nodes(dot)
    assert "PageDoubleMap bias" in dot


dot_missing = not graphviz_run.available()


@pytest.mark.skipif(dot_missing and not IN_CI, reason="graphviz's dot is not installed")
@pytest.mark.parametrize("src,era", [(VFIO, "4.5"), (KIRILL, "andrea-v1"), (SPLIT, "4.5")])
def test_dot_renders_every_frame_to_svg(src, era):
    r = snapshots(src, era)
    dots = [d for _, _, d in all_frames(r)]
    svgs = graphviz_run.render_many_svg(dots)
    assert len(svgs) == len(dots)
    for svg in svgs:
        root = ET.fromstring(svg.encode())
        assert root.tag.endswith("svg")
        assert any(True for _ in root.iter("{http://www.w3.org/2000/svg}g"))
    last = ET.fromstring(svgs[-1].encode())
    titles = {t.text for t in last.iter("{http://www.w3.org/2000/svg}title")}
    for mm in r.world.alive_mms():
        assert mm.name in titles


def test_counter_strip_draws_the_engine_mapcounts():
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from thpviz.render.plots import counter_strip

    r = snapshots(BIG, "4.5")
    fig = counter_strip(r.snapshots[5:8], page="H1")
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    for ax, w in zip(fig.axes, r.snapshots[5:8]):
        h = head_of(w, "H1")
        dm = bool(w.mem.double_map[h])
        bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_y() >= 0]
        tops = {}
        for b in bars:
            tops[b.get_x()] = max(tops.get(b.get_x(), 0), b.get_y() + b.get_height())
        for x, top in tops.items():
            assert top == w.mem.mapcount[h + int(x)]
        hatched = [b for b in bars if b.get_hatch() == "//"]
        assert bool(hatched) == dm
    fig.savefig(io.BytesIO(), format="png")


def test_counter_strip_marks_exclusive_subpages_and_references():
    from matplotlib.patches import Rectangle

    from thpviz.render.plots import counter_strip

    # 6.15 reuses subpages of a PTE-mapped THP and marks them exclusive
    # (1da190f4d0a6); 5.19 copies them; 4.6 has no such flag
    text = "thp: 16\nP: mmap A\nP: write A\nP: split_pmd A\nP: fork C\nC: munmap A\nP: write A[3:6]\n" \
           "P: vmsplice A[9] as r\n"
    for era in ("4.6", "5.19", "6.15"):
        if era not in ERAS:
            continue
        r = snapshots(text, era)
        w = r.world
        fig = counter_strip(w, page="H1")
        ax = fig.axes[0]
        lane = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_gid() == "anon_exclusive"]
        covered = set()
        for p in lane:
            covered.update(range(int(p.get_x()), int(p.get_x() + p.get_width())))
        h = head_of(w, "H1")
        want = {i for i in range(16) if "anon_exclusive" in w.era.counters
                and w.era.counter("anon_exclusive", w.mem, h + i)}
        assert covered == want, era
        assert bool(want) == (era == "6.15")
        assert ("PageAnonExclusive" in [t.get_text() for t in ax.get_yticklabels()]) == ("anon_exclusive" in
                                                                                         w.era.counters)
        refs = [ln for ln in ax.get_lines() if ln.get_gid() == "refs"]
        assert [round(float(ln.get_xdata()[0]) - 0.5) for ln in refs] == [9]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "thpviz.cli", *args], capture_output=True, text=True)


def test_cli_render_writes_dot_and_svg(tmp_path):
    out = tmp_path / "f.dot"
    p = run_cli("render", str(VFIO), "--era", "4.5", "--step", "7", "-o", str(out))
    assert p.returncode == 0, p.stderr
    text = out.read_text()
    assert text.startswith("// alt: ") and text.splitlines()[1].startswith("digraph") and "pin-lost" in text
    p = run_cli("render", str(VFIO), "--era", "4.5", "--step", "99", "-o", str(out))
    assert p.returncode == 2 and "--step" in p.stderr


@pytest.mark.skipif(dot_missing and not IN_CI, reason="graphviz's dot is not installed")
def test_cli_render_writes_svg(tmp_path):
    out = tmp_path / "f.dot"
    svg = tmp_path / "f.svg"
    p = run_cli("render", str(VFIO), "--era", "4.6", "-o", str(svg))
    assert p.returncode == 0, p.stderr
    root = ET.fromstring(svg.read_bytes())
    assert root.tag.endswith("svg") and root.get("role") == "img" and "line 17" in root.get("aria-label")
    p = run_cli("render", str(VFIO), "--era", "4.6", "--layout", "narrow", "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert "rankdir=TB" in out.read_text()


def test_thpviz_help_imports_no_drawing_library():
    code = ("import sys; from thpviz.cli import build_parser; build_parser(); "
            "print([m for m in ('matplotlib', 'graphviz', 'ipywidgets', 'numpy') if m in sys.modules])")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"
    assert "render" in run_cli("--help").stdout and "storyboard" in run_cli("--help").stdout


def test_every_scenario_file_is_drawn_with_the_violations_the_engine_reports():
    """All litmus files under the eras they name: every frame has its
    processes and pins, and marks pin-lost / rmap-broken exactly when the
    runner reports them."""
    from thpviz.scenario import eras_for

    files = sorted(SCENARIOS.rglob("*.thp"))
    assert files
    for f in files:
        scn = parse_file(str(f))
        for era in eras_for(scn):
            r = run(scn, era, keep_snapshots=True)
            for k, w, dot in all_frames(r):
                ids = nodes(dot)
                assert {m.name for m in w.alive_mms()} <= ids, (f, era.id, k)
                viol = r.steps[k - 1].violations if k else {}
                lost = "<B>pin-lost</B>" in dot
                broken = bool(re.search(r'style=dashed, label="rmap walk from av\d+', dot))
                assert lost == ("pin-lost" in viol), (f.name, era.id, k)
                assert broken == ("rmap-broken" in viol), (f.name, era.id, k)


@pytest.mark.skipif(dot_missing and not IN_CI, reason="graphviz's dot is not installed")
def test_long_lived_dot_gives_what_a_fresh_dot_gives_and_survives_errors():
    r = snapshots(KIRILL, "andrea-v1")
    texts = [d for _, _, d in all_frames(r)]
    for d in texts[-3:]:
        assert graphviz_run.render_svg(d) == graphviz_run.render(d, "svg").decode()
    with pytest.raises(RuntimeError, match="syntax error"):
        graphviz_run.render_svg("digraph { a -> ; }")
    assert graphviz_run.render_svg(texts[-1]) == graphviz_run.render(texts[-1], "svg").decode()


@pytest.mark.skipif(dot_missing and not IN_CI, reason="graphviz's dot is not installed")
def test_one_dot_for_many_graphs_gives_what_one_dot_per_graph_gives():
    r = snapshots(VFIO, "4.5")
    texts = [d for _, _, d in all_frames(r)][-4:]
    assert graphviz_run.render_many_svg(texts) == [graphviz_run.render(d, "svg").decode() for d in texts]


# ------------------------------------------------------------------ timeline
SMALL_THREAD = {
    "messages": [
        {"id": "M01", "date": "2016-04-28T10:20:51-06:00", "author": "Ann Able", "replies_to": None, "status": "R"},
        {"id": "M02", "date": "2016-04-28T18:00:00+00:00", "author": "Bo", "replies_to": "M01", "status": "R"},
        {"id": "M03", "date": "2016-05-02T10:41:19+03:00", "author": "Cy <x>", "replies_to": "M02", "status": "Q"},
        {"id": "M04", "date": "2016-05-20T09:00:00+00:00", "author": "Ann Able", "replies_to": "M99", "status": "R"},
    ],
    "commits": [
        {"id": "6d0a07edd17c", "date": "2016-05-05T12:00:00", "role": "fix"},
        {"id": "53f9263baba6", "date": "2016-01-15T12:00:00", "role": "bisected"},
    ],
}
for _m in SMALL_THREAD["messages"]:
    _m.update(summary=f"what {_m['id']} says & more", link=f"https://lore.kernel.org/all/{_m['id']}@x/")


def test_timeline_draws_every_message_its_replies_and_the_fix():
    from thpviz.render.timeline import COMMIT_URL, timeline_svg

    svg = timeline_svg(SMALL_THREAD, highlight=["M03"])
    root = ET.fromstring(svg)  # well-formed: the author "Cy <x>" and the "&" are escaped
    ns = "{http://www.w3.org/2000/svg}"
    links = [a for a in root.iter(ns + "a") if "lore.kernel.org" in a.get("href", "")]
    # one linked point per message, in the order sent (M01 at 16:20 UTC is
    # before M02 at 18:00), each with its summary as tooltip
    assert [a.get("href") for a in links] == [m["link"] for m in SMALL_THREAD["messages"]]
    assert all("says & more" in a.find(ns + "title").text for a in links)
    # three authors, three columns; M04 is in M01's column
    xs = {}
    for a, m in zip(links, SMALL_THREAD["messages"]):
        shape = a.find(ns + "circle") if a.find(ns + "circle") is not None else a.find(ns + "rect")
        xs[m["id"]] = float(shape.get("cx") or float(shape.get("x")) + float(shape.get("width")) / 2)
        # the quoted-only message is a square, the others circles; the
        # highlighted one is larger and vermillion
        assert (shape.tag == ns + "rect") == (m["status"] == "Q"), m["id"]
        colour = shape.get("fill") if shape.tag == ns + "circle" else shape.get("stroke")
        assert (colour == "#D55E00") == (m["id"] == "M03"), m["id"]
    assert xs["M01"] == xs["M04"] and len({xs["M01"], xs["M02"], xs["M03"]}) == 3
    # a curve per reply whose parent is known (M04's parent M99 is not)
    assert len(list(root.iter(ns + "path"))) == 2
    # one dashed rule for the fix (5 May), between M03 (2 May) and M04 (20
    # May), and none for the bisected commit
    fix = [a for a in root.iter(ns + "a") if a.get("href") == COMMIT_URL.format("6d0a07edd17c")]
    assert len(fix) == 1 and "53f9263baba6" not in svg
    y_fix = float(fix[0].find(ns + "line").get("y1"))
    cy = {m["id"]: float(s.get("cy") or float(s.get("y")) + float(s.get("height")) / 2)
          for a, m in zip(links, SMALL_THREAD["messages"]) for s in [a[1]]}
    assert cy["M03"] < y_fix < cy["M04"]


def test_timeline_of_the_real_thread_index():
    from thpviz.render.timeline import load_thread, timeline_svg

    thread = load_thread()
    root = ET.fromstring(timeline_svg(thread, highlight=["M01"]))
    points = [a for a in root.iter("{http://www.w3.org/2000/svg}a") if "lore.kernel.org" in a.get("href", "")]
    assert len(points) == len(thread["messages"]) > 0


# ------------------------------------------------------- the modern state
PIN_FORK = SCENARIOS / "regression" / "pin-fork-write-child-alive.thp"
UNSHARE = """\
thp: 8
P: mmap A
P: write A
P: fork C
C: pin A[3] ro as dma
"""

#: which era first has what (DESIGN.md's era table and its commits)
SINCE = {
    "FOLL_PIN": "5.8",  # 3faa52c03f44 (5.7) is in every modelled era from 5.8
    "has_pinned": "5.9",  # 008cfe4418b3
    "anon_exclusive": "5.19",  # 6c287605fd56
    "_mm_id slots": "6.15",  # 6af8cb80d3a9
}
ORDER = ["4.4", "4.5", "kirill-k1", "andrea-v1", "4.6", "5.8", "5.9", "5.18", "5.19", "6.1", "6.12", "6.15"]


def since(what, era):
    return ORDER.index(era) >= ORDER.index(SINCE[what])


@pytest.mark.parametrize("era", list(ERAS))
def test_the_modern_state_is_shown_exactly_in_the_eras_that_have_it(era):
    r = snapshots(PIN_FORK, era)
    dot = run_dot(r, 4, legend=False)  # after the fork
    sc = build_scene(r.snapshots[4], r.snapshots[3], r.steps[3])
    pin = node_label(dot, "dma")
    assert ("FOLL_PIN" in pin) == since("FOLL_PIN", era) and ("FOLL_GET" in pin) != since("FOLL_PIN", era)
    assert ("has_pinned" in node_label(dot, "P")) == since("has_pinned", era)
    if since("has_pinned", era):
        assert "has_pinned 1" in node_label(dot, "P") and "has_pinned 0" in node_label(dot, "C")
    assert ("anon_exclusive" in [f.name for f in sc.fields]) == since("anon_exclusive", era)
    assert ("_mm_id slots" in dot) == since("_mm_id slots", era)
    # the head shows every counter function the era has, and no other
    h1 = sc.page("H1")
    want = [n for n in HEAD_COUNTERS if n in get(era).counters]
    assert [n for n in h1.head_counters if n != "page_mapcount"] == want
    for name, value in h1.head_counters.items():
        assert value == get(era).counter(name, r.snapshots[4].mem, h1.start)
    # dirty bits: in the eras whose rules read or carry them (6.1's
    # mprotect upgrade needs a dirty PTE; 6.4+ carries the bit at a split)
    assert (" dirty →" in dot) == (era in ("6.1", "6.12", "6.15"))


def test_owner_slots_name_the_mms_that_map_the_folio():
    if "6.15" not in ERAS:
        pytest.skip("era 6.15 not implemented yet")
    r = snapshots("thp: 8\nP: mmap A\nP: write A\nP: fork C\n", "6.15")
    w = r.world  # P and C map H1 by PMD
    h = head_of(w, "H1")
    sc = build_scene(w)
    ids = {m.id: m.name for m in w.mms.values()}
    slots = [(int(w.mem.slot_mm[h]), int(w.mem.slot_count[h])), (int(w.mem.slot_mm2[h]), int(w.mem.slot_count2[h]))]
    want = ", ".join("free" if i == 0 else f"{ids[i]}×{n}" for i, n in slots)
    assert sc.page("H1").slots == want and "free" not in want


def test_fork_time_copies_and_unshare_faults_are_annotated_on_their_rows():
    if "5.19" not in ERAS:
        pytest.skip("era 5.19 not implemented yet")
    # 5.9+: fork gives the child a copy of the maybe-pinned page; before, it shares
    for era, copied in (("4.5", False), ("5.9", True), ("6.15", True)):
        if era not in ERAS:
            continue
        r = snapshots(PIN_FORK, era)
        step = r.steps[3]
        assert (any(e.kind == "fork-copy" for e in step.events)) == copied
        lab = node_label(run_dot(r, 4, legend=False), "C").replace("&#160;", " ")
        assert ("copied at fork (maybe pinned)" in lab) == copied, era
        assert "write fault" not in lab
    # 5.19+: a R/O pin of a shared page unshares it: an unshare fault, not a write fault
    for era, unshare in (("4.6", False), ("5.19", True), ("6.15", True)):
        r = snapshots(UNSHARE, era)
        lab = node_label(run_dot(r, None, legend=False), "C").replace("&#160;", " ")
        assert ("unshare fault:" in lab) == unshare, era
        assert "write fault" not in lab
