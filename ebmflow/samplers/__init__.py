"""MCMC kernels, batched over chains: each is an ``init`` and a ``step(state, generator)``."""
from .base import AcceptInfo, ChainState, Kernel, LogDensity, Proposal, init_state, run_chains
from .flowmc import FlowMCInfo, flowmc, validate_schedule
from .imh import imh
from .isir import isir
from .mala import MALAInfo, adapt_step_size, mala
from .ula import ULAInfo, ula

__all__ = ["AcceptInfo", "ChainState", "Kernel", "LogDensity", "Proposal", "init_state", "run_chains",
           "FlowMCInfo", "flowmc", "validate_schedule", "imh", "isir", "MALAInfo", "adapt_step_size", "mala",
           "ULAInfo", "ula", "KERNELS"]

KERNELS = {"mala": mala, "ula": ula, "imh": imh, "isir": isir, "flowmc": flowmc}
"""Every kernel builder by name (tests cover each one: invariance, NaN -> reject, same seed same chains)."""
