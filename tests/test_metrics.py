import math

import pytest
import torch

from ebmflow.metrics import (Grid2D, log_normalizer_on_grid, normalize_on_grid, zone_weights_of_samples,
                             zone_weights_on_grid)
from ebmflow.targets import two_mode_mixture


def test_grid_normalisation_is_exact_for_a_gaussian():
    mean, std = torch.tensor([0.3, -0.2]), 0.7
    grid = Grid2D(-6, 6, 300)

    def unnormalized(x):  # exact log N(mean, std^2 I) shifted by an arbitrary constant
        return -((x - mean) ** 2).sum(-1) / (2 * std**2) + 17.0

    exact = -((grid.points - mean) ** 2).sum(-1) / (2 * std**2) - math.log(2 * math.pi * std**2)
    torch.testing.assert_close(normalize_on_grid(unnormalized, grid), exact, atol=1e-4, rtol=0)


def test_zone_weights_of_the_target_density_are_its_mixture_weights():
    target = two_mode_mixture()
    grid = Grid2D(-4, 4, 400)
    log_density = normalize_on_grid(target.log_prob, grid)
    weights = zone_weights_on_grid(log_density, grid, target.assign_mode, 2)
    torch.testing.assert_close(weights, target.weights, atol=1e-4, rtol=0)


def test_target_samples_follow_the_weights():
    target = two_mode_mixture()
    x = target.sample(20000, torch.Generator().manual_seed(0))
    share = (target.assign_mode(x) == 1).float().mean()
    assert abs(float(share) - 2 / 3) < 0.015  # 4 binomial standard errors


def test_new_targets_are_normalised_and_zone_weights_match_their_weights():
    from ebmflow.targets import eight_gaussians, four_collinear_modes, rings
    for target, limit in [(eight_gaussians(), 3.0), (rings(), 5.5), (four_collinear_modes(), 4.5)]:
        grid = Grid2D(-limit, limit, 300)
        _, log_z = log_normalizer_on_grid(target.log_prob, grid)
        assert abs(float(log_z)) < 2e-3, type(target)
        log_density = normalize_on_grid(target.log_prob, grid)
        weights = zone_weights_on_grid(log_density, grid, target.assign_mode, target.n_modes)
        torch.testing.assert_close(weights, target.weights, atol=5e-3, rtol=0)
        x = target.sample(40000, torch.Generator().manual_seed(1))
        torch.testing.assert_close(zone_weights_of_samples(x, target.assign_mode, target.n_modes),
                                   target.weights, atol=0.01, rtol=0)


def test_rings_radii_and_table_metrics():
    from ebmflow.metrics import median_squared_log_error, zone_mse
    from ebmflow.targets import rings
    r = rings().sample(20000, torch.Generator().manual_seed(2)).norm(dim=1)
    assert abs(float(r.mean()) - 2.5) < 0.03
    assert median_squared_log_error(torch.tensor([0.0, 1.0, 3.0]), torch.zeros(3)) == 1.0
    assert zone_mse(torch.tensor([0.1, 0.9]), torch.tensor([0.3, 0.7])) == pytest.approx(0.04)
    with pytest.raises(ValueError, match="same shape"):
        zone_mse(torch.zeros(2), torch.zeros(3))
