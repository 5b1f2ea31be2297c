import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "data" / "scenarios"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Tests that need a browser, dot or a book build skip locally with a reason,
# but must not skip in CI.
IN_CI = bool(os.environ.get("CI"))

# Kirill's counterexample (thread.md 2(f)) shrunk to 8 subpages:
# https://lore.kernel.org/all/20160502104119.GA23305@node.shutemov.name/
KIRILL = """\
title: split, fork, each side unmaps one half, the child writes the tail
thp: 8
P: mmap A
P: write A
P: split_pmd A
P: fork C
C: munmap A[0:4]
P: munmap A[4:8]
C: write A[6]
"""
