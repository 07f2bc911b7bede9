"""Independent Metropolis-Hastings with a flow proposal (paper Algorithm 5, global step).

x' ~ lambda, accepted with probability min{1, pi(x') lambda(x) / (pi(x) lambda(x'))}.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .base import ChainState, LogDensity, Proposal, init_state, metropolis_accept, where_rows

__all__ = ["IMHInfo", "imh_step"]


@dataclass
class IMHInfo:
    is_accepted: Tensor  # (n,) bool

    @property
    def acceptance_rate(self) -> float:
        return float(self.is_accepted.float().mean())


def imh_step(state: ChainState, log_density_fn: LogDensity, proposal: Proposal,
             generator: torch.Generator) -> tuple[ChainState, IMHInfo]:
    """One IMH step for every chain."""
    n = state.position.shape[0]
    with torch.no_grad():
        candidate, log_q_candidate = proposal.sample_with_log_prob(n, generator)
        log_q_current = proposal.log_prob(state.position)
    candidate_state = init_state(candidate, log_density_fn)
    log_ratio = (candidate_state.log_density - log_q_candidate) - (state.log_density - log_q_current)
    accepted = metropolis_accept(log_ratio, generator)
    new_state = ChainState(
        position=where_rows(accepted, candidate_state.position, state.position),
        log_density=torch.where(accepted, candidate_state.log_density, state.log_density),
        grad=where_rows(accepted, candidate_state.grad, state.grad),
    )
    return new_state, IMHInfo(is_accepted=accepted)
