"""Every chapter's ``paper`` configuration starts (issue 18, item 3): a shape, memory or configuration error at the
paper's sizes fails here, on a CPU, in minutes, instead of hours into a GPU run.

For each chapter that trains, ``paper_check.check_in_subprocess`` builds exactly what the ``paper`` profile builds
(networks, particle counts, batch and bank sizes, data: CIFAR-10 from a generated stand-in of the real files, 6 ×
10 000 × 3072 uint8) and runs 2 training iterations (``stop_after``) of every method through the chapter's own
functions, then its evaluations after training except the expensive ones (chapter 05's Figure 7-8 chains, chapter
06's common sampler, chapter 07's final weights, chapter 08's chains: 30 s to minutes each). One fresh process per chapter: its peak
memory (RSS) and the time per iteration of each run are printed (``pytest -s`` or ``-rP`` shows them) with the
projected time of the full paper run. Chapter 05 runs its paper networks, data, bank and schedule with the batch cut
from 128 to 2 chains (``paper_check.CPU_CUTS``: a full iteration takes about half an hour on one CPU thread); its
time per iteration is projected linearly. The whole file takes about 3-4 minutes on a 2-core machine (slow tests).
"""
import math

import pytest

from ebmflow.book.chapters import CHAPTERS
from ebmflow.book.config import resolve_config
from ebmflow.book.paper_check import CPU_CUTS, PIPELINES, PaperCheck, check_in_subprocess, format_check
from ebmflow.data import CIFAR10_FILES, load_cifar10, write_cifar10_standin

ITERATIONS = 2
TIMEOUT = 600  # seconds per chapter: far above what any takes here (chapter 05: about 1.5 min)


@pytest.fixture(scope="session")
def cifar10_root(tmp_path_factory):
    """The generated CIFAR-10 stand-in, written once per test session (6 files of about 31 MB)."""
    return write_cifar10_standin(tmp_path_factory.mktemp("cifar10"))


def test_the_cifar10_standin_has_the_real_format_and_size(tmp_path):
    root = write_cifar10_standin(tmp_path, n_per_file=20)  # the format; the default size is checked below
    data = load_cifar10(root)
    assert data.train.shape == (100, 3, 32, 32) and data.test.shape == (20, 3, 32, 32)
    assert sorted(p.name for p in (root / "cifar-10-batches-py").iterdir()) == sorted(CIFAR10_FILES +
                                                                                        ("batches.meta",))
    assert set(data.train_labels.tolist()) <= set(range(10)) and data.levels == 256 and data.flips


@pytest.mark.slow
def test_the_default_standin_is_as_big_as_cifar10(cifar10_root):
    data = load_cifar10(cifar10_root)
    assert data.train.shape == (50_000, 3, 32, 32) and data.test.shape == (10_000, 3, 32, 32)
    size = (cifar10_root / "cifar-10-batches-py" / "data_batch_1").stat().st_size
    assert 30_000_000 < size < 32_000_000  # the real data_batch_1 is 31 035 704 bytes


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PIPELINES))
def test_paper_configuration_starts(name, cifar10_root):
    chapter = CHAPTERS[name]
    parameters = {"data_root": str(cifar10_root)} if "data_root" in chapter.profiles["paper"] else {}
    try:
        check = check_in_subprocess(name, iterations=ITERATIONS, parameters=parameters, timeout=TIMEOUT)
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    print("\n" + format_check(check))
    assert isinstance(check, PaperCheck) and check.profile == "paper"

    # exactly the paper's configuration, but for stop_after, the stand-in's folder and the CPU cut (chapter 05)
    cut = CPU_CUTS.get(name, {}) if check.device == "cpu" else {}
    assert set(check.parameters) == {"stop_after", *parameters, *cut}
    paper = resolve_config(chapter.config_cls, chapter.profiles, "paper")
    expected = set(PIPELINES[name].methods(paper))
    assert expected <= set(check.methods), "every method the chapter trains"
    for run in check.runs:
        assert run.iterations == ITERATIONS and not run.diverged, f"{run.run}: {run.iterations} iterations, " \
                                                                  f"{run.diverged or 'no divergence'}"
        assert math.isfinite(run.iteration_seconds) and run.iteration_seconds > 0
        assert run.full_iterations > 100 * ITERATIONS  # the paper's length, projected
    assert all(step.skipped == step.expensive for step in check.steps)  # the cheap ones ran, none failed
    assert check.peak_rss_mb >= check.start_rss_mb > 0


def test_the_projection_counts_every_iteration_and_evaluation_of_the_full_run():
    from ebmflow.book.paper_check import RunCost, _full_evaluations

    assert _full_evaluations(None, 16, 100) == 0
    assert _full_evaluations(print, 0, 100) == 2  # at iteration 0 and at the end
    assert _full_evaluations(print, 16, 19200) == 1201  # chapter 01: 0, 16, ..., 19184, and the end
    run = RunCost(method="flowmc", run="flowmc", prepare_seconds=3.0, init_seconds=1.0, iterations=2,
                  iteration_seconds=0.5, first_iteration_seconds=0.7, evaluations=1, evaluation_seconds=2.0,
                  full_iterations=1000, full_evaluations=11, peak_rss_mb=500.0, scale=4.0)
    assert run.projected_seconds == pytest.approx(3 + 1 + 1000 * 0.5 * 4 + 11 * 2)


@pytest.mark.parametrize("argv, message", [
    (["check-paper", "nope"], "unknown chapter 'nope'"),
    (["check-paper", "99_report"], "99_report has no training to check"),
    (["check-paper", "01_motivating_example", "--iterations", "0"], "--iterations must be an integer >= 1"),
    (["check-paper", "--evaluations", "some"], "invalid choice: 'some'"),
])
def test_check_paper_refuses_bad_input_before_any_work(argv, message, monkeypatch, capsys):
    from ebmflow.book import paper_check
    from ebmflow.book.cli import main

    def no_work(*args, **kwargs):
        raise AssertionError("a check started before the input was checked")
    monkeypatch.setattr(paper_check, "check_in_subprocess", no_work)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_check_paper_prints_each_chapter_and_a_copy_checks_its_source(capsys):
    from ebmflow.book.cli import main

    assert main(["check-paper", "01_motivating_example_paper", "--iterations", "3", "--evaluations", "none"]) == 0
    out = capsys.readouterr().out
    assert "01_motivating_example_paper at profile paper on cpu: peak memory" in out  # chapter 01's paper settings
    assert "ula" in out and "flowmc" in out and "(19200 iterations)" in out and "numbers: skipped\n" in out
