"""Static storyboards: structure (no browser) and behaviour in headless
Chromium (the slider, the buttons and the era tabs change the frame; no
console error; no request leaves localhost; two storyboards on one page do
not interfere)."""

import functools
import http.server
import os
import re
import shutil
import threading
from html import unescape
from html.parser import HTMLParser

import pytest
from conftest import IN_CI, KIRILL, SCENARIOS

from thpviz.eras import ERAS
from thpviz.render import graphviz_run
from thpviz.render.scene import build_scene
from thpviz.render.storyboard import (
    MIN_TEXT_PX,
    PT_PX,
    alt_text,
    decisive_step,
    mask_assert,
    readable_scale,
    resolve_start,
    scene_figure_html,
    sized_svg,
    storyboard_html,
    storyboard_page,
)
from thpviz.scenario import parse_file, run

VFIO = SCENARIOS / "regression" / "pin-mprotect-cycle-write.thp"


def graphviz_dot(scene):
    from thpviz.render.dot import scene_dot

    return scene_dot(scene, legend=False, caption=False, name="x")
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def need(ok: bool, why: str):
    """Skip locally with a reason; in CI a missing tool is a failure."""
    if not ok:
        if IN_CI:
            pytest.fail(f"{why} (required when CI is set)")
        pytest.skip(why)


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        for k, v in attrs:
            if k == "id":
                self.ids.append(v)


def frames_of(html: str) -> dict:
    """(era index, step) -> the HTML of that frame."""
    out = {}
    for part in html.split('<div class="thpviz-frame"')[1:]:
        m = re.match(r' data-frame data-era="(\d+)" data-step="(\d+)"', part)
        out[(int(m.group(1)), int(m.group(2)))] = part.split('<div class="thpviz-frame"')[0]
    return out


@pytest.fixture(scope="module")
def kirill_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("scn") / "kirill.thp"
    p.write_text(KIRILL)
    return str(p)


KIRILL_PATH = None


@pytest.fixture(autouse=True)
def _kirill_file(kirill_path):
    global KIRILL_PATH
    KIRILL_PATH = kirill_path


@pytest.fixture(scope="module")
def page_html():
    need(graphviz_run.available(), "graphviz's dot is not installed")
    a = storyboard_html(KIRILL, ["andrea-v1", "4.6"])
    b = storyboard_html(str(VFIO), ["4.5", "4.6"])
    c = storyboard_html(KIRILL, ["andrea-v1", "4.6"])  # the same storyboard twice on one page
    return a, b, c, storyboard_page([a, b, c])


def test_storyboard_has_a_frame_per_step_and_era_and_unique_ids(page_html):
    a, b, c, page = page_html
    assert len(re.findall(r"data-frame ", a)) == 2 * 8  # 7 statements + the empty start, 2 eras
    assert len(re.findall(r"data-frame ", b)) == 2 * 9
    p = _Ids()
    p.feed(page)
    assert len(p.ids) == len(set(p.ids)), "duplicate ids on a page with three storyboards"
    roots = [v["id"] for t, v in p.tags if "thpviz-storyboard" in v.get("class", "").split()]
    assert len(roots) == 3 and roots[0] != roots[2]


def test_storyboard_is_self_contained(page_html):
    *_, page = page_html
    p = _Ids()
    p.feed(page)
    for tag, attrs in p.tags:
        assert "src" not in attrs, (tag, attrs)
        assert tag not in ("iframe", "img", "script") or not attrs, (tag, attrs)
        for k in ("href", "xlink:href"):
            assert attrs.get(k, "#").startswith(("#", "data:")), (tag, attrs)
    assert "@import" not in page and "@font-face" not in page and "url(http" not in page
    # only the SVG namespaces are URLs
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls


def test_storyboard_shows_the_anon_vma_move_only_under_andrea_v1(page_html):
    a, *_ = page_html
    frames = frames_of(a)
    last_v1, last_46 = unescape(frames[(0, 7)]), unescape(frames[(1, 7)])
    assert "page->mapping (moved this step)" in last_v1 and "rmap-broken" in last_v1
    assert "moved this step" not in last_46 and "rmap-broken" not in last_46


def test_storyboard_hides_the_verdicts_until_revealed_and_masks_assert_values(page_html):
    _, b, *_ = page_html
    tabs = re.findall(r'<button type="button" role="tab"[^>]*>([^<]*)</button>', b)
    assert tabs == ["4.5", "4.6"], "the era tabs name the eras only"
    reveal = re.search(r'<details class="thpviz-reveal">(.*?)</details>', b, re.S)
    assert reveal and "cow-huge" in reveal.group(1) and "reuse" in reveal.group(1)
    outside = b.replace(reveal.group(0), "")
    assert 'class="thpviz-verdict"' not in outside
    lines = re.findall(r'<li data-line-step="\d+"[^>]*>([^<]*)</li>', b)
    assert "assert page_count(A) == ?" in [unescape(x) for x in lines]
    assert mask_assert("assert 4.5: page_count(A[5]) == 513   # 512 PTEs") == "assert 4.5: page_count(A[5]) == ?   # 512 PTEs"
    assert mask_assert("P: write A") == "P: write A"


def test_storyboard_opens_at_the_decisive_step():
    need(graphviz_run.available(), "graphviz's dot is not installed")
    r = run(parse_file(str(VFIO)), ERAS["4.5"])
    k = decisive_step(r)
    assert r.steps[k - 1].stmt.text == "P: write A[5]" and r.steps[k - 1].write_faults
    assert all(not s.write_faults for s in r.steps[k:])
    assert resolve_start([r], "decisive") == k
    assert resolve_start([r], "P: mprotect A rw") == 6 and resolve_start([r], 99) == len(r.steps)
    with pytest.raises(ValueError):
        resolve_start([r], "P: no such statement")
    html = storyboard_html(str(VFIO), ["4.5"], start="decisive")
    visible = re.findall(r'data-frame data-era="0" data-step="(\d+)">', html)
    assert visible == [str(k)]


def test_figures_open_at_a_readable_size_with_alt_text_and_a_phone_table():
    need(graphviz_run.available(), "graphviz's dot is not installed")
    r = run(parse_file(KIRILL_PATH), ERAS["andrea-v1"], keep_snapshots=True)
    k = len(r.steps)
    scene = build_scene(r.snapshots[k], r.snapshots[k - 1], r.steps[k - 1])
    html = scene_figure_html(scene, "fig-x")
    svg_tag = re.search(r"<svg[^>]*>", html).group(0)
    width = float(re.search(r'width="([\d.]+)px"', svg_tag).group(1))
    raw = graphviz_run.render_svg(graphviz_dot(scene))
    view_w = float(re.search(r'viewBox="[-\d.]+ [-\d.]+ ([\d.]+)', raw).group(1))
    smallest = min(float(x) for x in re.findall(r'font-size="([\d.]+)"', raw))
    assert width == pytest.approx(view_w * readable_scale(raw), abs=1)
    assert smallest * width / view_w >= MIN_TEXT_PX - 0.05  # the smallest text, in CSS px
    assert readable_scale(raw) >= PT_PX  # never smaller than natural size
    alt = unescape(re.search(r'role="img" aria-label="([^"]+)"', html).group(1))
    assert alt == alt_text(scene) and "C: write A[6]" in alt and "rmap-broken" in alt
    assert '<div class="thpviz-table"><table class="thpviz-counters"' in html
    assert "data-zoom" in html and "data-enlarge" in html and "data-view" in html
    # sizing only touches the root element's size
    assert sized_svg(raw, "p-").count("<text") == raw.count("<text")


@pytest.mark.browser
def test_storyboard_in_headless_chromium(page_html, tmp_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "the playwright python package is not installed")
    need(os.path.exists(CHROMIUM) or shutil.which("chromium") is not None, f"{CHROMIUM} is not installed")
    *_, page = page_html
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(page, encoding="utf-8")

    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
    requests, errors = [], []
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
                headless=True, args=FLAGS)
            try:
                pg = ctx.new_page()
                pg.on("request", lambda req: requests.append(req.url))
                pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
                pg.on("pageerror", lambda exc: errors.append(str(exc)))
                pg.goto(url)
                boards = pg.locator(".thpviz-storyboard")
                assert boards.count() == 3
                first, second = boards.nth(0), boards.nth(1)

                def visible(board):
                    f = board.locator("[data-frame]:visible")
                    assert f.count() == 1
                    return (f.get_attribute("data-era"), f.get_attribute("data-step"), f.inner_html())

                era0, step0, html0 = visible(first)
                assert (era0, step0) == ("0", "1")
                other = visible(second)
                first.locator("[data-next]").click()
                assert visible(first)[:2] == ("0", "2")
                assert first.locator("[data-step-label]").inner_text() == "step 2 / 7"
                # the slider, driven by the keyboard
                slider = first.locator("input[type=range]")
                slider.focus()
                pg.keyboard.press("End")
                e, k, html_last = visible(first)
                assert (e, k) == ("0", "7") and "rmap-broken" in html_last
                assert first.locator("li.cur").inner_text() == "C: write A[6]"
                # switch era: same step, another frame
                first.locator("[data-era-tab='1']").click()
                e, k, html_46 = visible(first)
                assert (e, k) == ("1", "7") and html_46 != html_last and "rmap-broken" not in html_46
                assert first.locator("[data-era-tab='1']").get_attribute("aria-selected") == "true"
                first.locator("[data-prev]").click()
                assert visible(first)[:2] == ("1", "6")
                # the other storyboards did not move
                assert visible(second) == other
                assert visible(boards.nth(2))[:2] == ("0", "1")
                # and they work on their own
                second.locator("[data-era-tab='1']").click()
                assert visible(second)[:2] == ("1", "1")
                assert visible(first)[:2] == ("1", "6")
                # an SVG diagram is drawn
                assert first.locator("[data-frame]:visible .thpviz-lr svg").count() == 1
            finally:
                ctx.close()
    finally:
        server.shutdown()
        server.server_close()
    assert not errors, (errors, requests)
    assert requests, "no request recorded"
    for u in requests:
        assert u.startswith(("http://127.0.0.1:", "http://localhost:", "data:", "about:")), u


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_storyboard_command_opens_where_asked_and_reveals_on_request(tmp_path):
    need(graphviz_run.available(), "graphviz's dot is not installed")
    from thpviz.cli import main

    out = tmp_path / "sb.html"
    assert main(["storyboard", str(VFIO), "--era", "4.5", "--start", "decisive", "-o", str(out)]) == 0
    html = out.read_text()
    assert re.findall(r'data-frame data-era="0" data-step="(\d+)">', html) == ["7"]
    assert '<details class="thpviz-reveal">' in html
    assert main(["storyboard", str(VFIO), "--era", "4.5", "--start", "P: mprotect A ro", "--show-verdicts",
                 "-o", str(out)]) == 0
    html = out.read_text()
    assert re.findall(r'data-frame data-era="0" data-step="(\d+)">', html) == ["5"]
    assert '<details class="thpviz-reveal">' not in html and 'class="thpviz-verdict"' in html
    assert main(["storyboard", str(VFIO), "--era", "4.5", "--start", "P: nothing like it", "-o", str(out)]) == 2
