"""NT-EBM (Nijkamp et al. 2022, "MCMC should mix"; Xiao et al. 2020): the EBM is an exponential tilting of a
flow fitted beforehand and then frozen, p_theta(x) ∝ exp(-E_theta(x)) lambda(x), and its chains run MALA in
the flow's latent space, where the model has the simple form log p_z(z) = -E_theta(T z) + log rho(z) (the
Jacobian cancels). The paper replaces the original's HMC by MALA adapted to 75% acceptance.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, ClassVar, Literal

import torch
from torch import Tensor, nn

from ..checks import InputError, check_callable, check_choice, check_int, check_positive, check_probability
from ..models import Flow, RealNVP, pretrain_maximum_likelihood, pretrain_reverse_kl
from ..samplers import Kernel, LogDensity, mala, run_chains
from .base import Method, Negatives

__all__ = ["NTEBM"]


@dataclass(kw_only=True)
class NTEBM(Method):
    """``pretrain`` = "data": the flow is fitted by maximum likelihood on the training data (the original's
    likelihood-based backbone); "reverse_kl": by reverse KL towards the data's exact log-density (the paper's
    "reverse KL" sentence, whose target it does not name). ``step_size`` is the initial latent MALA step, adapted
    after every step towards ``target_acceptance`` and carried across iterations. The persistent bank holds
    latent states z (negatives are T(z))."""

    name: ClassVar[str] = "ntebm"
    label: ClassVar[str] = "NT-EBM"
    color: ClassVar[str] = "#7570b3"

    n_steps: int
    step_size: float
    target_acceptance: float = 0.75
    pretrain: Literal["data", "reverse_kl"] = "data"
    pretrain_steps: int = 1024
    pretrain_lr: float = 1e-2
    pretrain_batch: int = 256
    make_flow: Callable[..., Flow] = field(default=partial(RealNVP, n_couplings=4, hidden=16))
    flow: Flow | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("NT-EBM n_steps", self.n_steps)
        check_positive("NT-EBM step_size", self.step_size)
        check_probability("NT-EBM target_acceptance", self.target_acceptance)
        check_choice("NT-EBM pretrain", self.pretrain, ("data", "reverse_kl"))
        check_callable("NT-EBM make_flow", self.make_flow)
        check_int("NT-EBM pretrain_steps", self.pretrain_steps, minimum=0)
        check_positive("NT-EBM pretrain_lr", self.pretrain_lr)
        check_int("NT-EBM pretrain_batch", self.pretrain_batch)

    def prepare(self, energy: nn.Module, base: nn.Module, data: Tensor, generator: torch.Generator,
                reference: LogDensity | None = None) -> None:
        super().prepare(energy, base, data, generator, reference)
        self.flow = self.make_flow(base, generator=generator).to(data.device)
        fit = dict(n_steps=self.pretrain_steps, lr=self.pretrain_lr, batch_size=self.pretrain_batch,
                   generator=generator, desc="NT-EBM flow")
        if self.pretrain == "data":
            pretrain_maximum_likelihood(self.flow, data, **fit)
        elif reference is None:
            raise InputError("NT-EBM with pretrain='reverse_kl' needs the data's exact log-density (reference)")
        else:
            pretrain_reverse_kl(self.flow, reference, **fit)
        self.flow.requires_grad_(False)  # frozen: a fixed backbone during EBM training

    @property
    def tilt(self) -> nn.Module:
        return self.flow

    def latent_log_target(self, z: Tensor) -> Tensor:
        """log p_z(z) = -E_theta(T z) + log rho(z): the tilted flow model seen in latent space."""
        x, _ = self.flow.from_latent(z)
        return -self.energy(x) + self.flow.latent.log_prob(z)

    def init_chains(self, n: int, generator: torch.Generator) -> Tensor:
        return self.flow.latent.sample_with_log_prob(n, generator)[0]

    def kernel(self, substeps: bool = False) -> Kernel:
        """Latent MALA at the current adapted step (fixed while continuing chains)."""
        return mala(self.latent_log_target, self.step_size)

    def sample(self, chains: Tensor, generator: torch.Generator) -> Negatives:
        adaptive = mala(self.latent_log_target, self.step_size, target_acceptance=self.target_acceptance)
        state, _, infos = run_chains(adaptive, chains, self.n_steps, generator)
        self.step_size = state.step_size
        acceptance = torch.stack([info.is_accepted.float().mean() for info in infos]).mean()
        return Negatives(self.positions(state.position), state.position,
                         {"local_acceptance": float(acceptance), "step_size": self.step_size})

    @torch.no_grad()
    def positions(self, chains: Tensor) -> Tensor:
        return self.flow.from_latent(chains)[0]

    def describe(self) -> dict[str, Any]:
        pretrain = "maximum likelihood on the data" if self.pretrain == "data" else "reverse KL to p*"
        return {"MCMC sampler": f"MALA in the flow's latent space, adapted to {self.target_acceptance:.0%} "
                                f"acceptance; flow pre-trained ({pretrain}, {self.pretrain_steps} steps) and frozen",
                "# MCMC steps": self.n_steps, "use only last step?": "yes", "starting strategy": "flow",
                "learning rate": self.lr}

    def state_dict(self) -> dict[str, Any]:
        return {"flow": self.flow.state_dict(), "step_size": self.step_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.flow.load_state_dict(state["flow"])
        self.step_size = state["step_size"]
