"""The training methods, one module each, registered in the paper's figure order."""
from .base import DESCRIBE_COLUMNS, Method, Negatives
from .coopflow import CoopFlow
from .flowmc import FlowMCEBM
from .ntebm import NTEBM
from .ula import ULAEBM

__all__ = ["DESCRIBE_COLUMNS", "Method", "Negatives", "FlowMCEBM", "NTEBM", "CoopFlow", "ULAEBM", "METHODS"]

METHODS: dict[str, type[Method]] = {m.name: m for m in (FlowMCEBM, NTEBM, CoopFlow, ULAEBM)}
"""Every method by name, in the order of the paper's figures (flowMC-EBM, NT-EBM, CoopFlow, ULA-EBM)."""
