"""Iterated sampling-importance-resampling, i-SIR (paper Algorithm 6; Samsonov et al. 2022).

Candidates y_1 = current state, y_2..y_N ~ lambda; weights w_i ∝ pi(y_i) / lambda(y_i), normalised over
the N candidates; the next state is y_j with j ~ Categorical(w). It leaves pi invariant for any N >= 2.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_callable, check_density, check_int
from .base import AcceptInfo, ChainState, Kernel, LogDensity, Proposal, ProposalDensity, lazy_state, propose
from .imh import moved_state

__all__ = ["isir"]


def isir(log_density: LogDensity, proposal: Proposal, n_particles: int) -> Kernel:
    """One i-SIR move per chain and step with ``n_particles`` candidates (the current state included);
    ``is_accepted`` marks the chains that moved to a fresh proposal.

    The fresh candidates are evaluated without a graph; a chain that keeps its state keeps its log pi, gradient
    and log lambda, and a chain that moves takes its candidate's log pi and log lambda, its gradient being
    computed when a gradient-based kernel next needs it (one batch for all the chains that moved)."""
    check_int("i-SIR n_particles", n_particles, minimum=2)
    check_callable("i-SIR log_density", log_density)
    check_density("i-SIR proposal", proposal)
    density = ProposalDensity(proposal)
    m = n_particles - 1  # fresh candidates per chain

    def init(position: Tensor) -> ChainState:
        return lazy_state(position, log_density)

    def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, AcceptInfo]:
        n = state.position.shape[0]
        fresh, log_q_fresh, log_pi_fresh = propose(proposal, log_density, n * m, generator)
        log_q_current, key = density.of(state)
        log_w = torch.cat([(state.log_density - log_q_current)[:, None], (log_pi_fresh - log_q_fresh).view(n, m)],
                          dim=1)
        # a NaN candidate is never selected; an infinite weight wins (shared equally when several are infinite)
        log_w.nan_to_num_(nan=-torch.inf, posinf=torch.finfo(log_w.dtype).max)
        no_finite_weight = ~torch.isfinite(log_w).any(dim=1)
        log_w[:, 0].masked_fill_(no_finite_weight, 0.0)  # nothing to choose from: keep the current state
        # j ~ Categorical(w) by the inverse CDF: one uniform per chain
        cdf = torch.softmax(log_w, dim=1).cumsum_(dim=1)
        u = torch.rand(n, 1, generator=generator, device=cdf.device, dtype=cdf.dtype).mul_(cdf[:, -1:])
        choice = torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=m)
        accepted = choice > 0
        rows = (choice - 1).clamp_(min=0).add_(torch.arange(0, n * m, m, device=choice.device))  # into ``fresh``
        return (moved_state(state, accepted, fresh.index_select(0, rows), log_pi_fresh.index_select(0, rows),
                            log_q_fresh.index_select(0, rows), log_q_current, key, log_density),
                AcceptInfo(is_accepted=accepted))

    return Kernel(init, step)
