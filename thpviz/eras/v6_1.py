"""Era ``6.1``: 5.19 plus the PTE mprotect write-upgrade -- judged live.

Commits:

* 64fe24a3e05e "mm/mprotect: try avoiding write faults for exclusive
  anonymous pages when changing protection" (v6.0): when mprotect makes a
  private VMA writable, ``change_pte_range`` maps a PTE writable at once if
  ``can_change_pte_writable`` allows it.  In 6.0/6.1 that needs an exclusive
  anonymous page *and* a dirty PTE -- and 6.1's ``__split_huge_pmd_locked``
  leaves the PTEs of a split PMD clean (624a2c94f5b7 partly reverted the
  dirty carry-over), so they still take a write fault.  PMDs are not
  upgraded before 6.2.
* 2555283eb40d "mm/rmap: Fix anon_vma->degree ambiguity leading to
  double-reuse" (v6.0): ``anon_vma_clone`` reuses an anon_vma only if no VMA
  uses it as its own and it has at most one child.

Everything else is 5.19's: a PTE-mapped THP subpage that is not exclusive is
reused only as the folio's last mapping (``folio_ref_count() == 1``), so in
practice it is copied.  Read in Debian's 6.1.192 tree (``do_wp_page``,
``do_huge_pmd_wp_page``, ``can_change_pte_writable``, ``gup_must_unshare``)
and checked against that kernel booted under QEMU
(docs/live-lab.md; the observations are in data/scenarios/lab/).
"""

from __future__ import annotations

from .v5_19 import Era519


class Era61(Era519):
    id = "6.1"
    title = ("5.19 plus the PTE mprotect write-upgrade (exclusive page and dirty PTE; PTEs of a split PMD stay "
             "clean); PTE-mapped large folios reused only when exclusive or last")
    kernel = "v6.1 (Debian 6.1.192, long-term)"
    commits: tuple[tuple[str, str], ...] = (
        ("64fe24a3e05e", "mm/mprotect: try avoiding write faults for exclusive anonymous pages when changing protection"),
        ("2555283eb40d", "mm/rmap: Fix anon_vma->degree ambiguity leading to double-reuse"),
    )
    counters = Era519.counters | {"entire_mapcount"}
    mprotect_upgrade_pte = "dirty"
    anon_vma_reuse = "active"
