"""CoopFlow negatives (Xie et al. 2022, "A tale of two flows"; paper §2 and Tables 4-5, 7).

Each iteration the flow proposes fresh starting points (the chains are not persistent), ``n_steps``
Langevin steps without noise (as advised by CoopFlow's authors and as the paper runs it) revise them on
the tilted EBM, the last state is the negative, and the flow is then fitted by maximum likelihood on
the revised samples (CoopFlow's flow update). The flow is pre-trained (reverse KL) and kept frozen for
the first ``freeze_iterations`` iterations (paper: "frozen for < 5% of total training at the start").
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..flows import RealNVP, maximum_likelihood_step, sample_flow
from ..samplers import LogDensity, init_state, ula_step

__all__ = ["CoopFlowNegatives"]


@dataclass
class CoopFlowNegatives:
    flow: RealNVP
    step_size: float
    n_steps: int
    lr: float
    freeze_iterations: int = 0
    noise: bool = False
    optimizer: torch.optim.Optimizer = field(init=False)
    iteration: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.n_steps <= 0 or self.step_size <= 0 or self.lr <= 0 or self.freeze_iterations < 0:
            raise ValueError(f"CoopFlow needs n_steps, step_size, lr > 0 and freeze_iterations >= 0, got "
                             f"{self.n_steps}, {self.step_size}, {self.lr}, {self.freeze_iterations}")
        self.optimizer = torch.optim.Adam(self.flow.parameters(), lr=self.lr)

    def init_chains(self, n: int, dim: int, generator: torch.Generator) -> Tensor:
        return self.initial_states(torch.empty(n, dim), generator)

    def initial_states(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """Where the chains start: fresh flow samples, one per row of ``x`` (its values are unused)."""
        return sample_flow(self.flow, len(x), generator)

    def sample(self, x: Tensor, log_target: LogDensity, generator: torch.Generator) -> tuple[Tensor, dict]:
        state = init_state(self.initial_states(x, generator), log_target)
        for _ in range(self.n_steps):
            state, _ = ula_step(state, log_target, self.step_size, generator, noise=self.noise)
        return state.position, {}

    def update(self, negatives: Tensor) -> dict:
        self.iteration += 1
        if self.iteration <= self.freeze_iterations:
            return {}
        return {"flow_nll": maximum_likelihood_step(self.flow, self.optimizer, negatives)}
