import math

import torch

from ebmflow.metrics import Grid2D, normalize_on_grid, zone_weights_on_grid
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
