"""Metrics on 2-D densities: grid normalisation and mode (zone) weights (paper §4, Figure 1 right)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import torch
from torch import Tensor

__all__ = ["Grid2D", "log_normalizer_on_grid", "normalize_on_grid", "zone_weights_on_grid", "zone_weights_of_samples",
           "normalized_log_density_at", "median_squared_log_error", "zone_mse"]


@dataclass(frozen=True)
class Grid2D:
    """A regular n × n grid of cell centres over [low, high]^2."""

    low: float
    high: float
    n: int

    def __post_init__(self) -> None:
        if self.high <= self.low or self.n < 2:
            raise ValueError(f"grid needs high > low and n >= 2, got {self}")

    @cached_property
    def axis(self) -> Tensor:
        width = (self.high - self.low) / self.n
        return self.low + width * (torch.arange(self.n) + 0.5)

    @property
    def cell_area(self) -> float:
        return ((self.high - self.low) / self.n) ** 2

    @cached_property
    def points(self) -> Tensor:
        """(n*n, 2) points; reshaping values to (n, n) gives [i_x, i_y] indexing."""
        xx, yy = torch.meshgrid(self.axis, self.axis, indexing="ij")
        return torch.stack([xx.flatten(), yy.flatten()], dim=1)


@torch.no_grad()
def log_normalizer_on_grid(log_unnormalized: Callable[[Tensor], Tensor], grid: Grid2D,
                           chunk: int = 65536) -> tuple[Tensor, Tensor]:
    """log f on the grid points and log Z = log sum_x f(x) dA (Riemann sum over the grid)."""
    points = grid.points
    values = torch.cat([log_unnormalized(points[i:i + chunk]) for i in range(0, len(points), chunk)])
    return values, torch.logsumexp(values, dim=0) + torch.log(torch.tensor(grid.cell_area))


def normalize_on_grid(log_unnormalized: Callable[[Tensor], Tensor], grid: Grid2D) -> Tensor:
    """Normalised log-density on the grid points: log f(x) - log Z."""
    values, log_z = log_normalizer_on_grid(log_unnormalized, grid)
    return values - log_z


def zone_weights_on_grid(log_density: Tensor, grid: Grid2D, zone_of: Callable[[Tensor], Tensor],
                         n_zones: int) -> Tensor:
    """Mass of each zone under a density given on the grid, normalised over the grid (K,)."""
    probabilities = torch.softmax(log_density, dim=0)
    zones = zone_of(grid.points)
    return torch.zeros(n_zones).index_add_(0, zones, probabilities)


def zone_weights_of_samples(samples: Tensor, zone_of: Callable[[Tensor], Tensor], n_zones: int) -> Tensor:
    """Fraction of the samples falling in each zone (K,)."""
    zones = zone_of(samples)
    return torch.bincount(zones, minlength=n_zones).float() / len(samples)


@torch.no_grad()
def normalized_log_density_at(log_unnormalized: Callable[[Tensor], Tensor], points: Tensor, grid: Grid2D) -> Tensor:
    """log f(x) - log Z at ``points``, Z from the Riemann sum of f over ``grid``."""
    _, log_z = log_normalizer_on_grid(log_unnormalized, grid)
    return log_unnormalized(points) - log_z


def median_squared_log_error(log_model: Tensor, log_true: Tensor) -> float:
    """Paper Table 1: med_x (log p_theta(x) - log p*(x))^2 over the evaluation points."""
    if log_model.shape != log_true.shape:
        raise ValueError(f"log-densities must have the same shape, got {tuple(log_model.shape)} and "
                         f"{tuple(log_true.shape)}")
    return float(((log_model - log_true) ** 2).median())


def zone_mse(weights: Tensor, reference: Tensor) -> float:
    """Paper Table 3: mean over zones of the squared difference between two zone-weight vectors."""
    if weights.shape != reference.shape:
        raise ValueError(f"zone weights must have the same shape, got {tuple(weights.shape)} and "
                         f"{tuple(reference.shape)}")
    return float(((weights - reference) ** 2).mean())
