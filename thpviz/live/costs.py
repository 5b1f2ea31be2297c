"""Fault costs measured on a real kernel, beside the cost model.

:func:`measure` runs the executor's ``costs`` mode: single-byte stores timed
with CLOCK_MONOTONIC around each store (the ``store_no_fault`` row is that
overhead), after a warm-up that faults in and frees 256 MiB of THPs.  Rows:

* ``small_first_touch``: a 4 KiB first touch (zero-filled page);
* ``small_reuse``: a 4 KiB write after fork once the child has exited (reuse);
* ``small_cow``: the same with the child alive (a 4 KiB copy);
* ``thp_first_touch``: the first store to a MADV_HUGEPAGE extent (a THP);
* ``thp_reuse``: the first write to a PMD-mapped THP after fork, child exited;
* ``thp_cow``: the same with the child alive: on modern kernels the PMD is
  split and one 4 KiB page copied (COW by split);
* ``fork_unpinned`` / ``fork_pinned``: fork() with N THPs mapped, without and
  with an io_uring fixed buffer over them (5.9+: the child gets copies).

:func:`modelled` runs the same operations through the engine under an era and
takes each one's modelled cost record (``cache_lines``, ``bytes_copied``):
counts, not times.  :func:`plot_measured` draws both side by side and says on
the figure where the measurement was made.
"""

from __future__ import annotations

import json
import re
import subprocess

ROWS = [
    ("small_reuse", "4 KiB write, reuse"),
    ("small_cow", "4 KiB write, copy"),
    ("thp_reuse", "THP write, reuse"),
    ("thp_cow", "THP write, copy (split + 4 KiB)"),
    ("fork_unpinned", "fork, per unpinned THP"),
    ("fork_pinned", "fork, per pinned THP"),
]

#: the same operations as scenarios; the last write fault (or the fork step)
#: is the one priced
SCENARIOS = {
    "small_reuse": ("P: mmap A nohuge\nP: write A[0]\nP: fork C\nC: exit\nP: write A[0]\n", "write"),
    "small_cow": ("P: mmap A nohuge\nP: write A[0]\nP: fork C\nP: write A[0]\n", "write"),
    "thp_reuse": ("P: mmap A\nP: write A\nP: fork C\nC: exit\nP: write A[0]\n", "write"),
    "thp_cow": ("P: mmap A\nP: write A\nP: fork C\nP: write A[0]\n", "write"),
    "fork_unpinned": ("P: mmap A\nP: write A\nP: fork C\n", "fork"),
    "fork_pinned": ("P: mmap A\nP: write A\nP: pin A rw as dev\nP: fork C\n", "fork"),
}


def measure(caps=None, repeats: int = 5, thps: int = 32, timeout: float = 600) -> dict | None:
    """Run the timings on this machine; None when the lab cannot run here."""
    from .probe import probe

    caps = caps or probe()
    if caps.require("thp") or not caps.executor:
        return None
    r = subprocess.run([caps.executor, "costs", str(repeats), str(thps)], capture_output=True, text=True,
                       timeout=timeout, start_new_session=True)
    for line in r.stdout.splitlines():
        if line.startswith('{"t":"costs"'):
            return json.loads(line)
    return None


def modelled(era_id: str) -> dict:
    """Per row: the modelled cost record of the priced fault (or of the fork
    step's faults and statement work) under ``era_id``."""
    from ..cost.accounting import last_write_fault
    from ..eras import get
    from ..scenario import parse_text, run

    era = get(era_id)
    out = {}
    for key, (text, what) in SCENARIOS.items():
        scn = parse_text("thp: 512\n" + text, f"<{key}>")
        r = run(scn, era, keep_snapshots=True)
        if what == "write":
            f = last_write_fault(r)
            assert f is not None, f"{key}: a write row's scenario ends with a write fault"
            out[key] = {"decision": f.decision, "cache_lines": f.cache_lines,
                        "bytes_copied": int(f.cost["bytes_copied"])}
        else:
            # fork is not a fault: price the model's fork-time copies ("fork
            # copied N pages") with the cost model's rule for a copy (each
            # 64-byte line read and written, plus the new struct page)
            i = len(r.steps) - 1
            ev = " ".join(e.message for e in r.steps[i].events)
            m = re.search(r"fork copied (\d+) page", ev)
            n = int(m.group(1)) if m else 0
            out[key] = {"decision": f"fork, {n} pages copied", "cache_lines": n * (2 * 4096 // 64 + 1),
                        "bytes_copied": n * 4096, "events": ev}
    return out


def plot_measured(measured: dict, era_id: str | None = None, title: str | None = None):
    """A figure: measured median times (left, log scale) and the model's
    cache lines for the same operations under ``era_id`` (right).
    ``measured`` is a costs record (``data/measured/live-*.json``'s
    ``costs``)."""
    from matplotlib.figure import Figure

    from ..cost.plots import CostFigure
    from .judge import kernel_to_era

    era_id = era_id or kernel_to_era(measured.get("release", ""))[0]
    model = modelled(era_id)
    rows = [(k, label) for k, label in ROWS if k in measured]
    fig = CostFigure(figsize=(9.5, 0.55 * len(rows) + 1.8))
    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    ys = list(range(len(rows)))
    # a fork is timed with N THPs mapped: shown per THP, as the model prices one
    per = {k: (measured.get("thps") or 1) if k.startswith("fork") else 1 for k, _ in rows}
    med = [measured[k]["median_ns"] / 1000 / per[k] for k, _ in rows]
    lo = [measured[k]["p10_ns"] / 1000 / per[k] for k, _ in rows]
    hi = [measured[k]["p90_ns"] / 1000 / per[k] for k, _ in rows]
    ax1.barh(ys, med, color="#0072b2", xerr=[[m - a for m, a in zip(med, lo)], [b - m for m, b in zip(med, hi)]],
             capsize=3)
    ax1.set_xscale("log")
    ax1.set_yticks(ys, [label for _, label in rows])
    ax1.invert_yaxis()
    ax1.set_xlabel("measured: median µs (p10–p90)")
    for y, m in zip(ys, med):
        ax1.text(m, y, f" {m:,.1f}", va="center", fontsize=8)
    cl = [max(model[k]["cache_lines"], 1) for k, _ in rows]
    ax2.barh(ys, cl, color="#009e73")
    ax2.set_xscale("log")
    ax2.set_xlabel(f"modelled: cache lines touched (era {era_id})")
    for y, (k, _) in zip(ys, rows):
        ax2.text(cl[y], y, f" {model[k]['cache_lines']:,} ({model[k]['decision']})", va="center", fontsize=8)
    where = measured.get("where") or f"Linux {measured.get('release', '?')}"
    fig.suptitle(title or f"Fault costs measured on {where} beside the model ({era_id})", fontsize=10)
    fig.text(0.01, 0.01, f"measured: {measured.get('repeats', '?')} runs x {measured.get('small_pages', '?')} "
             f"small pages / {measured.get('thps', '?')} THPs; timings include ~{measured['store_no_fault']['median_ns']} ns "
             "of timer overhead" if "store_no_fault" in measured else "", fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 0.95))
    return fig
