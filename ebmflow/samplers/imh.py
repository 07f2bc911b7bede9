"""Independent Metropolis-Hastings with a flow proposal (paper Algorithm 5, global step).

x' ~ lambda, accepted with probability min{1, pi(x') lambda(x) / (pi(x) lambda(x'))}.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_callable, check_density
from .base import AcceptInfo, ChainState, Kernel, LogDensity, Proposal, init_state, metropolis_accept, where_rows

__all__ = ["imh"]


def imh(log_density: LogDensity, proposal: Proposal) -> Kernel:
    """One IMH move per chain and step, proposals from ``proposal``."""
    check_callable("IMH log_density", log_density)
    check_density("IMH proposal", proposal)

    def init(position: Tensor) -> ChainState:
        return init_state(position, log_density)

    def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, AcceptInfo]:
        n = state.position.shape[0]
        with torch.no_grad():
            candidate, log_q_candidate = proposal.sample_with_log_prob(n, generator)
            log_q_current = proposal.log_prob(state.position)
        candidate_state = init_state(candidate, log_density)
        log_ratio = (candidate_state.log_density - log_q_candidate) - (state.log_density - log_q_current)
        accepted = metropolis_accept(log_ratio, generator)
        new_state = ChainState(
            position=where_rows(accepted, candidate_state.position, state.position),
            log_density=torch.where(accepted, candidate_state.log_density, state.log_density),
            grad=where_rows(accepted, candidate_state.grad, state.grad),
            step_size=state.step_size,  # an adapted local step survives the global move
        )
        return new_state, AcceptInfo(is_accepted=accepted)

    return Kernel(init, step)
