"""The thread's timeline: every message of the 2016 thread on a time axis
(a matplotlib Figure, Agg canvas, no pyplot state).

It is drawn from the message index ``data/thread.yaml`` (messages with
``id``, ``date``, ``author``, ``replies_to``, ``status``; commits with
``id``, ``date``, ``role``), which :func:`load_thread` reads; the book's
resolution chapter shows it.

>>> from thpviz.render.timeline import load_thread, timeline_figure
>>> fig = timeline_figure(load_thread(), highlight=["M01", "M12"])
>>> fig.savefig("timeline.png")
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

#: the message index kept with the repository
THREAD = Path(__file__).resolve().parents[2] / "data" / "thread.yaml"

#: the two bursts of the thread, drawn again with an hour axis (UTC)
TIMELINE_ZOOMS = (
    ("2016-04-28T14:00:00+00:00", "2016-04-29T19:00:00+00:00", "28-29 April: report, first patches, tests"),
    ("2016-05-02T07:30:00+00:00", "2016-05-02T19:30:00+00:00", "2 May: review of v1 and the GUP debate"),
)
# the Okabe and Ito colours the diagrams use
_BLUE, _VERMILLION, _GREEN, _YELLOW = "#0072b2", "#d55e00", "#009e73", "#f0e442"


def load_thread(path: str | Path | None = None) -> dict:
    """The message index (``data/thread.yaml`` by default) as a dict."""
    import yaml

    with open(path or THREAD, encoding="utf-8") as f:
        return yaml.safe_load(f)


def timeline_figure(thread: dict, highlight=(), zooms=TIMELINE_ZOOMS, width: float = 11.0):
    """Every message of ``thread`` on a time axis, one row per author, a
    line from each reply to its parent, each fix commit's author date as a
    dashed line.  The top panel covers the whole thread; one panel per zoom
    below it, where the labels would collide at full scale.
    ``highlight``: message ids drawn larger (the ones a chapter discusses).
    Circles: messages read in a stored copy; squares: known only from quotes
    or not found (``status`` Q or not-found)."""
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    msgs = thread["messages"]
    by_id = {m["id"]: m for m in msgs}
    when = {m["id"]: datetime.fromisoformat(str(m["date"])).astimezone(timezone.utc) for m in msgs}
    authors = list(dict.fromkeys(m["author"] for m in msgs))
    row = {a: i for i, a in enumerate(authors)}
    zooms = [(datetime.fromisoformat(a), datetime.fromisoformat(b), t) for a, b, t in zooms]
    fixes = [(c["id"], datetime.fromisoformat(str(c["date"])).replace(tzinfo=timezone.utc))
             for c in thread.get("commits", ()) if c.get("role") == "fix" and c.get("date")]
    highlight = set(highlight)

    fig = Figure(figsize=(width, 7.5), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, max(1, len(zooms)), height_ratios=[1, 1])
    panels = [(fig.add_subplot(grid[0, :]), None)] + [
        (fig.add_subplot(grid[1, i]), z) for i, z in enumerate(zooms)]
    for ax, zoom in panels:
        shown = [m for m in msgs if zoom is None or zoom[0] <= when[m["id"]] <= zoom[1]]
        for m in shown:
            p = m.get("replies_to")
            if p in when:
                ax.plot([when[p], when[m["id"]]], [row[by_id[p]["author"]], row[m["author"]]],
                        color="#999", lw=0.6, zorder=1)
        lo, hi = (min(when.values()), max(when.values())) if zoom is None else zoom[:2]
        gap = (hi - lo) * 0.03
        last: dict[str, tuple] = {}
        for m in sorted(shown, key=lambda m: when[m["id"]]):
            big = m["id"] in highlight
            ax.scatter([when[m["id"]]], [row[m["author"]]], s=60 if big else 22, zorder=2,
                       color=_VERMILLION if big else _BLUE,
                       marker="s" if m.get("status") in ("Q", "not-found") else "o")
            in_zoom = any(a <= when[m["id"]] <= b for a, b, _ in zooms)
            if zoom is None and in_zoom:
                continue
            # stagger labels that would collide with the previous one in the row
            prev = last.get(m["author"])
            level = prev[1] + 1 if prev and when[m["id"]] - prev[0] < gap else 0
            last[m["author"]] = (when[m["id"]], level)
            dy = (6 + 7 * (level // 2)) * (1 if level % 2 == 0 else -1.6)
            ax.annotate(m["id"], (when[m["id"]], row[m["author"]]), xytext=(0, dy),
                        textcoords="offset points", fontsize=6.5, ha="center")
        if zoom is None:
            for cid, x in fixes:
                ax.axvline(x, color=_GREEN, ls="--", lw=1)
                ax.annotate(cid, (x, -0.6), fontsize=7, color=_GREEN, ha="left", va="top",
                            xytext=(3, 0), textcoords="offset points")
            for a, b, _ in zooms:
                ax.axvspan(a, b, color=_YELLOW, alpha=0.25, lw=0)
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
            first, end = min(when.values()), max(when.values())
            ax.set_title(f"{first:%d %B} - {end:%d %B %Y} (UTC)"
                         + ("; shaded: the bursts below" if zooms else ""), fontsize=9)
        else:
            ax.set_xlim(zoom[0], zoom[1])
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
            ax.set_title(zoom[2] + " (UTC)", fontsize=9)
        ax.set_yticks(range(len(authors)), authors if zoom is None or zoom is zooms[0] else [""] * len(authors),
                      fontsize=8)
        ax.set_ylim(len(authors) - 0.4, -0.9)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Every message of the thread; circles: copy read, squares: known only from quotes or not found",
                 fontsize=9)
    return fig
