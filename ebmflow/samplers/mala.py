"""Metropolis-adjusted Langevin algorithm (paper Algorithm 4), batched over chains.

Proposal x' ~ N(x + eta grad log pi(x), 2 eta I), accepted with the MH ratio using
q(x'|x) ∝ exp(-||x' - x - eta grad log pi(x)||^2 / (4 eta)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .base import ChainState, LogDensity, init_state, metropolis_accept, where_rows

__all__ = ["MALAInfo", "mala_step", "adapt_step_size"]


@dataclass
class MALAInfo:
    acceptance_probability: Tensor  # (n,)
    is_accepted: Tensor  # (n,) bool

    @property
    def acceptance_rate(self) -> float:
        return float(self.is_accepted.float().mean())


def _log_q(to: Tensor, frm: Tensor, grad_frm: Tensor, step_size: float) -> Tensor:
    """log q(to | frm) up to a constant, for inputs of any event shape."""
    diff = (to - frm - step_size * grad_frm).flatten(1)
    return -(diff**2).sum(-1) / (4 * step_size)


def mala_step(state: ChainState, log_density_fn: LogDensity, step_size: float,
              generator: torch.Generator) -> tuple[ChainState, MALAInfo]:
    """One MALA step for every chain."""
    noise = torch.randn(state.position.shape, generator=generator)
    proposal = init_state(state.position + step_size * state.grad + math.sqrt(2 * step_size) * noise,
                          log_density_fn)
    log_ratio = (proposal.log_density - state.log_density
                 + _log_q(state.position, proposal.position, proposal.grad, step_size)
                 - _log_q(proposal.position, state.position, state.grad, step_size))
    accepted = metropolis_accept(log_ratio, generator)
    new_state = ChainState(
        position=where_rows(accepted, proposal.position, state.position),
        log_density=torch.where(accepted, proposal.log_density, state.log_density),
        grad=where_rows(accepted, proposal.grad, state.grad),
    )
    probability = torch.nan_to_num(log_ratio, nan=-torch.inf).clamp(max=0).exp()
    return new_state, MALAInfo(acceptance_probability=probability, is_accepted=accepted)


def adapt_step_size(step_size: float, acceptance_rate: float, target: float = 0.75,
                    factor: float = 1.05, tolerance: float = 0.03) -> float:
    """Multiply/divide the step by ``factor`` when the batch acceptance is off target (flow_mcmc rule)."""
    if acceptance_rate > target + tolerance:
        return step_size * factor
    if acceptance_rate < target - tolerance:
        return step_size / factor
    return step_size
