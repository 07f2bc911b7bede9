"""Table 2 / Figure 6 claims (paper §4), checked on the numbers the committed (cpu-profile) chapter glued."""
import pytest

from ebmflow.chapters import CHAPTERS
from ebmflow.glued import read_glued

DIMS = (16, 32, 64)
BASELINES = ("ula", "ntebm", "coopflow")


@pytest.fixture(scope="module")
def glued():
    return read_glued(CHAPTERS["04_high_dim_mixture"].notebook)


def test_table2_has_a_float_for_every_method_and_dimension(glued):
    for method in (*BASELINES, "flowmc"):
        for dim in DIMS:
            assert isinstance(glued[f"table2_{method}_d{dim}"], float), f"table2_{method}_d{dim}"


@pytest.mark.parametrize("dim", DIMS)
def test_flowmc_ebm_chains_mix(glued, dim):
    # Paper, Table 2: flowMC-EBM's max R-hat is 1.01 / 1.01 / 1.05; "close to 1" read as <= 1.1.
    assert glued[f"table2_flowmc_d{dim}"] <= 1.1


@pytest.mark.parametrize("baseline", BASELINES)
@pytest.mark.parametrize("dim", DIMS)
def test_flowmc_ebm_mixes_better_than_each_baseline(glued, dim, baseline):
    assert glued[f"table2_flowmc_d{dim}"] < glued[f"table2_{baseline}_d{dim}"]
