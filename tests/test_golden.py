"""The run history (tests/golden.py): every litmus file's full JSON under
every era it names must equal the stored history, so a changed counter, a
changed decision or a changed event anywhere fails here.  Regenerate with
``.venv/bin/python tests/golden.py`` after a reviewed change."""

import gzip
import json

import pytest

import golden


@pytest.mark.parametrize("thp", golden.scenario_files(), ids=lambda p: str(p.relative_to(golden.SCENARIOS)))
def test_run_matches_history(thp):
    g = golden.golden_path(thp)
    assert g.exists(), f"{thp}: no run history; run tests/golden.py"
    diff = golden.first_difference(golden.load(g), golden.current(thp))
    assert diff is None, f"{thp}: run differs from its history at {diff} (regenerate after review: tests/golden.py)"


def test_no_stale_history():
    known = {golden.golden_path(t) for t in golden.scenario_files()}
    stale = [g for g in golden.GOLDEN.rglob("*.json.gz") if g not in known]
    assert not stale


def test_a_changed_counter_fails_the_history(tmp_path, monkeypatch):
    """The comparison is sensitive to one counter of one subpage."""
    thp = golden.scenario_files()[0]
    data = golden.current(thp)
    data[0]["pages"][0]["refcount"] += 1
    assert golden.first_difference(golden.load(golden.golden_path(thp)), data) is not None
    # and the stored files are what save() writes: canonical, reproducible
    p = tmp_path / "x.json.gz"
    golden.save(p, golden.load(golden.golden_path(thp)))
    assert p.read_bytes() == golden.golden_path(thp).read_bytes()
    assert json.loads(gzip.decompress(p.read_bytes())) == golden.load(p)
