"""Paper Table 1 claims, checked on the numbers the committed (cpu-profile) chapter glued."""
import pytest

from ebmflow.chapters import CHAPTERS
from ebmflow.glued import read_glued
from ebmflow.report import COOPFLOW_8G_WHY_NOT
from ebmflow.training import METHODS

TARGETS = ("8gaussians", "rings")


@pytest.fixture(scope="module")
def table1():
    glued = read_glued(CHAPTERS["02_toy_benchmarks"].notebook)
    return {(method, target): glued[f"table1_{method}_{target}"] for method in METHODS for target in TARGETS}


def test_every_table1_value_is_glued_as_a_float(table1):
    assert all(isinstance(value, float) and value >= 0 for value in table1.values())


@pytest.mark.parametrize("target", TARGETS)
def test_flowmc_ebm_has_the_lowest_log_density_error(table1, target):
    # Paper Table 1: flowMC-EBM 0.94 (8 Gaussians) and 0.40 (Rings), the lowest of the four methods.
    others = {method: table1[method, target] for method in METHODS if method != "flowmc"}
    assert table1["flowmc", target] < min(others.values()), (table1["flowmc", target], others)


@pytest.mark.xfail(strict=True, reason=COOPFLOW_8G_WHY_NOT)
def test_coopflow_has_the_largest_error_on_8_gaussians(table1):
    # Paper Table 1: CoopFlow 58.75 on 8 Gaussians, the largest of the four methods.
    others = [table1[method, "8gaussians"] for method in METHODS if method != "coopflow"]
    assert table1["coopflow", "8gaussians"] > max(others)
