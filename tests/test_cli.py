"""The ebmflow command rejects bad input before a kernel starts, with a message naming the fix."""
import pytest

from ebmflow.cli import main
from ebmflow.report import VERDICTS, verdict_rows, load_glued


@pytest.mark.parametrize("argv, message", [
    (["run", "no_such_chapter"], "unknown chapter 'no_such_chapter'; chapters: 01_motivating_example"),
    (["run", "01_motivating_example", "-p", "epoch=3"], "unknown parameter(s) 'epoch'; accepted parameters: seed"),
    (["run", "01_motivating_example", "-p", "epochs=3.5"], "parameter 'epochs' must be of type int, got 3.5"),
    (["run", "01_motivating_example", "-p", "lr=fast"], "parameter 'lr' must be of type float, got 'fast'"),
    (["run", "01_motivating_example", "-p", "batch_size=0"], "parameter 'batch_size' must be positive"),
    (["run", "01_motivating_example", "-p", "epochs"], "parameter 'epochs' must be written name=value"),
])
def test_run_rejects_bad_input_before_starting(argv, message, capsys, tmp_path):
    assert main(argv + ["--output", str(tmp_path / "out.ipynb")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.ipynb").exists()


def test_bad_profile_lists_the_choices(capsys):
    with pytest.raises(SystemExit):
        main(["run", "01_motivating_example", "--profile", "gpu"])
    assert "invalid choice: 'gpu' (choose from 'smoke', 'cpu', 'paper')" in capsys.readouterr().err


def test_list_shows_every_parameter_with_its_profiles(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "01_motivating_example" in out and "flowmc_schedule" in out and "LLLLGGLLLL" in out


def test_report_prints_one_verdict_per_row(capsys):
    assert main(["report"]) == 0
    out = capsys.readouterr().out
    rows = verdict_rows(load_glued())
    assert out.count("->") == len(rows)
    assert all(row["verdict"] in VERDICTS for row in rows)

