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
from functools import lru_cache
from pathlib import Path

from thpviz.render import timeline
from thpviz.render.timeline import COMMIT_URL, STATUS, when

ROOT = Path(__file__).resolve().parents[1]
THREAD = ROOT / "data" / "thread.yaml"

_HEX = re.compile(r"(?<![\w/.-])([0-9a-f]{12})(?![\w-])")
_MSG = re.compile(r"\bM(\d\d)\b")


@lru_cache(maxsize=None)
def thread() -> dict:
    return timeline.load_thread(THREAD)


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


def timeline_svg(highlight=()) -> str:
    """The thread's timeline (:func:`thpviz.render.timeline.timeline_svg`),
    each point linked to its message; ``highlight``: message ids drawn
    larger."""
    return f'{_CSS}<div class="thp-timeline">{timeline.timeline_svg(thread(), highlight)}</div>'


def show(fragment: str):
    """Any of the HTML fragments above as a notebook output."""
    from IPython.display import HTML

    return HTML(fragment)
