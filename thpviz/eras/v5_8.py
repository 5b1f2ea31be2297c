"""Era ``5.8``: GUP breaks COW for reads; a THP write fault never copies 2 MB.

Commits (v5.8; release placement in modern-eras.md §0):

* 17839856fd58 "gup: document and work around 'COW can break either way'
  issue" (Linus Torvalds, the CVE-2020-29374 fix): GUP with FOLL_GET or
  FOLL_PIN on a COW mapping looks pages up as if for writing, so a
  write-protected entry takes a write fault in the GUP caller first -- its
  decision counts as a write fault -- and the reference lands on the
  caller's own page.  (The 4.x stable backports did this for FOLL_GET only.)
* 3917c80280c9 "thp: change CoW semantics for anon-THP" (Kirill Shutemov):
  ``do_huge_pmd_wp_page`` reuses iff ``reuse_swap_page(page, NULL)`` -- still
  the max-based ``page_trans_huge_mapcount() == 1``, no anon_vma move --
  otherwise it splits this process's PMD and returns VM_FAULT_FALLBACK, so the
  fault is retried at PTE level and one 4 KiB subpage is copied.  The huge
  zero page is split the same way.
* FOLL_PIN (5.7: 3faa52c03f44, 47e29d32afba): vfio's long-term pins are
  FOLL_PIN -- +1 on a large folio's refcount and ``_pincount``,
  +GUP_PIN_COUNTING_BIAS (1024) on an order-0 page; vmsplice stays FOLL_GET.

The PTE path is 4.6's (6d0a07edd17c): max-based reuse, anon_vma moved only
when ``total_mapcount`` is 1.  fork still shares everything.
"""

from __future__ import annotations

from . import counters as C
from .base import PmdDecision, pmd_fault_cost
from .v4_6 import Era46


class Era58(Era46):
    id = "5.8"
    title = "GUP breaks COW for reads; THP COW splits the PMD and copies one base page; PTE reuse still mapcount-based"
    kernel = "v5.8"
    commits: tuple[tuple[str, str], ...] = (
        ("17839856fd58", "gup: document and work around 'COW can break either way' issue"),
        ("3917c80280c9", "thp: change CoW semantics for anon-THP"),
    )
    counters = Era46.counters | {"pincount"}
    foll_pin = True
    gup_breaks_cow = True
    pmd_fallback = True

    def do_huge_pmd_wp_page(self, world, mm, h, unshare=False):
        mem = world.mem
        n = int(mem.nr[h])
        reuse = C.page_trans_huge_mapcount(mem, h)[0] == 1
        return PmdDecision(reuse=reuse, fallback=not reuse,
                           cost=pmd_fault_cost(mem, h, True, n + 2, None))
