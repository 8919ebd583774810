"""The report in a real browser (headless Chromium driven by Playwright): tables and figures
render, sorting works, no request leaves the file, no console error, light and dark, whole in a
full-page screenshot and in print.

Needs the Python package ``playwright`` and a Chromium binary (Debian: ``apt-get install
chromium``; another one with ``FACEBENCH_CHROMIUM=/path/to/chrome``). Skipped without them.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from facebench.report import write_report

CHROMIUM = os.environ.get("FACEBENCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

playwright_api = pytest.importorskip(
    "playwright.sync_api",
    reason="the browser test needs the Python package playwright (pip install playwright)",
)
if not Path(CHROMIUM).is_file():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (apt-get install chromium, or set FACEBENCH_CHROMIUM)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


def open_page(browser, path: Path, color_scheme: str = "light"):
    """Open ``path``; return the page and the lists of outside requests and console errors."""
    page = browser.new_page(viewport={"width": 1280, "height": 900}, color_scheme=color_scheme)
    outside: list[str] = []
    errors: list[str] = []

    def route(route):
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.route("**/*", route)
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("requestfailed", lambda request: outside.append(f"failed: {request.url}"))
    page.goto(path.resolve().as_uri(), wait_until="load")
    return page, outside, errors


def load_every_image(page) -> list[dict]:
    """Load every image (lazy ones and those in closed details too); their natural sizes."""
    return page.evaluate(
        """async () => {
            const images = Array.from(document.images);
            images.forEach((image) => { image.loading = "eager"; });
            await Promise.all(images.map((image) => image.decode().catch(() => null)));
            return images.map((image) => ({width: image.naturalWidth, alt: image.alt}));
        }"""
    )


def column_values(page, table, column: int) -> list[float]:
    return table.evaluate(
        "(table, column) => Array.from(table.tBodies[0].rows, (row) => Number(row.cells[column].dataset.v))",
        column,
    )


def test_the_report_renders_sorts_and_stays_offline(browser, runs, tmp_path):
    page, outside, errors = open_page(browser, runs[0] / "report.html")
    assert page.title().startswith("facebench report: ") and page.title().endswith("/seed-0")
    tables = page.locator("table")
    assert tables.count() >= 5  # ranking, placements, three tasks, failures, provenance
    lfw = page.locator("section", has=page.locator("h2#task-1")).locator("table").first
    assert lfw.locator("tbody tr").count() == 4  # 2 models x 2 layers
    assert lfw.is_visible()
    assert page.locator("svg[role=img]").first.bounding_box()["height"] > 50  # the ranking figure
    images = load_every_image(page)
    assert images and all(image["width"] > 0 and image["alt"] for image in images)

    header = lfw.locator("thead th", has_text="AUC").first
    column = header.evaluate("(th) => Array.from(th.parentNode.children).indexOf(th)")
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    values = column_values(page, lfw, column)
    assert values == sorted(values)
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "descending"
    assert column_values(page, lfw, column) == sorted(values, reverse=True)

    ranking = page.locator("table", has=page.locator("caption", has_text="Models ranked"))
    ranking.locator("thead th", has_text="Model").first.locator("button").click()
    assert ranking.locator("tbody th").all_inner_texts() == ["net-a", "net-b"]

    page.screenshot(path=str(tmp_path / "report.png"))
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert outside == []
    assert errors == []
    page.close()


def test_dark_mode_and_a_comparison(browser, runs, tmp_path):
    comparison = write_report(list(runs), tmp_path / "comparison.html")
    light, outside, errors = open_page(browser, comparison)
    dark, dark_outside, dark_errors = open_page(browser, comparison, color_scheme="dark")
    background = "() => getComputedStyle(document.body).backgroundColor"
    assert light.evaluate(background) == "rgb(255, 255, 255)"
    assert dark.evaluate(background) != light.evaluate(background)
    assert dark.locator("td.diff, td.sig").count() > 0
    assert dark.locator("tr.differs").count() > 0
    assert outside == dark_outside == [] and errors == dark_errors == []
    light.close()
    dark.close()


def test_a_full_page_screenshot_and_print_show_the_whole_page(browser, runs, tmp_path):
    from PIL import Image

    page, outside, errors = open_page(browser, runs[0] / "report.html")
    visible = (
        "() => Array.from(document.querySelectorAll('main > section'), "
        "(s) => getComputedStyle(s).contentVisibility)"
    )
    assert set(page.evaluate(visible)) == {"visible"}
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height > 2 * 900  # longer than the window: the screenshot has to lay out what is off screen
    page.screenshot(path=str(tmp_path / "full.png"), full_page=True)
    shot = Image.open(tmp_path / "full.png").convert("L")
    assert shot.height == height
    provenance = page.locator("h2#provenance").bounding_box()
    assert provenance["y"] > 900
    below = shot.crop((0, int(provenance["y"]), shot.width, min(shot.height, int(provenance["y"]) + 400)))
    assert below.getextrema()[0] < 128  # its heading and table are painted, not blank

    page.emulate_media(media="print")
    assert set(page.evaluate(visible)) == {"visible"}
    pdf = page.pdf()
    pages = len(re.findall(rb"/Type\s*/Page\b", pdf))
    assert pdf.startswith(b"%PDF") and pages > height // 1600  # a printed page is shorter than 1600 px
    assert outside == [] and errors == []
    page.close()
