"""Matplotlib plots of snapshots (Agg canvas, no pyplot state).

:func:`counter_strip` draws, for one THP and one or more snapshots, the
logical ``_mapcount`` of every subpage (with the PageDoubleMap bias as its
own band), the GUP pins and vmsplice references on each subpage, which
process maps which subpage, by PMD or by PTE, and -- in the eras that have
it (5.19+) -- which subpages are PageAnonExclusive.  The values are the ones
:func:`thpviz.render.scene.build_scene` reads from the snapshot.
"""

from __future__ import annotations

from .dot import PROC_COLORS, PURPLE, VERMILLION
from .scene import build_scene


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _first_thp(scene):
    for p in scene.pages:
        if p.kind == "thp" and not p.freed:
            return p.id
    return None


def counter_strip(snapshots, page: str | None = None, labels=None, width: float = 9.0):
    """A Figure with one panel per snapshot (a World, or a list of them).

    ``page``: the THP to draw (its name, e.g. ``"H1"``; default: the first
    live THP of the last snapshot).  ``labels``: a title per panel."""
    from matplotlib.patches import Rectangle

    if not isinstance(snapshots, (list, tuple)):
        snapshots = [snapshots]
    scenes = [build_scene(w) for w in snapshots]
    if page is None:
        for sc in reversed(scenes):
            page = _first_thp(sc)
            if page:
                break
    n_procs = max((len(sc.procs) for sc in scenes), default=0)
    panel_h = 1.6 + 0.28 * n_procs
    fig = _figure(width, panel_h * len(scenes) + 0.3)
    axes = fig.subplots(len(scenes), 1, squeeze=False)[:, 0]
    for i, (sc, ax) in enumerate(zip(scenes, axes)):
        label = labels[i] if labels and i < len(labels) else None
        _panel(ax, sc, page, label, Rectangle)
    fig.supxlabel("subpage.  Bars: logical _mapcount = PTEs (blue) + PageDoubleMap bias (hatched yellow); "
                  "lanes: who maps it, PMD solid, PTE dotted, dashed vermillion = unreachable by rmap",
                  fontsize=7.5)
    return fig


def _panel(ax, scene, page_id, label, Rectangle) -> None:
    nr = scene.nr
    ax.set_xlim(0, nr)
    pg = None
    for p in scene.pages:
        if p.id == page_id and p.kind == "thp":
            pg = p
    title = (label + ": " if label else "") + (page_id or "no THP")
    if pg is None:
        ax.set_title(f"{title} (not allocated here)", fontsize=9, loc="left")
        ax.set_yticks([])
        return
    top = max([c.mapcount for c in pg.cells] + [1])
    # mapcount per subpage run; the PageDoubleMap +1 as a hatched band
    for c in pg.cells:
        pte = c.mapcount - (1 if pg.double_map else 0)
        if pte > 0:
            ax.add_patch(Rectangle((c.lo, 0), c.hi - c.lo, pte, facecolor="#8FBFE6", edgecolor="#0072B2", lw=0.6))
        if pg.double_map:
            ax.add_patch(Rectangle((c.lo, pte), c.hi - c.lo, 1, facecolor="#F0E442", edgecolor="#7a6f00",
                                   hatch="//", lw=0.6))
        if c.pins:
            ax.plot([(c.lo + c.hi) / 2], [c.mapcount + 0.25], marker="v", color=PURPLE, ms=7)
            ax.annotate(f"pin {c.pins}", ((c.lo + c.hi) / 2, c.mapcount + 0.35), ha="center", fontsize=7,
                        color="#7A2E5C")
        refs = c.values.get("refs", 0)
        if refs:
            ax.plot([(c.lo + c.hi) / 2], [c.mapcount + 0.25], marker="^", color="#555555", ms=6, gid="refs")
            ax.annotate(f"ref {refs}", ((c.lo + c.hi) / 2, c.mapcount + 0.55), ha="center", fontsize=7,
                        color="#333333")
    # which process maps which subpage: one lane per process under the axis
    lane = -0.6
    names = []
    if any(f.name == "anon_exclusive" for f in scene.fields):
        for c in pg.cells:
            if c.values.get("anon_exclusive"):
                patch = Rectangle((c.lo, lane - 0.18), c.hi - c.lo, 0.36, facecolor="#009E73", edgecolor="#00694D",
                                  lw=0.6)
                patch.set_gid("anon_exclusive")
                ax.add_patch(patch)
        names.append((lane, "PageAnonExclusive"))
        lane -= 0.5
    for pr in scene.procs:
        col = PROC_COLORS[pr.color % len(PROC_COLORS)]
        for v in pr.vmas:
            for r in v.rows:
                if r.page != pg.id:
                    continue
                pmd = r.level == "pmd"
                ax.add_patch(Rectangle(
                    (r.page_lo, lane - 0.18), r.page_hi - r.page_lo, 0.36,
                    facecolor=col if pmd else "white", edgecolor=VERMILLION if r.unreachable else col,
                    hatch=None if pmd else "....", lw=1.6 if r.unreachable else 0.8,
                    linestyle="--" if r.unreachable else "-"))
        names.append((lane, pr.name))
        lane -= 0.5
    ax.set_ylim(lane + 0.1, top + 1.0)
    ticks = [y for y, _ in names] + list(range(0, top + 1))
    ax.set_yticks(ticks)
    ax.set_yticklabels([n for _, n in names] + [str(t) for t in range(0, top + 1)], fontsize=8)
    ax.axhline(0, color="#555", lw=0.6)
    counters = ", ".join(f"{k} {v}" for k, v in pg.head_counters.items())
    dm = ", PageDoubleMap" if pg.double_map else ""
    ax.set_title(f"{title}\n{counters}{dm}", fontsize=9, loc="left")
    ax.tick_params(axis="x", labelsize=8)
