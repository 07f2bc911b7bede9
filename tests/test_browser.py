"""The built book as a reader sees it: every page opened in headless Chromium with the network blocked.

Per page: math is typeset by the bundled MathJax (no raw ``\\(`` or ``$$`` left, MathJax output present where the
page has math, its fonts loaded), every image loads, the console shows no error beyond the allow-list below,
every local link points to an existing file and anchor; the report page fits a 1280-px window without
horizontal scrolling and shows its verdict table; every chapter opens with its "paper vs ours" box. One full-page
screenshot per page goes to ``_build/screenshots/`` for a person to look at.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); skipped without them.
"""
import re
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from test_book import ROOT, build_book

WIDTH = 1280
SCREENSHOTS = ROOT / "_build" / "screenshots"
REPORT = "book/99_report.html"
# Console messages that are not ours to fix, each with the reason it is harmless.
ALLOWED_CONSOLE_ERRORS = {
    "THEBE_JS_URL": "sphinx-thebe and sphinx-book-theme both declare THEBE_JS_URL (upstream duplicate; thebe is "
                    "not used: the book has no launch buttons)",
}

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                       reason="headless Chromium not installed (apt-get install --no-install-recommends chromium "
                              "chromium-driver; .ci/run does)"),
]


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    return build_book(tmp_path_factory)


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: every host name fails to resolve
                     f"--window-size={WIDTH},900", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def pages(html: Path) -> list[Path]:
    """Every HTML page of the site (the theme's and Sphinx's own files under _static/_sources excluded)."""
    return sorted(p for p in html.rglob("*.html") if not {"_static", "_sources", "_images"} & set(p.parts))


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        self.ids.update(value for name, value in attrs if name in ("id", "name") and value)


_anchors: dict[Path, set[str]] = {}


def anchors(path: Path) -> set[str]:
    if path not in _anchors:
        parser = _Anchors()
        parser.feed(path.read_text(errors="replace"))
        _anchors[path] = parser.ids
    return _anchors[path]


WAIT_FOR_PAGE = """
const done = arguments[arguments.length - 1];
const images = () => Promise.all([...document.images].map(img => img.complete ? null :
    new Promise(resolve => { img.onload = img.onerror = resolve; })));
const math = () => (window.MathJax && MathJax.startup && MathJax.startup.promise) ? MathJax.startup.promise : null;
Promise.all([images(), math(), document.fonts.ready]).then(() => done(true), e => done(String(e)));
"""

INSPECT_PAGE = """
const body = document.body.cloneNode(true);
body.querySelectorAll('pre, code, script, style, mjx-container, .MathJax').forEach(e => e.remove());
const mathNodes = [...document.querySelectorAll('.math')];
return {
  text: body.textContent,
  math: mathNodes.length,
  mathUntypeset: mathNodes.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 60)),
  mjx: document.querySelectorAll('mjx-container').length,
  fontsFailed: [...document.fonts].filter(f => f.status === 'error').map(f => f.family),
  brokenImages: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  scrollWidth: document.documentElement.scrollWidth,
  // tables and images cut by their container (the theme puts tables in a scrolling box)
  clipped: [...document.querySelectorAll('article table, article img')]
    .filter(e => e.getBoundingClientRect().width > e.parentElement.getBoundingClientRect().width + 1)
    .map(e => e.tagName + ' ' + (e.className || e.getAttribute('src'))),
  innerWidth: window.innerWidth,
  // a chapter's "paper vs ours" box (the admonition at its top) and the report's verdict table
  boxes: document.querySelectorAll('.ebmflow-box').length,
  verdictTables: document.querySelectorAll('article table.ebmflow-report').length,
  height: document.documentElement.scrollHeight,
};
"""


def _local_link_problem(href: str, page: Path) -> str | None:
    """Why a link to a local file is broken (None when it resolves, or when it is not local)."""
    parts = urlsplit(href)
    if parts.scheme != "file":
        return None
    target = Path(unquote(parts.path))
    if target.is_dir():
        target = target / "index.html"
    if not target.exists():
        return f"{href}: no such file"
    fragment = unquote(parts.fragment)
    if fragment and target.suffix == ".html" and fragment not in anchors(target):
        return f"{href}: no anchor #{fragment}"
    return None


def _console_errors(driver) -> list[str]:
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    return [e for e in errors if not any(allowed in e for allowed in ALLOWED_CONSOLE_ERRORS)]


def test_every_page_renders_offline(html, browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: dict[str, list[str]] = {}
    pages_with_math = 0
    for page in pages(html):
        name = page.relative_to(html).as_posix()
        browser.set_window_size(WIDTH, 900)
        browser.get_log("browser")  # drop what the previous page logged
        browser.get(page.as_uri())
        ready = browser.execute_async_script(WAIT_FOR_PAGE)
        found = browser.execute_script(INSPECT_PAGE)
        page_problems = [] if ready is True else [f"page did not settle: {ready}"]
        if found["math"]:
            pages_with_math += 1
            if not found["mjx"] or found["mathUntypeset"]:
                page_problems.append(f"math not typeset: {found['mathUntypeset'][:3]}")
        raw = re.findall(r".{0,30}(?:\\\(|\\\[|\$\$).{0,30}", found["text"])
        if raw:
            page_problems.append(f"raw TeX left in the text: {raw[:3]}")
        if found["fontsFailed"]:
            page_problems.append(f"fonts failed to load: {sorted(set(found['fontsFailed']))}")
        page_problems += [f"image does not load: {src}" for src in found["brokenImages"]]
        page_problems += [p for href in found["links"] if (p := _local_link_problem(href, page))]
        page_problems += [f"console: {e}" for e in _console_errors(browser)]
        if name == REPORT and found["scrollWidth"] > found["innerWidth"]:
            page_problems.append(f"wider than the window: scrollWidth {found['scrollWidth']} > {found['innerWidth']}")
        if name == REPORT and found["clipped"]:
            page_problems.append(f"wider than the text column: {found['clipped']}")
        if name == REPORT and (not found["verdictTables"] or "missing '" in found["text"]):
            page_problems.append("the verdict table is missing or a claim reads a number no record has")
        if re.fullmatch(r"book/0\d_[a-z_]+\.html", name) and not name.endswith("_paper.html") and not found["boxes"]:
            page_problems.append("no 'paper vs ours' box at the top of the chapter")
        browser.set_window_size(WIDTH, min(found["height"] + 100, 20000))
        time.sleep(0.2)
        browser.save_screenshot(str(SCREENSHOTS / (name.replace("/", "__").removesuffix(".html") + ".png")))
        if page_problems:
            problems[name] = page_problems
    assert not problems, "\n".join(f"{page}:\n  " + "\n  ".join(p) for page, p in problems.items())
    assert pages_with_math, "no page has math"
