"""Unadjusted Langevin algorithm (paper Algorithm 3): x' = x + eta grad log pi(x) + sqrt(2 eta) xi."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import check_bounds, check_callable, check_positive
from .base import ChainState, Kernel, LogDensity, init_state, value_and_grad

__all__ = ["ULAInfo", "ula"]


@dataclass
class ULAInfo:
    """ULA has no accept/reject; the step taken is kept to spot divergence (read on demand, not per step)."""

    drift: Tensor

    @property
    def mean_displacement(self) -> float:
        return float(self.drift.flatten(1).norm(dim=-1).mean())


def ula(log_density: LogDensity, step_size: float, *, noise: bool = True,
        bounds: tuple[float, float] | None = None, max_drift: float | None = None) -> Kernel:
    """ULA with step ``step_size``.

    ``noise=False`` gives the noiseless Langevin CoopFlow runs; ``bounds`` = (low, high) clamps the new
    positions into a box (Du & Mordatch 2019's pixel clipping); ``max_drift`` clamps each coordinate's
    displacement per step (CoopFlow's original code clamps it to ±0.1)."""
    check_callable("ULA log_density", log_density)
    check_positive("ULA step_size", step_size)
    check_bounds("ULA bounds", bounds)
    if max_drift is not None:
        check_positive("ULA max_drift", max_drift)

    def init(position: Tensor) -> ChainState:
        return init_state(position, log_density)

    def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, ULAInfo]:
        x = state.position
        drift = step_size * state.grad
        if max_drift is not None:
            drift = drift.clamp_(-max_drift, max_drift)
        if noise:
            drift = drift + math.sqrt(2 * step_size) * torch.randn(x.shape, generator=generator, device=x.device)
        position = x + drift
        if bounds is not None:
            position = position.clamp_(*bounds)
        return ChainState(position, *value_and_grad(log_density, position), state.step_size), ULAInfo(drift=drift)

    return Kernel(init, step)
