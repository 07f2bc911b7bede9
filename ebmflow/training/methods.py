"""The four training methods chosen by name (paper §2, Tables 4, 5 and 7), sharing one EBM and flow
architecture: "ula" (ULA-EBM), "ntebm" (NT-EBM), "coopflow" (CoopFlow), "flowmc" (flowMC-EBM).

``make_sampler(spec, base, ...)`` builds the method's flow (pre-trained by reverse KL when the method
requires it) and its negative sampler for ``fit_ebm``; ``chain_starts`` says where its chains start.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..flows import DiagonalGaussian, RealNVP
from ..samplers import FlowMCKernel, LogDensity
from .coopflow import CoopFlowNegatives
from .loop import NegativeSampler
from .negatives import FlowMCNegatives, ULANegatives
from .ntebm import NTEBMNegatives
from .pretrain import pretrain_reverse_kl

__all__ = ["METHODS", "MethodSpec", "make_sampler", "chain_starts"]

METHODS = ("ula", "ntebm", "coopflow", "flowmc")


@dataclass(frozen=True)
class MethodSpec:
    """One row of the paper's hyper-parameter tables (Tables 4, 5, 7), plus the learning rate.

    ``step_size`` is the ULA step (ula, coopflow), the initial adapted MALA step (ntebm) or the MALA step
    of the flowMC local moves (flowmc). ``schedule`` (flowmc only) is a string of L (MALA) / G (i-SIR)
    steps; ``keep`` is flowMC's "subsampling by k". ``pretrain_steps`` > 0 pre-trains the flow by
    reverse KL on the target given to ``make_sampler`` (paper: 1024 steps at lr 1e-2 in 2-D).
    """

    name: str
    lr: float  # EBM and flow learning rate (gamma_EBM = gamma_flow)
    n_steps: int = 0  # MCMC steps per iteration (ula, ntebm, coopflow)
    step_size: float = 0.01
    schedule: str = ""  # flowmc
    n_particles: int = 64  # flowmc: i-SIR candidates
    keep: int = 1  # flowmc: states kept per chain
    init_limit: float = 4.0  # ula: chains start uniformly on [-init_limit, init_limit]^d
    target_acceptance: float = 0.75  # ntebm
    freeze_iterations: int = 0  # coopflow: flow frozen for the first iterations
    pretrain_steps: int = 0
    pretrain_lr: float = 1e-2
    pretrain_batch: int = 256

    def __post_init__(self) -> None:
        if self.name not in METHODS:
            raise ValueError(f"unknown method {self.name!r}; accepted: {', '.join(METHODS)}")
        if self.name == "flowmc" and not self.schedule:
            raise ValueError("flowmc needs a schedule of L/G steps, e.g. 'G' + 'L' * 127")
        if self.name != "flowmc" and self.n_steps <= 0:
            raise ValueError(f"{self.name} needs n_steps > 0, got {self.n_steps}")


def make_sampler(spec: MethodSpec, base: DiagonalGaussian, generator: torch.Generator, *,
                 pretrain_target: LogDensity | None = None, flow_couplings: int = 4, flow_hidden: int = 16,
                 flow_hidden_layers: int = 3) -> tuple[NegativeSampler, RealNVP | None]:
    """The method's negative sampler and its flow (None for ULA-EBM), the flow on base ``base``."""
    if spec.name == "ula":
        sampler = ULANegatives(step_size=spec.step_size, n_steps=spec.n_steps, init_low=-spec.init_limit,
                               init_high=spec.init_limit)
        return sampler, None
    flow = RealNVP(base, n_couplings=flow_couplings, hidden=flow_hidden, n_hidden_layers=flow_hidden_layers)
    if spec.pretrain_steps:
        if pretrain_target is None:
            raise ValueError(f"{spec.name}: pretrain_steps = {spec.pretrain_steps} needs a pretrain_target "
                             f"(the log-density the flow is fitted to by reverse KL)")
        pretrain_reverse_kl(flow, pretrain_target, n_steps=spec.pretrain_steps, lr=spec.pretrain_lr,
                            batch_size=spec.pretrain_batch, generator=generator, desc=f"{spec.name} flow")
    if spec.name == "ntebm":
        for parameter in flow.parameters():  # a fixed preconditioner during EBM training
            parameter.requires_grad_(False)
        sampler = NTEBMNegatives(flow, n_steps=spec.n_steps, step_size=spec.step_size,
                                 target_acceptance=spec.target_acceptance)
    elif spec.name == "coopflow":
        sampler = CoopFlowNegatives(flow, step_size=spec.step_size, n_steps=spec.n_steps, lr=spec.lr,
                                    freeze_iterations=spec.freeze_iterations)
    else:
        kernel = FlowMCKernel(spec.schedule, spec.step_size, spec.n_particles)
        sampler = FlowMCNegatives(flow, kernel, lr=spec.lr, keep=spec.keep)
    return sampler, flow


def chain_starts(sampler: NegativeSampler, bank: Tensor, generator: torch.Generator) -> Tensor:
    """Where a batch of chains starts before its MCMC steps: fresh flow samples for CoopFlow, the
    persistent states ``bank`` for the persistent methods (Table 3, "init." column)."""
    if isinstance(sampler, CoopFlowNegatives):
        return sampler.initial_states(bank, generator)
    return bank
