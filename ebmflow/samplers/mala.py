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
from .base import AcceptInfo, ChainState, Kernel, LogDensity, init_state, metropolis_accept, where_rows

__all__ = ["MALAInfo", "mala", "adapt_step_size"]


@dataclass
class MALAInfo(AcceptInfo):
    acceptance_probability: Tensor  # (n,)


def _log_q(to: Tensor, frm: Tensor, grad_frm: Tensor, step_size: float) -> Tensor:
    """log q(to | frm) up to a constant, for inputs of any event shape."""
    diff = (to - frm - step_size * grad_frm).flatten(1)
    return -(diff**2).sum(-1) / (4 * step_size)


def adapt_step_size(step_size: float, acceptance_rate: float, target: float = 0.75,
                    factor: float = 1.05, tolerance: float = 0.03) -> float:
    """Multiply/divide the step by ``factor`` when the batch acceptance is off target (flow_mcmc rule)."""
    if acceptance_rate > target + tolerance:
        return step_size * factor
    if acceptance_rate < target - tolerance:
        return step_size / factor
    return step_size


def mala(log_density: LogDensity, step_size: float, target_acceptance: float | None = None) -> Kernel:
    """MALA with step ``step_size``; with ``target_acceptance`` the step is the state's, adapted every step."""
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
        noise = torch.randn(state.position.shape, generator=generator, device=state.position.device)
        proposal = init_state(state.position + eta * state.grad + math.sqrt(2 * eta) * noise, log_density)
        log_ratio = (proposal.log_density - state.log_density
                     + _log_q(state.position, proposal.position, proposal.grad, eta)
                     - _log_q(proposal.position, state.position, state.grad, eta))
        accepted = metropolis_accept(log_ratio, generator)
        new_state = ChainState(
            position=where_rows(accepted, proposal.position, state.position),
            log_density=torch.where(accepted, proposal.log_density, state.log_density),
            grad=where_rows(accepted, proposal.grad, state.grad),
        )
        info = MALAInfo(is_accepted=accepted,
                        acceptance_probability=torch.nan_to_num(log_ratio, nan=-torch.inf).clamp(max=0).exp())
        if target_acceptance is not None:
            new_state.step_size = adapt_step_size(eta, info.acceptance_rate, target_acceptance)
        return new_state, info

    return Kernel(init, step)
