"""One kernel signature for every MCMC sampler (BlackJAX's ``SamplingAlgorithm`` shape), batched over chains.

A kernel is an ``init(position) -> state`` and a ``step(state, generator) -> (state, info)``; the target (and
the proposal of the global kernels) is a live closure, so a kernel built once stays valid while the EBM that
defines its target trains. ``run_chains`` is the one loop that advances chains; a kernel may also carry a
``run(state, n_steps, generator, record)`` that advances several steps at once (IMH draws all its proposals in
one batch), which ``run_chains`` then uses.

Cost model (small batches are bound by the number of tensor operations, not by arithmetic): kernels evaluate only
what changed. A chain state computes grad log pi lazily: the global moves (IMH, i-SIR) evaluate log pi of their
candidates without a graph and mark the rows that moved; their gradients are computed, in one batch, when a
kernel that needs them (MALA, ULA) or a reader asks for ``state.grad``. The flow density of the current states,
which the global moves need, is kept in the state and reused while the proposal's parameters are unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Protocol

import torch
from torch import Tensor, nn

from ..checks import check_chain_start, check_generator, check_int, check_kernel

__all__ = ["LogDensity", "Proposal", "ChainState", "AcceptInfo", "Kernel", "init_state", "metropolis_accept",
           "where_rows", "run_chains", "value_and_grad", "lazy_state", "log_uniform", "ProposalDensity",
           "propose", "PROPOSAL_BLOCK"]

LogDensity = Callable[[Tensor], Tensor]
"""Unnormalised log pi(x), batched: (n, d) -> (n,)."""


class Proposal(Protocol):
    """An independent proposal with a tractable density (the flow lambda, or its base rho)."""

    def log_prob(self, x: Tensor) -> Tensor: ...

    def sample_with_log_prob(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]: ...


class ChainState:
    """A batch of chains: positions (n, d), their log pi (n,) and grad log pi (n, d).

    ``step_size`` is set only by kernels that adapt their step (MALA with a target acceptance); every kernel
    carries it through. ``grad`` may be pending for some rows (after a global move): it is then computed on first
    access, with the log-density of the kernel that moved them."""

    __slots__ = ("position", "log_density", "_grad", "step_size", "_pending", "_log_density_fn", "_proposal")

    def __init__(self, position: Tensor, log_density: Tensor, grad: Tensor | None = None,
                 step_size: float | None = None) -> None:
        self.position, self.log_density, self._grad, self.step_size = position, log_density, grad, step_size
        self._pending: Tensor | None = None  # rows whose gradient is not computed yet (bool (n,)), or None
        self._log_density_fn: LogDensity | None = None
        self._proposal: tuple[tuple, Tensor] | None = None  # (proposal key, log lambda(position)) when known

    @property
    def grad(self) -> Tensor:
        if self._log_density_fn is not None:  # some rows (all when ``_grad`` is None) wait for their gradient
            self._resolve_grad()
        return self._grad

    @grad.setter
    def grad(self, value: Tensor) -> None:
        self._grad, self._pending, self._log_density_fn = value, None, None

    def __repr__(self) -> str:
        return (f"ChainState(position={self.position!r}, log_density={self.log_density!r}, grad={self.grad!r}, "
                f"step_size={self.step_size!r})")

    def _moved(self, rows: Tensor | None, log_density_fn: LogDensity) -> "ChainState":
        """Mark ``rows`` (bool (n,); None: all) as waiting for their gradient, computed with ``log_density_fn``."""
        if rows is None:
            self._grad = None
        elif self._grad is not None:
            self._pending = rows if self._pending is None else rows | self._pending
        self._log_density_fn = log_density_fn
        return self

    def _resolve_grad(self) -> None:
        fn, x, pending = self._log_density_fn, self.position, self._pending
        if self._grad is None:
            self._grad = value_and_grad(fn, x)[1]
        elif x.is_cuda:  # no host sync on a GPU: evaluate every row, keep the known ones
            self._grad = where_rows(pending, value_and_grad(fn, x)[1], self._grad)
        else:
            rows = pending.nonzero().squeeze(1)
            if len(rows) == len(x):
                self._grad = value_and_grad(fn, x)[1]
            elif len(rows):
                grad = self._grad.clone()
                grad[rows] = value_and_grad(fn, x[rows])[1]
                self._grad = grad
        self._pending, self._log_density_fn = None, None


def value_and_grad(log_density_fn: LogDensity, position: Tensor) -> tuple[Tensor, Tensor]:
    """log pi and grad log pi at ``position`` in one forward and one backward pass (both detached)."""
    x = position.detach().requires_grad_(True)
    if torch.is_grad_enabled():
        log_density = log_density_fn(x)
        (grad,) = torch.autograd.grad(log_density.sum(), x)
        return log_density.detach(), grad
    with torch.enable_grad():
        return value_and_grad(log_density_fn, position)


@dataclass
class AcceptInfo:
    """What a Metropolis-type step reports: which chains moved (a tensor: reading the rate is the only sync)."""

    is_accepted: Tensor  # (n,) bool

    @property
    def acceptance_rate(self) -> float:
        return float(self.is_accepted.float().mean())


class Kernel(NamedTuple):
    init: Callable[[Tensor], ChainState]
    step: Callable[[ChainState, torch.Generator], tuple[ChainState, Any]]
    run: Callable[..., tuple[ChainState, list[Tensor] | None, list]] | None = None
    """Optional: ``run(state, n_steps, generator, record)`` -> (state, positions after each step or None, infos),
    several steps at once; it leaves the same target invariant as ``n_steps`` calls of ``step``."""


def init_state(position: Tensor, log_density_fn: LogDensity) -> ChainState:
    """Evaluate log pi and its gradient at ``position`` (detached: chains carry no graph)."""
    log_density, grad = value_and_grad(log_density_fn, position)
    return ChainState(position.detach(), log_density, grad)


def lazy_state(position: Tensor, log_density_fn: LogDensity) -> ChainState:
    """log pi at ``position`` without a graph; the gradient is computed when first needed."""
    with torch.no_grad():
        log_density = log_density_fn(position)
    return ChainState(position.detach(), log_density)._moved(None, log_density_fn)


def log_uniform(n: int, generator: torch.Generator, like: Tensor) -> Tensor:
    """log U for n uniforms (the accept/reject draw; log U < log ratio accepts, and a NaN ratio rejects)."""
    return torch.rand(n, generator=generator, device=like.device).log_()


def metropolis_accept(log_ratio: Tensor, generator: torch.Generator) -> Tensor:
    """Accept where log U < log_ratio; a NaN ratio is a rejection, never propagated (as in BlackJAX): a
    comparison with NaN is False."""
    return log_uniform(log_ratio.shape[0], generator, log_ratio) < log_ratio


def where_rows(mask: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """Row-wise select between two batched tensors."""
    if new.dim() == 1:
        return torch.where(mask, new, old)
    return torch.where(mask.view(-1, *[1] * (new.dim() - 1)), new, old)


class ProposalDensity:
    """log lambda of chain states for a global kernel, reused from the state when it was computed for this
    proposal at its current parameters: the key is every parameter's and buffer's identity and version (an
    optimiser step, a ``load_state_dict`` or a replaced parameter changes it; the modules themselves are the ones
    the kernel was built with). A proposal that is not a module is evaluated every time."""

    def __init__(self, proposal: Proposal) -> None:
        self.proposal = proposal
        self._slots: list[tuple[dict, str]] | None = None  # (module._parameters or _buffers, name) of each tensor

    def key(self) -> tuple | None:
        if not isinstance(self.proposal, nn.Module):
            return None
        if self._slots is None:  # where the tensors live (a parameter replaced in its module is seen below)
            self._slots = [(tensors, name) for module in self.proposal.modules()
                           for tensors in (module._parameters, module._buffers) for name in tensors]
        key: list = []
        for tensors, name in self._slots:
            t = tensors.get(name)
            if t is not None:
                key += (id(t), t._version)
        return tuple(key)

    def of(self, state: ChainState) -> tuple[Tensor, tuple | None]:
        """log lambda(state.position) and the proposal's key now."""
        key = self.key()
        if key is not None and state._proposal is not None and state._proposal[0] == key:
            return state._proposal[1], key
        with torch.no_grad():
            return self.proposal.log_prob(state.position), key


PROPOSAL_BLOCK = 8192
"""Proposals are drawn and evaluated in blocks of at most this many (a multiple of 16: for a flow, whose only
draw is its base's ``randn``, the blocks draw the same numbers as one call); beyond a few thousand points the
flow's intermediate tensors leave the cache and one large batch costs more than blocks."""


def propose(proposal: Proposal, log_density_fn: LogDensity, n: int,
            generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """n proposals, their log lambda and their log pi (no graph), evaluated in blocks of ``PROPOSAL_BLOCK``."""
    with torch.no_grad():
        if n <= PROPOSAL_BLOCK:
            x, log_q = proposal.sample_with_log_prob(n, generator)
            return x, log_q, log_density_fn(x)
        parts = []
        for start in range(0, n, PROPOSAL_BLOCK):
            x, log_q = proposal.sample_with_log_prob(min(PROPOSAL_BLOCK, n - start), generator)
            parts.append((x, log_q, log_density_fn(x)))
        return tuple(torch.cat(column) for column in zip(*parts))


def run_chains(kernel: Kernel, start: Tensor | ChainState, n_steps: int, generator: torch.Generator, *,
               record: bool = False) -> tuple[ChainState, Tensor | None, list]:
    """The one loop: ``n_steps`` steps of ``kernel`` from ``start`` (positions or a state).

    Returns the final state, the positions after every step (n_steps, n, d) when ``record`` (else None), and
    the infos of the steps."""
    check_kernel("kernel", kernel), check_int("n_steps", n_steps, minimum=0), check_generator(generator)
    check_chain_start(start)
    state = kernel.init(start) if isinstance(start, Tensor) else start
    if kernel.run is not None and n_steps > 0:
        state, positions, infos = kernel.run(state, n_steps, generator, record)
    else:
        positions, infos = [], []
        for _ in range(n_steps):
            state, info = kernel.step(state, generator)
            infos.append(info)
            if record:
                positions.append(state.position)
    if not record:
        return state, None, infos
    return state, (torch.stack(positions) if positions else state.position.new_empty(0, *state.position.shape)), infos
