"""MCMC kernels, batched over chains: each is a state, an info and a step."""
from .base import ChainState, LogDensity, Proposal, init_state
from .flowmc import FlowMCInfo, FlowMCKernel
from .imh import IMHInfo, imh_step
from .isir import ISIRInfo, isir_step
from .mala import MALAInfo, adapt_step_size, mala_step
from .ula import ULAInfo, ula_step

__all__ = ["ChainState", "LogDensity", "Proposal", "init_state", "FlowMCInfo", "FlowMCKernel", "IMHInfo",
           "imh_step", "ISIRInfo", "isir_step", "MALAInfo", "adapt_step_size", "mala_step", "ULAInfo",
           "ula_step"]
