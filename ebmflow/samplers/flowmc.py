"""flowMC (paper Appendix A, Algorithm 5; Gabrié et al. 2022): local MALA steps interleaved with global
flow-proposal steps (i-SIR in every experiment of the paper, IMH as the textbook variant).

A schedule is a string read left to right: ``L`` = one MALA step, ``G`` = one global step. The motivating
example's "2 global steps between two sequences of 4 local steps" is ``"LLLLGGLLLL"``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from .base import ChainState, LogDensity, Proposal
from .imh import imh_step
from .isir import isir_step
from .mala import mala_step

__all__ = ["FlowMCKernel", "FlowMCInfo", "validate_schedule"]


def validate_schedule(schedule: str) -> str:
    if not schedule or set(schedule) - {"L", "G"}:
        raise ValueError(f"flowMC schedule must be a non-empty string of 'L' (local) and 'G' (global) "
                         f"steps, got {schedule!r}")
    return schedule


@dataclass
class FlowMCInfo:
    local_acceptance: float  # mean MALA acceptance over the local steps (nan if none)
    global_acceptance: float  # fraction of global steps that moved to a fresh flow proposal (nan if none)
    trajectory: list[Tensor] = field(default_factory=list)  # positions after each step, if recorded


@dataclass
class FlowMCKernel:
    """One pass of ``schedule`` with MALA step ``step_size`` and global moves from ``proposal``."""

    schedule: str
    step_size: float
    n_particles: int = 32
    global_move: str = "isir"  # or "imh"

    def __post_init__(self) -> None:
        validate_schedule(self.schedule)
        if self.step_size <= 0:
            raise ValueError(f"MALA step_size must be positive, got {self.step_size}")
        if self.global_move == "isir" and self.n_particles < 2:
            raise ValueError(f"i-SIR needs n_particles >= 2, got {self.n_particles}")
        if self.global_move not in ("isir", "imh"):
            raise ValueError(f"global_move must be 'isir' or 'imh', got {self.global_move!r}")

    def step(self, state: ChainState, log_density_fn: LogDensity, proposal: Proposal,
             generator: torch.Generator, record: bool = False) -> tuple[ChainState, FlowMCInfo]:
        local, global_ = [], []
        trajectory = []
        for move in self.schedule:
            if move == "L":
                state, info = mala_step(state, log_density_fn, self.step_size, generator)
                local.append(info.acceptance_rate)
            elif self.global_move == "isir":
                state, info = isir_step(state, log_density_fn, proposal, self.n_particles, generator)
                global_.append(info.acceptance_rate)
            else:
                state, info = imh_step(state, log_density_fn, proposal, generator)
                global_.append(info.acceptance_rate)
            if record:
                trajectory.append(state.position)
        mean = lambda values: sum(values) / len(values) if values else float("nan")  # noqa: E731
        return state, FlowMCInfo(mean(local), mean(global_), trajectory)
