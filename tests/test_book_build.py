"""Slow: the whole book pipeline in the demo profile, then the built pages in headless Chromium."""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from facelib import book

pytestmark = pytest.mark.slow

CDN = re.compile(r"""(src|href)=["']https?://[^"']*plotly""", re.IGNORECASE)


def _copy_checkout(src: Path, dst: Path) -> None:
    """Copy the repository's files (tracked, and untracked but not ignored) into ``dst``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=src, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for rel in filter(None, listed):
        source = src / rel
        if source.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dst / rel)


@pytest.fixture(scope="module")
def built(tmp_path_factory, repo_root):
    """Execute every page and build the HTML in a temporary copy of the checkout."""
    root = tmp_path_factory.mktemp("book")
    _copy_checkout(repo_root, root)
    assert not (root / "book" / "_generated").exists(), "build products must not be copied"
    timings = book.build(root=root, profile="demo")
    return root, timings


def test_every_page_executes(built):
    root, timings = built
    names = [p.name for p in book.pages(root)]
    assert set(names) <= set(timings)
    for name in names:
        assert (root / "book" / "_generated" / f"{name}.ipynb").is_file()
    assert not list((root / "book" / "_generated").glob("*.failed.ipynb"))


def test_every_toc_page_is_in_the_html(built):
    root, _ = built
    html = root / "_build" / "html"
    assert (html / "index.html").is_file()
    for entry in book.toc_files(root):
        assert (html / f"{entry}.html").is_file(), entry


def test_results_page_has_plotly_and_no_page_uses_a_cdn(built):
    root, _ = built
    html = root / "_build" / "html"
    results = (html / "book" / "_generated" / "09_results.html").read_text()
    assert "plotly-graph-div" in results and "Plotly.newPlot" in results
    assert "_static/plotly.min.js" in results
    assert (html / "_static" / "plotly.min.js").stat().st_size > 1_000_000
    for page in html.rglob("*.html"):
        assert not CDN.search(page.read_text(errors="replace")), f"{page} loads plotly from a CDN"


def test_recipes_page_shows_computed_schedule(built):
    root, _ = built
    page = (root / "_build" / "html" / "book" / "_generated" / "00_recipes.html").read_text()
    assert "4.8" in page and "0.045" in page
    assert re.search(r"<img[^>]+src=", page), "the schedule figure is rendered"


@pytest.fixture(scope="module")
def server(built):
    root, _ = built
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root / "_build" / "html"))

    class Quiet(handler.func):  # type: ignore[name-defined]
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=handler.keywords["directory"]))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.fail("chromium and chromedriver are required: `make test` installs them (apt-get, as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,1600"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_browser_renders_the_plotly_graph(server, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{server}/book/_generated/09_results.html")
    traces = WebDriverWait(browser, 30).until(
        lambda d: d.execute_script(
            "const g = document.querySelector('.js-plotly-plot');"
            "return g && g.data && g.querySelectorAll('.scatterlayer .trace').length ? g.data.length : 0;"
        )
    )
    assert traces == 4 * 9, "4 initialisations x 9 metrics"
    visible = browser.execute_script(
        "return document.querySelectorAll('.js-plotly-plot .scatterlayer .trace').length"
    )
    assert visible == 4, "the first metric's four lines are drawn"
    errors = [
        e for e in browser.get_log("browser")
        if e["level"] == "SEVERE" and "Identifier 'THEBE_JS_URL' has already been declared" not in e["message"]
    ]
    assert not errors, [e["message"] for e in errors]
