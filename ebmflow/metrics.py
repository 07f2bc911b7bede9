"""Metrics on 2-D densities: grid normalisation and mode (zone) weights (paper §4, Figure 1 right)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

__all__ = ["Grid2D", "log_normalizer_on_grid", "normalize_on_grid", "zone_weights_on_grid", "zone_weights_of_samples"]


@dataclass(frozen=True)
class Grid2D:
    """A regular n × n grid of cell centres over [low, high]^2."""

    low: float
    high: float
    n: int

    def __post_init__(self) -> None:
        if self.high <= self.low or self.n < 2:
            raise ValueError(f"grid needs high > low and n >= 2, got {self}")

    @property
    def axis(self) -> Tensor:
        width = (self.high - self.low) / self.n
        return self.low + width * (torch.arange(self.n) + 0.5)

    @property
    def cell_area(self) -> float:
        return ((self.high - self.low) / self.n) ** 2

    @property
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
