import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)
# the tests' own helpers (tests/extra_methods.py, the small method settings of tests/test_methods.py) import by
# name whatever pytest's import mode
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def _figures_to_tmp(tmp_path, monkeypatch):
    """Figures written during tests go to a temporary folder, never into book/figures."""
    monkeypatch.setenv("EBMFLOW_FIGURE_DIR", str(tmp_path / "figures"))
    monkeypatch.setenv("EBMFLOW_PROGRESS", "0")
    yield
