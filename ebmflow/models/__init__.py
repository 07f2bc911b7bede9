"""The networks and densities of the paper: energies, bases rho and flows lambda."""
from .bases import DiagonalGaussian, LogitGaussian, LogitPreprocessing
from .energies import ConvEnergy, ToyEnergy
from .fitting import flow_optimizer, maximum_likelihood_step, pretrain_maximum_likelihood, pretrain_reverse_kl
from .flows import CouplingMLP, ExpandingAffineCoupling, Flow, ImageRealNVP, RealNVP
from .init import initialize, zero_last

__all__ = ["DiagonalGaussian", "LogitGaussian", "LogitPreprocessing", "ConvEnergy", "ToyEnergy",
           "flow_optimizer", "maximum_likelihood_step", "pretrain_maximum_likelihood", "pretrain_reverse_kl",
           "CouplingMLP", "ExpandingAffineCoupling", "Flow", "ImageRealNVP", "RealNVP", "initialize", "zero_last",
           "FLOWS"]

FLOWS = {"RealNVP": RealNVP, "ImageRealNVP": ImageRealNVP}
"""Every flow constructor by name (tests cover each: identity at initialisation, invertibility, state_dict)."""
