"""The built book in headless Chromium, served from localhost only.

For every page: no console error, no request outside localhost.  For every
chapter: its diagrams (SVG) are there, its storyboard answers the slider
(the visible frame changes), and a hidden solution opens when clicked.

Needs playwright (Python) and Debian's /usr/bin/chromium (or the
CHROMIUM environment variable); skipped with a reason when either is missing,
except under CI (env CI set), where missing pieces are a failure.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import tempfile
import threading
from urllib.parse import urlparse

import pytest

from test_book import CHAPTERS, PAGES, built_book  # noqa: F401  (shared session build)

pytestmark = [pytest.mark.browser, pytest.mark.book]

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


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


def _open(browser, url):
    """Open a page; return (page, console errors, outside requests)."""
    page = browser.new_page()
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


@pytest.mark.parametrize("name", PAGES)
def test_page_has_no_console_error_and_stays_local(browser, server, name):
    page, errors, outside = _open(browser, f"{server}/{name}.html")
    try:
        assert not errors, errors
        assert not outside, outside
        assert page.locator("h1").count() >= 1
    finally:
        page.close()


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_diagrams_storyboard_and_solutions_work(browser, server, name):
    page, errors, outside = _open(browser, f"{server}/{name}.html")
    try:
        # diagrams: SVG images in cell outputs (all loaded) and the storyboard's
        # inline SVG frames; the visible ones are drawn at a readable size
        imgs = page.locator(".cell_output img[src$='.svg']")
        for i in range(imgs.count()):
            assert imgs.nth(i).evaluate("img => img.complete && img.naturalWidth > 0"), "SVG image not loaded"
        diagrams = page.locator(".cell_output img[src$='.svg'], .thpviz-frame:not([hidden]) svg")
        assert diagrams.count() >= 1
        box = diagrams.first.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 40

        # the storyboard: moving the slider shows another frame
        sb = page.locator(".thpviz-storyboard").first
        sb.scroll_into_view_if_needed()
        slider = sb.locator("input[type=range]")

        def visible_frame():
            return sb.locator("[data-frame]:not([hidden])").first.get_attribute("data-step")

        before = visible_frame()
        assert sb.locator("[data-frame]:not([hidden]) svg").count() == 1
        slider.focus()
        page.keyboard.press("End")
        after = visible_frame()
        assert after != before, "the storyboard slider did not change the frame"
        assert after == slider.get_attribute("max")
        assert sb.locator("[data-frame]:not([hidden]) svg").first.is_visible()

        # a hidden solution opens when its title is clicked
        dd = page.locator("details.sd-dropdown").first
        body = dd.locator(".sd-summary-content, .sd-card-body").first
        assert not body.is_visible()
        dd.locator("summary").click()
        body.wait_for(state="visible", timeout=5000)
        assert dd.get_attribute("open") is not None

        assert not errors, errors
        assert not outside, outside
    finally:
        page.close()
