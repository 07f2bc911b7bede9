"""How each method draws its negative samples from persistent chains, and what it learns besides the EBM.

A negative sampler has three jobs: ``init_chains`` (the persistent bank at iteration 0), ``sample``
(advance a batch of chains on the tilted target and return the negatives) and ``update`` (anything it
trains itself after the EBM step: the flow for flowMC-EBM, nothing for ULA-EBM).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..flows import RealNVP, maximum_likelihood_step, sample_flow
from ..samplers import FlowMCKernel, LogDensity, init_state, ula_step

__all__ = ["ULANegatives", "FlowMCNegatives"]


@dataclass
class ULANegatives:
    """ULA-EBM (paper Algorithm 3): ``n_steps`` ULA steps, last state only, chains started uniformly.

    ``clip`` projects the chains back into [init_low, init_high] after every step, as Du & Mordatch (2019)
    do for images (pixels live in a box; the image tilt rho is not defined outside it).
    """

    step_size: float
    n_steps: int
    init_low: float
    init_high: float
    clip: bool = False

    def __post_init__(self) -> None:
        if self.step_size <= 0 or self.n_steps <= 0 or self.init_low >= self.init_high:
            raise ValueError(f"ULA-EBM needs step_size > 0, n_steps > 0 and init_low < init_high, got "
                             f"{self.step_size}, {self.n_steps}, ({self.init_low}, {self.init_high})")

    def init_chains(self, n: int, dim: int, generator: torch.Generator) -> Tensor:
        return self.init_low + (self.init_high - self.init_low) * torch.rand(n, dim, generator=generator)

    def sample(self, x: Tensor, log_target: LogDensity, generator: torch.Generator) -> tuple[Tensor, dict]:
        state = init_state(x, log_target)
        bounds = (self.init_low, self.init_high) if self.clip else None
        for _ in range(self.n_steps):
            state, _ = ula_step(state, log_target, self.step_size, generator, bounds=bounds)
        return state.position, {}

    def update(self, negatives: Tensor) -> dict:
        return {}


@dataclass
class FlowMCNegatives:
    """flowMC-EBM (paper Algorithm 1): flowMC chains, the flow then fitted by maximum likelihood on the
    negatives (step 5, forward KL), once per EBM iteration. Chains start from the flow (= rho at init).

    ``keep`` > 1 is the paper's "use only last step? = no, subsampling by k" (Tables 4-5): a batch of n
    negatives comes from n/k chains, each contributing k states evenly spaced along its schedule (the
    last one included); all n states are written back to the persistent bank.
    """

    flow: RealNVP
    kernel: FlowMCKernel
    lr: float
    keep: int = 1
    optimizer: torch.optim.Optimizer = field(init=False)

    def __post_init__(self) -> None:
        if self.keep <= 0 or len(self.kernel.schedule) % self.keep:
            raise ValueError(f"keep ({self.keep}) must be positive and divide the schedule length "
                             f"({len(self.kernel.schedule)})")
        self.optimizer = torch.optim.Adam(self.flow.parameters(), lr=self.lr)

    def init_chains(self, n: int, dim: int, generator: torch.Generator) -> Tensor:
        return sample_flow(self.flow, n, generator)

    def sample(self, x: Tensor, log_target: LogDensity, generator: torch.Generator) -> tuple[Tensor, dict]:
        if len(x) % self.keep:
            raise ValueError(f"the batch size ({len(x)}) must be a multiple of keep ({self.keep})")
        chains = x[: len(x) // self.keep]
        state, info = self.kernel.step(init_state(chains, log_target), log_target, self.flow, generator,
                                       record=self.keep > 1)
        if self.keep > 1:
            every = len(self.kernel.schedule) // self.keep
            negatives = torch.cat(info.trajectory[every - 1::every])  # k states per chain, last one included
        else:
            negatives = state.position
        return negatives, {"local_acceptance": info.local_acceptance,
                                "global_acceptance": info.global_acceptance}

    def update(self, negatives: Tensor) -> dict:
        return {"flow_nll": maximum_likelihood_step(self.flow, self.optimizer, negatives)}
