"""The litmus suite: every .thp file under every era it names is a test."""

import subprocess
import sys

import pytest

from conftest import ROOT, SCENARIOS
from thpviz.eras import ERAS
from thpviz.scenario import check_eras, eras_for, parse_file, run

FILES = sorted(SCENARIOS.rglob("*.thp"))


def test_suite_exists():
    assert len(FILES) >= 15


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SCENARIOS)))
def test_scenario(path):
    scn = parse_file(str(path))
    eras = eras_for(scn)
    check_eras(scn, eras)
    problems = []
    for era in eras:
        problems += run(scn, era).mismatches()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SCENARIOS)))
def test_every_file_has_title_source_and_every_era(path):
    scn = parse_file(str(path))
    assert scn.title and scn.source
    assert set(scn.expects) == set(ERAS), f"missing expect lines: {set(ERAS) - set(scn.expects)}"


def test_thpviz_check_command_passes():
    r = subprocess.run([sys.executable, "-m", "thpviz.cli", "check", str(SCENARIOS)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.endswith(" 0 failed") and int(last.split()[0]) >= len(ERAS) * len(FILES)


@pytest.mark.parametrize("folder", sorted({p.parent for p in FILES}), ids=lambda p: p.name)
def test_topic_readme_lists_every_file(folder):
    readme = folder / "README.md"
    assert readme.exists(), f"{folder} has no README.md"
    text = readme.read_text()
    for f in folder.glob("*.thp"):
        assert f"`{f.name}`" in text, f"{f.name} missing from {readme}"
