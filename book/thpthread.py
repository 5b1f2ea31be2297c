"""The thread appendix, made from ``data/thread.yaml``: one table row per
message, the commits with their upstream pages, and the timeline as an SVG
whose points open the messages on lore.kernel.org.

Everything shown comes from the YAML file; the summaries there are our own
words.  Commit ids in summaries and notes are linked to their upstream page
(:data:`COMMIT_URL`), messages to ``https://lore.kernel.org/all/<Message-ID>/``
(the ``link`` field).
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
THREAD = ROOT / "data" / "thread.yaml"
#: a commit's page in the mainline tree (kernel.org's short commit link)
COMMIT_URL = "https://git.kernel.org/torvalds/c/{}"
#: how a message's content is known (the ``status`` codes of thread.yaml)
STATUS = {
    "R": "copy read", "Rp": "copy read, patch from quotes", "Q": "known from quotes only",
    "S": "the seed message", "not-found": "no copy found",
}

_HEX = re.compile(r"(?<![\w/.-])([0-9a-f]{12})(?![\w-])")
_MSG = re.compile(r"\bM(\d\d)\b")


@lru_cache(maxsize=None)
def thread() -> dict:
    return yaml.safe_load(THREAD.read_text(encoding="utf-8"))


def when(m: dict) -> datetime:
    """A message's date in UTC."""
    return datetime.fromisoformat(m["date"]).astimezone(timezone.utc)


def commit_ids() -> set[str]:
    return {c["id"] for c in thread()["commits"]}


def linkify(text: str) -> str:
    """Escape ``text`` and link every known commit id and message id in it."""
    known = commit_ids()
    ids = {m["id"] for m in thread()["messages"]}

    def sub_commit(m):
        cid = m.group(1)
        if cid not in known:
            return cid
        return f'<a href="{COMMIT_URL.format(cid)}"><code>{cid}</code></a>'

    out = _HEX.sub(sub_commit, html.escape(text))
    return _MSG.sub(lambda m: f'<a href="#{m.group(0).lower()}">{m.group(0)}</a>'
                    if m.group(0) in ids else m.group(0), out)


_CSS = """<style>
table.thp-thread {border-collapse: collapse; font-size: 0.85em; display: block; overflow-x: auto; max-width: 100%; width: fit-content;
  background: #fff; color: #1a1a1a;}
table.thp-thread th, table.thp-thread td {border: 1px solid #9995; padding: 3px 6px; text-align: left;
  vertical-align: top; color: #1a1a1a;}
table.thp-thread th {background: #f0f0f0;}
table.thp-thread a {color: #0b5394;}
table.thp-thread code {color: #1a1a1a; background: transparent;}
table.thp-thread td {overflow-wrap: anywhere;}
table.thp-thread td.when {white-space: nowrap;}
.thp-timeline {max-width: 100%; overflow-x: auto;}
.thp-timeline svg {max-width: 100%; height: auto; display: block; background: #FBFAF6;}
</style>"""


def messages_table() -> str:
    """One row per message: id (an anchor the timeline links to), date in
    UTC, author, our one-line summary, how its content is known, and the
    lore link."""
    rows = []
    for m in sorted(thread()["messages"], key=when):
        t = when(m)
        rows.append(
            f'<tr id="{m["id"].lower()}"><td><b>{m["id"]}</b></td>'
            f'<td class="when">{t:%d %b %H:%M}</td><td>{html.escape(m["author"])}</td>'
            f'<td>{linkify(m["summary"])}<br><small>{html.escape(STATUS.get(m["status"], m["status"]))}'
            + (f'; reply to <a href="#{m["replies_to"].lower()}">{m["replies_to"]}</a>' if m.get("replies_to") else "")
            + f'</small></td><td><a href="{html.escape(m["link"])}">lore</a></td></tr>'
        )
    return (f'{_CSS}<table class="thp-thread messages"><tr><th>id</th><th>date (UTC, 2016)</th><th>author</th>'
            f'<th>what it says (our summary)</th><th>message</th></tr>{"".join(rows)}</table>')


def commits_table() -> str:
    """Every commit the thread and the book cite, linked to its upstream page."""
    rows = []
    for c in thread()["commits"]:
        extra = []
        if c.get("date"):
            extra.append(c["date"])
        if c.get("version"):
            extra.append(c["version"])
        rows.append(
            f'<tr><td><a href="{COMMIT_URL.format(c["id"])}"><code>{c["id"]}</code></a></td>'
            f'<td>{html.escape(c["subject"])}</td><td>{html.escape(c["role"])}</td>'
            f'<td>{html.escape(", ".join(extra))}</td><td>{linkify(c.get("note", ""))}</td></tr>'
        )
    return (f'{_CSS}<table class="thp-thread commits"><tr><th>commit</th><th>subject</th><th>role</th>'
            f'<th>date, release</th><th>note</th></tr>{"".join(rows)}</table>')


#: geometry of the timeline, in CSS px
ROW, COL, GUTTER, HEAD, FONT = 20, 82, 96, 48, 12
INK, GREY, BLUE, ORANGE, GREEN = "#1A1A1A", "#9A9A9A", "#0072B2", "#D55E00", "#009E73"


def _short(author: str) -> str:
    first, *rest = author.split()
    return f"{first} {rest[-1][0]}." if rest else first


def timeline_svg(highlight=()) -> str:
    """Every message as a point on a vertical time axis (one row per message
    in the order sent, one column per author), a line from each reply to its
    parent, and the fix's author date as a dashed line.  Each point links to
    its message on lore.kernel.org and carries the summary as a tooltip;
    ``highlight``: message ids drawn larger."""
    msgs = sorted(thread()["messages"], key=when)
    authors = list(dict.fromkeys(m["author"] for m in msgs))
    x = {a: GUTTER + COL * i + COL // 2 for i, a in enumerate(authors)}
    # one row per message, and one for the fix's author date before the
    # first message sent on or after it
    fixes = [(c["id"], datetime.fromisoformat(c["date"]).date()) for c in thread()["commits"]
             if c.get("role") == "fix" and c.get("date")]
    y, fix_y, row = {}, {}, 0
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
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="Helvetica,Arial,sans-serif" font-size="{FONT}" '
           f'role="img" aria-labelledby="thp-tl-title">',
           f'<title id="thp-tl-title">Timeline of the thread: {len(msgs)} messages from '
           f'{when(msgs[0]):%d %B} to {when(msgs[-1]):%d %B %Y}, one column per author</title>',
           f'<rect width="{width}" height="{height}" fill="#FBFAF6"/>']
    for a in authors:
        out.append(f'<line x1="{x[a]}" y1="{HEAD - 6}" x2="{x[a]}" y2="{height - 24}" stroke="#E2E2E2"/>')
        out.append(f'<text x="{x[a]}" y="{HEAD - 14}" text-anchor="middle" fill="{INK}" '
                   f'font-weight="bold">{html.escape(_short(a))}</text>')
    out.append(f'<text x="4" y="{HEAD - 14}" fill="{INK}" font-weight="bold">UTC, 2016</text>')
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
    # the fix's author date
    for cid, (yy, day) in fix_y.items():
        label = f"{cid}, the fix (author date {day:%d %b})"
        out.append(f'<a href="{COMMIT_URL.format(cid)}"><text x="{GUTTER}" y="{yy + 4}" fill="{GREEN}" '
                   f'font-weight="bold">{label}</text><line x1="0" y1="{yy}" x2="{GUTTER - 6}" y2="{yy}" '
                   f'stroke="{GREEN}" stroke-width="1.5" stroke-dasharray="6,3"/>'
                   f'<line x1="{GUTTER + 7.2 * len(label)}" y1="{yy}" x2="{width}" y2="{yy}" stroke="{GREEN}" '
                   f'stroke-width="1.5" stroke-dasharray="6,3"/></a>')
    # replies
    for m in msgs:
        p = m.get("replies_to")
        if p in by_id:
            pa, ma = by_id[p]["author"], m["author"]
            out.append(f'<path d="M{x[pa]},{y[p]} C{x[pa]},{(y[p] + y[m["id"]]) / 2} {x[ma]},{(y[p] + y[m["id"]]) / 2} '
                       f'{x[ma]},{y[m["id"]]}" fill="none" stroke="{GREY}" stroke-width="1"/>')
    # the messages
    for m in msgs:
        big = m["id"] in highlight
        known = m["status"] not in ("Q", "not-found")
        r = 6 if big else 4.5
        colour = ORANGE if big else BLUE
        shape = (f'<circle cx="{x[m["author"]]}" cy="{y[m["id"]]}" r="{r}" fill="{colour}"/>' if known else
                 f'<rect x="{x[m["author"]] - r}" y="{y[m["id"]] - r}" width="{2 * r}" height="{2 * r}" '
                 f'fill="#FBFAF6" stroke="{colour}" stroke-width="1.5"/>')
        tip = f"{m['id']}, {when(m):%d %b %H:%M} UTC, {m['author']}: {m['summary']} ({STATUS.get(m['status'], '')})"
        out.append(f'<a href="{html.escape(m["link"])}" aria-label="{html.escape(tip)}"><title>{html.escape(tip)}</title>'
                   f'{shape}<text x="{x[m["author"]] + 8}" y="{y[m["id"]] + 4}" fill="{INK}">{m["id"]}</text></a>')
    out.append(f'<text x="4" y="{height - 8}" fill="#555">rows in the order sent (not to scale); circle: copy read; '
               f'square: known from quotes or not found</text>')
    out.append("</svg>")
    return f'{_CSS}<div class="thp-timeline">{"".join(out)}</div>'


def show(fragment: str):
    """Any of the HTML fragments above as a notebook output."""
    from IPython.display import HTML

    return HTML(fragment)
