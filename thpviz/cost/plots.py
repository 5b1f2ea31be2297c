"""Cost plots (matplotlib).  Each function runs the engine through
:mod:`thpviz.cost.experiments` -- or takes that function's result -- and
returns a :class:`matplotlib.figure.Figure` drawn without pyplot, so it works
headless (Agg) and never touches global state.  No number is typed in here:
every bar and point is a count the engine recorded."""

from __future__ import annotations

import io
import textwrap

from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MultipleLocator, NullLocator

from ..eras import ERAS
from . import experiments as X

#: one colour and marker per era, chronological (colour-blind safe palette)
ERA_STYLE = {
    "4.4": dict(color="#4d4d4d", marker="s"),
    "4.5": dict(color="#d55e00", marker="o"),
    "kirill-k1": dict(color="#0072b2", marker="^"),
    "andrea-v1": dict(color="#cc79a7", marker="v"),
    "4.6": dict(color="#009e73", marker="D"),
}
COPY_COLOR, REUSE_COLOR = "#d55e00", "#009e73"
#: sideways offset between eras in the decision plot, in log2 units
DODGE = 0.3

__all__ = [
    "reuse_decision_cost_figure", "false_cow_figure", "workload_figure",
    "measured_vs_modelled_figure", "png_bytes", "format_bytes", "CostFigure",
]


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if n == int(n) else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} TiB"  # pragma: no cover


def _count(n: float) -> str:
    n = int(n)
    return f"{n:,}".replace(",", "\u2009")


class CostFigure(Figure):
    """A matplotlib Figure that shows itself as PNG in a notebook without
    pyplot (IPython asks for ``_repr_png_``)."""

    def _repr_png_(self) -> bytes:
        return png_bytes(self)


def _compact(n: float) -> str:
    """12345 -> '12.3 k', 2121728 -> '2.12 M'; small numbers in full."""
    n = int(n)
    if n < 10000:
        return str(n)
    for unit, div in (("M", 10**6), ("k", 10**3)):
        if n >= div:
            return f"{n / div:.3g} {unit}"
    return str(n)  # pragma: no cover


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG (Agg), for widgets and tests."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _binary_step(top: float, most: int = 6) -> int:
    """A tick step of 2**k bytes giving at most ``most`` ticks up to ``top``."""
    step = 1
    while top / step > most:
        step *= 2
    return step


def _pow2_axis(ax, sizes) -> None:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(list(sizes)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _count(v)))


# ------------------------------------------------------------- figure 1
def reuse_decision_cost_figure(sizes=X.SIZES, eras=None, points=None) -> Figure:
    """What each era's reuse test reads, as the huge page grows.

    Left: the write fault on a write-protected PMD of a pinned THP
    (``do_huge_pmd_wp_page``); right: the write fault on one write-protected
    PTE of a PTE-mapped pinned THP (``do_wp_page`` -> ``reuse_swap_page``).
    y: distinct struct pages (one 64-byte cache line each) the test reads.
    ``points``: the result of :func:`experiments.reuse_decision_costs` for
    both levels, to draw without rerunning."""
    ids = X.era_ids(eras)
    if points is None:
        points = [p for lvl in ("pmd", "pte") for p in X.reuse_decision_costs(sizes, ids, lvl)]
    fig = CostFigure(figsize=(11, 6.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    titles = {
        "pmd": "write to a pinned THP mapped by a PMD\n(do_huge_pmd_wp_page)",
        "pte": "write to a pinned subpage of a PTE-mapped THP\n(do_wp_page \u2192 reuse_swap_page)",
    }
    any_direct = False
    for ax, lvl in zip(axes, ("pmd", "pte")):
        for k, e in enumerate(ids):
            pts = sorted((p for p in points if p.level == lvl and p.era == e), key=lambda p: p.nr)
            if not pts:
                continue
            st = ERA_STYLE.get(e, {})
            copies = sorted({p.decision for p in pts if p.decision != "reuse"})
            label = f"{e}: {X.DECISION_LABELS[lvl].get(e, '')}"
            if copies:
                label += f"  \u2192 then {'/'.join(copies)}"
            # eras often read the same amount: dodge each era sideways a
            # little (in log2 units) so that every marker stays visible
            dodge = 2 ** (DODGE * (k - (len(ids) - 1) / 2))
            xs = [p.nr * dodge for p in pts]
            line, = ax.plot(xs, [p.lines for p in pts], label=label, marker=st.get("marker", "o"),
                            markersize=7, color=st.get("color"), linewidth=1.8, zorder=2)
            line.thpviz_nr = [p.nr for p in pts]
            for x, p in zip(xs, pts):
                if p.method != "run":
                    any_direct = True
                    ax.plot([x], [p.lines], linestyle="none", marker=st.get("marker", "o"),
                            markersize=7, color=st.get("color"), markerfacecolor="white", zorder=4)
        ax.set_yscale("log")
        _pow2_axis(ax, sorted({p.nr for p in points}))
        ax.set_xlabel("subpages per huge page")
        ax.set_title(titles[lvl], fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
    axes[0].set_ylabel("struct pages read by the reuse test\n(64-byte cache lines)")
    axes[1].yaxis.set_tick_params(labelleft=True)
    note = ("Counts recorded by thpviz runs of a generated vfio scenario (pin, mprotect RO/RW, write); "
            "eras are drawn slightly apart sideways where they overlap.")
    if any_direct:
        note += ("\nHollow markers: the scenario's prefix was run once and each era's decision "
                 "function asked directly (a full run per era is too slow at that size).")
    fig.suptitle("Cost of the reuse decision per era", fontsize=12)
    fig.supxlabel(note, fontsize=7.5, x=0.01, ha="left")
    return fig


# ------------------------------------------------------------- figure 2
def false_cow_figure(nr: int = 512, eras=None, points=None) -> Figure:
    """The price of a false COW next to a reuse, for the vfio PMD write fault
    of a THP of ``nr`` subpages.

    Left: per era, cache lines the fault touches (struct pages + page
    contents), each bar labelled with the decision and the bytes copied.
    Right: Andrea's argument redone from the same counts -- the struct-page
    bytes the 4.6 reuse test reads against the cache traffic of the copy 4.5
    makes instead (read the old THP, write the new one)."""
    ids = X.era_ids(eras)
    if points is None:
        points = X.vfio_write_costs(nr, ids)
    fig = CostFigure(figsize=(11, 4.6), layout="constrained")
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    xs = range(len(ids))
    for i, e in enumerate(ids):
        p = points[e]
        struct, data = p.cost["struct_page_lines"], p.cost["data_lines"]
        total = struct + data
        color = REUSE_COLOR if p.decision == "reuse" else COPY_COLOR
        ax.bar(i, total, color=color, edgecolor="black", linewidth=0.5)
        txt = p.decision
        if p.cost["bytes_copied"]:
            txt += f"\ncopies {format_bytes(p.cost['bytes_copied'])}"
        txt += f"\n{_count(total)} line{'s' if total != 1 else ''}"
        ax.annotate(txt, (i, total), textcoords="offset points", xytext=(0, 3),
                    ha="center", va="bottom", fontsize=8)
    ax.set_yscale("log")
    top = max(points[e].cost["struct_page_lines"] + points[e].cost["data_lines"] for e in ids)
    ax.set_ylim(0.5, top * 60)
    ax.set_xticks(list(xs), ids)
    ax.set_ylabel("cache lines touched by the write fault\n(struct pages + page contents)")
    ax.set_title(f"one write to a pinned, write-protected THP ({nr} subpages)", fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)

    if "4.5" in points and "4.6" in points:
        scan, cow = points["4.6"], points["4.5"]
        scan_b = scan.cost["decision_lines"] * X.STRUCT_PAGE_BYTES
        cow_b = cow.cost["data_lines"] * X.CACHE_LINE
        vals = [scan_b, cow_b]
        labels = [
            f"4.6 decides ({scan.decision}):\n{_count(scan.cost['decision_lines'])} struct pages\n\u00d7 64 B",
            f"4.5 copies ({cow.decision}):\nread {format_bytes(cow.cost['bytes_copied'])}\n+ write {format_bytes(cow.cost['bytes_copied'])}",
        ]
        ax2.bar([0, 1], vals, color=[REUSE_COLOR, COPY_COLOR], edgecolor="black", linewidth=0.5)
        for i, v in enumerate(vals):
            ax2.annotate(format_bytes(v), (i, v), textcoords="offset points", xytext=(0, 3),
                         ha="center", va="bottom", fontsize=9, fontweight="bold")
        ax2.set_xticks([0, 1], labels, fontsize=8)
        ax2.set_yscale("log", base=2)
        lo, hi = min(vals) / 8, max(vals) * 8
        ax2.set_ylim(lo, hi)
        ticks, t = [], 1
        while t <= hi:
            if t >= lo:
                ticks.append(t)
            t *= 8
        ax2.yaxis.set_major_locator(FixedLocator(ticks))
        ax2.yaxis.set_minor_locator(NullLocator())
        ax2.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_bytes(v)))
        ratio = cow_b / scan_b if scan_b else float("inf")
        ax2.set_title(f"Andrea's argument, from these counts:\nthe copy moves {ratio:.0f}\u00d7 more bytes",
                      fontsize=10)
        ax2.set_ylabel("bytes through the cache")
        ax2.grid(True, axis="y", alpha=0.3)
    else:
        ax2.set_axis_off()
        ax2.text(0.5, 0.5, "select eras 4.5 and 4.6\nfor Andrea's comparison", ha="center", va="center")
    fig.suptitle("The price of a false COW", fontsize=12)
    return fig


# ------------------------------------------------------------- figure 3
def workload_figure(nr: int = 512, thps: int = 4, pins: int = 2, procs: int = 1, eras=None,
                    totals=None, half_mprotect: bool = True) -> Figure:
    """A guest with ``thps`` THPs, ``pins`` of them pinned by a device, going
    through ``procs`` fork+exit cycles and an mprotect cycle
    (:func:`experiments.workload_text`): per era, the bytes its faults
    copied, the pins it lost, and the struct pages its reuse tests read."""
    ids = X.era_ids(eras)
    if totals is None:
        totals = X.workload(nr, thps, pins, procs, ids, half_mprotect)
    fig = CostFigure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = [
        ("bytes_copied", "bytes copied by write faults", format_bytes),
        ("pins_lost", "pins lost at the end", lambda v: str(int(v))),
        ("decision_lines", "struct pages read by reuse tests", _compact),
    ]
    for ax, (key, title, fmt) in zip(axes, panels):
        vals = [totals[e][key] for e in ids]
        colors = [ERA_STYLE.get(e, {}).get("color", "grey") for e in ids]
        ax.bar(range(len(ids)), vals, color=colors, edgecolor="black", linewidth=0.5)
        for i, v in enumerate(vals):
            ax.annotate(fmt(v), (i, v), textcoords="offset points", xytext=(0, 2),
                        ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(ids)), ids, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, max(max(vals), 1) * 1.18)
        ax.grid(True, axis="y", alpha=0.3)
        if key == "bytes_copied":
            ax.yaxis.set_major_locator(MultipleLocator(_binary_step(max(vals))))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_bytes(v)))
        if key == "decision_lines":
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _count(v)))
        if key == "pins_lost":
            ax.set_ylim(0, max(max(vals), pins, 1) + 0.6)
            ax.yaxis.get_major_locator().set_params(integer=True)
    where = f"half of THP 0" if half_mprotect else "everything"
    fig.suptitle(
        f"A guest: {thps} THPs of {nr} subpages, {pins} pinned, {procs} fork+exit cycle(s), "
        f"mprotect RO/RW of {where}, writes after each", fontsize=11)
    return fig


def era_titles(eras=None) -> dict[str, str]:
    """Era id -> title, for legends and tables."""
    return {e: ERAS[e].title for e in X.era_ids(eras)}


# ------------------------------------------------------------- figure 4
def measured_vs_modelled_figure(record: dict | None = None) -> Figure:
    """Our own measurement (``data/measured``, kind ``measured``) beside the
    model: the user-space analogue of Andrea's comparison (scan N 64-byte
    records against copy N 4 KiB pages) timed on the machine the record
    names, and the ratio of the two next to the ratio of cache lines the
    engine counts for the 4.5 copy and the 4.6 scan at the same sizes."""
    from .reported import measurements

    if record is None:
        recs = measurements()
        if not recs:
            raise LookupError("no measurements in data/measured (run benchmarks/bench_cost.py --measure)")
        record = recs[-1]
    res = record["results"]
    fig = CostFigure(figsize=(11, 4.6), layout="constrained")
    ax, ax2 = fig.subplots(1, 2)
    styles = {("scan", "cold"): ("#009e73", "-"), ("scan", "warm"): ("#009e73", ":"),
              ("copy", "cold"): ("#d55e00", "-"), ("copy", "warm"): ("#d55e00", ":")}
    series = {}
    for (op, state), (color, ls) in styles.items():
        pts = sorted((r["n"], r["median_ns"]) for r in res if r["op"] == op and r["state"] == state)
        if not pts:
            continue
        series[(op, state)] = dict(pts)
        label = f"{'read one counter in N records' if op == 'scan' else 'copy N x 4 KiB'} ({state})"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=color, linestyle=ls, marker="o", label=label)
    ax.set_yscale("log")
    _pow2_axis(ax, sorted({r["n"] for r in res}))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _duration(v)))
    ax.set_xlabel("N (subpages)")
    ax.set_ylabel("median time (measured)")
    ax.set_title("measured: the user-space analogue", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)

    sizes = sorted(set(series.get(("copy", "cold"), {})) & set(series.get(("scan", "cold"), {})))
    for state, ls in (("cold", "-"), ("warm", ":")):
        s, c = series.get(("scan", state), {}), series.get(("copy", state), {})
        ns = [n for n in sizes if n in s and n in c]
        if not ns:
            continue
        ax2.plot(ns, [c[n] / s[n] for n in ns], color="black", linestyle=ls, marker="o",
                 label=f"measured time ratio, {state}")
    model = X.reuse_decision_costs(tuple(sizes), ("4.5", "4.6"), "pmd")
    by = {(p.era, p.nr): p for p in model}
    ratio = [by[("4.5", n)].cost["data_lines"] / by[("4.6", n)].cost["decision_lines"] for n in sizes]
    line, = ax2.plot(sizes, ratio, color="#0072b2", linewidth=2.5, marker="D",
                     label="modelled: 4.5 copy lines / 4.6 scan lines")
    line.thpviz_nr = list(sizes)
    ax2.set_yscale("log")
    ax2.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    _pow2_axis(ax2, sizes)
    ax2.set_xlabel("N (subpages)")
    ax2.set_ylabel("copy / scan")
    ax2.set_title("how much dearer the copy is", fontsize=10)
    ax2.grid(True, alpha=0.3)
    ax2.legend(fontsize=8)
    m = record.get("machine", {})
    fig.suptitle("Measured beside modelled: scan 64-byte records vs copy 4 KiB pages", fontsize=12)
    note = (f"Measured {record.get('date', '')} on {m.get('cpu', '?')}, {m.get('logical_cpus', '?')} CPUs, "
            f"{m.get('os', '?')} ({m.get('note', '')}); {record.get('method', '')}. "
            "A user-space analogue timed on that machine, not a kernel measurement; "
            "the model's ratio is of cache lines, not time.")
    fig.supxlabel("\n".join(textwrap.wrap(note, 190)), fontsize=7.5, x=0.01, ha="left")
    return fig


def _duration(ns: float) -> str:
    for unit, div in (("s", 1e9), ("ms", 1e6), ("\u00b5s", 1e3)):
        if ns >= div:
            return f"{ns / div:g} {unit}"
    return f"{ns:g} ns"
