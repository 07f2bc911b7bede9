"""Metrics: grid normalisation, zone weights, the tables' errors and R-hat."""
from __future__ import annotations

import math

import pytest
import torch

from ebmflow.checks import InputError
from ebmflow.metrics import (Grid2D, log_normalizer_on_grid, max_rhat, median_squared_log_error,
                             normalize_on_grid, normalized_log_density_at, zone_mse, zone_weights_of_samples,
                             zone_weights_on_grid)
from ebmflow.targets import two_mode_mixture


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


MEAN, STD = torch.tensor([0.3, -0.2]), 0.7


def shifted_gaussian(x):  # exact log N(MEAN, STD^2 I) shifted by an arbitrary constant
    return -((x - MEAN) ** 2).sum(-1) / (2 * STD**2) + 17.0


def test_grid_normalisation_is_exact_for_a_gaussian():
    grid = Grid2D(-6, 6, 300)
    exact = -((grid.points - MEAN) ** 2).sum(-1) / (2 * STD**2) - math.log(2 * math.pi * STD**2)
    torch.testing.assert_close(normalize_on_grid(shifted_gaussian, grid), exact, atol=1e-4, rtol=0)
    _, log_z = log_normalizer_on_grid(shifted_gaussian, grid, chunk=1000)  # chunked evaluation: same result
    assert float(log_z) == pytest.approx(17.0 + math.log(2 * math.pi * STD**2), abs=1e-4)
    points = torch.tensor([[0.3, -0.2], [1.0, 1.0]])
    expected = -((points - MEAN) ** 2).sum(-1) / (2 * STD**2) - math.log(2 * math.pi * STD**2)
    torch.testing.assert_close(normalized_log_density_at(shifted_gaussian, points, grid), expected, atol=1e-4,
                               rtol=0)


def test_grid_points_and_cells():
    grid = Grid2D(-1, 1, 4)
    torch.testing.assert_close(grid.axis, torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    assert grid.cell_area == 0.25 and grid.points.shape == (16, 2)
    assert grid.points[1].tolist() == [-0.75, -0.25]  # [i_x, i_y] indexing: y varies fastest


def test_the_model_is_evaluated_on_the_requested_device_and_results_come_back_on_the_cpu():
    devices = []

    def recording(x):
        devices.append(x.device)
        return shifted_gaussian(x)

    values = normalize_on_grid(recording, Grid2D(-6, 6, 50), device="cpu")
    assert set(devices) == {torch.device("cpu")} and values.device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_a_model_on_the_gpu_is_normalised_on_a_cpu_grid():
    mean = MEAN.cuda()
    values = normalize_on_grid(lambda x: -((x - mean) ** 2).sum(-1), Grid2D(-6, 6, 50), device="cuda")
    assert values.device.type == "cpu"


def test_zone_weights_of_the_target_density_are_its_mixture_weights():
    target = two_mode_mixture()
    grid = Grid2D(-4, 4, 400)
    weights = zone_weights_on_grid(normalize_on_grid(target.log_prob, grid), grid, target.assign_mode, 2)
    torch.testing.assert_close(weights, target.weights, atol=1e-4, rtol=0)


def test_zone_weights_of_samples_count_every_zone():
    zone_of = lambda x: (x[:, 0] > 0).long() + (x[:, 0] > 1).long()  # noqa: E731
    samples = torch.tensor([[-1.0], [0.5], [0.7], [2.0]])
    torch.testing.assert_close(zone_weights_of_samples(samples, zone_of, 4), torch.tensor([0.25, 0.5, 0.25, 0.0]))
    with pytest.raises(InputError, match="at least one sample"):
        zone_weights_of_samples(torch.zeros(0, 1), zone_of, 4)


def test_table_errors():
    assert median_squared_log_error(torch.tensor([0.0, 1.0, 3.0]), torch.zeros(3)) == 1.0
    assert zone_mse(torch.tensor([0.1, 0.9]), torch.tensor([0.3, 0.7])) == pytest.approx(0.04)
    with pytest.raises(InputError, match="same shape"):
        zone_mse(torch.zeros(2), torch.zeros(3))
    with pytest.raises(InputError, match="same shape"):
        median_squared_log_error(torch.zeros(2), torch.zeros(3))
    with pytest.raises(InputError, match="at least one evaluation point"):
        median_squared_log_error(torch.zeros(0), torch.zeros(0))


def test_rhat_is_one_for_mixed_chains_and_large_for_chains_stuck_in_different_modes():
    mixed = torch.randn(200, 8, 3, generator=gen(1))
    assert max_rhat(mixed) < 1.02
    stuck = mixed.clone()
    stuck[:, :4, 1] += 5.0  # half the chains sit in another mode along coordinate 1
    assert max_rhat(stuck) > 1.5
    with pytest.raises(InputError, match="R-hat needs"):
        max_rhat(torch.randn(3, 8, 2, generator=gen(2)))  # too few draws
    with pytest.raises(InputError, match="R-hat needs"):
        max_rhat(torch.randn(100, 1, 2, generator=gen(2)))  # one chain


@pytest.mark.parametrize("low, high, n", [(1.0, -1.0, 10), (0.0, math.inf, 10), (-1.0, 1.0, 1), (-1.0, 1.0, 2.5),
                                          (-1.0, 1.0, True)])
def test_bad_grids_are_refused(low, high, n):
    with pytest.raises(InputError):
        Grid2D(low, high, n)
