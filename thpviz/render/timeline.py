"""The thread's timeline: every message of the 2016 thread as a point on a
vertical time axis, as a self-contained SVG string (no graphviz, no
matplotlib).

It is drawn from the message index ``data/thread.yaml`` (messages with
``id``, ``date``, ``author``, ``replies_to``, ``status``, ``summary``,
``link``; commits with ``id``, ``date``, ``role``), which
:func:`load_thread` reads.  The book's thread appendix
(``book/thpthread.py``) shows it; each point links to its message on
lore.kernel.org.

>>> from thpviz.render.timeline import load_thread, timeline_svg
>>> svg = timeline_svg(load_thread(), highlight=["M01", "M12"])
>>> _ = open("timeline.svg", "w").write(svg)
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from pathlib import Path

#: the message index kept with the repository
THREAD = Path(__file__).resolve().parents[2] / "data" / "thread.yaml"
#: a commit's page in the mainline tree (kernel.org's short commit link)
COMMIT_URL = "https://git.kernel.org/torvalds/c/{}"
#: how a message's content is known (the ``status`` codes of thread.yaml)
STATUS = {
    "R": "copy read", "Rp": "copy read, patch from quotes", "Q": "known from quotes only",
    "S": "the seed message", "not-found": "no copy found",
}
#: statuses drawn as squares: the content is not known from a copy
UNREAD = ("Q", "not-found")

#: geometry, in CSS px
ROW, COL, GUTTER, HEAD, FONT = 20, 82, 96, 48, 12
#: Okabe and Ito colours, as the diagrams use them
INK, GREY, BLUE, ORANGE, GREEN, PAPER = "#1A1A1A", "#9A9A9A", "#0072B2", "#D55E00", "#009E73", "#FBFAF6"


def load_thread(path: str | Path | None = None) -> dict:
    """The message index (``data/thread.yaml`` by default) as a dict."""
    import yaml

    with open(path or THREAD, encoding="utf-8") as f:
        return yaml.safe_load(f)


def when(m: dict) -> datetime:
    """A message's date in UTC."""
    return datetime.fromisoformat(str(m["date"])).astimezone(timezone.utc)


def _short(author: str) -> str:
    first, *rest = author.split()
    return f"{first} {rest[-1][0]}." if rest else first


def timeline_svg(thread: dict, highlight=()) -> str:
    """Every message of ``thread`` as a point on a vertical time axis (one
    row per message in the order sent, one column per author), a curve from
    each reply to its parent when the parent is in the index, and each fix
    commit's author date as a dashed rule before the first message sent on
    or after that day.  Each point links to its message and carries the
    summary as a tooltip.  ``highlight``: message ids drawn larger.
    Circles: content read in a stored copy; squares: known only from quotes
    or not found."""
    msgs = sorted(thread["messages"], key=when)
    authors = list(dict.fromkeys(m["author"] for m in msgs))
    x = {a: GUTTER + COL * i + COL // 2 for i, a in enumerate(authors)}
    fixes = [(c["id"], datetime.fromisoformat(str(c["date"])).date()) for c in thread.get("commits", ())
             if c.get("role") == "fix" and c.get("date")]
    y: dict[str, int] = {}
    fix_y: dict[str, tuple] = {}
    row = 0
    for m in msgs:
        for cid, day in fixes:
            if cid not in fix_y and when(m).date() >= day:
                fix_y[cid] = (HEAD + ROW * row + ROW // 2, day)
                row += 1
        y[m["id"]] = HEAD + ROW * row + ROW // 2
        row += 1
    width = GUTTER + COL * len(authors) + 8
    height = HEAD + ROW * row + 30
    by_id = {m["id"]: m for m in msgs}
    span = f"{when(msgs[0]):%d %B} to {when(msgs[-1]):%d %B %Y}" if msgs else "no messages"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="Helvetica,Arial,sans-serif" font-size="{FONT}" '
           f'role="img" aria-labelledby="thp-tl-title">',
           f'<title id="thp-tl-title">Timeline of the thread: {len(msgs)} messages from '
           f'{span}, one column per author</title>',
           f'<rect width="{width}" height="{height}" fill="{PAPER}"/>']
    for a in authors:
        out.append(f'<line x1="{x[a]}" y1="{HEAD - 6}" x2="{x[a]}" y2="{height - 24}" stroke="#E2E2E2"/>')
        out.append(f'<text x="{x[a]}" y="{HEAD - 14}" text-anchor="middle" fill="{INK}" '
                   f'font-weight="bold">{html.escape(_short(a))}</text>')
    year = f"{when(msgs[0]):%Y}" if msgs else ""
    out.append(f'<text x="4" y="{HEAD - 14}" fill="{INK}" font-weight="bold">UTC, {year}</text>')
    # day labels, and a rule where a new day starts
    last_day = None
    for m in msgs:
        t = when(m)
        if t.date() != last_day:
            if last_day is not None:
                out.append(f'<line x1="0" y1="{y[m["id"]] - ROW // 2}" x2="{width}" y2="{y[m["id"]] - ROW // 2}" '
                           f'stroke="#CFCFCF" stroke-dasharray="2,3"/>')
            out.append(f'<text x="4" y="{y[m["id"]] + 4}" fill="{INK}">{t:%d %b} {t:%H:%M}</text>')
            last_day = t.date()
        else:
            out.append(f'<text x="48" y="{y[m["id"]] + 4}" fill="#555">{t:%H:%M}</text>')
    for cid, (yy, day) in fix_y.items():
        label = f"{cid}, the fix (author date {day:%d %b})"
        out.append(f'<a href="{COMMIT_URL.format(cid)}"><text x="{GUTTER}" y="{yy + 4}" fill="{GREEN}" '
                   f'font-weight="bold">{label}</text><line x1="0" y1="{yy}" x2="{GUTTER - 6}" y2="{yy}" '
                   f'stroke="{GREEN}" stroke-width="1.5" stroke-dasharray="6,3"/>'
                   f'<line x1="{GUTTER + 7.2 * len(label)}" y1="{yy}" x2="{width}" y2="{yy}" stroke="{GREEN}" '
                   f'stroke-width="1.5" stroke-dasharray="6,3"/></a>')
    for m in msgs:
        p = m.get("replies_to")
        if p in by_id:
            pa, ma, mid = by_id[p]["author"], m["author"], (y[p] + y[m["id"]]) / 2
            out.append(f'<path d="M{x[pa]},{y[p]} C{x[pa]},{mid} {x[ma]},{mid} {x[ma]},{y[m["id"]]}" '
                       f'fill="none" stroke="{GREY}" stroke-width="1"/>')
    for m in msgs:
        big = m["id"] in highlight
        r = 6 if big else 4.5
        colour = ORANGE if big else BLUE
        cx, cy = x[m["author"]], y[m["id"]]
        shape = (f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="{colour}"/>' if m.get("status") not in UNREAD else
                 f'<rect x="{cx - r}" y="{cy - r}" width="{2 * r}" height="{2 * r}" '
                 f'fill="{PAPER}" stroke="{colour}" stroke-width="1.5"/>')
        tip = (f"{m['id']}, {when(m):%d %b %H:%M} UTC, {m['author']}: {m.get('summary', '')} "
               f"({STATUS.get(m.get('status', ''), '')})")
        out.append(f'<a href="{html.escape(m["link"])}" aria-label="{html.escape(tip)}"><title>{html.escape(tip)}</title>'
                   f'{shape}<text x="{cx + 8}" y="{cy + 4}" fill="{INK}">{m["id"]}</text></a>')
    out.append(f'<text x="4" y="{height - 8}" fill="#555">rows in the order sent (not to scale); circle: copy read; '
               f'square: known from quotes or not found</text>')
    out.append("</svg>")
    return "".join(out)
