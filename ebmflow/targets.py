"""Data distributions p* with exact log-density, sampling and mode assignment (paper §3, Appendix C)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["GaussianMixture", "Rings", "two_mode_mixture", "eight_gaussians", "four_collinear_modes", "rings"]


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
        k, _ = self.means.shape
        if self.stds.shape != (k,) or self.weights.shape != (k,):
            raise ValueError("means (K, d), stds (K,) and weights (K,) must agree on K")
        if not torch.isclose(self.weights.sum(), torch.tensor(1.0, dtype=self.weights.dtype)):
            raise ValueError(f"mixture weights must sum to 1, got {self.weights.sum().item():.6f}")

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
        if n <= 0:
            raise ValueError(f"number of samples must be positive, got {n}")
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


def two_mode_mixture() -> GaussianMixture:
    """The motivating example (paper §3.1, Appendix C.2).

    p* = 1/3 N(-1.5·1, 0.05 I) + 2/3 N(+1.5·1, 0.1 I); both components have the same peak height.
    Mode 1 (index 1) is the "top right" 2/3 mode of Figure 1.
    """
    return GaussianMixture(
        means=torch.tensor([[-1.5, -1.5], [1.5, 1.5]]),
        stds=torch.tensor([0.05, 0.1]).sqrt(),
        weights=torch.tensor([1 / 3, 2 / 3]),
    )


def eight_gaussians() -> GaussianMixture:
    """8 Gaussians (paper §C.4): equal weights, std 0.15, means on the unit circle at angles 2*pi*i/8.

    Not FFJORD's "8gaussians" (which uses a larger radius)."""
    angles = 2 * math.pi * torch.arange(8) / 8
    return GaussianMixture(means=torch.stack([angles.cos(), angles.sin()], dim=1),
                           stds=torch.full((8,), 0.15), weights=torch.full((8,), 1 / 8))


def four_collinear_modes() -> GaussianMixture:
    """Extended motivating example (paper §C.3, Figures 3-5): weights 0.1, 0.2, 0.3, 0.4 on N(mu_i, 0.05 I)
    with mu_i evenly spaced on the horizontal axis from x = -3 to x = 3."""
    means = torch.stack([torch.linspace(-3.0, 3.0, 4), torch.zeros(4)], dim=1)
    return GaussianMixture(means=means, stds=torch.full((4,), 0.05**0.5),
                           weights=torch.tensor([0.1, 0.2, 0.3, 0.4]))


@dataclass(frozen=True)
class Rings:
    """Rings (paper §C.4): x = (r cos t, r sin t) with t ~ U[0, 2 pi) and r ~ sum_k w_k N(radius_k, std^2).

    log p(x) = log p_r(|x|) - log(2 pi |x|) (polar change of variables; the mass of p_r below 0,
    < 1e-11 here, is neglected). Modes are the rings, assigned by nearest radius.
    """

    radii: Tensor  # (K,)
    std: float
    weights: Tensor  # (K,)

    @property
    def dim(self) -> int:
        return 2

    @property
    def n_modes(self) -> int:
        return len(self.radii)

    def log_prob(self, x: Tensor) -> Tensor:
        r = x.norm(dim=-1)
        log_pr = torch.logsumexp(torch.log(self.weights) - 0.5 * ((r[:, None] - self.radii) / self.std) ** 2
                                 - math.log(self.std * math.sqrt(2 * math.pi)), dim=1)
        return log_pr - torch.log(2 * math.pi * r)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        if n <= 0:
            raise ValueError(f"number of samples must be positive, got {n}")
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
