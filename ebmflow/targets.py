"""Data distributions p* with exact log-density, sampling and mode assignment (paper §3, Appendix C)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from scipy.stats import norm
from torch import Tensor

from .checks import InputError, check_generator, check_int, check_positive, check_probability, check_weights

__all__ = ["GaussianMixture", "Rings", "two_mode_mixture", "eight_gaussians", "four_collinear_modes", "rings",
           "coordinate_magnitude", "four_mode_mixture"]


@dataclass(frozen=True)
class GaussianMixture:
    """Mixture of isotropic Gaussians sum_k w_k N(mu_k, s_k^2 I).

    Modes are identified by nearest mean (the Voronoi partition of the means), which is how mode
    weights are measured throughout the book (paper Figure 4 for the zone partition).
    """

    means: Tensor  # (K, d)
    stds: Tensor  # (K,)
    weights: Tensor  # (K,)

    def __post_init__(self) -> None:
        if not all(isinstance(t, torch.Tensor) for t in (self.means, self.stds, self.weights)) or self.means.dim() != 2:
            raise InputError(f"a GaussianMixture needs tensors means (K, d), stds (K,) and weights (K,), got means "
                             f"{_shape(self.means)}, stds {_shape(self.stds)}, weights {_shape(self.weights)}")
        k, _ = self.means.shape
        if self.stds.shape != (k,) or self.weights.shape != (k,):
            raise InputError(f"means (K, d), stds (K,) and weights (K,) must agree on K, got shapes "
                             f"{_shape(self.means)}, {_shape(self.stds)}, {_shape(self.weights)}")
        check_weights("mixture weights", self.weights.tolist())
        if not (torch.isfinite(self.stds).all() and (self.stds > 0).all()):
            raise InputError(f"mixture stds must be finite and positive, got {self.stds.tolist()}")
        if not torch.isfinite(self.means).all():
            raise InputError("mixture means must be finite")

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def n_modes(self) -> int:
        return self.means.shape[0]

    def component_log_probs(self, x: Tensor) -> Tensor:
        """log w_k + log N(x; mu_k, s_k^2 I) for every component, shape (n, K)."""
        sq_dist = torch.cdist(x, self.means.to(x)) ** 2
        var = self.stds.to(x) ** 2
        log_norm = -0.5 * self.dim * torch.log(2 * math.pi * var)
        return torch.log(self.weights.to(x)) + log_norm - sq_dist / (2 * var)

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log p*(x), shape (n,)."""
        return torch.logsumexp(self.component_log_probs(x), dim=1)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """n exact samples, shape (n, d)."""
        check_int("number of samples", n)
        check_generator(generator)
        labels = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator)
        return self.means[labels] + self.stds[labels, None] * noise

    def assign_mode(self, x: Tensor) -> Tensor:
        """Index of the nearest mean for each point, shape (n,)."""
        return torch.cdist(x, self.means.to(x)).argmin(dim=1)

    def max_coordinate_variance(self) -> float:
        """Largest per-coordinate variance of p* (used to size the flow base rho, paper §C.5)."""
        second_moment = (self.weights[:, None] * (self.means**2 + self.stds[:, None] ** 2)).sum(0)
        mean = (self.weights[:, None] * self.means).sum(0)
        return float((second_moment - mean**2).max())

    def misassignment_bound(self) -> float:
        """Union bound on the probability that a sample's nearest mean is not its component's, for the worst
        component k: sum_{j != k} Φ̄(|mu_j - mu_k| / (2 s_k)) (each term: crossing the bisecting hyperplane)."""
        gaps = torch.cdist(self.means, self.means).double()
        terms = norm.sf((gaps / (2 * self.stds.double()[:, None])).numpy())
        return float((terms.sum(1) - 0.5).max())  # the diagonal (gap 0) adds Φ̄(0) = 1/2

    def misassignment(self, n: int, generator: torch.Generator, chunk: int = 100_000) -> float:
        """Share of ``n`` exact samples (component k for sample i with i mod K = k) whose nearest mean is not
        their component's."""
        check_int("number of samples", n)
        check_generator(generator)
        check_int("chunk", chunk)
        wrong = 0
        for labels in (torch.arange(n) % self.n_modes).split(chunk):
            x = self.means[labels] + self.stds[labels, None] * torch.randn(len(labels), self.dim, generator=generator)
            wrong += int((self.assign_mode(x) != labels).sum())
        return wrong / n


def _shape(value: object) -> object:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


def two_mode_mixture(weights: Sequence[float] = (1 / 3, 2 / 3), offset: float = 1.5) -> GaussianMixture:
    """The motivating example (paper §3.1, Appendix C.2).

    p* = w_0 N(-offset·1, 0.05 I) + w_1 N(+offset·1, 0.1 I); the paper's weights 1/3, 2/3 and offset 1.5 give
    both components the same peak height. Mode 1 (index 1) is the "top right" mode of Figure 1.
    """
    check_positive("offset", offset)
    return GaussianMixture(
        means=torch.tensor([[-1.0, -1.0], [1.0, 1.0]]) * offset,
        stds=torch.tensor([0.05, 0.1]).sqrt(),
        weights=torch.tensor(check_weights("weights", weights), dtype=torch.float32),
    )


def eight_gaussians() -> GaussianMixture:
    """8 Gaussians (paper §C.4): equal weights, std 0.15, means on the unit circle at angles 2*pi*i/8.

    Not FFJORD's "8gaussians" (which uses a larger radius)."""
    angles = 2 * math.pi * torch.arange(8) / 8
    return GaussianMixture(means=torch.stack([angles.cos(), angles.sin()], dim=1),
                           stds=torch.full((8,), 0.15), weights=torch.full((8,), 1 / 8))


def four_collinear_modes(weights: Sequence[float] = (0.1, 0.2, 0.3, 0.4)) -> GaussianMixture:
    """Extended motivating example (paper §C.3, Figures 3-5): N(mu_i, 0.05 I) with mu_i evenly spaced on the
    horizontal axis from x = -3 to x = 3, weights 0.1, 0.2, 0.3, 0.4 in the paper."""
    weights = check_weights("weights", weights)
    if len(weights) != 4:
        raise InputError(f"weights must be four numbers (one per mode), got {len(weights)}")
    means = torch.stack([torch.linspace(-3.0, 3.0, 4), torch.zeros(4)], dim=1)
    return GaussianMixture(means=means, stds=torch.full((4,), 0.05**0.5),
                           weights=torch.tensor(weights, dtype=torch.float32))


@dataclass(frozen=True)
class Rings:
    """Rings (paper §C.4): x = (r cos t, r sin t) with t ~ U[0, 2 pi) and r ~ sum_k w_k N(radius_k, std^2).

    ``log p(x) = log p_r(|x|) - log(2 pi |x|)`` (polar change of variables; the mass of p_r below 0,
    < 1e-11 here, is neglected). Modes are the rings, assigned by nearest radius.
    """

    radii: Tensor  # (K,)
    std: float
    weights: Tensor  # (K,)

    def __post_init__(self) -> None:
        if not isinstance(self.radii, torch.Tensor) or self.radii.dim() != 1 or not torch.isfinite(self.radii).all() \
                or not (self.radii > 0).all():
            raise InputError(f"Rings radii must be a 1-D tensor of finite positive radii, got {self.radii!r}")
        check_positive("Rings std", self.std)
        if not isinstance(self.weights, torch.Tensor) or self.weights.shape != self.radii.shape:
            raise InputError(f"Rings weights must be a tensor of one weight per ring {tuple(self.radii.shape)}, got "
                             f"{_shape(self.weights)}")
        check_weights("Rings weights", self.weights.tolist())

    @property
    def dim(self) -> int:
        return 2

    @property
    def n_modes(self) -> int:
        return len(self.radii)

    def log_prob(self, x: Tensor) -> Tensor:
        r = x.norm(dim=-1)
        log_pr = torch.logsumexp(torch.log(self.weights.to(x)) - 0.5 * ((r[:, None] - self.radii.to(x)) / self.std) ** 2
                                 - math.log(self.std * math.sqrt(2 * math.pi)), dim=1)
        return log_pr - torch.log(2 * math.pi * r)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        check_int("number of samples", n)
        check_generator(generator)
        labels = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        r = self.radii[labels] + self.std * torch.randn(n, generator=generator)
        t = 2 * math.pi * torch.rand(n, generator=generator)
        return torch.stack([r * t.cos(), r * t.sin()], dim=1)

    def max_coordinate_variance(self) -> float:
        """Per-coordinate variance E[r^2] / 2 (isotropic, zero mean); sizes the flow base rho."""
        return float((self.weights * (self.radii**2 + self.std**2)).sum() / 2)

    def assign_mode(self, x: Tensor) -> Tensor:
        return (x.norm(dim=-1)[:, None] - self.radii).abs().argmin(dim=1)


def rings() -> Rings:
    """Four equally weighted rings of radii 1, 2, 3, 4 and radial std 0.15 (paper §C.4)."""
    return Rings(radii=torch.tensor([1.0, 2.0, 3.0, 4.0]), std=0.15, weights=torch.full((4,), 0.25))


def coordinate_magnitude(dim: int, max_misassignment: float) -> float:
    """Per-coordinate mean magnitude m of ``four_mode_mixture`` such that the two closest means, m·sqrt(2d)
    apart, are separated enough: by the union bound over those two neighbours, P(misassigned) <=
    2 Φ̄(m sqrt(2d) / 2) equals ``max_misassignment`` (the farthest mean adds a negligible term)."""
    check_int("dim", dim, minimum=2)
    check_probability("max_misassignment", max_misassignment)
    if max_misassignment >= 0.5:
        raise InputError(f"max_misassignment must be below 0.5, got {max_misassignment!r}")
    return 2 * norm.isf(max_misassignment / 2) / math.sqrt(2 * dim)


def four_mode_mixture(dim: int, magnitude: float,
                      weights: Sequence[float] = (0.25, 0.25, 0.25, 0.25)) -> GaussianMixture:
    """p* = sum_i w_i N(mu_i, I_d) with mu_1 = m·1, mu_2 = m·(-1..-1, 1..1), mu_3 = -mu_2, mu_4 = -mu_1
    (Appendix C.5, equal weights, with its typo mu_2 = -mu_2 read as mu_3 = -mu_2)."""
    check_int("dim", dim, minimum=2)
    if dim % 2:
        raise InputError(f"the sign pattern needs an even dimension >= 2, got {dim}")
    check_positive("magnitude", magnitude)
    weights = check_weights("weights", weights)
    if len(weights) != 4:
        raise InputError(f"weights must be four numbers (one per mode), got {len(weights)}")
    half = torch.cat([-torch.ones(dim // 2), torch.ones(dim // 2)])
    means = magnitude * torch.stack([torch.ones(dim), half, -half, -torch.ones(dim)])
    return GaussianMixture(means=means, stds=torch.ones(4), weights=torch.tensor(weights, dtype=torch.float32))
