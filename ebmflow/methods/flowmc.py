"""flowMC-EBM (paper Algorithm 1): negatives from flowMC chains (MALA local steps and flow proposals accepted
by i-SIR), the flow then fitted by maximum likelihood on the negatives (step 5), once per EBM iteration."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, ClassVar, Literal

import torch
from torch import Tensor, nn

from ..checks import InputError, check_callable, check_choice, check_int, check_positive
from ..models import Flow, RealNVP, flow_optimizer, maximum_likelihood_step
from ..samplers import Kernel, LogDensity, flowmc, imh, isir, mala, run_chains, validate_schedule
from .base import Method, Negatives

__all__ = ["FlowMCEBM"]


@dataclass(kw_only=True)
class FlowMCEBM(Method):
    """``schedule``: one letter per step, L = MALA (step ``step_size``), G = global move (i-SIR with
    ``n_particles`` candidates, or IMH with ``global_move="imh"``). ``keep`` > 1 is the paper's "use only last
    step? = no, subsampling by k": a batch of n negatives comes from n/k chains, each giving k states evenly
    spaced along its schedule (the last one included); all n states go back to the persistent bank.
    ``make_flow(base, generator=...)`` builds the companion flow on the base rho; chains start from it.

    ``ebm_average`` (default 0.95; 0 turns it off, the paper's setting) keeps an exponential moving average of
    the EBM's parameters, updated after every EBM step, and reports it as the trained model (``model_energy``,
    hence ``Run.log_density``); training itself (negatives, flow, chains) is unchanged. Why: at a constant
    Adam learning rate the EBM's mode weights keep fluctuating around their value, because the negatives
    follow the EBM within one iteration (measured for chapter 07 in d = 8 and 32: the heaviest mode's weight
    swings with a standard deviation of 0.07-0.12 to the end of training, and the last E_theta's largest weight
    error was 0.09-0.21 over three seeds); averaging over about 1 / (1 - 0.95) = 20 iterations cancels the
    swing (errors 0.014-0.037). Cost: one parameter average per iteration and one copy of the EBM."""

    name: ClassVar[str] = "flowmc"
    label: ClassVar[str] = "flowMC-EBM"
    color: ClassVar[str] = "#1b9e77"

    schedule: str
    step_size: float
    n_particles: int = 32
    keep: int = 1
    global_move: Literal["isir", "imh"] = "isir"
    make_flow: Callable[..., Flow] = field(default=partial(RealNVP, n_couplings=4, hidden=16))
    ebm_average: float = 0.95
    flow: Flow | None = field(default=None, init=False, repr=False)
    optimizer: torch.optim.Optimizer | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_schedule(self.schedule)
        check_positive("flowMC-EBM step_size", self.step_size)
        check_choice("flowMC-EBM global_move", self.global_move, ("isir", "imh"))
        check_callable("flowMC-EBM make_flow", self.make_flow)
        if self.global_move == "isir":
            check_int("flowMC-EBM n_particles (i-SIR candidates)", self.n_particles, minimum=2)
        check_int("flowMC-EBM keep", self.keep)
        if len(self.schedule) % self.keep:
            raise InputError(f"flowMC-EBM keep ({self.keep}) must divide the schedule length "
                             f"({len(self.schedule)} steps)")

    def prepare(self, energy: nn.Module, base: nn.Module, data: Tensor, generator: torch.Generator,
                reference: LogDensity | None = None) -> None:
        super().prepare(energy, base, data, generator, reference)
        self.flow = self.make_flow(base, generator=generator).to(data.device)
        self.optimizer = flow_optimizer(self.flow, self.lr)

    @property
    def proposal(self) -> nn.Module:
        return self.flow

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.optimizer]

    def init_chains(self, n: int, generator: torch.Generator) -> Tensor:
        return self.flow.sample(n, generator)

    def kernel(self, substeps: bool = False) -> Kernel:
        local = mala(self.log_target, self.step_size)
        global_ = (isir(self.log_target, self.flow, self.n_particles) if self.global_move == "isir"
                   else imh(self.log_target, self.flow))
        return flowmc(self.schedule, local, global_, record=substeps)

    def sample(self, chains: Tensor, generator: torch.Generator) -> Negatives:
        if len(chains) % self.keep:
            raise InputError(f"the batch size ({len(chains)}) must be a multiple of keep ({self.keep})")
        state, _, (info,) = run_chains(self.kernel(substeps=self.keep > 1), chains[: len(chains) // self.keep], 1,
                                       generator)
        negatives = state.position
        if self.keep > 1:
            every = len(self.schedule) // self.keep
            negatives = info.trajectory[every - 1::every].flatten(0, 1)  # k states per chain, the last included
        return Negatives(negatives, negatives, {"local_acceptance": info.local_acceptance,
                                                "global_acceptance": info.global_acceptance})

    def update(self, negatives: Tensor) -> dict[str, Tensor]:
        return {"flow_nll": maximum_likelihood_step(self.flow, self.optimizer, negatives)}

    def describe(self) -> dict[str, Any]:
        n_global = self.schedule.count("G")
        move = f"i-SIR ({self.n_particles} candidates)" if self.global_move == "isir" else "IMH"
        keep = f"no: subsampling by {self.keep}" if self.keep > 1 else "yes"
        return {"MCMC sampler": f"flowMC: {n_global} {move} + {self.schedule.count('L')} MALA (step "
                                f"{self.step_size:.3g}), schedule {_compact(self.schedule)}",
                "# MCMC steps": len(self.schedule), "use only last step?": keep, "starting strategy": "flow",
                "learning rate": self.lr}

    def state_dict(self) -> dict[str, Any]:
        return {"flow": self.flow.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.flow.load_state_dict(state["flow"])
        self.optimizer.load_state_dict(state["optimizer"])


def _compact(schedule: str) -> str:
    """'GLLLLGLLLL' -> 'G L×4 G L×4' (run-length)."""
    runs, start = [], 0
    for i in range(1, len(schedule) + 1):
        if i == len(schedule) or schedule[i] != schedule[start]:
            n = i - start
            runs.append(schedule[start] + (f"×{n}" if n > 1 else ""))
            start = i
    return " ".join(runs)
