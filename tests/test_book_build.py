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
def built(tmp_path_factory, repo_root, request):
    """Execute every page (two at once, as make book) and build the HTML in a temporary copy of
    the checkout. Its runs' checkpoints (over 1 GB) are removed afterwards unless a test of the
    session failed."""
    root = tmp_path_factory.mktemp("book")
    _copy_checkout(repo_root, root)
    assert not (root / "book" / "_generated").exists(), "build products must not be copied"
    timings = book.build(root=root, profile="demo", jobs=2)  # as make book
    yield root, timings
    if request.session.testsfailed == 0:
        shutil.rmtree(root, ignore_errors=True)


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


def test_every_executed_page_is_dressed_for_readers(built):
    """Rerun box, parameters and setup cells collapsed (not removed), no injected cell, footer."""
    root, _ = built
    for page in book.pages(root):
        text = (root / "_build" / "html" / "book" / "_generated" / f"{page.name}.html").read_text()
        assert "facelib-rerun" in text and f"facelib book --only {page.name}" in text, page.name
        assert "facelib-footer" in text and "Commit <code>" in text and "Profile <code>demo" in text, page.name
        assert text.count("tag_hide-input") >= 2, f"{page.name}: parameters and setup cells collapsed"
        assert "injected-parameters" not in text and "# Parameters" not in text, page.name


def test_mathjax_is_local(built):
    root, _ = built
    html = root / "_build" / "html"
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    for page in html.rglob("*.html"):
        text = page.read_text(errors="replace")
        assert not re.search(r"src=[\"'][^\"']*(cdn|jsdelivr|unpkg)[^\"']*mathjax", text, re.I), page


def _pages(root: Path) -> list[str]:
    return ["index.html"] + [f"{entry}.html" for entry in book.toc_files(root)]


def console_errors(browser, url: str) -> list[str]:
    """Load ``url`` and return the SEVERE messages of its console log."""
    import time

    browser.get_log("browser")  # drop what an earlier page left
    browser.get(url)
    time.sleep(1.0)
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_no_page_logs_a_console_error(built, server, browser):
    root, _ = built
    problems = {}
    for page in _pages(root):
        errors = console_errors(browser, f"{server}/{page}")
        if errors:
            problems[page] = errors
        searches = browser.execute_script(
            "return Array.from(document.querySelectorAll('.search-button__button'))"
            ".filter(e => e.offsetParent !== null).length")
        assert searches <= 1, f"{page}: {searches} search boxes"
        if browser.execute_script("return document.querySelector('.math') !== null"):
            assert browser.execute_script("return document.querySelectorAll('mjx-container').length") > 0, \
                f"{page}: formulas not typeset"
    assert not problems, problems


def explorer_checks(browser, url: str) -> dict:
    """Drive page 02's face-size explorer and check that each control changes the plotted data.

    Returns what was read, for the caller to report.
    """
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "const r = document.querySelector('.facelib-explorer');"
        "const g = r && r.querySelector('.js-plotly-plot'); return g && g.data && g.data.length > 0;"))
    js = "const r = document.querySelector('.facelib-explorer');"
    shown = ("const s = r.facelib.shown(); const g = r.querySelector('.js-plotly-plot');"
             "return {edges: Array.from(s.edges), range: s.range, series: s.series.map(t => ({name: t.name,"
             " total: t.total, kept: t.kept, y: Array.from(t.y)})), traces: g.data.length,"
             " plotted: g.data[0].y.slice(0, -1), xtype: g.layout.xaxis.type, ytype: g.layout.yaxis.type,"
             " readout: r.querySelector('.fx-readout').textContent,"
             " y2ticks: g.layout.yaxis2.tickvals};")

    def state():
        return browser.execute_script(js + shown)

    def act(code: str):
        browser.execute_script(js + code)
        return state()

    first = state()
    n = first["series"][0]["total"]
    assert n > 0 and first["series"][0]["kept"] == n and first["xtype"] == "linear"
    assert first["plotted"] == first["series"][0]["y"], "the figure draws the shown histogram"
    assert first["y2ticks"] == [0, 0.2, 0.4, 0.6, 0.8, 1], "round ticks on the share axis"
    widths = {round(b - a, 6) for a, b in zip(first["edges"], first["edges"][1:])}
    assert len(widths) == 1, "linear bins"
    # the size range: raise the lower end -> fewer kept, the read-out says so
    lo = act("const i = r.querySelector('.fx-lo'); i.value = 3; i.dispatchEvent(new Event('input'));")
    assert lo["range"][0] == 3 and 0 < lo["series"][0]["kept"] < n
    assert f"kept {lo['series'][0]['kept']:,}" in lo["readout"] and "dropped" in lo["readout"]
    hi = act("const i = r.querySelector('.fx-hi'); i.value = 6; i.dispatchEvent(new Event('input'));")
    assert hi["range"] == [3, 6] and hi["series"][0]["kept"] < lo["series"][0]["kept"]
    # views: log-log has log axes and log-spaced bins
    loglog = act("r.querySelector('input[value=loglog]').click();")
    assert loglog["xtype"] == "log" and loglog["ytype"] == "log"
    ratios = {round(b / a, 6) for a, b in zip(loglog["edges"], loglog["edges"][1:])}
    assert len(ratios) == 1 and loglog["edges"] != first["edges"], "log-spaced bins"
    act("r.querySelector('input[value=linear]').click();")
    # tags: a second tag overlays a second histogram
    two = act("r.querySelectorAll('input[name=tag]')[1].click();")
    assert len(two["series"]) == 2 and two["traces"] == 4 and two["series"][1]["total"] < n
    # density: each shown histogram integrates to 1
    dens = act("r.querySelector('input[value=density]').click();")
    for t in dens["series"]:
        area = sum(y * (b - a) for y, a, b in zip(t["y"], dens["edges"], dens["edges"][1:]))
        assert abs(area - 1) < 1e-6, t["name"]
    # licence and faces-per-photo filters change the counts
    lic = act("r.querySelector('input[name=lic]').click();")
    assert lic["series"][0]["total"] < n
    act("r.querySelector('input[name=lic]').click();")
    fpp = act("r.querySelector('input[name=fpp]').click();")
    assert fpp["series"][0]["total"] < n
    # measure: width instead of sqrt(w h) -> other counts
    width = act("const m = r.querySelector('.fx-measure'); m.value = 'width';"
                "m.dispatchEvent(new Event('change'));")
    assert width["series"][0]["y"] != fpp["series"][0]["y"]
    csv = browser.execute_script(js + "return r.facelib.csv();")
    lines = csv.strip().splitlines()
    assert lines[0].startswith("# facelib face-size histogram") and len(lines) == len(width["edges"]) + 1
    return {"faces": n, "kept_after_range": hi["series"][0]["kept"], "csv_rows": len(lines) - 2}


def test_page_02_explorer_controls_change_the_plotted_data(server, browser):
    explorer_checks(browser, f"{server}/book/_generated/02_flickr_face.html")
