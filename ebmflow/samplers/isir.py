"""Iterated sampling-importance-resampling, i-SIR (paper Algorithm 6; Samsonov et al. 2022).

Candidates y_1 = current state, y_2..y_N ~ lambda; weights w_i ∝ pi(y_i) / lambda(y_i), normalised over
the N candidates; the next state is y_j with j ~ Categorical(w). It leaves pi invariant for any N >= 2.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .base import ChainState, LogDensity, Proposal, init_state

__all__ = ["ISIRInfo", "isir_step"]


@dataclass
class ISIRInfo:
    is_accepted: Tensor  # (n,) bool: a fresh flow proposal was selected (j != 1)

    @property
    def acceptance_rate(self) -> float:
        return float(self.is_accepted.float().mean())


def isir_step(state: ChainState, log_density_fn: LogDensity, proposal: Proposal, n_particles: int,
              generator: torch.Generator) -> tuple[ChainState, ISIRInfo]:
    """One i-SIR step for every chain with ``n_particles`` candidates (the current state included)."""
    if n_particles < 2:
        raise ValueError(f"i-SIR needs n_particles >= 2, got {n_particles}")
    n = state.position.shape[0]
    event_shape = state.position.shape[1:]
    with torch.no_grad():
        fresh, log_q_fresh = proposal.sample_with_log_prob(n * (n_particles - 1), generator)
        log_pi_fresh = log_density_fn(fresh)
        log_q_current = proposal.log_prob(state.position)
    log_w = torch.cat([(state.log_density - log_q_current)[:, None],
                       (log_pi_fresh - log_q_fresh).view(n, n_particles - 1)], dim=1)
    log_w = torch.nan_to_num(log_w, nan=-torch.inf)  # a NaN candidate is never selected
    no_finite_weight = ~torch.isfinite(log_w).any(dim=1)
    log_w[no_finite_weight, 0] = 0.0  # nothing to choose from: keep the current state (a rejection)
    choice = torch.multinomial(torch.softmax(log_w, dim=1), 1, generator=generator).squeeze(1)
    accepted = choice > 0
    candidates = torch.cat([state.position[:, None], fresh.view(n, n_particles - 1, *event_shape)], dim=1)
    selected = candidates[torch.arange(n), choice]
    return init_state(selected, log_density_fn), ISIRInfo(is_accepted=accepted)
