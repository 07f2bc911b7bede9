"""CoopFlow (Xie et al. 2022, "A tale of two flows"), in the "best" version the paper runs: the flow,
pre-trained by maximum likelihood on the data and frozen at first, proposes fresh starting points every
iteration (the chains are not persistent); noiseless Langevin steps revise them on the EBM; the last state is
the negative, and the flow then learns from the revised samples by maximum likelihood."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor, nn

from ..checks import check_callable, check_choice, check_int, check_positive
from ..models import Flow, RealNVP, maximum_likelihood_step, pretrain_maximum_likelihood
from ..samplers import Kernel, LogDensity, run_chains, ula
from .base import Method, Negatives

__all__ = ["CoopFlow"]


@dataclass(kw_only=True)
class CoopFlow(Method):
    """``n_steps`` Langevin steps of size ``step_size`` (noiseless unless ``noise``; ``max_drift`` clamps each
    coordinate's displacement per step, as the original code does with ±0.1); the flow is frozen for the first
    ``freeze_iterations`` iterations."""

    name: ClassVar[str] = "coopflow"
    label: ClassVar[str] = "CoopFlow"
    color: ClassVar[str] = "#e7298a"

    n_steps: int
    step_size: float
    freeze_iterations: int = 0
    noise: bool = False
    max_drift: float | None = None
    pretrain_steps: int = 1024
    pretrain_lr: float = 1e-2
    pretrain_batch: int = 256
    make_flow: Callable[..., Flow] = field(default=partial(RealNVP, n_couplings=4, hidden=16))
    flow: Flow | None = field(default=None, init=False, repr=False)
    optimizer: torch.optim.Optimizer | None = field(default=None, init=False, repr=False)
    iteration: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("CoopFlow n_steps", self.n_steps)
        check_positive("CoopFlow step_size", self.step_size)
        check_int("CoopFlow freeze_iterations", self.freeze_iterations, minimum=0)
        if self.max_drift is not None:
            check_positive("CoopFlow max_drift", self.max_drift)
        check_int("CoopFlow pretrain_steps", self.pretrain_steps, minimum=0)
        check_positive("CoopFlow pretrain_lr", self.pretrain_lr)
        check_int("CoopFlow pretrain_batch", self.pretrain_batch)
        check_choice("CoopFlow noise", self.noise, (False, True))
        check_callable("CoopFlow make_flow", self.make_flow)

    def prepare(self, energy: nn.Module, base: nn.Module, data: Tensor, generator: torch.Generator,
                reference: LogDensity | None = None) -> None:
        super().prepare(energy, base, data, generator, reference)
        self.flow = self.make_flow(base, generator=generator).to(data.device)
        pretrain_maximum_likelihood(self.flow, data, n_steps=self.pretrain_steps, lr=self.pretrain_lr,
                                    batch_size=self.pretrain_batch, generator=generator, desc="CoopFlow flow")
        self.optimizer = torch.optim.Adam(self.flow.parameters(), lr=self.lr)
        self.iteration = 0

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.optimizer]

    @property
    def proposal(self) -> nn.Module:
        return self.flow

    def init_chains(self, n: int, generator: torch.Generator) -> Tensor:
        return self.flow.sample(n, generator)

    def starts(self, chains: Tensor, generator: torch.Generator) -> Tensor:
        """Fresh flow samples, one per chain: CoopFlow's chains are not persistent."""
        return self.flow.sample(len(chains), generator)

    def kernel(self, substeps: bool = False) -> Kernel:
        return ula(self.log_target, self.step_size, noise=self.noise, max_drift=self.max_drift)

    def sample(self, chains: Tensor, generator: torch.Generator) -> Negatives:
        state, _, _ = run_chains(self.kernel(), self.starts(chains, generator), self.n_steps, generator)
        return Negatives(state.position, state.position, {})

    def update(self, negatives: Tensor) -> dict[str, Tensor]:
        self.iteration += 1
        if self.iteration <= self.freeze_iterations:
            return {}
        return {"flow_nll": maximum_likelihood_step(self.flow, self.optimizer, negatives)}

    def describe(self) -> dict[str, Any]:
        langevin = "Langevin" if self.noise else "noiseless Langevin"
        clamp = f", drift clamped to ±{self.max_drift:g}" if self.max_drift is not None else ""
        return {"MCMC sampler": f"{langevin}, step {self.step_size:.3g}{clamp}; flow pre-trained by maximum "
                                f"likelihood ({self.pretrain_steps} steps), frozen for {self.freeze_iterations} "
                                f"iterations",
                "# MCMC steps": self.n_steps, "use only last step?": "yes",
                "starting strategy": "flow (fresh samples every iteration)", "learning rate": self.lr}

    def state_dict(self) -> dict[str, Any]:
        return {"flow": self.flow.state_dict(), "optimizer": self.optimizer.state_dict(),
                "iteration": self.iteration}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.flow.load_state_dict(state["flow"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.iteration = state["iteration"]
