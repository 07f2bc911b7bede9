"""The data distributions p*: exact log-densities (normalised), sampling, mode assignment and their sizes."""
from __future__ import annotations

import math

import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, norm

from ebmflow.checks import InputError
from ebmflow.metrics import (Grid2D, log_normalizer_on_grid, normalize_on_grid, zone_weights_of_samples,
                             zone_weights_on_grid)
from ebmflow.targets import (GaussianMixture, coordinate_magnitude, eight_gaussians, four_collinear_modes,
                             four_mode_mixture, rings, two_mode_mixture)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# name -> (target, grid half-width covering its mass)
TWO_D = {"two_mode_mixture": (two_mode_mixture(), 3.5), "eight_gaussians": (eight_gaussians(), 3.0),
         "rings": (rings(), 5.5), "four_collinear_modes": (four_collinear_modes(), 4.5)}


@pytest.mark.parametrize("name", TWO_D)
def test_2d_target_is_normalised_and_its_zones_carry_its_weights(name):
    target, limit = TWO_D[name]
    grid = Grid2D(-limit, limit, 300)
    _, log_z = log_normalizer_on_grid(target.log_prob, grid)
    assert abs(float(log_z)) < 2e-3
    weights = zone_weights_on_grid(normalize_on_grid(target.log_prob, grid), grid, target.assign_mode,
                                   target.n_modes)
    torch.testing.assert_close(weights, target.weights, atol=5e-3, rtol=0)


@pytest.mark.parametrize("name", TWO_D)
def test_2d_target_samples_fall_in_the_modes_with_the_weights(name):
    target, _ = TWO_D[name]
    x = target.sample(40000, gen(1))
    assert x.shape == (40000, 2)
    # binomial standard error <= sqrt(0.25 / 40000) = 0.0025; 0.01 is 4 standard errors
    torch.testing.assert_close(zone_weights_of_samples(x, target.assign_mode, target.n_modes), target.weights,
                               atol=0.01, rtol=0)
    assert torch.equal(x, target.sample(40000, gen(1)))
    # max_coordinate_variance sizes the flow's base: it is the largest per-coordinate variance of the samples
    assert target.max_coordinate_variance() == pytest.approx(float(x.var(0).max()), rel=0.03)


def test_two_mode_mixture_has_equal_peaks_and_the_papers_layout():
    target = two_mode_mixture()
    peaks = target.log_prob(target.means)
    assert float(peaks[0]) == pytest.approx(float(peaks[1]), abs=1e-4)  # w / (2 pi s^2) equal for both modes
    torch.testing.assert_close(target.means, torch.tensor([[-1.5, -1.5], [1.5, 1.5]]))
    assert target.assign_mode(torch.tensor([[1.0, -0.9], [-1.0, 0.9], [0.1, 0.0]])).tolist() == [1, 0, 1]
    custom = two_mode_mixture((0.2, 0.8), offset=2.0)
    torch.testing.assert_close(custom.weights, torch.tensor([0.2, 0.8]))


def test_rings_have_the_papers_radii():
    r = rings().sample(20000, gen(2)).norm(dim=1)
    assert abs(float(r.mean()) - 2.5) < 0.03  # E r = 2.5; standard error sqrt(1.27 / 20000) = 0.008
    modes = rings().assign_mode(torch.tensor([[1.1, 0.0], [0.0, -3.9], [2.4, 0.0]]))
    assert modes.tolist() == [0, 3, 1]


@pytest.mark.parametrize("dim", [2, 4, 16])
def test_four_mode_mixture_log_prob_is_the_exact_mixture_density(dim):
    magnitude = coordinate_magnitude(dim, 1e-10)
    target = four_mode_mixture(dim, magnitude, weights=(0.1, 0.2, 0.3, 0.4))
    x = target.sample(200, gen(3)).double()
    expected = logsumexp([math.log(w) + multivariate_normal(mean.double().numpy(), 1.0).logpdf(x.numpy())
                          for w, mean in zip(target.weights.tolist(), target.means)], axis=0)
    torch.testing.assert_close(target.log_prob(x.float()).double(), torch.from_numpy(expected), atol=1e-3, rtol=1e-5)


def test_four_mode_mixture_follows_the_papers_sign_pattern_and_separation():
    means = four_mode_mixture(8, 1.0).means
    assert torch.equal(means[0], torch.ones(8)) and torch.equal(means[3], -torch.ones(8))
    assert torch.equal(means[1], torch.tensor([-1.0] * 4 + [1.0] * 4)) and torch.equal(means[2], -means[1])
    for dim in (2, 16, 64):
        magnitude = coordinate_magnitude(dim, 1e-10)
        target = four_mode_mixture(dim, magnitude)
        gaps = torch.cdist(target.means.double(), target.means.double())
        closest = float(gaps[gaps > 0].min())
        assert closest == pytest.approx(magnitude * math.sqrt(2 * dim), rel=1e-5)
        assert 2 * norm.sf(closest / 2) == pytest.approx(1e-10, rel=1e-3)
        assert target.max_coordinate_variance() == pytest.approx(1 + magnitude**2, rel=1e-5)


@pytest.mark.parametrize("build, message", [
    (lambda: GaussianMixture(torch.zeros(2, 2), torch.ones(3), torch.tensor([0.5, 0.5])), "must agree on K"),
    (lambda: GaussianMixture(torch.zeros(2, 2), torch.ones(2), torch.tensor([0.5, 0.6])), "summing to 1"),
    (lambda: GaussianMixture(torch.zeros(2, 2), torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.5])), "stds"),
    (lambda: GaussianMixture(torch.full((2, 2), math.nan), torch.ones(2), torch.tensor([0.5, 0.5])), "finite"),
    (lambda: two_mode_mixture((1.0,)), "at least two positive numbers"),
    (lambda: two_mode_mixture(offset=0.0), "offset must be a finite number > 0"),
    (lambda: four_collinear_modes((0.5, 0.5)), "four positive numbers"),
    (lambda: four_mode_mixture(7, 1.0), "even dimension"),
    (lambda: four_mode_mixture(8, -1.0), "magnitude"),
    (lambda: coordinate_magnitude(8, 0.7), "below 0.5"),
    (lambda: coordinate_magnitude(1, 1e-3), "dim must be an integer >= 2"),
    (lambda: eight_gaussians().sample(0, gen()), "number of samples"),
    (lambda: rings().sample(-1, gen()), "number of samples"),
])
def test_bad_target_arguments_are_explained(build, message):
    with pytest.raises(InputError, match=message):
        build()
