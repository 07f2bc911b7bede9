"""Metropolis-adjusted Langevin algorithm (paper Algorithm 4), batched over chains.

Proposal x' ~ N(x + eta grad log pi(x), 2 eta I), accepted with the MH ratio using
q(x'|x) ∝ exp(-||x' - x - eta grad log pi(x)||^2 / (4 eta)). With a target acceptance, the step is adapted
after every step by the first author's flow_mcmc rule and carried in the chain state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import InputError, check_callable, check_positive
from .base import AcceptInfo, ChainState, Kernel, LogDensity, init_state, log_uniform, value_and_grad

__all__ = ["MALAInfo", "mala", "adapt_step_size"]


@dataclass
class MALAInfo(AcceptInfo):
    log_ratio: Tensor  # (n,) log MH ratio (NaN where the proposal's log-density is NaN)

    @property
    def acceptance_probability(self) -> Tensor:
        """min(1, ratio) per chain, 0 where the ratio is NaN (computed on demand, not at every step)."""
        return torch.nan_to_num(self.log_ratio, nan=-torch.inf).clamp(max=0).exp()


def adapt_step_size(step_size: float, acceptance_rate: float, target: float = 0.75,
                    factor: float = 1.05, tolerance: float = 0.03) -> float:
    """Multiply/divide the step by ``factor`` when the batch acceptance is off target (flow_mcmc rule)."""
    if acceptance_rate > target + tolerance:
        return step_size * factor
    if acceptance_rate < target - tolerance:
        return step_size / factor
    return step_size


def mala(log_density: LogDensity, step_size: float, target_acceptance: float | None = None) -> Kernel:
    """MALA with step ``step_size``; with ``target_acceptance`` the step is the state's, adapted every step.

    One step is one forward and one backward pass of ``log_density`` (at the proposal) and about twenty small
    tensor operations. With the proposal x' = x + eta g + sqrt(2 eta) xi, the forward term of the MH ratio is
    ||x' - x - eta g||^2 / (4 eta) = ||xi||^2 / 2, so only the reverse term is computed from positions."""
    check_callable("MALA log_density", log_density)
    check_positive("MALA step_size", step_size)
    if target_acceptance is not None and (not isinstance(target_acceptance, (int, float))
                                          or not 0 < target_acceptance < 1):
        raise InputError(f"MALA target_acceptance must be in (0, 1), got {target_acceptance!r}")

    def init(position: Tensor) -> ChainState:
        state = init_state(position, log_density)
        if target_acceptance is not None:
            state.step_size = step_size
        return state

    def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, MALAInfo]:
        eta = state.step_size if target_acceptance is not None else step_size
        x, grad = state.position, state.grad
        noise = torch.randn(x.shape, generator=generator, device=x.device)
        proposal = x + eta * grad + math.sqrt(2 * eta) * noise
        log_density_proposal, grad_proposal = value_and_grad(log_density, proposal)
        backward = torch.sub(x, proposal).sub_(grad_proposal, alpha=eta).flatten(1)  # x - x' - eta g'
        noise = noise.flatten(1)
        log_ratio = ((log_density_proposal - state.log_density)
                     .add_(torch.linalg.vecdot(noise, noise), alpha=0.5)
                     .sub_(torch.linalg.vecdot(backward, backward), alpha=1 / (4 * eta)))
        accepted = log_uniform(len(x), generator, x) < log_ratio  # a NaN ratio is a rejection
        rows = accepted.view(-1, *[1] * (x.dim() - 1))
        new_state = ChainState(torch.where(rows, proposal, x),
                               torch.where(accepted, log_density_proposal, state.log_density),
                               torch.where(rows, grad_proposal, grad), state.step_size)
        info = MALAInfo(is_accepted=accepted, log_ratio=log_ratio)
        if target_acceptance is not None:
            new_state.step_size = adapt_step_size(eta, info.acceptance_rate, target_acceptance)
        return new_state, info

    return Kernel(init, step)
