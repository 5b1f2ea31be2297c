"""The workshop deck, built with the book from the same sources.

When the HTML build finishes, ``slides/workshop.md`` becomes
``_build/html/slides/index.html``: a reveal.js deck (vendored in
``slides/vendor/``, so it works offline and fetches nothing) whose slides are
markdown plus a few directives that pull in what the book already has:

``::: section FILE HEADING``
    the markdown of one section of a book page (up to its next heading of
    the same or a higher level);
``::: storyboard FILE ERA... [start=STEP]``
    a storyboard of a scenario, steppable on the slide (``STEP``: a step
    number, ``decisive`` or the start of a statement);
``::: exercises NOTEBOOK``
    the exercises of a workshop notebook, as the notebook words them;
``::: verdicts FILE ERA...``
    the engine's verdict table, shown on the next key press.

Any error in the deck fails the build (a Sphinx error), as a broken chapter
would.
"""

from __future__ import annotations

import html
import re
import shutil
import sys
from pathlib import Path

REVEAL = "reveal.js-5.2.1"


class DeckError(RuntimeError):
    pass


def _section(root: Path, rel: str, heading: str) -> str:
    text = (root / rel).read_text(encoding="utf-8")
    m = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.M)
    if not m:
        raise DeckError(f"{rel} has no section {heading!r}")
    level = len(m.group(1))
    rest = text[m.end():]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    body = rest[:end.start()] if end else rest
    body = re.sub(r"^```\{code-cell\}.*?^```\s*$", "", body, flags=re.S | re.M)
    # links between book pages point at the built pages, next to slides/
    body = re.sub(r"\]\(([\w-]+)\.md(#[^)]*)?\)", lambda m: f"](../{m.group(1)}.html{m.group(2) or ''})", body)
    return body.strip()


def _markdown(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(text)


def render_deck(root: Path) -> str:
    """The deck's HTML document (``root``: the repository)."""
    book = root / "book"
    if str(book) not in sys.path:
        sys.path.insert(0, str(book))
    import thpbook as tb

    from thpviz.render.storyboard import page_assets, storyboard_html

    source = (root / "slides" / "workshop.md").read_text(encoding="utf-8")
    source = re.sub(r"<!--.*?-->", "", source, flags=re.S)
    sections = []
    for n, raw in enumerate(re.split(r"^---\s*$", source, flags=re.M), 1):
        md: list[str] = []
        html_parts: list[str] = []

        def flush(md=md, html_parts=html_parts):
            if md:
                html_parts.append(_markdown("\n".join(md)))
                md.clear()

        for line in raw.strip("\n").splitlines():
            m = re.match(r"^::: (\w+) (.*)$", line)
            if not m:
                md.append(line)
                continue
            kind, arg = m.group(1), m.group(2).strip()
            if kind == "section":
                rel, heading = arg.split(" ", 1)
                md.append(_section(root, rel, heading))
                continue
            flush()
            if kind == "storyboard":
                start = 1
                if " start=" in arg:
                    arg, start_text = arg.split(" start=", 1)
                    start = int(start_text) if start_text.isdigit() else start_text
                rel, *eras = arg.split()
                html_parts.append(storyboard_html(str(root / rel), eras, start=start, legend=False,
                                                  uid=f"slide{n}-sb"))
            elif kind == "exercises":
                found = [items for _, name, items in tb.workshop_exercises() if name == Path(arg).name]
                if not found:
                    raise DeckError(f"no exercises in {arg}")
                lis = "".join(f"<li><b>{html.escape(ex)}.</b> {tb._md_inline(text)}</li>" for ex, text in found[0])
                html_parts.append(f'<ol class="exercises">{lis}</ol><p class="where">{html.escape(arg)}</p>')
            elif kind == "verdicts":
                rel, *eras = arg.split()
                html_parts.append(f'<div class="fragment">{tb.verdict_table(rel, eras=eras).data}</div>')
            else:
                raise DeckError(f"slide {n}: unknown directive {kind!r}")
        flush()
        sections.append(f'<section id="slide-{n}">{"".join(html_parts)}</section>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>A pinned page, a false COW: workshop slides</title>
<link rel="stylesheet" href="{REVEAL}/reset.css">
<link rel="stylesheet" href="{REVEAL}/reveal.css">
<link rel="stylesheet" href="{REVEAL}/theme/white.css">
<style>
.reveal {{ font-family: Helvetica, Arial, sans-serif; font-size: 30px; }}
.reveal h1, .reveal h2 {{ font-family: Helvetica, Arial, sans-serif; text-transform: none; }}
.reveal section {{ text-align: left; }}
.reveal .thpviz-storyboard {{ font-size: 14px; max-height: 620px; overflow: auto; }}
.reveal .thpviz-storyboard h4 {{ text-transform: none; font-size: 16px; font-family: Helvetica, Arial, sans-serif; }}
.reveal .thpviz-pic {{ max-height: 420px; }}
.reveal ol.exercises {{ font-size: 22px; }}
.reveal .where {{ font-size: 16px; color: #555; }}
.reveal table {{ font-size: 20px; }}
.reveal pre {{ font-size: 18px; width: 100%; box-shadow: none; }}
</style>
{page_assets()}
</head><body>
<div class="reveal"><div class="slides">
{chr(10).join(sections)}
</div></div>
<script src="{REVEAL}/reveal.js"></script>
<script>
Reveal.initialize({{
  hash: true, width: 1280, height: 800, margin: 0.04, transition: "none",
  // the storyboards use the arrow keys themselves while they have the focus
  keyboardCondition: function (event) {{ return !(event.target.closest && event.target.closest(".thpviz-storyboard")); }}
}});
</script>
</body></html>
"""


def build(root: Path, out: Path) -> Path:
    """Write the deck and its reveal.js files into ``out`` (a folder)."""
    out.mkdir(parents=True, exist_ok=True)
    vendor = root / "slides" / "vendor" / REVEAL
    shutil.copytree(vendor, out / REVEAL, dirs_exist_ok=True)
    page = out / "index.html"
    page.write_text(render_deck(root), encoding="utf-8")
    return page


def _build(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    from sphinx.errors import ExtensionError

    try:
        build(Path(app.srcdir).parent, Path(app.outdir) / "slides")
    except Exception as err:  # any failure of the deck fails the build
        raise ExtensionError(f"workshop slides: {err}") from err


def setup(app):
    app.connect("build-finished", _build)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
