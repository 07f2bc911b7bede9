"""The ebmflow command rejects bad input before a kernel starts (exit 2, one line naming the fix), and its
tables stay aligned."""
import dataclasses
import types

import pytest

from ebmflow.book import chapters
from ebmflow.book.chapters import Chapter
from ebmflow.book.cli import main
from ebmflow.book.report import VERDICTS, load_glued_by_seed, verdict_rows


@pytest.mark.parametrize("argv, message", [
    (["run", "no_such_chapter"], "unknown chapter 'no_such_chapter'; chapters: 01_motivating_example"),
    (["run", "01_motivating_example", "-p", "epoch=3"], "unknown parameter(s) 'epoch'; accepted parameters: seed"),
    (["run", "01_motivating_example", "-p", "epochs=3.5"], "parameter 'epochs' must be of type int, got 3.5"),
    (["run", "01_motivating_example", "-p", "lr=fast"], "parameter 'lr' must be of type float, got 'fast'"),
    (["run", "01_motivating_example", "-p", "batch_size=0"], "parameter 'batch_size' must be positive"),
    (["run", "01_motivating_example", "-p", "epochs"], "parameter 'epochs' must be written name=value"),
    (["run", "01_motivating_example", "-p", "profile=paper"],
     "'profile' is not a parameter: use --profile paper instead of -p profile=paper"),
    (["run", "01_motivating_example", "--seed", "3", "-p", "seed=4"], "--seed 3 contradicts -p seed=4"),
    (["run", "01_motivating_example", "--seed", "-1"], "parameter 'seed' must be non-negative"),
    (["run", "01_motivating_example", "-p", "epochs=2", "-p", "epochs=3"], "parameter 'epochs' given twice"),
    (["run", "intro", "--seed", "1"], "unknown parameter(s) 'seed'"),
    (["sweep", "01_motivating_example", "--seeds", "4-2"], "--seeds '4-2' must list non-negative seeds"),
    (["sweep", "01_motivating_example", "--seeds", "a"], "--seeds 'a' must list"),
    (["sweep", "01_motivating_example", "-p", "seed=1"], "give the seeds with --seeds"),
    (["sweep", "99_report"], "99_report is a summary page"),
    (["sweep", "nope"], "unknown chapter 'nope'"),
    (["sweep", "01_motivating_example", "-p", "epochs=0"], "parameter 'epochs' must be positive"),
    (["reproduce", "--seeds", "x"], "--seeds 'x' must list"),
    (["reproduce", "-p", "profile=smoke"], "use --profile smoke instead"),
])
def test_bad_input_exits_2_with_one_line_before_anything_starts(argv, message, capsys, tmp_path):
    if argv[0] == "run":
        argv = argv + ["--output", str(tmp_path / "out.ipynb")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ebmflow: error: ") and err.count("\n") == 1, err
    assert message in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("make_output, message", [
    (lambda tmp: tmp, "is a directory"),
    (lambda tmp: tmp / "out.txt", "must be a notebook path ending in .ipynb"),
    (lambda tmp: chapters.CHAPTERS["99_report"].notebook, "is chapter 99_report's notebook"),
])
def test_bad_output_is_refused_before_running(make_output, message, capsys, tmp_path):
    assert main(["run", "01_motivating_example", "--output", str(make_output(tmp_path))]) == 2
    assert message in capsys.readouterr().err


def test_bad_profile_lists_the_choices(capsys):
    assert main(["run", "01_motivating_example", "--profile", "gpu"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'gpu' (choose from 'smoke', 'cpu', 'paper')" in err
    assert err.startswith("ebmflow: error: ") and len(err.strip().splitlines()) == 1  # no usage block


def test_bad_device_lists_the_choices(capsys):
    assert main(["run", "01_motivating_example", "--device", "tpu"]) == 2
    assert "invalid choice: 'tpu'" in capsys.readouterr().err


def test_list_shows_every_parameter_with_its_profiles(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "01_motivating_example" in out and "flowmc_schedule" in out and "LLLLGGLLLL" in out


@dataclasses.dataclass(frozen=True)
class LongConfig:
    seed: int
    coopflow_step_size_of_a_very_long_parameter_name: float
    device: str


def test_list_columns_stay_aligned_whatever_the_name_lengths(capsys, monkeypatch):
    profile = {"seed": 0, "coopflow_step_size_of_a_very_long_parameter_name": 0.125, "device": "cpu"}
    module = types.SimpleNamespace(Config=LongConfig, PROFILES={"smoke": profile, "cpu": profile,
                                                                "paper": {**profile, "device": "cuda"}})
    monkeypatch.setattr(chapters, "CHAPTERS", {"zz_long": Chapter("zz_long", "long names", module)})
    monkeypatch.setattr("ebmflow.book.cli.CHAPTERS", chapters.CHAPTERS)
    assert main(["list"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert len(rows) == 4
    for column in ("type", "smoke", "cpu", "paper"):
        starts = {row.index(column) if i == 0 else None for i, row in enumerate(rows)} - {None}
        start = starts.pop()
        # every value of that column starts exactly under its header, after at least two spaces
        for row in rows[1:]:
            assert row[start - 2:start] == "  " and row[start] != " ", (column, row)
    assert "coopflow_step_size_of_a_very_long_parameter_name  float" in rows[2]


def test_report_prints_one_verdict_per_row(capsys):
    assert main(["report"]) == 0
    out = capsys.readouterr().out
    rows = verdict_rows(load_glued_by_seed())
    assert out.count("->") == len(rows)
    assert all(row["verdict"] in VERDICTS for row in rows)
