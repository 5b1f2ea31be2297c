"""The widgets without a kernel: set ``.value``, click buttons, check what
they display; the sandbox's exported text is a scenario that reproduces the
state it shows."""

import re

import pytest
from conftest import KIRILL, SCENARIOS

from thpviz.scenario import parse_file, parse_text, run
from thpviz.scenario.report import mapping_dicts, page_dicts
from thpviz.widgets import EraCompare, Sandbox, ScenarioPlayer
from thpviz.widgets.compare import differences
from thpviz.widgets.panels import scene_at
from thpviz.widgets.sandbox import range_text

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
    before = (p.statement.value, p.diagram.value, p.table.value)
    p.slider.value = 7  # P: write A[5] -> do_huge_pmd_wp_page
    assert seen == [7] and p.step == 7
    assert (p.statement.value, p.diagram.value, p.table.value) != before
    assert "P: write A[5]" in text_of(p.statement.value)
    assert "do_huge_pmd_wp_page" in text_of(p.statement.value)  # the line's comment
    details = text_of(p.details.value)
    assert "cow-huge" in details and "pin-lost" in details
    assert "H2" in text_of(p.table.value)  # the copy
    p.slider.value = 2
    assert "pin-lost" not in text_of(p.details.value) and "H2" not in text_of(p.table.value)
    # the verdict is the runner's
    assert "cow-huge" in text_of(p.verdict.value) and "as expected" in text_of(p.verdict.value)


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
    shown = sb.diagram.value
    sb.undo()
    assert sb.lines[-1] == "P: mprotect A rw" and sb.diagram.value != shown
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


def test_range_text():
    assert range_text("A", 8, 0, 8) == "A"
    assert range_text("A", 8, 5, 6) == "A[5]"
    assert range_text("A", 8, 2, 6) == "A[2:6]"
