"""The widgets without a kernel: set ``.value``, click buttons, check what
they display; the sandbox's exported text is a scenario that reproduces the
state it shows, and its one-statement steps agree with a whole run."""

import re

import pytest
from conftest import KIRILL, SCENARIOS

from thpviz.scenario import parse_file, parse_text, run
from thpviz.scenario.parser import range_text
from thpviz.scenario.report import mapping_dicts, page_dicts
from thpviz.widgets import EraCompare, Sandbox, ScenarioPlayer
from thpviz.widgets.compare import NO_PAGE, NOT_IN_ERA, differences
from thpviz.widgets.panels import scene_at
from thpviz.widgets.sandbox import check_title

PAGE = 4096

VFIO = SCENARIOS / "regression" / "pin-mprotect-cycle-write.thp"


def text_of(html):
    return re.sub(r"<[^>]+>", "", html).replace("&#x27;", "'").replace("&quot;", '"')


@pytest.mark.parametrize("form", ["path", "text", "scenario"])
def test_player_accepts_a_path_text_or_scenario(form):
    src = {"path": str(VFIO), "text": VFIO.read_text(), "scenario": parse_file(str(VFIO))}[form]
    p = ScenarioPlayer(src, "4.5")
    assert p.slider.max == len(p.run.steps) == 8
    assert "P: mmap A" in text_of(p.statement.value)


def test_player_step_slider_moves_the_displayed_state():
    p = ScenarioPlayer(str(VFIO), "4.5")
    seen = []
    p.slider.observe(lambda ch: seen.append(ch["new"]), names="value")
    p.wait()
    before = (p.statement.value, p.diagram.value, p.table.value)
    p.slider.value = 7  # P: write A[5] -> do_huge_pmd_wp_page
    p.wait()
    assert seen == [7] and p.step == 7
    assert (p.statement.value, p.diagram.value, p.table.value) != before
    assert "P: write A[5]" in text_of(p.statement.value)
    assert "do_huge_pmd_wp_page" in text_of(p.statement.value)  # the line's comment
    details = text_of(p.details.value)
    assert "cow-huge" in details and "pin-lost" in details
    assert "H2" in text_of(p.table.value)  # the copy
    p.slider.value = 2
    assert "pin-lost" not in text_of(p.details.value) and "H2" not in text_of(p.table.value)
    # the verdict is the runner's, shown only once the reader asks
    assert text_of(p.verdict.value) == ""
    p.reveal.value = True
    assert "cow-huge" in text_of(p.verdict.value) and "as expected" in text_of(p.verdict.value)


def test_player_era_control_reruns_and_keeps_the_step():
    p = ScenarioPlayer(str(VFIO), "4.5", start="decisive")
    assert p.step == 7 and "P: write A[5]" in text_of(p.statement.value)  # the last write fault
    assert "cow-huge" in text_of(p.details.value)
    p.era_picker.value = "4.6"
    assert p.run.era.id == "4.6" and p.step == 7
    assert "reuse" in text_of(p.details.value) and "cow-huge" not in text_of(p.details.value)
    assert "page_trans_huge_mapcount" in p.table.value  # 4.6 has the counter; 4.5 did not
    p.era_picker.value = "4.5"
    assert "cow-huge" in text_of(p.details.value)


def test_diagrams_are_laid_out_off_the_main_thread_with_a_placeholder(monkeypatch):
    """A click never waits for dot: the placeholder shows at once and the
    diagram replaces it when the worker is done; a newer step wins."""
    import threading

    from thpviz.render import graphviz_run

    gate = threading.Event()
    real = graphviz_run.render_svg

    def slow(text, timeout=60.0):
        gate.wait(10)
        return real(text, timeout)

    monkeypatch.setattr(graphviz_run, "render_svg", slow)
    graphviz_run.clear_cache()
    p = ScenarioPlayer(str(VFIO), "4.5", start=2)
    assert "laying out the diagram" in p.diagram.value
    p.slider.value = 3  # the reader moves on before step 2 is drawn
    assert "laying out the diagram" in p.diagram.value
    gate.set()
    p.wait()
    assert "<svg" in p.diagram.value and "laying out" not in p.diagram.value
    assert "after line" in p.diagram.value.lower() or 'role="img"' in p.diagram.value
    assert "P: pin A[5] rw as dma" in p.diagram.value  # step 3's alt text, not step 2's


def test_player_counter_table_shows_the_era_counters():
    p = ScenarioPlayer(str(VFIO), "4.5")
    p.slider.value = 3  # after the pin
    w = p.run.snapshots[3]
    h = [int(x) for x in w.mem.page_starts() if w.mem.name(int(x)) == "H1"][0]
    head = re.findall(r"<th[^>]*>([^<]+)</th>", p.table.value)
    rows = [[text_of(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)]
            for tr in re.findall(r"<tr>(.*?)</tr>", p.table.value)[1:]]
    table = {r[0]: dict(zip(head, r)) for r in rows}
    for name in ("page_count", "compound_mapcount", "total_mapcount"):
        assert table["H1"][name] == str(p.run.era.counter(name, w.mem, h))
    assert table["H1"]["GUP pins"] == str(int(w.mem.pins[h:h + w.nr].sum()))


def test_era_compare_shares_one_slider_and_marks_differences():
    c = EraCompare(KIRILL, ["andrea-v1", "4.6"])
    assert len(c.columns) == 2
    c.reveal.value = True
    verdicts = [text_of(col["verdict"].value) for col in c.columns]
    assert "rmap-broken" in verdicts[0] and "clean" in verdicts[1]
    c.slider.value = 7
    scenes = [scene_at(r, 7) for r in c.runs]
    _, values, differ = differences(scenes)
    assert ("step", "violations") in differ
    assert ("H1", "mapping") in differ  # andrea-v1 moved it to the child's anon_vma
    heads = [[int(x) for x in r.world.mem.page_starts() if r.world.mem.name(int(x)) == "H1"][0] for r in c.runs]
    assert values[("H1", "mapping")] == [f"av{r.world.mem.mapping[h]}" for r, h in zip(c.runs, heads)]
    # the highlighted cells are exactly the differing ones
    assert c.table.value.count("background:#F6EC7A") == sum(len(values[k]) for k in differ)
    c.slider.value = 4  # after fork: both eras agree
    assert c.table.value.count("background:#F6EC7A") == 0
    assert all("rmap-broken" not in text_of(col["details"].value) for col in c.columns)


def test_era_compare_ignores_a_counter_an_era_lacks():
    """4.5 has no page_trans_huge_mapcount and 4.4 no PageDoubleMap: that is
    no disagreement.  A page only one era has (4.5's copy) is one."""
    c = EraCompare(str(VFIO), ["4.4", "4.5", "4.6"], start=3)  # after the pin: all eras agree
    _, values, differ = differences([scene_at(r, 3) for r in c.runs])
    assert values[("H1", "page_trans_huge_mapcount")] == [NOT_IN_ERA, NOT_IN_ERA, 1]
    assert values[("H1", "PageDoubleMap")][0] == NOT_IN_ERA
    assert ("H1", "page_trans_huge_mapcount") not in differ and ("H1", "PageDoubleMap") not in differ
    # 4.5 and 4.6 agree on every counter both have
    _, _, differ = differences([scene_at(r, 3) for r in c.runs[1:]])
    assert not {k for k in differ if k[0] != "step"}, differ
    c.slider.value = 7  # 4.5 copied: H2 exists only there
    _, values, differ = differences([scene_at(r, 7) for r in c.runs])
    assert values[("H2", "page_count")] == [NO_PAGE, 1, NO_PAGE]
    assert ("H2", "page_count") in differ


def test_era_compare_adds_and_removes_eras():
    c = EraCompare(str(VFIO), ["4.5"], start="decisive")
    assert c.era_ids == ["4.5"] and len(c.columns) == 1
    c.toggles["4.6"].value = True
    assert c.era_ids == ["4.5", "4.6"] and len(c.columns) == 2 and c.step == 7
    c.add_era("4.4")
    assert c.era_ids == ["4.4", "4.5", "4.6"] and c.toggles["4.4"].value  # in era order
    assert [r.era.id for r in c.runs] == c.era_ids
    c.remove_era("4.5")
    assert c.era_ids == ["4.4", "4.6"] and not c.toggles["4.5"].value
    assert len(c.columns_box.children) == 2
    c.toggles["4.4"].value = False
    c.toggles["4.6"].value = False  # the last column stays
    assert c.era_ids == ["4.6"] and c.toggles["4.6"].value
    # verdicts only once revealed
    assert "reuse" not in text_of(c.columns[0]["verdict"].value)
    c.reveal.value = True
    assert "reuse" in text_of(c.columns[0]["verdict"].value)


def build(sb):
    sb.do("mmap")
    sb.do("write")
    sb.select("high")
    sb.do("pin_rw")
    sb.do("fork")
    sb.proc.value = "C"
    sb.select("low")
    sb.do("munmap")
    sb.do("exit")
    sb.proc.value = "P"
    sb.select("all")
    sb.do("mprotect_ro")
    sb.do("mprotect_rw")
    sb.do("write")


def test_sandbox_builds_by_clicking_and_exports_a_scenario_that_round_trips(tmp_path):
    sb = Sandbox("4.5", thp=8)
    build(sb)
    assert sb.lines == [
        "P: mmap A", "P: write A", "P: pin A[4:8] rw as pin1", "P: fork C", "C: munmap A[0:4]",
        "C: exit", "P: mprotect A ro", "P: mprotect A rw", "P: write A",
    ]
    text = sb.text
    again = run(parse_text(text, "<exported>"), sb.era)
    assert page_dicts(again.world) == page_dicts(sb.run.world)
    assert mapping_dicts(again.world) == mapping_dicts(sb.run.world)
    assert not again.mismatches()  # its expect line holds
    f = tmp_path / "built.thp"
    f.write_text(text)
    from thpviz.cli import main

    assert main(["check", str(f)]) == 0


def test_sandbox_keeps_nothing_the_kernel_refuses_and_undo_goes_back():
    sb = Sandbox("4.6", thp=8)
    sb.do("mmap")
    sb.do("mprotect_ro")
    n = len(sb.lines)
    assert not sb.do("write")  # the VMA is read-only: SIGSEGV
    assert len(sb.lines) == n and "refused" in sb.message.value
    sb.do("mprotect_rw")
    assert sb.do("write")
    sb.wait()
    shown = sb.diagram.value
    sb.undo()
    sb.wait()
    assert sb.lines[-1] == "P: mprotect A rw" and sb.diagram.value != shown and "<svg" in shown
    assert "P: write A" not in sb.source.value and sb.source.value == sb.text


def test_sandbox_buttons_are_wired():
    sb = Sandbox("4.5", thp=8)
    sb.buttons["mmap"].click()
    sb.buttons["write"].click()
    assert sb.lines == ["P: mmap A", "P: write A"]
    assert "H1" in text_of(sb.table.value)
    sb.buttons["pin rw"].click()
    assert sb.pin.options == ("pin1",)
    sb.buttons["dma_write"].click()
    assert sb.lines[-1] == "dma_write pin1"


def test_sandbox_runs_one_statement_per_click_and_agrees_with_a_whole_run():
    sb = Sandbox("4.6", thp=8)
    build(sb)
    whole = run(parse_text(sb.text, "<exported>"), sb.era, keep_snapshots=True)
    assert len(sb.run.snapshots) == len(whole.snapshots) == len(sb.lines) + 1
    for mine, theirs in zip(sb.run.snapshots, whole.snapshots):
        assert page_dicts(mine) == page_dicts(theirs)
        assert mapping_dicts(mine) == mapping_dicts(theirs)
    assert sb.run.last_write == whole.last_write and sb.run.violations == whole.violations
    # undo pops the snapshot: the world is the one before the last statement
    before = page_dicts(sb.run.snapshots[-2])
    sb.undo()
    assert page_dicts(sb.run.world) == before and len(sb.run.snapshots) == len(sb.lines) + 1


def test_sandbox_era_control_reruns_the_statements():
    sb = Sandbox("4.5", thp=8)
    for line in ["P: mmap A", "P: write A", "P: pin A[5] rw as dma", "P: fork C", "C: exit", "P: write A[5]"]:
        assert sb.add(line)
    assert sb.run.last_write == "cow-huge" and "pin-lost" in sb.run.violations
    sb.era_picker.value = "4.6"
    assert sb.era.id == "4.6" and sb.run.last_write == "reuse" and not sb.run.violations
    assert "expect 4.6: reuse clean" in sb.text and len(sb.lines) == 6
    assert sb.add("P: write A[0]")  # adding goes on under the new era


@pytest.mark.parametrize("line,why", [
    ("# only a comment", "not a blank or comment line"),
    ("", "not a blank or comment line"),
    ("P: mmap A\nP: write A", "line break"),
    ("P: write B", ""),  # no region B: the parser says so
])
def test_sandbox_add_rejects_without_crashing(line, why):
    sb = Sandbox("4.5", thp=8)
    assert sb.add("P: mmap A")
    assert not sb.add(line)
    assert sb.lines == ["P: mmap A"] and len(sb.run.snapshots) == 2
    assert why in sb.message.value and "color:#D55E00" in sb.message.value


def test_sandbox_add_rejects_a_counter_the_era_lacks():
    sb = Sandbox("4.5", thp=8)
    sb.add("P: mmap A")
    sb.add("P: write A")
    assert not sb.add("assert page_trans_huge_mapcount(A) == 1")
    assert "does not exist in era 4.5" in sb.message.value
    assert sb.add("assert total_mapcount(A) == 1")


@pytest.mark.parametrize("title", ["two\nlines", "a # comment", "bell\x07", "nel\x85x"])
def test_sandbox_refuses_a_title_the_export_would_change(title):
    with pytest.raises(ValueError):
        Sandbox("4.5", title=title)


@pytest.mark.parametrize("title", ["plain", "pin, fork & exit: 4.5 (ünïcode) [x] 100%"])
def test_sandbox_title_round_trips(title):
    sb = Sandbox("4.5", thp=8, title=title)
    sb.add("P: mmap A")
    assert parse_text(sb.text, "<x>").title == check_title(title) == title


def test_sandbox_starts_empty():
    sb = Sandbox("4.5")
    assert sb.lines == [] and sb.run is None and "P: " not in sb.source.value


def test_range_text():
    assert range_text("A", 8, 0, 8) == "A"
    assert range_text("A", 8, 5, 6) == "A[5]"
    assert range_text("A", 8, 2, 6) == "A[2:6]"


# ------------------------------------------------------------ cost explorer
def test_cost_explorer_updates_without_a_kernel():
    from thpviz.widgets import CostExplorer

    w = CostExplorer(nr=16, thps=3, pins=2, procs=1)
    img, table = w.workload_image.value, w.table.value
    assert img[:8] == b"\x89PNG\r\n\x1a\n"
    assert w.results["workload"]["4.5"]["pins_lost"] == 2
    w.pins.value = 0
    assert w.workload_image.value != img and w.table.value != table
    assert w.results["workload"]["4.5"]["pins_lost"] == 0
    w.thps.value = 1
    w.pins.value = 1
    assert w.pins.max == 1 and w.results["settings"]["pins"] == 1
    before = w.fault_image.value
    w.size.value = 64
    assert w.fault_image.value != before
    assert w.results["fault"]["4.5"].cost["bytes_copied"] == 64 * PAGE
    w.eras.value = ("4.6",)
    assert list(w.results["workload"]) == ["4.6"]
    w.eras.value = ()
    assert "Select" in w.table.value


