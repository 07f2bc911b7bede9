"""The paper's claims, checked on the numbers the committed (cpu-profile) chapters glued."""
import pytest

from ebmflow.chapters import CHAPTERS
from ebmflow.glued import read_glued


@pytest.fixture(scope="module")
def figure1():
    return read_glued(CHAPTERS["01_motivating_example"].notebook)


def test_flowmc_ebm_recovers_the_weight_of_the_two_thirds_mode(figure1):
    assert abs(figure1["fig1_final_weight_flowmc"] - 2 / 3) <= 0.05


def test_ula_ebm_weight_swings_between_extremes(figure1):
    # Paper, Figure 1: the ULA-EBM estimate erases and recreates modes (weights near 0 and near 1).
    assert figure1["fig1_ula_weight_min"] < 0.2 and figure1["fig1_ula_weight_max"] > 0.9
