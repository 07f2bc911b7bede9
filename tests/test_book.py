"""The book builds without a warning from the committed (executed) chapters, math included offline.

The HTML is built once per test session (``built_book``, reused by tests/test_browser.py) from a copy of the
working tree, so a test never writes into the repository's own ``_build``.
"""
import functools
import math
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

    def files(entries: list[dict]) -> list[str]:  # entries and their sections, in order
        return [page for entry in entries for page in [entry["file"], *files(entry.get("sections", []))]]

    return [toc["root"]] + files(toc["chapters"])


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


# --- the report page's layout: verdicts per seed, the paper's numbers, the table and the figure --------------

def _fake_items(monkeypatch, *claims):
    """Make the report see one paper item of chapter 01 with ``claims`` (the machinery, not the chapter)."""
    from ebmflow.book import report
    from ebmflow.book.claims import PaperItem

    item = PaperItem("Table 9", "01_motivating_example", "a table", tuple(claims), rebuilt_by="motivating.numbers")
    monkeypatch.setattr(report, "paper_items", lambda: [item])
    return report


def _lowest_a():
    from ebmflow.book.claims import Claim

    return Claim("A is lower than B", "A 0.50, B 2.0 (Table 9)", "A {t9_a:.2f}, B {t9_b:.2f}", "A < B",
                 lambda g: g["t9_a"] < g["t9_b"])


def test_verdict_rows_judge_every_seed_and_summarise_ours(monkeypatch):
    report = _fake_items(monkeypatch, _lowest_a())
    seeds = [{"t9_a": 1.0, "t9_b": 2.0}, {"t9_a": 3.0, "t9_b": 2.0}, {"t9_a": 2.0, "t9_b": 2.0}, {"other": 1}]
    [row] = report.verdict_rows({"01_motivating_example": seeds})
    assert row["seeds"] == "1 of 3"  # the seed without the keys was not run
    assert row["verdict"] == "holds in some seeds"
    assert row["ours"] == "A 2.00 ± 1.00, B 2.00 ± 0.00"
    [row] = report.verdict_rows({"01_motivating_example": seeds[:1]})
    assert (row["seeds"], row["verdict"], row["ours"]) == ("1 of 1", "holds", "A 1.00, B 2.00")
    assert report.verdict_rows(seeds[0]) == report.verdict_rows({"01_motivating_example": seeds[:1]})  # flat = 1 seed
    [row] = report.verdict_rows({"01_motivating_example": [{"t9_a": 3.0, "t9_b": 2.0}, {"t9_a": float("nan"),
                                                                                          "t9_b": 2.0}]})
    assert (row["seeds"], row["verdict"]) == ("0 of 2", "does not hold")
    assert row["ours"].startswith("A 3.00 (1 of 2 seeds diverged)")
    [row] = report.verdict_rows({})
    assert (row["seeds"], row["verdict"]) == ("—", "not run")


def test_paper_numbers_are_read_by_label_range_and_percentage():
    from ebmflow.book.report import paper_values

    assert paper_values("flowMC-EBM 0.94, NT-EBM 1.2e-3 (CIFAR-10)") == [("flowMC-EBM", 0.94, 0.94),
                                                                          ("NT-EBM", 1.2e-3, 1.2e-3)]
    assert paper_values("≈0.70–0.78 (read off the figure)") == [("", 0.70, 0.78)]
    assert paper_values("≈0 ↔ ≈1") == [("", 0.0, 0.0), ("", 1.0, 1.0)]
    assert paper_values("5–10% (CIFAR-10)") == [("", 0.05, 0.10)]
    assert paper_values("not measured in the paper") == []


def test_quantities_pair_the_papers_number_with_ours(monkeypatch):
    from ebmflow.book.claims import Claim

    swing = Claim("B swings", "≈0 ↔ ≈1", "{t9_b_min:.2f} – {t9_b_max:.2f}", "min < 0.2 and max > 0.9",
                  lambda g: g["t9_b_min"] < 0.2 and g["t9_b_max"] > 0.9)
    report = _fake_items(monkeypatch, _lowest_a(), swing)
    seeds = [{"t9_a": 0.01, "t9_b": 2.0, "t9_b_min": 0.1, "t9_b_max": 0.95},
             {"t9_a": 0.03, "t9_b": 4.0, "t9_b_min": 0.0, "t9_b_max": 1.0}]
    found = {q.key: q for q in report.quantities({"01_motivating_example": seeds})}
    assert found["t9_a"].label == "A" and found["t9_a"].paper == (0.5, 0.5)
    assert found["t9_b"].paper == (2.0, 2.0) and found["t9_b"].mean == 3.0
    assert found["t9_b_min"].paper == (0.0, 0.0) and found["t9_b_max"].paper == (1.0, 1.0)
    assert (found["t9_b_min"].label, found["t9_b_max"].label) == ("min", "max")
    fig = report.paper_vs_ours_figure({"01_motivating_example": seeds})
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert len(panels) == 2  # one panel per quantitative claim
    assert panels[0].get_xscale() == "log"  # 0.01 .. 2: more than a decade
    assert panels[1].get_xscale() == "linear"


def test_verdict_table_is_a_wrapping_list_table_with_one_row_per_claim(monkeypatch):
    report = _fake_items(monkeypatch, _lowest_a())
    table = report.verdict_table_markdown(report.verdict_rows({"01_motivating_example": [{"t9_a": 1, "t9_b": 2}]}))
    assert table.startswith(":::{list-table}") and ":class: ebmflow-report" in table
    assert table.count("\n* - ") == 2  # header + one claim
    assert "{bdg-success}`holds`" in table and "rule: A \\< B" in table


def test_report_links_to_the_figure_when_the_chapter_names_it(monkeypatch, tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    report = _fake_items(monkeypatch, _lowest_a())
    notebook = tmp_path / "chapter.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("(table-9)=\n## Table 9"),
                                       new_code_cell("fig", metadata={"mystnb": {"figure": {"name": "figure-2"}}})]),
                   notebook)
    assert report._targets(notebook) == {"table-9", "figure-2"}
    [item] = report.paper_items()
    assert report.item_label(item) == "table-9"
    monkeypatch.setattr(report, "_targets", lambda _: {"table-9"})
    assert report._link(item) == "{ref}`Table\u00a09 <table-9>`"  # a no-break space: never split in a narrow column
    monkeypatch.setattr(report, "_targets", lambda _: set())
    assert report._link(item) == "{doc}`Table\u00a09 <01_motivating_example>`"


def test_verdict_summary_counts_claims_and_seeds(monkeypatch):
    report = _fake_items(monkeypatch, _lowest_a(), _lowest_a())
    rows = report.verdict_rows({"01_motivating_example": [{"t9_a": 1, "t9_b": 2}, {"t9_a": 3, "t9_b": 2}]})
    assert report.verdict_summary_markdown(rows) == ("Of the paper's 2 claims, **0 hold**, **2 in some seeds only**, "
                                                     "**0 do not** (checked on each of 2 seeds).")


# --- where the report's numbers come from: the records of one profile, never mixed ----------------------------

def _record(root, seed, value, profile="cpu", parameters=None, version=None, commit="c0ffee1234", chapter=None):
    from ebmflow.book import records

    record = records.make_record(
        chapter=chapter or "01_motivating_example", profile=profile, seed=seed, device="cpu",
        overrides=parameters or {}, config={"seed": seed}, glued={"fig1_final_weight_flowmc": value,
                                                                   "fig1_weight_error_flowmc": abs(value - 2 / 3)},
        timings={}, seconds=1.0, commit=commit, machine={})
    if version:
        record["ebmflow_version"] = version
    return records.write_record(record, root)


def _evidence(root, profile="cpu"):
    from ebmflow.book.report import load_evidence

    return load_evidence(profile, root=root, chapters=["01_motivating_example"])["01_motivating_example"]


def test_evidence_is_the_records_of_one_profile_with_every_seed(tmp_path):
    for seed, value in enumerate([0.70, 0.66, float("nan")]):
        _record(tmp_path, seed, value)
    _record(tmp_path, 0, 0.1, profile="smoke")  # another profile: never part of the cpu verdicts
    ev = _evidence(tmp_path)
    assert (ev.source, ev.profile, ev.seeds) == ("records", "cpu", (0, 1, 2))
    assert [g["fig1_final_weight_flowmc"] for g in ev.glued][:2] == [0.70, 0.66]
    assert math.isnan(ev.glued[2]["fig1_final_weight_flowmc"])  # stored as null, read back as NaN (diverged)
    assert ev.seeds_text == "cpu profile, seeds 0, 1, 2" and ev.commit_text == "c0ffee12"
    assert _evidence(tmp_path, "smoke").seeds == (0,)


def test_evidence_never_combines_library_versions_or_parameter_sets(tmp_path):
    from ebmflow import __version__

    _record(tmp_path, 0, 0.70)
    _record(tmp_path, 1, 0.50, version="0.0.1")
    _record(tmp_path, 2, 0.10, parameters={"weights": [0.1, 0.9]})  # a sweep of the chapter
    ev = _evidence(tmp_path)
    assert ev.seeds == (0,) and ev.versions == (__version__,)
    assert any("0.0.1" in note for note in ev.notes) and any("other parameters" in note for note in ev.notes)
    other = tmp_path / "other"
    _record(other, 0, 0.70, version="0.0.1")
    _record(other, 1, 0.50, version="0.0.2")
    refused = _evidence(other)  # two versions, none of this one: nothing is combined
    assert refused.source != "records"
    assert any("not combined" in note for note in refused.notes)


def test_evidence_falls_back_to_the_page_and_flags_a_page_of_another_run(tmp_path, monkeypatch):
    from ebmflow.book import report

    monkeypatch.setattr(report, "_read_checked", lambda name, warn=None: {"fig1_final_weight_flowmc": 0.7})
    monkeypatch.setattr(report, "_copy_metadata", lambda name: {"profile": "smoke", "seed": 3, "parameters": {}})
    ev = _evidence(tmp_path)  # no records at all
    assert (ev.source, ev.profile, ev.seeds) == ("notebook", "smoke", (3,))
    assert "no records" in ev.notes[-1] and not ev.copy_differs
    _record(tmp_path, 0, 0.70)
    ev = _evidence(tmp_path)
    assert ev.source == "records" and ev.copy_differs  # the page shows a smoke run, the verdicts the cpu records
    assert "other run" in report.provenance_markdown({ev.chapter: ev})
    assert "shows another run" in report.provenance_sentence({ev.chapter: ev}, "cpu")


def test_report_states_profile_seeds_and_commit_of_every_row_and_table(tmp_path):
    from ebmflow.book import report, report_tables

    for seed, value in enumerate([0.70, 0.60]):
        _record(tmp_path, seed, value)
    evidence = {"01_motivating_example": _evidence(tmp_path)}
    rows = [r for r in report.verdict_rows(evidence) if r["chapter"] == "01_motivating_example"]
    assert rows[0]["seeds"] == "1 of 2" and rows[0]["verdict"] == "holds in some seeds"
    assert rows[0]["ours"] == "0.650 ± 0.071"
    assert rows[0]["source"] == "cpu · seeds 0, 1 · records · commit c0ffee12"
    table = report.verdict_table_markdown(rows)
    assert "numbers: cpu · seeds 0, 1" in table and "{ref}`1 of 2 <seeds-figure-1>`" in table
    per_seed = report.per_seed_markdown(evidence)
    assert "(seeds-figure-1)=" in per_seed and "{dropdown}" in per_seed and "seed 1" in per_seed
    tables = report_tables.tables_markdown(evidence)
    assert ":name: report-figure-1" in tables and "cpu profile, seeds 0, 1" in tables and "c0ffee12" in tables
    assert "0.650\u00a0±\u00a00.071" in tables and "≈0.70–0.78" in tables  # a number is never split


def test_report_glues_every_key_the_chapters_boxes_read(tmp_path):
    """Each `{glue:text}`99_report.ipynb::KEY:s`` in a chapter is one the report glues, whatever was run (a
    missing one would fail the -W build)."""
    import nbformat

    from ebmflow.book import report
    from ebmflow.book.chapters import CHAPTERS

    keys = set(report.summary_keys())
    for chapter in CHAPTERS.values():
        text = "\n".join(c.source for c in nbformat.read(chapter.notebook, as_version=4).cells
                         if c.cell_type == "markdown")
        for key, spec in re.findall(r"99_report\.ipynb::([^`:]+):?([^`]*)`", text):
            assert key in keys, (chapter.name, key)
            assert spec == "s", (chapter.name, key, "cross-notebook glue needs an explicit :s (myst-nb)")
    _record(tmp_path, 0, 0.70)
    texts = report.summaries({"01_motivating_example": _evidence(tmp_path)})
    assert set(texts) == keys and texts["seeds_fig1_final_weight_flowmc"] == "0.700"
    assert texts["held_figure-1-1"] == "1 of 1 seeds" and texts["seeds_table1_flowmc_rings"] == "—"
    assert report.summaries({})["held_figure-1-1"] == "not run"


def test_mean_sd_shares_the_exponent_in_scientific_notation():
    from ebmflow.book.report import _mean_sd, _summary

    assert _mean_sd(1.05e-3, 7.94e-5, ".2e") == "(1.05 ± 0.08)e-03"
    assert _summary([0.5, 0.7], ".2f") == "0.60 ± 0.14"
    assert _summary([0.5, float("nan")], ".2f") == "0.50 (1 of 2 seeds diverged)"


# --- the chapters as a reader sees them ------------------------------------------------------------------------

def _chapters():
    from ebmflow.book.chapters import CHAPTERS

    return [c for c in CHAPTERS.values() if c.name[:2].isdigit() and c.name != "99_report" and not c.copy_of]


@pytest.mark.parametrize("chapter", _chapters(), ids=lambda c: c.name)
def test_chapter_reads_as_narrative(chapter):
    """Opens with what it reproduces (or the question beyond the paper) and a box of its headline numbers; set-up
    and parameters cells collapsed or removed; every figure named, captioned and cited with {numref}; the figures
    of paper items follow the report's labels (figure-N)."""
    import nbformat

    from ebmflow.book.report import item_label

    cells = nbformat.read(chapter.notebook, as_version=4).cells
    first = cells[0].source
    assert "What this chapter reproduces" in first or "The question beyond the paper" in first, chapter.name
    assert "{admonition}" in first and "ebmflow-box" in first, "a 'paper vs ours' box at the top"
    hidden = {"hide-cell", "remove-cell"}
    for cell in cells:
        tags = set(cell.metadata.get("tags", []))
        if "parameters" in tags or "chapter_config(" in cell.source or "glue_numbers(" in cell.source.split("\n")[0]:
            assert tags & hidden or "hide-input" in tags, (chapter.name, cell.source[:60])
    markdown = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    names = set()
    for cell in cells:
        figure = cell.metadata.get("mystnb", {}).get("figure")
        if cell.cell_type == "code" and "savefig(" in cell.source:
            assert figure and figure.get("name") and len(figure.get("caption", "")) > 40, (chapter.name, cell.source)
            names.add(figure["name"])
    for name in names - {"ratio-sweep"}:  # the sweep's figure is cited by the text it generates
        assert f"{{numref}}`{name}`" in markdown, (chapter.name, name)
    for label in re.findall(r"\{numref\}`([^`<]+)`", markdown):
        assert label in names, (chapter.name, label)
    for item in chapter.items:
        if item.item.startswith("Figure") and item.rebuilt_by.split(".")[-1].startswith("figure"):
            assert item_label(item) in names, (chapter.name, item.item)
    assert "x-small" not in markdown


def test_runner_hides_papermills_injected_cell():
    from nbformat.v4 import new_code_cell, new_notebook

    from ebmflow.book.runner import hide_injected_parameters

    notebook = new_notebook(cells=[new_code_cell("profile = 'cpu'", metadata={"tags": ["injected-parameters"]}),
                                   new_code_cell("x = 1")])
    hide_injected_parameters(notebook)
    hide_injected_parameters(notebook)
    assert notebook.cells[0].metadata["tags"] == ["injected-parameters", "remove-cell"]
    assert "remove-cell" not in notebook.cells[1].metadata.get("tags", [])


def test_a_copy_of_a_chapter_suffixes_its_labels_and_its_own_references_only():
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    from ebmflow.book.report import notebook_labels
    from ebmflow.book.runner import relabel

    notebook = new_notebook(cells=[
        new_markdown_cell("(table-1)=\n{numref}`figure-1` and {numref}`figure-1-panels`; {ref}`figure-2 <figure-2>`; "
                          "{glue:text}`99_report.ipynb::held_figure-1-1:s`"),
        new_code_cell("", metadata={"mystnb": {"figure": {"name": "figure-1"}}}),
        new_code_cell("", metadata={"mystnb": {"figure": {"name": "figure-1-panels"}}})])
    relabel(notebook, "-paper-profile")
    assert notebook_labels(notebook) == {"table-1-paper-profile", "figure-1-paper-profile",
                                         "figure-1-panels-paper-profile"}
    assert notebook.cells[0].source == (
        "(table-1-paper-profile)=\n{numref}`figure-1-paper-profile` and {numref}`figure-1-panels-paper-profile`; "
        "{ref}`figure-2 <figure-2>`; {glue:text}`99_report.ipynb::held_figure-1-1:s`")  # another page's: kept


def test_committed_pages_define_each_label_once():
    from ebmflow.book.report import _targets

    seen: dict[str, str] = {}
    for page in toc_pages():
        notebook = ROOT / f"{page}.ipynb"
        if notebook.exists():
            for name in _targets(notebook):
                assert name not in seen, f"label {name!r} is defined by {seen[name]} and {page}: the build warns"
                seen[name] = page
