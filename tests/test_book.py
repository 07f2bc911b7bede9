"""The book builds without a warning from the committed (executed) chapters, math included offline.

The HTML is built once per test session (``built_book``, reused by tests/test_browser.py) from a copy of the
working tree, so a test never writes into the repository's own ``_build``.
"""
import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def _build(directory: Path) -> tuple[Path, int, str]:
    source = directory / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", "_build", ".git", "tests", "*.pdf",
                                                                ".pytest_cache", "__pycache__"))
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    result = subprocess.run([str(jupyter_book), "build", str(source), "-W", "-n", "--keep-going"],
                            capture_output=True, text=True)
    return source / "_build" / "html", result.returncode, result.stdout[-5000:] + result.stderr[-3000:]


def build_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML book built from the working tree with -W -n (once per session); fails the test on a warning."""
    html, returncode, log = _build(tmp_path_factory.getbasetemp() / "book")
    assert returncode == 0, log
    return html


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    return build_book(tmp_path_factory)


def toc_pages() -> list[str]:
    """Every page of the table of contents (root first), as paths relative to the book without suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [entry["file"] for entry in toc["chapters"]]


@pytest.mark.slow
def test_book_builds_without_warnings(built_book):
    for page in toc_pages():
        assert (built_book / f"{page}.html").exists(), page


@pytest.mark.slow
def test_math_is_typeset_by_the_bundled_mathjax(built_book):
    """MathJax comes from the site itself (sphinx-mathjax-offline), never from a CDN; the browser test checks
    that it renders."""
    bundled = built_book / "_static" / "mathjax" / "tex-chtml.js"
    assert bundled.exists(), "sphinx-mathjax-offline did not copy MathJax into _static"
    assert list((built_book / "_static" / "mathjax").rglob("*.woff*")), "MathJax's fonts are not bundled"
    pages_with_math = 0
    for page in toc_pages():
        html = (built_book / f"{page}.html").read_text()
        scripts = re.findall(r"<script[^>]*src=\"([^\"]*mathjax[^\"]*)\"", html, re.I)
        if 'class="math' in html:
            pages_with_math += 1
            assert scripts, f"{page} has math but loads no MathJax"
        assert all(not s.startswith(("http:", "https:", "//")) for s in scripts), f"{page} loads MathJax from {scripts}"
    assert pages_with_math, "no page has math: is dollarmath still enabled?"


def test_api_page_covers_the_public_layers():
    """The API reference documents every public layer of the library and is in the table of contents."""
    assert "book/api" in toc_pages()
    page = (ROOT / "book" / "api.md").read_text()
    documented = set(re.findall(r"^\.\. automodule:: (\S+)", page, re.M))
    assert documented >= {"ebmflow.targets", "ebmflow.models", "ebmflow.samplers", "ebmflow.methods",
                          "ebmflow.training", "ebmflow.metrics", "ebmflow.experiments.common", "ebmflow.seeding",
                          "ebmflow.checks"}
