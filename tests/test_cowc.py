"""cow.c replayed in the model (thpviz.cowc): the table is generated from
runs, 6.15 passes every expressible cell as cow.c does on Linux 6.18, and the
table's data-based judgement agrees with thpviz's own violations."""

import pytest

from thpviz import cowc
from thpviz.eras import ERAS
from thpviz.scenario import parse_text, run

# cow.c judges by data: these are the violations that say the same thing
VIOLATION_FOR = {"child": "stray-write", "pipe": "leak", "pin": "pin-lost"}


@pytest.fixture(scope="module")
def table():
    return cowc.table()


def test_every_family_and_configuration_is_a_row(table):
    assert len(table["rows"]) == len(cowc.FAMILIES) * len(cowc.CONFIGS) == 66
    assert table["eras"] == list(ERAS)
    assert {n["what"].split()[0] for n in table["not_modelled"]} >= {"swapped-out", "hugetlb", "KSM"}


def test_615_passes_every_cell_as_cowc_does_on_618(table):
    failing = [(r["family"], r["config"], r["cells"]["6.15"]["why"])
               for r in table["rows"] if not r["cells"]["6.15"]["pass"]]
    assert not failing


def test_judgement_agrees_with_the_violations(table):
    """A failing cell shows the matching violation in its run, a passing one
    does not -- two independent readings of the same run."""
    fams = {f.key: f for f in cowc.FAMILIES}
    cfgs = {c.key: c for c in cowc.CONFIGS}
    for r in table["rows"]:
        fam, cfg = fams[r["family_key"]], cfgs[r["config_key"]]
        scn = parse_text(cowc.scenario_text(fam, cfg))
        for era_id, cell in r["cells"].items():
            got = run(scn, ERAS[era_id]).violations
            assert (VIOLATION_FOR[fam.check] in got) == (not cell["pass"]), (
                f"{era_id}: {fam.title} / {cfg.title}: {cell['why']}; violations {sorted(got)}")


@pytest.mark.parametrize("family,config,failing", [
    # the THP side of CVE-2020-29374 stayed open in 5.9..5.17 (eras.md 4.4)
    ("vmsplice-child", "pmd", {"4.4", "kirill-k1", "andrea-v1", "4.6", "5.9"}),
    # fork-time copies of pinned pages arrived in 5.9
    ("iouring-fork", "base", {"4.4", "4.5", "kirill-k1", "andrea-v1", "4.6", "5.8"}),
    # page_count-based reuse lost R/O-mapped pins until PageAnonExclusive
    ("iouring-ro", "base", {"5.9", "5.18"}),
    ("iouring-ro", "pmd", {"4.5", "5.18"}),
])
def test_history(table, family, config, failing):
    row = next(r for r in table["rows"] if r["family_key"] == family and r["config_key"] == config)
    assert {e for e, c in row["cells"].items() if not c["pass"]} == failing
