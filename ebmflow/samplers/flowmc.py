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
    local_acceptance: float  # mean MALA acceptance over the local steps (nan if none)
    global_acceptance: float  # fraction of global moves to a fresh flow proposal (nan if none)
    trajectory: Tensor | None = None  # positions after each sub-step (len(schedule), n, d), if recorded


def flowmc(schedule: str, local: Kernel, global_: Kernel, *, record: bool = False) -> Kernel:
    """The composition: ``local`` for each 'L', ``global_`` for each 'G'; ``record`` keeps every sub-step."""
    validate_schedule(schedule)
    check_kernel("flowMC local", local), check_kernel("flowMC global_", global_)

    def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, FlowMCInfo]:
        accepted: dict[str, list[Tensor]] = {"L": [], "G": []}
        trajectory: list[Tensor] = []
        for move in schedule:
            state, info = (local if move == "L" else global_).step(state, generator)
            accepted[move].append(info.is_accepted)
            if record:
                trajectory.append(state.position)
        rate = {m: float(torch.stack(a).float().mean()) if a else float("nan") for m, a in accepted.items()}
        return state, FlowMCInfo(rate["L"], rate["G"], torch.stack(trajectory) if record else None)

    return Kernel(local.init, step)
