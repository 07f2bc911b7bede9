"""NT-EBM negatives (Nijkamp et al. 2022, "MCMC should mix"; paper §2 and Tables 4-5, 7): MALA run in the
flow's latent space, the flow acting as a fixed preconditioner (neural transport).

The chains target the pull-back of the tilted EBM p^rho_theta (paper Eq. 6) through x = T(z):
log p_z(z) = -E_theta(T z) + log rho(T z) + log|det dT/dz|. All four methods thus learn the same
model family, and when the flow matches the model p_z is close to rho. The MALA step is adapted after
every step towards 75% acceptance (``adapt_step_size``); the last state is the negative.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..flows import RealNVP, sample_flow
from ..samplers import LogDensity, adapt_step_size, init_state, mala_step

__all__ = ["NTEBMNegatives", "latent_log_density"]


def latent_log_density(flow: RealNVP, log_target: LogDensity) -> LogDensity:
    """log p_z(z) = log pi(T z) + log|det dT/dz|: the target seen in the flow's latent space."""
    def log_density(z: Tensor) -> Tensor:
        x, logdet = flow.from_latent(z)
        return log_target(x) + logdet
    return log_density


@dataclass
class NTEBMNegatives:
    """``n_steps`` latent MALA steps, step adapted to ``target_acceptance``; chains start from the flow.

    The flow is pre-trained (see ``pretrain_reverse_kl``) and kept fixed during EBM training, as in
    Nijkamp et al. 2022; ``step_size`` is the initial MALA step and is updated in place.
    """

    flow: RealNVP
    n_steps: int
    step_size: float
    target_acceptance: float = 0.75
    record: bool = False  # keep the latent trajectory of the last call (paper Figure 5)
    trajectory: Tensor | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.n_steps <= 0 or self.step_size <= 0 or not 0 < self.target_acceptance < 1:
            raise ValueError(f"NT-EBM needs n_steps > 0, step_size > 0 and 0 < target_acceptance < 1, got "
                             f"{self.n_steps}, {self.step_size}, {self.target_acceptance}")

    def init_chains(self, n: int, dim: int, generator: torch.Generator) -> Tensor:
        return sample_flow(self.flow, n, generator)

    def sample(self, x: Tensor, log_target: LogDensity, generator: torch.Generator) -> tuple[Tensor, dict]:
        latent_target = latent_log_density(self.flow, log_target)
        with torch.no_grad():
            z = self.flow.to_latent(x)[0]
        state = init_state(z, latent_target)
        acceptance, path = [], [state.position]
        for _ in range(self.n_steps):
            state, info = mala_step(state, latent_target, self.step_size, generator)
            acceptance.append(info.acceptance_rate)
            self.step_size = adapt_step_size(self.step_size, info.acceptance_rate, self.target_acceptance)
            if self.record:
                path.append(state.position)
        self.trajectory = torch.stack(path) if self.record else None
        with torch.no_grad():
            negatives = self.flow.from_latent(state.position)[0]
        return negatives, {"local_acceptance": sum(acceptance) / len(acceptance), "step_size": self.step_size}

    def update(self, negatives: Tensor) -> dict:
        return {}
