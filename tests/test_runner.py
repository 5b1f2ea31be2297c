"""The runner: statements the parser accepted but the run refuses."""

from thpviz.eras import ERAS
from thpviz.scenario import parse_text, run


def test_statement_on_a_region_whose_mremap_was_refused_is_refused_too():
    text = ("thp: 8\nP: mmap A\nP: munmap A[2:4]\nP: mremap A B\nP: write B\n"
            "assert page_count(B) == 1\n")
    r = run(parse_text(text), ERAS["4.6"])
    assert "not inside one VMA" in r.steps[2].error
    assert "no region B" in r.steps[3].error and r.steps[3].faults == []
    assert r.steps[4].assertion[0] is False and "nothing is mapped" in r.steps[4].assertion[2]
