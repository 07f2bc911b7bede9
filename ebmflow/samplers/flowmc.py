"""flowMC (paper Appendix A, Algorithm 5; Gabrié et al. 2022): local MALA steps interleaved with global
flow-proposal steps (i-SIR in every experiment of the paper, IMH as the textbook variant).

A schedule is a string read left to right: ``L`` = one local step, ``G`` = one global step. The motivating
example's "2 global steps between two sequences of 4 local steps" is ``"LLLLGGLLLL"``. One step of the
composed kernel is one pass of the schedule (as BlackJAX composes irmh and rmh).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import InputError, check_kernel
from .base import ChainState, Kernel

__all__ = ["FlowMCInfo", "flowmc", "validate_schedule"]


def validate_schedule(schedule: str) -> str:
    """A non-empty string of 'L' and 'G' with at least one global step (else it is plain MALA)."""
    if not isinstance(schedule, str) or not schedule or set(schedule) - {"L", "G"}:
        raise InputError(f"flowMC schedule must be a non-empty string of 'L' (local) and 'G' (global) steps, "
                         f"got {schedule!r}")
    if "G" not in schedule:
        raise InputError(f"flowMC schedule {schedule!r} has no global step 'G': that is plain MALA, not flowMC")
    return schedule


@dataclass
class FlowMCInfo:
    """The sub-steps' accept flags (tensors; the rates are computed when read, not at every step)."""

    local_accepted: list[Tensor]  # MALA accept flags, one (n,) tensor per local step
    global_accepted: list[Tensor]  # moved-to-a-fresh-proposal flags, one per global step
    trajectory: Tensor | None = None  # positions after each sub-step (len(schedule), n, d), if recorded

    @property
    def local_acceptance(self) -> float:
        """Mean MALA acceptance over the local steps (nan if none)."""
        return _mean(self.local_accepted)

    @property
    def global_acceptance(self) -> float:
        """Fraction of global moves to a fresh flow proposal (nan if none)."""
        return _mean(self.global_accepted)


def _mean(flags: list[Tensor]) -> float:
    return float(torch.stack(flags).float().mean()) if flags else float("nan")


def flowmc(schedule: str, local: Kernel, global_: Kernel, *, record: bool = False) -> Kernel:
    """The composition: ``local`` for each 'L', ``global_`` for each 'G'; ``record`` keeps every sub-step.

    A run of consecutive letters uses the sub-kernel's multi-step ``run`` when it has one (IMH draws the
    proposals of consecutive global steps in one batch)."""
    validate_schedule(schedule)
    check_kernel("flowMC local", local), check_kernel("flowMC global_", global_)
    segments = [(move, len(group)) for move, group in _runs(schedule)]

    def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, FlowMCInfo]:
        accepted: dict[str, list[Tensor]] = {"L": [], "G": []}
        trajectory: list[Tensor] = []
        for move, count in segments:
            kernel = local if move == "L" else global_
            if kernel.run is not None and count > 1:
                state, positions, infos = kernel.run(state, count, generator, record)
                accepted[move].extend(info.is_accepted for info in infos)
                if record:
                    trajectory.extend(positions)
                continue
            for _ in range(count):
                state, info = kernel.step(state, generator)
                accepted[move].append(info.is_accepted)
                if record:
                    trajectory.append(state.position)
        return state, FlowMCInfo(accepted["L"], accepted["G"], torch.stack(trajectory) if record else None)

    return Kernel(local.init, step)


def _runs(schedule: str) -> list[tuple[str, str]]:
    """'LLLLGGLL' -> [('L', 'LLLL'), ('G', 'GG'), ('L', 'LL')]."""
    runs, start = [], 0
    for i in range(1, len(schedule) + 1):
        if i == len(schedule) or schedule[i] != schedule[start]:
            runs.append((schedule[start], schedule[start:i]))
            start = i
    return runs
