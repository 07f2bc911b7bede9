"""Training methods: one loop (Algorithm 1) and one negative sampler per method."""
from .loop import History, NegativeSampler, TrainingDivergedError, fit_ebm, tilted_log_density
from .negatives import FlowMCNegatives, ULANegatives

__all__ = ["History", "NegativeSampler", "TrainingDivergedError", "fit_ebm", "tilted_log_density",
           "FlowMCNegatives", "ULANegatives"]
