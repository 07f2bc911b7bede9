"""The runner: outputs tied to their run and committed together, nothing half-written, failures named.

Kernel tests use a fake chapter (tests/_fake_chapter.py) that starts in about 2 s."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ebmflow.book import chapters, runner
from ebmflow.book.config import ConfigError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _fake_chapter  # noqa: E402

FAKE = Path(_fake_chapter.__file__)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """One successful run of the fake chapter in place (its book's copy), shared by the kernel tests."""
    root = tmp_path_factory.mktemp("template")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EBMFLOW_RESULTS_DIR", str(root / "results"))
        patch.setenv("EBMFLOW_LOG_DIR", str(root / "logs"))
        patch.setattr(runner, "RUNTIMES_FILE", runner.RUNTIMES_FILE)
        patch.setitem(chapters.CHAPTERS, _fake_chapter.NAME, None)
        _fake_chapter.register(root / "book")
        result = run()
    return root, result


@pytest.fixture
def book(tmp_path, monkeypatch, request):
    """The fake chapter registered with its notebook in tmp/book (a copy of the template's book when the test
    asks for ``template``); records, logs and runtimes under tmp."""
    import shutil

    monkeypatch.setenv("EBMFLOW_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("EBMFLOW_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setattr(runner, "RUNTIMES_FILE", runner.RUNTIMES_FILE)
    monkeypatch.setitem(chapters.CHAPTERS, _fake_chapter.NAME, None)
    if "template" in request.fixturenames:
        shutil.copytree(request.getfixturevalue("template")[0] / "book", tmp_path / "book")
    return _fake_chapter.register(tmp_path / "book").notebook.parent


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run(mode="ok", **kwargs):
    return runner.run_chapter(_fake_chapter.NAME, "smoke", {"mode": mode, **kwargs.pop("parameters", {})},
                              progress=False, echo=None, **kwargs)


# --- without a kernel --------------------------------------------------------------------------------------------

def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_temporaries_of_dead_runs_are_removed_and_live_ones_kept(tmp_path):
    dead, alive = dead_pid(), os.getpid()
    stale = [tmp_path / f".ch.tmp{dead}.ipynb", tmp_path / f".ch.figures.tmp{dead}", tmp_path / "figures" /
             ".figure1.tmp.png", tmp_path / "figures" / f".figure1.tmp{dead}.pdf"]
    (tmp_path / "figures").mkdir()
    stale[1].mkdir()
    for path in stale[:1] + stale[2:]:
        path.write_text("half")
    live = tmp_path / f".ch.tmp{alive}.ipynb"
    live.write_text("running")
    keep = [tmp_path / "ch.ipynb", tmp_path / "figures" / "figure1.png"]
    for path in keep:
        path.write_text("output")
    removed = runner.remove_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted(stale)
    assert all(p.exists() for p in keep + [live])


def test_a_commit_interrupted_half_way_is_completed_by_the_next_run(tmp_path):
    dead = dead_pid()
    (tmp_path / "figures").mkdir()
    moves = []
    for name, content in (("ch.ipynb", "new notebook"), ("figures/fig.png", "new png"), ("figures/fig.pdf", "new pdf")):
        source = tmp_path / f".{Path(name).name}.tmp{dead}"
        source.write_text(content)
        (tmp_path / name).write_text("old")
        moves.append([str(source), str(tmp_path / name)])
    os.replace(moves[0][0], moves[0][1])  # the killed run had moved the notebook only
    (tmp_path / f".ebmflow-commit.tmp{dead}.json").write_text(json.dumps(moves))
    runner.remove_stale_temporaries(tmp_path)
    assert [(tmp_path / n).read_text() for n in ("ch.ipynb", "figures/fig.png", "figures/fig.pdf")] == [
        "new notebook", "new png", "new pdf"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ch.ipynb", "figures"]


def test_estimate_scales_the_measured_training_time_by_the_work(book):
    chapter = chapters.CHAPTERS[_fake_chapter.NAME]
    runner.RUNTIMES_FILE.write_text(json.dumps({_fake_chapter.NAME: {"smoke": 26.0}}))
    config, _ = runner.normalized_overrides(chapter, "smoke", {"value": 3.0})  # estimated_work = value
    seconds, how = runner.estimate_seconds(chapter, "smoke", config)
    assert seconds == pytest.approx(runner.KERNEL_OVERHEAD_SECONDS + 20 * 3) and "×3" in how
    assert runner.estimate_seconds(chapter, "paper", config)[0] is None


def test_overrides_equal_to_the_profile_are_no_overrides(book):
    chapter = chapters.CHAPTERS[_fake_chapter.NAME]
    assert runner.normalized_overrides(chapter, "smoke", {"value": 1.0, "seed": 0})[1] == {}
    assert runner.normalized_overrides(chapter, "smoke", {"value": 2, "seed": 4})[1] == {"value": 2.0, "seed": 4}
    with pytest.raises(ConfigError, match="use --profile paper instead of -p profile=paper"):
        runner.normalized_overrides(chapter, "smoke", {"profile": "paper"})


@pytest.mark.parametrize("where, message", [
    ("out.ipynb", "is a directory"),
    ("out.txt", "must be a notebook path ending in .ipynb"),
    ("book/01_motivating_example.ipynb", "is chapter 01_motivating_example's notebook"),
])
def test_bad_output_paths_are_refused_before_a_kernel_starts(book, tmp_path, where, message):
    (tmp_path / "out.ipynb").mkdir()
    output = runner.ROOT / where if where.startswith("book/") else tmp_path / where
    with pytest.raises(Exception, match=message):
        runner.check_run(_fake_chapter.NAME, "smoke", {}, output)


def test_resuming_checkpoints_of_another_run_is_refused(tmp_path):
    folder = tmp_path / ".ch.checkpoints"
    identity = {"profile": "smoke", "seed": 0}
    assert runner._prepare_checkpoints(folder, identity, resume=False) is False
    (folder / "a.pt").write_bytes(b"x")
    assert runner._prepare_checkpoints(folder, identity, resume=True) is True
    with pytest.raises(ConfigError, match="written by another run"):
        runner._prepare_checkpoints(folder, {"profile": "cpu", "seed": 0}, resume=True)
    assert runner._prepare_checkpoints(folder, {"profile": "cpu", "seed": 0}, resume="auto") is False
    assert not (folder / "a.pt").exists()


# --- with a kernel -------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_run_commits_notebook_figures_record_and_runtime(template, book):
    root, result = template
    assert result.output == root / "book" / "zz_fake.ipynb"
    assert sorted(p.name for p in (root / "book" / "figures").iterdir()) == [
        "figa.pdf", "figa.png", "figb.pdf", "figb.png"]
    record = json.loads(result.record_path.read_text())
    assert record["numbers"] == {"fake_value": 2.0, "fake_nan": None, "fake_diverged_at": 0}
    assert record["timings"] == {"fake_seconds": 0.5} and record["diverged"] is True
    assert _fake_chapter.NAME in json.loads((root / "book" / "runtimes.json").read_text())
    assert not [p for p in (root / "book").iterdir() if p.name.startswith(".")], "no temporary or checkpoint left"
    # the same seed gives byte-identical figures (PDF without a creation date); a run with an override records
    # no runtime
    before, runtimes = snapshot(book / "figures"), (book / "runtimes.json").read_bytes()
    run(parameters={"stop_after": 3})
    assert snapshot(book / "figures") == before and (book / "runtimes.json").read_bytes() == runtimes


def _register_copy(book: Path, monkeypatch) -> "_fake_chapter.FakeChapter":
    """The fake chapter's copy at the paper profile (as chapter 01's paper page), its page in tmp/book."""
    copy = _fake_chapter.FakeChapter(f"{_fake_chapter.NAME}_paper", "the fake chapter at the paper profile",
                                     _fake_chapter, copy_of=_fake_chapter.NAME, book_profile="paper",
                                     source=book / f"{_fake_chapter.NAME}_paper.ipynb")
    monkeypatch.setitem(chapters.CHAPTERS, copy.name, copy)
    return copy


def test_a_copys_page_is_run_at_its_profile_whichever_way_it_is_named(book, monkeypatch):
    copy = _register_copy(book, monkeypatch)
    assert copy.source_notebook == chapters.CHAPTERS[_fake_chapter.NAME].notebook
    chapter, _, _, output = runner.check_run(_fake_chapter.NAME, "paper", {}, copy.notebook)  # --output its page
    assert (chapter.name, output) == (copy.name, copy.notebook)
    assert runner.check_run(copy.name, "paper")[0] is copy
    for name, output in ((copy.name, None), (_fake_chapter.NAME, copy.notebook)):
        with pytest.raises(ConfigError, match=f"is chapter {_fake_chapter.NAME} at the paper profile: run it with "
                                              f"--profile paper"):
            runner.check_run(name, "smoke", {}, output)
    assert runner.check_run(copy.name, "smoke", {}, book / "elsewhere.ipynb")[0] is copy  # not its page: any profile
    runner.RUNTIMES_FILE.write_text(json.dumps({_fake_chapter.NAME: {"paper": 26.0}}))
    config, _ = runner.normalized_overrides(copy, "paper", {})
    assert runner.estimate_seconds(copy, "paper", config)[0] == 26.0  # its source's runtime at its profile


@pytest.mark.slow
def test_a_copys_page_names_its_profile_and_keeps_figures_records_runtimes_apart(template, book, monkeypatch):
    copy = _register_copy(book, monkeypatch)
    result = runner.run_chapter(_fake_chapter.NAME, "paper", output=copy.notebook, progress=False, echo=None)
    import nbformat

    notebook = nbformat.read(copy.notebook, as_version=4)
    assert notebook.metadata["ebmflow"]["chapter"] == copy.name and notebook.metadata["ebmflow"]["profile"] == "paper"
    assert notebook.cells[0].source.startswith("# A fake chapter (paper profile)\n\n*This page is {doc}`chapter zz "
                                               "<zz_fake>` executed at the `paper` profile")
    assert sorted(p.name for p in (book / "figures").iterdir()) == [
        "figa.pdf", "figa.png", "figa_paper.pdf", "figa_paper.png", "figb.pdf", "figb.png", "figb_paper.pdf",
        "figb_paper.png"]  # beside the source's own (copied from the template's book)
    assert result.record_path == book.parent / "results" / "paper" / _fake_chapter.NAME / "seed0-default.json"
    assert json.loads(result.record_path.read_text())["chapter"] == _fake_chapter.NAME
    assert set(json.loads(runner.RUNTIMES_FILE.read_text())[_fake_chapter.NAME]) >= {"smoke", "paper"}
    assert not [p for p in book.iterdir() if p.name.startswith(".")], "no temporary or checkpoint left"


def test_a_relative_output_keeps_figures_and_checkpoints_beside_it(book, monkeypatch, tmp_path):
    """The kernel runs in book/: the folders it is given are absolute, whatever the current folder."""
    import papermill

    seen = {}

    def execute_notebook(source, output, **kwargs):
        seen.update(figures=os.environ["EBMFLOW_FIGURE_DIR"], checkpoints=os.environ["EBMFLOW_CHECKPOINT_DIR"])
        raise RuntimeError("stop here")

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(runner.RunError):
        runner.run_chapter(_fake_chapter.NAME, "smoke", output=Path("out") / "x.ipynb", progress=False, echo=None)
    assert Path(seen["figures"]).is_absolute() and Path(seen["figures"]).parent == tmp_path / "out"
    assert Path(seen["checkpoints"]) == tmp_path / "out" / ".x.checkpoints"


def cli(book: Path, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(FAKE), str(book), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs)


@pytest.mark.slow
def test_failed_run_elsewhere_is_one_line_and_leaves_every_output_untouched(template, book, tmp_path):
    import shutil

    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(book, elsewhere)  # previous outputs of an earlier run written there
    (elsewhere / "zz_fake.ipynb").rename(elsewhere / "out.ipynb")
    book_before, elsewhere_before = snapshot(book), snapshot(elsewhere)
    process = cli(book, "run", "zz_fake", "--profile", "smoke", "-p", "mode=fail", "-p", "value=7.0",
                  "--output", str(elsewhere / "out.ipynb"))
    out, err = process.communicate(timeout=300)
    assert process.returncode == 1, err
    assert "Traceback" not in err and "An Exception was encountered" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith('ebmflow: error: zz_fake failed in code cell 4 (if config.mode == "fail":): ValueError: '
                           'planned failure in the work cell (full traceback: ')
    assert "planned failure in the work cell" in Path(line.rsplit("(full traceback: ", 1)[1].rstrip(")")).read_text()
    assert snapshot(book) == book_before
    assert {k: v for k, v in snapshot(elsewhere).items() if ".checkpoints" not in k} == elsewhere_before


@pytest.mark.slow
def test_a_dead_kernel_names_the_cell_and_memory(book):
    before = snapshot(book)
    with pytest.raises(runner.RunError) as error:
        run("die")
    assert str(error.value) == ("zz_fake: the kernel died while running code cell 4 (if config.mode == \"fail\":); "
                                "it may have run out of memory (try a smaller profile, fewer chains or a bigger "
                                "machine)")
    assert {k: v for k, v in snapshot(book).items() if ".checkpoints" not in k} == before


def wait_for(path: Path, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the notebook never reached the marked point"
        time.sleep(0.05)


@pytest.mark.slow
def test_kill_during_a_figure_write_leaves_the_previous_outputs_and_the_next_run_cleans_up(template, book, tmp_path):
    before = snapshot(book)
    marker = tmp_path / "in-figure"
    process = cli(book, "run", "zz_fake", "--profile", "smoke", "-p", "mode=figure-kill",
                  env={**os.environ, "FAKE_MARKER": str(marker)})
    wait_for(marker, process)
    os.killpg(process.pid, signal.SIGKILL)  # the runner, in the middle of its kernel's figure write
    process.wait()
    leftovers = [p.name for p in book.iterdir() if p.name.startswith(".") and ".checkpoints" not in p.name]
    assert leftovers, "the killed run had temporaries (its figures were written to a temporary folder)"
    assert {k: v for k, v in snapshot(book).items() if not k.startswith(".")} == before
    run(parameters={"value": 4.0})
    assert not [p for p in book.rglob(".*") if ".checkpoints" not in p.name], "the next run removed them"


@pytest.mark.slow
def test_sigterm_is_handled_like_ctrl_c(template, book, tmp_path):
    before = snapshot(book)
    marker = tmp_path / "sleeping"
    process = cli(book, "run", "zz_fake", "--profile", "smoke", "-p", "mode=sleep",
                  env={**os.environ, "FAKE_MARKER": str(marker)})
    wait_for(marker, process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("ebmflow: terminated; nothing was written") and "Traceback" not in err
    assert not [p for p in book.iterdir() if p.name.startswith(".") and ".checkpoints" not in p.name]
    assert {k: v for k, v in snapshot(book).items() if ".checkpoints" not in k} == before
