"""Every chapter is registered, in the table of contents, and runs at the smoke profile under nbval."""
import dataclasses
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from ebmflow.book.chapters import BOOK_DIR, CHAPTERS
from ebmflow.book.config import parameters_cell
from ebmflow.book.runner import run_chapter

ROOT = BOOK_DIR.parent
NOTEBOOKS = sorted(p.stem for p in BOOK_DIR.glob("*.ipynb") if not p.name.startswith("."))  # not runs in progress


def _toc_files(entries: list[dict]) -> set[str]:
    """Notebook stems of the table of contents' entries and of their sections, at any depth."""
    return {name for entry in entries for name in {Path(entry["file"]).name} | _toc_files(entry.get("sections", []))}


def test_every_notebook_is_registered_and_in_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    in_toc = _toc_files(toc["chapters"]) | {Path(toc["root"]).name}
    assert NOTEBOOKS, "no chapter found in book/"
    assert set(NOTEBOOKS) == set(CHAPTERS), "every notebook in book/ must be registered in ebmflow.chapters"
    assert set(NOTEBOOKS) <= in_toc, "every notebook in book/ must be listed in _toc.yml"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_cell_names_every_knob(name):
    notebook = nbformat.read(CHAPTERS[name].notebook, as_version=4)
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell tagged 'parameters'"
    assigned = {line.split("=")[0].strip() for line in cells[0].source.splitlines()
                if "=" in line and not line.startswith("#")}
    fields = {f.name for f in dataclasses.fields(CHAPTERS[name].config_cls)}
    assert assigned == fields | {"profile"}
    if not CHAPTERS[name].summary:  # generated from the Config's fields and comments, so they never disagree
        expected = parameters_cell(CHAPTERS[name].config_cls, CHAPTERS[name].profiles)
        assert cells[0].source == expected, "run ebmflow.book.chapters.sync_parameters_cells()"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_chapter_was_executed_at_its_profile(name):
    """The book's chapters at the cpu profile; a copy of a chapter at its own (chapter 01 at the paper profile),
    with the profile's own settings."""
    chapter = CHAPTERS[name]
    metadata = nbformat.read(chapter.notebook, as_version=4).metadata.get("ebmflow", {})
    assert metadata.get("profile") == chapter.book_profile, (
        "commit the chapter executed by `make book`" if not chapter.copy_of else
        f"commit the page written by `ebmflow run {name}` (profile {chapter.book_profile})")
    if chapter.copy_of:
        assert metadata.get("chapter") == name and metadata.get("parameters") == {}, (
            f"{name} must be {chapter.copy_of} at the {chapter.book_profile} profile with no parameter changed: "
            f"run `ebmflow run {name}`")


def test_a_copy_of_a_chapter_shares_its_module_and_keeps_its_own_page_and_items():
    copies = [c for c in CHAPTERS.values() if c.copy_of]
    assert [c.name for c in copies] == ["01_motivating_example_paper"]
    [copy] = copies
    source = CHAPTERS[copy.copy_of]
    assert copy.module is source.module and copy.experiment == source.name and copy.book_profile == "paper"
    assert copy.source_notebook == source.notebook and copy.notebook == BOOK_DIR / f"{copy.name}.ipynb"
    assert [i.item for i in copy.items] == [f"{i.item} (paper profile)" for i in source.items]
    assert {i.chapter for i in copy.items} == {copy.name}
    assert [c.statement for i in copy.items for c in i.claims] == [c.statement for i in source.items for c in i.claims]
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entry = next(e for e in toc["chapters"] if Path(e["file"]).name == source.name)
    assert [Path(s["file"]).name for s in entry.get("sections", [])] == [copy.name], "a section of its chapter"


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_chapter_runs_at_smoke_profile_and_repeats_under_nbval(name, tmp_path):
    executed = run_chapter(name, "smoke", output=tmp_path / f"{name}.ipynb", progress=False, record=False)
    sanitize = Path(__file__).with_name("nbval_sanitize.cfg")
    result = subprocess.run([sys.executable, "-m", "pytest", "--nbval", str(executed), "-q", "-p",
                             "no:cacheprovider", "--nbval-sanitize-with", str(sanitize), "--rootdir",
                             str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
