"""Unadjusted Langevin algorithm (paper Algorithm 3): x' = x + eta grad log pi(x) + sqrt(2 eta) xi."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .base import ChainState, LogDensity, init_state

__all__ = ["ULAInfo", "ula_step"]


@dataclass
class ULAInfo:
    """ULA has no accept/reject; the step taken is kept to spot divergence (read on demand, not per step)."""

    drift: Tensor

    @property
    def mean_displacement(self) -> float:
        return float(self.drift.flatten(1).norm(dim=-1).mean())


def ula_step(state: ChainState, log_density_fn: LogDensity, step_size: float,
             generator: torch.Generator, noise: bool = True,
             bounds: tuple[float, float] | None = None) -> tuple[ChainState, ULAInfo]:
    """One ULA step for every chain; ``noise=False`` gives the noiseless Langevin used by CoopFlow;
    ``bounds`` = (low, high) clamps the new positions into a box (Du & Mordatch 2019's pixel clipping)."""
    drift = step_size * state.grad
    if noise:
        drift = drift + math.sqrt(2 * step_size) * torch.randn(state.position.shape, generator=generator)
    position = state.position + drift
    if bounds is not None:
        position = position.clamp(*bounds)
    new_state = init_state(position, log_density_fn)
    return new_state, ULAInfo(drift=drift)
