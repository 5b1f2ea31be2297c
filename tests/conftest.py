import contextlib
import io
import os
import re
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "data" / "scenarios"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Tests that need a browser, dot or a book build skip locally with a reason,
# but must not skip in CI (.ci/run exports CI=1).
IN_CI = bool(os.environ.get("CI"))

# Kirill's counterexample (thread.md 2(f)) shrunk to 8 subpages, the one copy
# every test uses:
# https://lore.kernel.org/all/20160502104119.GA23305@node.shutemov.name/
KIRILL = """\
title: split, fork, each side unmaps one half, the child writes the tail
thp: 8
P: mmap A
P: write A                 # one THP, PMD-mapped
P: split_pmd A
P: fork C
C: munmap A[0:4]
P: munmap A[4:8]
C: write A[6]              # do_wp_page on a tail page
"""

#: a scenario error as the parser and the CLI print it
ERROR_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): \S")


class Hang(Exception):
    """A block ran past its time limit (see :func:`time_limit`)."""


@contextlib.contextmanager
def time_limit(seconds: float, what: str = "the block"):
    """Raise Hang if the block runs longer than ``seconds``.  A hang
    detector with a generous bound, not a performance assertion (those live
    in benchmarks/).  Works in the main thread on POSIX; elsewhere it only
    runs the block."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise Hang(f"{what} did not finish within {seconds:g} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_main(argv, env=None):
    """``thpviz.cli.main(argv)`` in this process: (exit status, stdout,
    stderr).  ``env`` entries are set for the call (None removes one)."""
    from thpviz.cli import main

    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    err = io.StringIO()
    saved = {k: os.environ.get(k) for k in (env or {})}
    try:
        for k, v in (env or {}).items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in argv])
            out.flush()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return code, out.buffer.getvalue().decode("utf-8", errors="replace"), err.getvalue()
