"""Scenarios that stress a diagram: the scales the renderer must stay
bounded at (``benchmarks/bench_render.py`` times them, ``tests/test_render_scale.py``
checks the size budget on them).

Each function returns scenario text in the ``.thp`` language; none of them
is a litmus test (no ``expect`` lines), they only build big states.

* :func:`fork_chain` -- P forks C1, C1 forks C2, ...: every child's VMA is
  linked to all its ancestors' anon_vmas (``anon_vma_fork``), n(n+1)/2
  anon_vma_chain links in all.
* :func:`fork_tree` -- P forks C1 ... Cn-1 directly.
* :func:`big_thp` -- one THP of ``subpages`` subpages, forked, PMD split
  in the parent, halves unmapped, a pin and a few writes.
* :func:`extents` -- ``n`` THP-sized extents in a parent and a child, one
  of them copied on write.
* :func:`split_two` -- a split 512-subpage THP mapped by two processes
  (Kirill's layout at full size, the legibility case).
* :func:`comb` -- every other subpage of a THP unmapped in a child: as
  many different ``_mapcount`` runs as there are subpages / 2.
"""

from __future__ import annotations


def _names(n: int) -> list[str]:
    """P, C1, C2, ... (n processes)."""
    return ["P"] + [f"C{i}" for i in range(1, n)]


def fork_chain(n: int, thp: int = 512, write: bool = True) -> str:
    """``n`` processes, each forked by the one before; the last one writes
    a subpage (a COW fault) when ``write``."""
    names = _names(n)
    lines = [f"title: fork chain of {n} processes", f"thp: {thp}", "P: mmap A", "P: write A"]
    for a, b in zip(names, names[1:]):
        lines.append(f"{a}: fork {b}")
    if write:
        lines.append(f"{names[-1]}: write A[5]")
    return "\n".join(lines) + "\n"


def fork_tree(n: int, thp: int = 512, write: bool = True) -> str:
    """``n`` processes: P and n-1 children of P; the last child writes a
    subpage when ``write``."""
    names = _names(n)
    lines = [f"title: fork tree of {n} processes", f"thp: {thp}", "P: mmap A", "P: write A"]
    for b in names[1:]:
        lines.append(f"P: fork {b}")
    if write:
        lines.append(f"{names[-1]}: write A[5]")
    return "\n".join(lines) + "\n"


def big_thp(subpages: int) -> str:
    """One THP of ``subpages`` subpages in P and a child C, the PMD split in
    P, each side unmapping a different part, a pin and two writes."""
    s = subpages
    q = max(1, s // 4)
    lines = [
        f"title: one THP of {s} subpages", f"thp: {s}", "P: mmap A", "P: write A",
        "P: pin A[1] rw as dma", "P: fork C", "P: split_pmd A",
        f"C: munmap A[0:{q}]", f"P: munmap A[{3 * q}:{s}]" if 3 * q < s else "P: read A[0]",
        f"C: write A[{min(s - 1, 2 * q)}]", "P: write A[0]",
    ]
    return "\n".join(lines) + "\n"


def extents(n: int, thp: int = 512) -> str:
    """P maps ``n`` extents, writes them all, forks C; C writes one subpage
    of the last extent and P splits the PMD of the first."""
    last = (n - 1) * thp
    lines = [
        f"title: {n} extents", f"thp: {thp}", f"P: mmap A {n}", "P: write A", "P: fork C",
        f"C: write A[{last + 3}]", f"P: split_pmd A[0:{thp}]",
    ]
    return "\n".join(lines) + "\n"


def split_two(thp: int = 512) -> str:
    """A THP split into PTEs and mapped by two processes: P splits the PMD,
    forks C, each unmaps one half, C writes in its half (Kirill's layout,
    https://lore.kernel.org/all/20160502104119.GA23305@node.shutemov.name/,
    at full size)."""
    h = thp // 2
    lines = [
        "title: a split THP in two processes", f"thp: {thp}", "P: mmap A", "P: write A",
        "P: split_pmd A", "P: fork C", f"C: munmap A[0:{h}]", f"P: munmap A[{h}:{thp}]",
        f"C: write A[{h + h // 2}]",
    ]
    return "\n".join(lines) + "\n"


def comb(thp: int = 512, step: int = 2) -> str:
    """P maps and writes a THP, forks C, splits its PMD; C unmaps every
    ``step``-th subpage, one statement each: ``thp // step`` runs that
    differ in ``_mapcount``."""
    lines = [f"title: a comb of {thp // step} unmapped subpages", f"thp: {thp}", "P: mmap A", "P: write A",
             "P: fork C", "C: split_pmd A"]
    lines += [f"C: munmap A[{i}]" for i in range(0, thp, step)]
    return "\n".join(lines) + "\n"
