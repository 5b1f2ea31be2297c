"""The Sandbox's export round-trips every title it accepts, and ``add()``
rejects (never crashes on) any line: a comment, a header or expect line, a
counter its era lacks, stray characters.  Hypothesis over titles and lines;
what the Sandbox keeps always parses and runs again."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thpviz.scenario import parse_text, run

Sandbox = pytest.importorskip("thpviz.widgets").Sandbox

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@SETTINGS
@given(title=st.text(max_size=40))
def test_the_export_reads_back_every_title_the_sandbox_accepts(title):
    try:
        sb = Sandbox("4.6", thp=8, title=title)
    except ValueError:
        assert any(c in title for c in "#\n\r") or any(ord(c) < 32 and c != "\t" or 0x7f <= ord(c) <= 0x9f or
                                                       c in "\u2028\u2029\ufeff" or 0x202a <= ord(c) <= 0x202e or
                                                       0x2066 <= ord(c) <= 0x2069 or c in "\u200e\u200f"
                                                       for c in title)
        return
    assert sb.add("P: mmap A") and sb.add("P: write A")
    again = parse_text(sb.text, "<exported>")
    assert again.title == sb.title == title.strip(" \t")
    assert not run(again, sb.era).mismatches()


LINES = st.one_of(
    st.sampled_from([
        "# only a comment", "", "   ", "title: another", "thp: 4", "expect 4.6: reuse", "P: write A\nP: exit",
        "assert page_trans_huge_mapcount(A) == 1", "assert 4.5: double_map(A) == 0", "assert pincount(A) == 0",
        "P: write A[9]", "P: frob A", "dma_write nope", "P: pin A[1] rw as d", "P: mremap A[0:4] B",
        "P: write B", "P: exit", "P: write\x0bA", "P: write A # \u2028", "unpin d", "deferred_split",
    ]),
    st.text(max_size=30),
)


@SETTINGS
@given(lines=st.lists(LINES, max_size=6))
def test_add_never_crashes_and_keeps_only_what_runs(lines):
    sb = Sandbox("4.5", thp=8)
    sb.add("P: mmap A")
    for line in lines:
        kept = sb.add(line)
        assert isinstance(kept, bool)
        if not kept:
            assert sb.message.value  # it says why
    scn = parse_text(sb.text, "<exported>")
    r = run(scn, sb.era)
    assert not any(s.error for s in r.steps)
    assert not r.mismatches()
