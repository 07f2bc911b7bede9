"""Iterated sampling-importance-resampling, i-SIR (paper Algorithm 6; Samsonov et al. 2022).

Candidates y_1 = current state, y_2..y_N ~ lambda; weights w_i ∝ pi(y_i) / lambda(y_i), normalised over
the N candidates; the next state is y_j with j ~ Categorical(w). It leaves pi invariant for any N >= 2.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_callable, check_density, check_int
from .base import AcceptInfo, ChainState, Kernel, LogDensity, Proposal, init_state

__all__ = ["isir"]


def isir(log_density: LogDensity, proposal: Proposal, n_particles: int) -> Kernel:
    """One i-SIR move per chain and step with ``n_particles`` candidates (the current state included);
    ``is_accepted`` marks the chains that moved to a fresh proposal."""
    check_int("i-SIR n_particles", n_particles, minimum=2)
    check_callable("i-SIR log_density", log_density)
    check_density("i-SIR proposal", proposal)

    def init(position: Tensor) -> ChainState:
        return init_state(position, log_density)

    def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, AcceptInfo]:
        n = state.position.shape[0]
        event_shape = state.position.shape[1:]
        with torch.no_grad():
            fresh, log_q_fresh = proposal.sample_with_log_prob(n * (n_particles - 1), generator)
            log_pi_fresh = log_density(fresh)
            log_q_current = proposal.log_prob(state.position)
        log_w = torch.cat([(state.log_density - log_q_current)[:, None],
                           (log_pi_fresh - log_q_fresh).view(n, n_particles - 1)], dim=1)
        log_w = torch.nan_to_num(log_w, nan=-torch.inf)  # a NaN candidate is never selected
        no_finite_weight = ~torch.isfinite(log_w).any(dim=1)
        log_w[no_finite_weight, 0] = 0.0  # nothing to choose from: keep the current state (a rejection)
        choice = torch.multinomial(torch.softmax(log_w, dim=1), 1, generator=generator).squeeze(1)
        accepted = choice > 0
        candidates = torch.cat([state.position[:, None], fresh.view(n, n_particles - 1, *event_shape)], dim=1)
        selected = candidates[torch.arange(n, device=choice.device), choice]
        new_state = init_state(selected, log_density)
        new_state.step_size = state.step_size  # an adapted local step survives the global move
        return new_state, AcceptInfo(is_accepted=accepted)

    return Kernel(init, step)
