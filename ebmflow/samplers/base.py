"""Shared pieces of the MCMC kernels: the chain state, the log-density protocol, the proposal protocol."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch
from torch import Tensor

__all__ = ["ChainState", "LogDensity", "Proposal", "init_state", "metropolis_accept"]

LogDensity = Callable[[Tensor], Tensor]
"""Unnormalised log pi(x), batched: (n, d) -> (n,)."""


class Proposal(Protocol):
    """An independent proposal with a tractable density (the flow lambda, or its base rho)."""

    def log_prob(self, x: Tensor) -> Tensor: ...

    def sample_with_log_prob(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]: ...


@dataclass
class ChainState:
    """A batch of chains: positions (n, d), their log pi (n,) and grad log pi (n, d)."""

    position: Tensor
    log_density: Tensor
    grad: Tensor


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
    log_u = torch.log(torch.rand(log_ratio.shape, generator=generator))
    return log_u < log_ratio


def where_rows(mask: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """Row-wise select between two batched tensors."""
    return torch.where(mask.view(-1, *[1] * (new.dim() - 1)), new, old)
