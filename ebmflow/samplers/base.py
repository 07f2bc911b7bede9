"""One kernel signature for every MCMC sampler (BlackJAX's ``SamplingAlgorithm`` shape), batched over chains.

A kernel is an ``init(position) -> state`` and a ``step(state, generator) -> (state, info)``; the target (and
the proposal of the global kernels) is a live closure, so a kernel built once stays valid while the EBM that
defines its target trains. ``run_chains`` is the one loop that advances chains.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Protocol

import torch
from torch import Tensor

from ..checks import check_chain_start, check_generator, check_int, check_kernel

__all__ = ["LogDensity", "Proposal", "ChainState", "AcceptInfo", "Kernel", "init_state", "metropolis_accept",
           "where_rows", "run_chains"]

LogDensity = Callable[[Tensor], Tensor]
"""Unnormalised log pi(x), batched: (n, d) -> (n,)."""


class Proposal(Protocol):
    """An independent proposal with a tractable density (the flow lambda, or its base rho)."""

    def log_prob(self, x: Tensor) -> Tensor: ...

    def sample_with_log_prob(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]: ...


@dataclass
class ChainState:
    """A batch of chains: positions (n, d), their log pi (n,) and grad log pi (n, d).

    ``step_size`` is set only by kernels that adapt their step (MALA with a target acceptance)."""

    position: Tensor
    log_density: Tensor
    grad: Tensor
    step_size: float | None = None


@dataclass
class AcceptInfo:
    """What a Metropolis-type step reports: which chains moved."""

    is_accepted: Tensor  # (n,) bool

    @property
    def acceptance_rate(self) -> float:
        return float(self.is_accepted.float().mean())


class Kernel(NamedTuple):
    init: Callable[[Tensor], ChainState]
    step: Callable[[ChainState, torch.Generator], tuple[ChainState, Any]]


def init_state(position: Tensor, log_density_fn: LogDensity) -> ChainState:
    """Evaluate log pi and its gradient at ``position`` (detached: chains carry no graph)."""
    x = position.detach().requires_grad_(True)
    with torch.enable_grad():
        log_density = log_density_fn(x)
        (grad,) = torch.autograd.grad(log_density.sum(), x)
    return ChainState(x.detach(), log_density.detach(), grad.detach())


def metropolis_accept(log_ratio: Tensor, generator: torch.Generator) -> Tensor:
    """Accept where log U < log_ratio; a NaN ratio is a rejection, never propagated (as in BlackJAX)."""
    log_ratio = torch.nan_to_num(log_ratio, nan=-torch.inf)
    log_u = torch.log(torch.rand(log_ratio.shape, generator=generator, device=log_ratio.device))
    return log_u < log_ratio


def where_rows(mask: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """Row-wise select between two batched tensors."""
    return torch.where(mask.view(-1, *[1] * (new.dim() - 1)), new, old)


def run_chains(kernel: Kernel, start: Tensor | ChainState, n_steps: int, generator: torch.Generator, *,
               record: bool = False) -> tuple[ChainState, Tensor | None, list]:
    """The one loop: ``n_steps`` steps of ``kernel`` from ``start`` (positions or a state).

    Returns the final state, the positions after every step (n_steps, n, d) when ``record`` (else None), and
    the infos of the steps."""
    check_kernel("kernel", kernel), check_int("n_steps", n_steps, minimum=0), check_generator(generator)
    check_chain_start(start)
    state = kernel.init(start) if isinstance(start, Tensor) else start
    positions, infos = [], []
    for _ in range(n_steps):
        state, info = kernel.step(state, generator)
        infos.append(info)
        if record:
            positions.append(state.position)
    return state, (torch.stack(positions) if record else None), infos
