"""Independent Metropolis-Hastings with a flow proposal (paper Algorithm 5, global step).

x' ~ lambda, accepted with probability min{1, pi(x') lambda(x) / (pi(x) lambda(x'))}.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_callable, check_density
from .base import (AcceptInfo, ChainState, Kernel, LogDensity, Proposal, ProposalDensity, lazy_state, log_uniform,
                   propose, where_rows)

__all__ = ["imh"]

MAX_BATCH_ELEMENTS = 1 << 22  # proposals drawn at once by ``run``: at most this many numbers (16 MB in float32)


def moved_state(state: ChainState, moved: Tensor, position: Tensor, log_density: Tensor, log_q: Tensor,
                log_q_current: Tensor, key: tuple | None, log_density_fn: LogDensity) -> ChainState:
    """The chains after a global move: rows ``moved`` take the new position, log pi and log lambda; their
    gradients wait until needed (``ChainState.grad``); the others keep theirs. An adapted step size carries over."""
    new = ChainState(where_rows(moved, position, state.position), torch.where(moved, log_density, state.log_density),
                     state._grad, state.step_size)
    new._pending, new._log_density_fn = state._pending, state._log_density_fn
    new._moved(moved, log_density_fn)
    if key is not None:
        new._proposal = (key, torch.where(moved, log_q, log_q_current))
    return new


def imh(log_density: LogDensity, proposal: Proposal) -> Kernel:
    """One IMH move per chain and step, proposals from ``proposal``.

    Candidates are evaluated without a graph (log pi only); grad log pi of the chains that moved is computed when
    a gradient-based kernel next needs it. log lambda of the current states is reused while the proposal's
    parameters are unchanged. ``run`` (used by ``run_chains`` and flowMC for consecutive global steps) draws the
    proposals of all its steps in one batch, as flowMC's ``NFProposal`` does, then accepts or rejects them in
    sequence: the same kernel, with the random numbers drawn in another order than step by step."""
    check_callable("IMH log_density", log_density)
    check_density("IMH proposal", proposal)
    density = ProposalDensity(proposal)

    def init(position: Tensor) -> ChainState:
        return lazy_state(position, log_density)

    def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, AcceptInfo]:
        n = state.position.shape[0]
        candidate, log_q_candidate, log_pi_candidate = propose(proposal, log_density, n, generator)
        log_q_current, key = density.of(state)
        log_ratio = (log_pi_candidate - log_q_candidate) - (state.log_density - log_q_current)
        accepted = log_uniform(n, generator, log_ratio) < log_ratio  # a NaN ratio is a rejection
        return (moved_state(state, accepted, candidate, log_pi_candidate, log_q_candidate, log_q_current, key,
                            log_density), AcceptInfo(is_accepted=accepted))

    def run(state: ChainState, n_steps: int, generator: torch.Generator,
            record: bool = False) -> tuple[ChainState, list[Tensor] | None, list[AcceptInfo]]:
        n = state.position.shape[0]
        chunk = max(1, min(n_steps, MAX_BATCH_ELEMENTS // max(1, state.position[0].numel() * n)))
        infos: list[AcceptInfo] = []
        positions: list[Tensor] | None = [] if record else None
        done = 0
        while done < n_steps:
            k = min(chunk, n_steps - done)
            state = _steps(state, k, generator, infos, positions)
            done += k
        return state, positions, infos

    def _steps(state: ChainState, k: int, generator: torch.Generator, infos: list,
               positions: list[Tensor] | None) -> ChainState:
        n = state.position.shape[0]
        candidates, log_q, log_pi = propose(proposal, log_density, k * n, generator)
        log_q_current, key = density.of(state)
        log_u = log_uniform(k * n, generator, log_pi).view(k, n).unbind(0)
        weights = (log_pi - log_q).view(k, n).unbind(0)
        weight = state.log_density - log_q_current  # of the current state of each chain
        flags = []
        for i in range(k):
            accepted = log_u[i] < weights[i] - weight  # a NaN ratio is a rejection
            weight = torch.where(accepted, weights[i], weight)
            flags.append(accepted)
            if positions is not None:
                previous = positions[-1] if positions else state.position
                positions.append(where_rows(accepted, candidates[i * n:(i + 1) * n], previous))
        infos.extend(AcceptInfo(is_accepted=accepted) for accepted in flags)
        steps = torch.arange(k, device=weight.device).unsqueeze(1)
        chosen = torch.where(torch.stack(flags), steps, -1).amax(0)  # the last accepted step, -1: none
        moved = chosen >= 0
        rows = chosen.clamp_(min=0).mul_(n).add_(torch.arange(n, device=chosen.device))  # flat candidate index
        return moved_state(state, moved, candidates.index_select(0, rows), log_pi.index_select(0, rows),
                           log_q.index_select(0, rows), log_q_current, key, log_density)

    return Kernel(init, step, run)
