import os

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _figures_to_tmp(tmp_path, monkeypatch):
    """Figures written during tests go to a temporary folder, never into book/figures."""
    monkeypatch.setenv("EBMFLOW_FIGURE_DIR", str(tmp_path / "figures"))
    monkeypatch.setenv("EBMFLOW_PROGRESS", "0")
    yield
