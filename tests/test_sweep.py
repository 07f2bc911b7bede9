"""Sweeps and reproduce: runs keyed by (chapter, profile, parameters, seed), finished ones skipped, failures
reported without cancelling the others; a 2-seed smoke sweep through a local Ray started by the command."""
import json
import sys
from pathlib import Path

import nbformat
import pytest

from ebmflow import __version__
from ebmflow.book import chapters, records, runner, sweep
from ebmflow.book.cli import main
from ebmflow.checks import InputError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _fake_chapter  # noqa: E402

EXPERIMENTS = [c for c in chapters.CHAPTERS.values() if not c.summary and not c.copy_of]
COPIES = [c for c in chapters.CHAPTERS.values() if c.copy_of]


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("EBMFLOW_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("EBMFLOW_LOG_DIR", str(tmp_path / "logs"))
    return tmp_path / "results"


@pytest.mark.parametrize("text, seeds", [("0-4", [0, 1, 2, 3, 4]), ("3", [3]), ("0,2,7", [0, 2, 7]),
                                         ("0-2,9,1", [0, 1, 2, 9])])
def test_seed_lists(text, seeds):
    assert sweep.parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "a", "2-1", "-1", "1-", "0-2;3"])
def test_bad_seed_lists_are_refused(text):
    with pytest.raises(InputError, match="must list non-negative seeds"):
        sweep.parse_seeds(text)


@pytest.mark.parametrize("chapter", EXPERIMENTS, ids=lambda c: c.name)
def test_book_runs_every_chapter_over_its_default_seeds_first_seed_is_the_book_copy(chapter, results):
    specs = [s for s in sweep.book_specs("smoke") if s.chapter == chapter.name and s.key.endswith("-default")]
    assert [s.seed for s in specs] == list(sweep.default_seeds(chapter))
    assert [s.book_copy for s in specs] == [True] + [False] * (len(specs) - 1)
    assert specs[0].key == f"seed{specs[0].seed}-default"
    assert specs[0].record_path() == results / "smoke" / chapter.name / f"{specs[0].key}.json"


@pytest.mark.parametrize("chapter", COPIES, ids=lambda c: c.name)
def test_the_book_at_its_profile_runs_a_copy_once_at_the_copys_profile(chapter, results):
    [spec] = [s for s in sweep.book_specs(chapters.BOOK_PROFILE) if s.chapter == chapter.name]
    assert (spec.profile, spec.seed, spec.book_copy) == (chapter.book_profile, sweep.default_seeds(chapter)[0], True)
    assert spec.record_path() == results / chapter.book_profile / chapter.copy_of / f"{spec.key}.json"
    assert spec.run_dir() == results / chapter.book_profile / chapter.copy_of / spec.key
    assert not [s for s in sweep.book_specs("smoke") if s.chapter == chapter.name], "only at the book's profile"


def test_the_book_schedules_the_runs_its_summary_pages_read(results):
    from ebmflow.experiments import ratio_sweep

    specs = sweep.book_specs("smoke")
    scheduled = {(s.chapter, s.seed, s.key) for s in specs}
    assert len(scheduled) == len(specs), "every run once"
    for name, seeds, params in ratio_sweep.book_runs("smoke"):  # the keys of the commands the page documents
        for seed in seeds:
            assert (name, seed, sweep.sweep_specs(name, [seed], "smoke", params)[0].key) in scheduled


def test_overrides_equal_to_the_profile_do_not_change_the_key(results):
    epochs = chapters.CHAPTERS["01_motivating_example"].profiles["smoke"]["epochs"]
    same = sweep.sweep_specs("01_motivating_example", [1], "smoke", {"epochs": epochs})[0]
    other = sweep.sweep_specs("01_motivating_example", [1], "smoke", {"epochs": epochs + 1})[0]
    assert same.key == "seed1-default" and other.key.startswith("seed1-") and other.key != same.key
    assert sweep.sweep_specs("01_motivating_example", [1], "smoke", {"device": "cpu"})[0].key == "seed1-default"


def fake_outcome(spec, ok=True, value=0.5):
    record = records.make_record(chapter=spec.chapter, profile=spec.profile, seed=spec.seed, device="cpu",
                                 overrides=dict(spec.overrides), config={}, glued={"x": value + spec.seed},
                                 timings={}, seconds=1.0)
    if not ok:
        return sweep.Outcome(spec, False, 1.0, "planned failure", "Traceback: planned failure")
    return sweep.Outcome(spec, True, 1.0, record=record)


def test_a_failed_run_is_reported_and_does_not_cancel_the_others(results, monkeypatch, capsys):
    monkeypatch.setattr(sweep, "execute", lambda spec, commit_id=None: fake_outcome(spec, ok=spec.seed != 1))
    specs = sweep.sweep_specs("01_motivating_example", [0, 1, 2], "smoke", {})
    outcomes = sweep.run_specs(specs, inline=True, progress=False, commit_id="x")
    assert [o.ok for o in outcomes] == [True, False, True]
    err = capsys.readouterr().err
    assert "FAILED  01_motivating_example seed 1: planned failure (log: " in err
    assert [r["seed"] for r in records.load_records("01_motivating_example", "smoke")] == [0, 2]
    assert list((results.parent / "logs").iterdir()), "the failure's traceback went to a log file"


def test_reproduce_skips_finished_runs_and_reruns_only_what_is_missing(results, monkeypatch, tmp_path):
    ran = []
    monkeypatch.setattr(sweep, "execute", lambda spec, commit_id=None: ran.append(spec) or fake_outcome(spec))
    summaries = []
    monkeypatch.setattr(runner, "run_chapter", lambda name, profile, **kw: summaries.append(name))
    monkeypatch.setattr(sweep, "_keep", lambda outcome: records.write_record(outcome.record))
    monkeypatch.setattr(sweep, "_book_copy_matches", lambda spec: True)
    everything = sweep.book_specs("smoke")
    sweep.reproduce("smoke", inline=True, html=False, progress=False, echo=lambda line: None)
    assert ran == everything and summaries == [c.name for c in chapters.CHAPTERS.values() if c.summary]
    # an interrupted reproduce: one record lost -> only that run again
    everything[-1].record_path().unlink()
    ran.clear()
    sweep.reproduce("smoke", inline=True, html=False, progress=False, echo=lambda line: None)
    assert ran == [everything[-1]]
    ran.clear()
    sweep.reproduce("smoke", inline=True, html=False, progress=False, echo=lambda line: None)
    assert ran == []
    sweep.reproduce("smoke", force=True, inline=True, html=False, progress=False, echo=lambda line: None)
    assert ran == everything


def test_a_record_of_another_library_version_is_not_finished(results):
    spec = sweep.sweep_specs("01_motivating_example", [0], "smoke", {})[0]
    record = fake_outcome(spec).record
    records.write_record(record)
    assert sweep.is_finished(spec)
    records.write_record({**record, "ebmflow_version": "0.0.0"})
    assert not sweep.is_finished(spec)


def test_the_book_copy_is_finished_only_when_book_notebook_comes_from_that_run(results, tmp_path, monkeypatch):
    monkeypatch.setitem(chapters.CHAPTERS, _fake_chapter.NAME, None)
    chapter = _fake_chapter.register(tmp_path / "book")
    spec = sweep.sweep_specs(_fake_chapter.NAME, [0], "smoke", {})[0]
    spec = sweep.RunSpec(spec.chapter, spec.profile, spec.seed, spec.overrides, True, spec.results_root)
    records.write_record(fake_outcome(spec).record)
    assert not sweep.is_finished(spec), "book notebook never executed"
    notebook = nbformat.read(chapter.notebook, as_version=4)
    notebook.metadata["ebmflow"] = {"profile": "smoke", "run_key": spec.key, "ebmflow_version": __version__}
    nbformat.write(notebook, chapter.notebook)
    assert sweep.is_finished(spec)
    notebook.metadata["ebmflow"]["profile"] = "cpu"  # re-run in place at another profile
    nbformat.write(notebook, chapter.notebook)
    assert not sweep.is_finished(spec)


def test_the_book_copy_is_written_with_its_figures_and_runtime(results, tmp_path, monkeypatch):
    monkeypatch.setitem(chapters.CHAPTERS, _fake_chapter.NAME, None)
    monkeypatch.setattr(runner, "RUNTIMES_FILE", runner.RUNTIMES_FILE)
    chapter = _fake_chapter.register(tmp_path / "book")
    spec = sweep.sweep_specs(_fake_chapter.NAME, [0], "smoke", {})[0]
    spec = sweep.RunSpec(spec.chapter, spec.profile, spec.seed, spec.overrides, True, spec.results_root)
    outcome = fake_outcome(spec)
    outcome.notebook, outcome.figures = b'{"executed": 1}', {"figa.png": b"png", "figa.pdf": b"pdf"}
    sweep._keep(outcome)
    book = chapter.notebook.parent
    assert chapter.notebook.read_bytes() == b'{"executed": 1}'
    assert (book / "figures" / "figa.pdf").read_bytes() == b"pdf"
    assert json.loads(runner.RUNTIMES_FILE.read_text())[_fake_chapter.NAME]["smoke"] == 1.0
    assert not [p for p in book.iterdir() if p.name.startswith(".")]
    assert spec.record_path().exists()


@pytest.mark.slow
def test_two_seed_smoke_sweep_through_a_local_ray(results, capsys, monkeypatch):
    import signal

    from ebmflow.book import cli

    handlers = []
    done = sweep._Bar.done
    monkeypatch.setattr(sweep._Bar, "done", lambda bar, line: handlers.append(signal.getsignal(signal.SIGTERM))
                        or done(bar, line))
    assert main(["sweep", "01_motivating_example", "--seeds", "0-1", "--profile", "smoke"]) == 0
    assert handlers == [cli._on_signal] * 2, "SIGTERM stays the command's (ray.init replaces it)"
    out = capsys.readouterr()
    assert "started a local Ray instance" in out.out
    loaded = records.load_records("01_motivating_example", "smoke")
    assert [r["seed"] for r in loaded] == [0, 1] and all(r["ebmflow_version"] == __version__ for r in loaded)
    summary = records.summarize(loaded)
    assert summary["fig1_final_weight_flowmc"].n == 2
    assert "fig1_final_weight_flowmc" in out.out and "±" in out.out
    # notebooks and figures of the runs stay in the run's folder, not in the book
    assert (results / "smoke" / "01_motivating_example" / "seed1-default" / "01_motivating_example.ipynb").exists()
    # a second sweep finds both runs finished
    assert main(["sweep", "01_motivating_example", "--seeds", "0-1", "--profile", "smoke"]) == 0
    assert "2 of 2 runs already finished" in capsys.readouterr().out


def test_gpu_runs_can_be_asked_for_from_a_machine_without_one(results, monkeypatch):
    monkeypatch.setattr(sweep, "_cuda_here", lambda: False)
    spec = sweep.sweep_specs("01_motivating_example", [0], "smoke", {"device": "cuda"})[0]
    assert spec.device == "cuda" and dict(spec.overrides) == {"device": "cuda"}
    assert spec.key != "seed0-default"
