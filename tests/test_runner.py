"""The runner records runtimes and never leaves a half-written notebook."""
import json

import papermill
import pytest

from ebmflow import runner


@pytest.mark.slow
def test_failed_run_leaves_no_output_and_records_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "RUNTIMES_FILE", tmp_path / "runtimes.json")
    output = tmp_path / "out.ipynb"
    with pytest.raises(papermill.PapermillExecutionError, match="exceeds the data set"):
        runner.run_chapter("01_motivating_example", "smoke", {"n_data": 16}, output=output, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_successful_run_records_its_runtime(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "RUNTIMES_FILE", tmp_path / "runtimes.json")
    output = runner.run_chapter("99_report", "smoke", output=tmp_path / "report.ipynb", progress=False)
    assert output.exists()
    seconds = json.loads((tmp_path / "runtimes.json").read_text())["99_report"]["smoke"]
    assert 0 < seconds < 300
