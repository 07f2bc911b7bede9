"""A chapter killed with SIGKILL after its first checkpoint and re-run with --resume ends with exactly the glued
numbers of a run that was never interrupted (chapter 01 at the smoke profile, through the command line)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

COMMAND = [sys.executable, "-m", "ebmflow", "run", "01_motivating_example", "--profile", "smoke"]


def numbers(results: Path) -> dict:
    record, = (results / "smoke" / "01_motivating_example").glob("*.json")
    return json.loads(record.read_text())["numbers"]


@pytest.mark.slow
def test_killed_run_resumes_to_the_numbers_of_an_uninterrupted_run(tmp_path):
    env = {**os.environ, "EBMFLOW_LOG_DIR": str(tmp_path / "logs"), "EBMFLOW_CHECKPOINT_SECONDS": "0.2"}
    reference = subprocess.run([*COMMAND, "--output", str(tmp_path / "a" / "ch.ipynb")], capture_output=True,
                               text=True, env={**env, "EBMFLOW_RESULTS_DIR": str(tmp_path / "ra")})
    assert reference.returncode == 0, reference.stderr[-3000:]

    output = tmp_path / "b" / "ch.ipynb"
    env_b = {**env, "EBMFLOW_RESULTS_DIR": str(tmp_path / "rb")}
    checkpoints = output.parent / ".ch.checkpoints"
    process = subprocess.Popen([*COMMAND, "--output", str(output)], env=env_b, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(checkpoints.glob("*.pt")):
        assert process.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the runner and its kernel, in the middle of training
    process.wait()
    assert not output.exists(), "a killed run writes no notebook"
    killed_at = sorted(p.name for p in checkpoints.glob("*.pt"))

    resumed = subprocess.run([*COMMAND, "--output", str(output), "--resume"], capture_output=True, text=True,
                             env=env_b)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from checkpoints" in resumed.stdout, (killed_at, resumed.stdout)
    assert numbers(tmp_path / "rb") == numbers(tmp_path / "ra")
    assert not checkpoints.exists(), "a successful run removes its checkpoints"
    assert not [p for p in output.parent.iterdir() if p.name.startswith(".")], "stale temporaries removed"
