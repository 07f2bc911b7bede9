"""ULA-EBM (paper Algorithm 3; Du & Mordatch 2019, Nijkamp et al. 2020): persistent chains moved by
``n_steps`` unadjusted Langevin steps, the last state kept as the negative."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from ..checks import check_choice, check_int, check_positive
from ..samplers import Kernel, run_chains, ula
from .base import Method, Negatives

__all__ = ["ULAEBM"]


@dataclass(kw_only=True)
class ULAEBM(Method):
    """``init`` = "uniform" starts the chains uniformly on [-box, box]^d (2-D), "rho" from the base (Table 7's
    "gaussian"); ``clip`` projects them back into the box after every step (pixels live in [-1, 1])."""

    name: ClassVar[str] = "ula"
    label: ClassVar[str] = "ULA-EBM"
    color: ClassVar[str] = "#d95f02"

    step_size: float
    n_steps: int
    init: Literal["uniform", "rho"] = "uniform"
    box: float = 4.0
    clip: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("ULA-EBM step_size", self.step_size)
        check_int("ULA-EBM n_steps", self.n_steps)
        check_positive("ULA-EBM box", self.box)
        check_choice("ULA-EBM init", self.init, ("uniform", "rho"))
        check_choice("ULA-EBM clip", self.clip, (False, True))

    def init_chains(self, n: int, generator: torch.Generator) -> Tensor:
        if self.init == "rho":
            return self.base.sample_with_log_prob(n, generator)[0]
        u = torch.rand(n, self.base.dim, generator=generator, device=generator.device)
        return self.box * (2 * u - 1)

    def kernel(self, substeps: bool = False) -> Kernel:
        bounds = (-self.box, self.box) if self.clip else None
        return ula(self.log_target, self.step_size, bounds=bounds)

    def sample(self, chains: Tensor, generator: torch.Generator) -> Negatives:
        state, _, _ = run_chains(self.kernel(), chains, self.n_steps, generator)
        return Negatives(state.position, state.position, {})

    def describe(self) -> dict[str, Any]:
        start = f"uniform on [-{self.box:g}, {self.box:g}]^d" if self.init == "uniform" else "gaussian (rho)"
        return {"MCMC sampler": f"ULA, step {self.step_size:.3g}" + (", clipped to the box" if self.clip else ""),
                "# MCMC steps": self.n_steps, "use only last step?": "yes", "starting strategy": start,
                "learning rate": self.lr}
