"""The built book in headless Chromium, served from localhost only, at a
desktop width (1280 px) and a phone width (390 px).

For every page, the slides and the handout, at both widths: no console
error, no request outside localhost; at 390 px nothing scrolls the page
sideways.  At 1280 px, with every solution opened and every storyboard frame
shown, each diagram's smallest rendered text is measured (font size times
the SVG's on-screen scale) and must be at least 11 px; the measurements are
printed and written to book/_build/diagram-text.json.  Then the controls:
a storyboard steps and hides its verdicts until asked, a figure fits, enlarges
and shows its table on a phone, a solution opens, and a slide's storyboard
steps inside the deck.

Needs playwright (Python) and Debian's /usr/bin/chromium (or the CHROMIUM
environment variable); skipped with a reason when either is missing, except
under CI (env CI set), where missing pieces are a failure.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import tempfile
import threading
from urllib.parse import urlparse

import pytest

from test_book import BOOK, CHAPTERS, PAGES, built_book  # noqa: F401  (shared session build)

pytestmark = [pytest.mark.browser, pytest.mark.book]

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
MIN_TEXT_PX = 11.0
WIDTHS = (1280, 390)
#: every page of the site: the book's pages, the workshop deck
SITE = [f"{p}.html" for p in PAGES] + ["slides/index.html"]
REPORT: dict = {}


def _missing(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run under CI: {reason}")
    pytest.skip(reason)


def _chromium() -> str | None:
    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return exe if exe and os.path.exists(exe) else None


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(built_book):  # noqa: F811
    handler = functools.partial(_Quiet, directory=str(built_book))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright Python package is not installed")
    exe = _chromium()
    if exe is None:
        _missing("no Chromium found (apt-get install chromium, or set CHROMIUM)")
    profile = tempfile.mkdtemp(prefix="thpviz-chromium-")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path=exe, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        yield ctx
        ctx.close()
    shutil.rmtree(profile, ignore_errors=True)
    if REPORT:
        out = BOOK / "_build" / "diagram-text.json"
        out.write_text(json.dumps(REPORT, indent=1, sort_keys=True), encoding="utf-8")


def _open(browser, url, width=1280):
    """Open a page; return (page, console errors, outside requests)."""
    page = browser.new_page()
    page.set_viewport_size({"width": width, "height": 900})
    errors, outside = [], []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))

    def on_request(req):
        host = urlparse(req.url).hostname
        if req.url.startswith(("data:", "blob:", "about:")):
            return
        if host not in ("127.0.0.1", "localhost"):
            outside.append(req.url)

    page.on("request", on_request)
    page.goto(url, wait_until="networkidle")
    return page, errors, outside


#: every diagram's smallest on-screen text: for each visible SVG drawn by
#: thpviz (figures, storyboard frames, the thread timeline), the smallest
#: font size of its texts times the SVG's current scale
MEASURE = """() => {
  const out = [];
  for (const svg of document.querySelectorAll('.thpviz-pic svg, .thp-timeline svg')) {
    const box = svg.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    let least = Infinity;
    for (const t of svg.querySelectorAll('text')) {
      if (!t.textContent.trim()) continue;
      const m = t.getScreenCTM();
      if (!m) continue;
      const px = parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b);
      if (px < least) least = px;
    }
    const holder = svg.closest('[id]');
    if (least < Infinity) out.push([holder ? holder.id : '?', Math.round(least * 100) / 100]);
  }
  return out;
}"""

OPEN_EVERYTHING = """() => {
  document.querySelectorAll('[data-frame]').forEach(f => { f.hidden = false; });
  document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
  document.querySelectorAll('details').forEach(d => { d.open = true; });
}"""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", SITE)
def test_page_loads_clean_stays_local_and_fits(browser, server, name, width):
    page, errors, outside = _open(browser, f"{server}/{name}", width)
    try:
        assert not errors, errors
        assert not outside, outside
        assert page.locator("h1, h2").count() >= 1
        if width < 600:
            wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert wide <= 0, f"{name} scrolls sideways by {wide} px at {width} px"
    finally:
        page.close()


@pytest.mark.parametrize("name", [p for p in SITE if not p.startswith("slides/")])
def test_every_diagram_is_readable_at_1280(browser, server, name):
    """With all solutions open and all storyboard frames shown, no diagram's
    text is drawn smaller than 11 px."""
    page, errors, _ = _open(browser, f"{server}/{name}", 1280)
    try:
        page.evaluate(OPEN_EVERYTHING)
        sizes = page.evaluate(MEASURE)
        REPORT[name] = sizes
        print(f"\n{name}: {len(sizes)} diagram(s), smallest text "
              + (f"{min(s for _, s in sizes):.2f} px" if sizes else "-"))
        small = [(ident, px) for ident, px in sizes if px < MIN_TEXT_PX]
        assert not small, f"{name}: text under {MIN_TEXT_PX} px in {small[:5]}"
        alts = page.evaluate("""() => Array.from(document.querySelectorAll('.thpviz-pic'))
                                .map(p => (p.getAttribute('aria-label') || '').length)""")
        assert all(n > 20 for n in alts), f"{name}: a diagram without alt text"
        assert not errors, errors
    finally:
        page.close()


def test_the_report_covers_the_diagrams_of_the_story(browser, server):
    """The measurement above is not vacuous: the chapters have diagrams, and
    a figure forced to its box's width at 1280 px would fail it."""
    page, _, _ = _open(browser, f"{server}/primer.html", 1280)
    try:
        page.evaluate(OPEN_EVERYTHING)
        sizes = page.evaluate(MEASURE)
        assert len(sizes) >= 5
        page.evaluate("""() => document.querySelectorAll('.thpviz-fig').forEach(f => {
                           f.classList.add('thpviz-fit'); f.style.width = '300px'; })""")
        fitted = page.evaluate(MEASURE)
        assert min(px for _, px in fitted) < MIN_TEXT_PX
    finally:
        page.close()


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_storyboard_solutions_and_reveal_work(browser, server, name):
    page, errors, outside = _open(browser, f"{server}/{name}.html", 1280)
    try:
        sb = page.locator(".thpviz-storyboard").first
        if sb.count():
            sb.scroll_into_view_if_needed()
            slider = sb.locator("input[type=range]")

            def visible_frame():
                return sb.locator("[data-frame]:not([hidden])").first.get_attribute("data-step")

            # the verdicts wait behind their control
            reveal = sb.locator("details.thpviz-reveal")
            assert not reveal.locator(".thpviz-verdict").first.is_visible()
            reveal.locator("summary").click()
            assert reveal.locator(".thpviz-verdict").first.is_visible()
            before = visible_frame()
            slider.focus()
            page.keyboard.press("Home")
            after = visible_frame()
            assert after == "0" and (after != before or before == "0")
            page.keyboard.press("End")
            assert visible_frame() == slider.get_attribute("max")
            assert sb.locator("[data-frame]:not([hidden]) svg").first.is_visible()

        # a solution opens when its title is clicked
        sol = page.locator("div.solution").first
        assert sol.count()
        body = sol.locator("> section").first
        assert not body.is_visible()
        sol.locator("button.toggle-button").first.click()
        body.wait_for(state="visible", timeout=5000)
        assert "toggle-hidden" not in (sol.get_attribute("class") or "")

        assert not errors, errors
        assert not outside, outside
    finally:
        page.close()


def test_figure_controls_fit_enlarge_and_phone_table(browser, server):
    page, errors, _ = _open(browser, f"{server}/primer.html", 1280)
    try:
        # the widest figure on the page: the one that scrolls in its box
        widest = page.evaluate("""() => { let best = -1, w = 0;
            document.querySelectorAll('figure.thpviz-fig[data-own-bar]').forEach((f, i) => {
              if (f.closest('.solution')) return;
              const s = f.querySelector('.thpviz-lr svg').getBoundingClientRect().width;
              if (s > w) { w = s; best = i; } });
            return best; }""")
        fig = page.locator("figure.thpviz-fig[data-own-bar]").nth(widest)
        fig.scroll_into_view_if_needed()
        svg = fig.locator(".thpviz-lr svg")
        natural = svg.bounding_box()["width"]
        box = fig.locator(".thpviz-lr").bounding_box()["width"]
        fig.locator("[data-zoom]").click()
        assert svg.bounding_box()["width"] <= box + 1
        assert natural <= box + 1 or svg.bounding_box()["width"] < natural  # fit shrinks a wide one
        fig.locator("[data-zoom]").click()
        assert abs(svg.bounding_box()["width"] - natural) < 1
        fig.locator("[data-enlarge]").click()
        big = fig.bounding_box()
        assert big["width"] >= 1270 and big["y"] <= 1
        page.keyboard.press("Escape")
        assert fig.bounding_box()["width"] < 1000
        assert not errors, errors
    finally:
        page.close()
    page, errors, _ = _open(browser, f"{server}/primer.html", 390)
    try:
        fig = page.locator("figure.thpviz-fig[data-own-bar]").first
        fig.scroll_into_view_if_needed()
        assert fig.locator(".thpviz-table table").is_visible()
        assert not fig.locator(".thpviz-lr").is_visible()
        fig.locator("[data-view]").click()
        assert fig.locator(".thpviz-pic:visible").count() == 1  # the narrow layout, on request
        assert fig.locator(".thpviz-tb").is_visible() and not fig.locator(".thpviz-table").is_visible()
        assert not errors, errors
    finally:
        page.close()


def test_slides_step_and_their_storyboards_step(browser, server):
    page, errors, outside = _open(browser, f"{server}/slides/index.html", 1280)
    try:
        n = page.evaluate("Reveal.getTotalSlides()")
        assert n >= 8
        # find the first slide with a storyboard and go there
        idx = page.evaluate("""() => Array.from(document.querySelectorAll('.reveal .slides > section'))
                                 .findIndex(s => s.querySelector('.thpviz-storyboard'))""")
        assert idx >= 0
        page.evaluate(f"Reveal.slide({idx})")
        sb = page.locator(f".reveal .slides > section:nth-child({idx + 1}) .thpviz-storyboard")
        step = sb.locator("[data-frame]:not([hidden])").first.get_attribute("data-step")
        sb.locator("[data-next]").click()
        assert sb.locator("[data-frame]:not([hidden])").first.get_attribute("data-step") == str(int(step) + 1)
        # the deck's own keys still move between slides
        page.locator("body").click(position={"x": 5, "y": 5})
        page.keyboard.press("ArrowRight")
        assert page.evaluate("Reveal.getIndices().h") == idx + 1
        assert not errors, errors
        assert not outside, outside
    finally:
        page.close()
