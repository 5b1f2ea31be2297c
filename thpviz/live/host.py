"""Run plans on this machine's kernel: one executor process tree per
scenario, in its own session, killed as a whole on a timeout, so nothing is
left mapped, pinned or running."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from .lab import finish, prepare


def run_plan(plan, exe: str, timeout: float = 60) -> tuple[str, str | None]:
    """(executor output, problem or None)."""
    p = subprocess.Popen([exe, "run"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    problem = None
    try:
        out, err = p.communicate(plan.text, timeout=timeout)
        if p.returncode != 0:
            problem = f"executor exit status {p.returncode}: {err.strip()[-200:]}"
    except subprocess.TimeoutExpired:
        problem = f"timed out after {timeout:.0f} s"
        out = ""
    finally:
        # the executor's session holds every worker it forked: end them all
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if p.poll() is None:
            p.kill()
        try:
            more, _ = p.communicate(timeout=10)
            if problem and more:
                out = (out or "") + more
        except (subprocess.TimeoutExpired, ValueError):
            pass
    return out or "", problem


def run_files(paths, caps, era: str | None = None, timeout: float = 60, progress=None) -> list:
    """Judge every file on this kernel; ``progress(path)`` is called before each."""
    results = []
    for path in paths:
        if progress:
            progress(path)
        t0 = time.perf_counter()
        scn, plan, res = prepare(path, caps, era)
        if plan is not None:
            out, problem = run_plan(plan, caps.executor, timeout)
            finish(res, scn, plan, out, caps, problem)
        res.seconds = time.perf_counter() - t0
        results.append(res)
    return results
