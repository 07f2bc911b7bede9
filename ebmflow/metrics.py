"""Metrics: grid normalisation and mode (zone) weights of 2-D densities (paper §4, Figure 1 right, Tables 1
and 3) and the mixing diagnostic R-hat (Table 2)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .checks import InputError, check_callable, check_int

__all__ = ["Grid2D", "log_normalizer_on_grid", "normalize_on_grid", "zone_weights_on_grid", "zone_weights_of_samples",
           "normalized_log_density_at", "median_squared_log_error", "zone_mse", "max_rhat", "MIN_RHAT_DRAWS", "thin",
           "mode_changes", "mixing_diagnostics"]

MIN_RHAT_DRAWS = 4  # rank-normalised split R-hat is undefined on shorter chains


@dataclass(frozen=True)
class Grid2D:
    """A regular n × n grid of cell centres over [low, high]^2."""

    low: float
    high: float
    n: int

    def __post_init__(self) -> None:
        finite = all(isinstance(v, (int, float)) and np.isfinite(v) for v in (self.low, self.high))
        if not finite or self.high <= self.low:
            raise InputError(f"grid bounds must be finite with high > low, got low={self.low!r}, high={self.high!r}")
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 2:
            raise InputError(f"grid size must be an integer >= 2, got {self.n!r}")

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


def _check_grid(grid: Grid2D) -> None:
    if not isinstance(grid, Grid2D):
        raise InputError(f"grid must be a Grid2D(low, high, n), got {type(grid).__name__}")


@torch.no_grad()
def log_normalizer_on_grid(log_unnormalized: Callable[[Tensor], Tensor], grid: Grid2D, chunk: int = 65536, *,
                           device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """log f on the grid points and log Z = log sum_x f(x) dA (Riemann sum over the grid), on the CPU.

    ``log_unnormalized`` is evaluated on ``device``, where the model it closes over lives (a model trained on
    a GPU: pass its device)."""
    check_callable("log_unnormalized", log_unnormalized)
    _check_grid(grid)
    check_int("chunk", chunk)
    points = grid.points.to(device)
    values = torch.cat([log_unnormalized(points[i:i + chunk]).cpu() for i in range(0, len(points), chunk)])
    return values, torch.logsumexp(values, dim=0) + torch.log(torch.tensor(grid.cell_area))


def normalize_on_grid(log_unnormalized: Callable[[Tensor], Tensor], grid: Grid2D, *,
                      device: torch.device | str = "cpu") -> Tensor:
    """Normalised log-density on the grid points: log f(x) - log Z (on the CPU; ``log_unnormalized`` is
    evaluated on ``device``)."""
    values, log_z = log_normalizer_on_grid(log_unnormalized, grid, device=device)
    return values - log_z


def zone_weights_on_grid(log_density: Tensor, grid: Grid2D, zone_of: Callable[[Tensor], Tensor],
                         n_zones: int) -> Tensor:
    """Mass of each zone under a density given on the grid, normalised over the grid (K,)."""
    _check_grid(grid)
    check_callable("zone_of", zone_of)
    check_int("n_zones", n_zones)
    if not isinstance(log_density, Tensor) or log_density.shape != (grid.n * grid.n,):
        got = tuple(log_density.shape) if isinstance(log_density, Tensor) else type(log_density).__name__
        raise InputError(f"log_density must be the values on the grid's {grid.n * grid.n} points, got {got}")
    probabilities = torch.softmax(log_density, dim=0)
    zones = zone_of(grid.points)
    return torch.zeros(n_zones).index_add_(0, zones, probabilities)


def zone_weights_of_samples(samples: Tensor, zone_of: Callable[[Tensor], Tensor], n_zones: int) -> Tensor:
    """Fraction of the samples falling in each zone (K,)."""
    check_callable("zone_of", zone_of)
    check_int("n_zones", n_zones)
    if not isinstance(samples, Tensor) or samples.dim() < 2 or len(samples) == 0:
        raise InputError(f"zone weights of samples need at least one sample, as a tensor (n, d), got "
                         f"{tuple(samples.shape) if isinstance(samples, Tensor) else type(samples).__name__}")
    zones = zone_of(samples)
    return torch.bincount(zones, minlength=n_zones).float() / len(samples)


@torch.no_grad()
def normalized_log_density_at(log_unnormalized: Callable[[Tensor], Tensor], points: Tensor, grid: Grid2D, *,
                              device: torch.device | str = "cpu") -> Tensor:
    """log f(x) - log Z at ``points``, Z from the Riemann sum of f over ``grid`` (on the CPU;
    ``log_unnormalized`` is evaluated on ``device``)."""
    if not isinstance(points, Tensor) or points.dim() != 2 or points.shape[1] != 2:
        raise InputError(f"points must be a tensor (n, 2), got "
                         f"{tuple(points.shape) if isinstance(points, Tensor) else type(points).__name__}")
    _, log_z = log_normalizer_on_grid(log_unnormalized, grid, device=device)
    return log_unnormalized(points.to(device)).cpu() - log_z


def median_squared_log_error(log_model: Tensor, log_true: Tensor) -> float:
    """Paper Table 1: med_x (log p_theta(x) - log p*(x))^2 over the evaluation points."""
    if not isinstance(log_model, Tensor) or not isinstance(log_true, Tensor):
        raise InputError(f"log-densities must be tensors, got {type(log_model).__name__} and {type(log_true).__name__}")
    if len(log_model) == 0:
        raise InputError("median squared log error needs at least one evaluation point")
    if log_model.shape != log_true.shape:
        raise InputError(f"log-densities must have the same shape, got {tuple(log_model.shape)} and "
                         f"{tuple(log_true.shape)}")
    return float(((log_model - log_true) ** 2).median())


def zone_mse(weights: Tensor, reference: Tensor) -> float:
    """Paper Table 3: mean over zones of the squared difference between two zone-weight vectors (NaN in, NaN out:
    a diverged run's weights give a NaN error, never an exception)."""
    if not isinstance(weights, Tensor) or not isinstance(reference, Tensor):
        raise InputError(f"zone weights must be tensors, got {type(weights).__name__} and {type(reference).__name__}")
    if weights.shape != reference.shape or len(weights) == 0:
        raise InputError(f"zone weights must have the same shape, got {tuple(weights.shape)} and "
                         f"{tuple(reference.shape)}")
    return float(((weights - reference) ** 2).mean())


def max_rhat(trajectory: Tensor) -> float:
    """Maximum over coordinates of the rank-normalised split R-hat (Vehtari et al. 2021, arviz-stats) of chains
    given as (draws, chains, d) (paper Table 2)."""
    from arviz_stats.base import array_stats

    if not isinstance(trajectory, Tensor) or trajectory.dim() != 3 or trajectory.shape[0] < MIN_RHAT_DRAWS \
            or trajectory.shape[1] < 2:
        raise InputError(f"R-hat needs (draws >= {MIN_RHAT_DRAWS}, chains >= 2, d) positions, got shape "
                         f"{tuple(trajectory.shape)}")
    per_coordinate = array_stats.rhat(trajectory.permute(2, 1, 0).double().cpu().numpy(), chain_axis=-2,
                                      draw_axis=-1, method="rank")
    return float(np.max(per_coordinate))


def thin(trajectory: Tensor, max_draws: int) -> Tensor:
    """At most ``max_draws`` evenly spaced draws of chains (draws, chains, ...), the last draw kept."""
    check_int("max_draws", max_draws)
    if not isinstance(trajectory, Tensor) or trajectory.dim() < 2 or len(trajectory) == 0:
        raise InputError(f"trajectory must be (draws >= 1, chains, ...), got "
                         f"{tuple(trajectory.shape) if isinstance(trajectory, Tensor) else type(trajectory).__name__}")
    n = len(trajectory)
    kept = min(max_draws, n)
    return trajectory[n - 1 - torch.arange(kept).flip(0) * (n // kept)]


def mode_changes(trajectory: Tensor, assign_mode: Callable[[Tensor], Tensor]) -> Tensor:
    """How many times each chain of (draws, chains, d) changes mode between consecutive draws, (chains,)."""
    if not isinstance(trajectory, Tensor) or trajectory.dim() != 3:
        raise InputError(f"trajectory must be (draws, chains, d), got "
                         f"{tuple(trajectory.shape) if isinstance(trajectory, Tensor) else type(trajectory).__name__}")
    check_callable("assign_mode", assign_mode)
    modes = assign_mode(trajectory.flatten(0, 1)).view(trajectory.shape[:2])
    return (modes[1:] != modes[:-1]).sum(0)


def mixing_diagnostics(trajectory: Tensor, assign_mode: Callable[[Tensor], Tensor], max_draws: int = 64) -> dict:
    """Of chains (draws, chains, d): "rhat", the max R-hat of at most ``max_draws`` evenly thinned draws;
    "switches", the mean number of mode changes per chain; "moved", the mean per-coordinate distance from the first
    to the last draw (about sqrt 2 for chains that forget their start within a unit-variance mode). Chains that
    left the real line give rhat = moved = inf, switches = nan."""
    if not isinstance(trajectory, Tensor) or trajectory.dim() != 3 or len(trajectory) == 0:
        raise InputError(f"trajectory must be (draws, chains, d), got "
                         f"{tuple(trajectory.shape) if isinstance(trajectory, Tensor) else type(trajectory).__name__}")
    if not torch.isfinite(trajectory).all():
        return {"rhat": float("inf"), "switches": float("nan"), "moved": float("inf")}
    moved = (trajectory[-1] - trajectory[0]).flatten(1).norm(dim=-1) / trajectory[0, 0].numel() ** 0.5
    return {"rhat": max_rhat(thin(trajectory, max_draws)), "moved": float(moved.mean()),
            "switches": float(mode_changes(trajectory, assign_mode).float().mean())}
