"""Training methods: one loop (Algorithm 1) and one negative sampler per method."""
from .coopflow import CoopFlowNegatives
from .loop import History, NegativeSampler, TrainingDivergedError, fit_ebm, tilted_log_density
from .methods import METHODS, MethodSpec, chain_starts, make_sampler
from .negatives import FlowMCNegatives, ULANegatives
from .ntebm import NTEBMNegatives, latent_log_density
from .pretrain import pretrain_reverse_kl

__all__ = ["History", "NegativeSampler", "TrainingDivergedError", "fit_ebm", "tilted_log_density",
           "FlowMCNegatives", "ULANegatives", "NTEBMNegatives", "latent_log_density", "CoopFlowNegatives",
           "pretrain_reverse_kl", "METHODS", "MethodSpec", "make_sampler", "chain_starts"]
