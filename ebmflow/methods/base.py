"""What a training method is: how it draws the negatives of Algorithm 1 and what it trains besides the EBM.

Every method trains an EBM E_theta by persistent-chain maximum likelihood (the loop in ``ebmflow.training``);
a ``Method`` owns everything that differs between methods: the model's tilt, where its chains start, its
MCMC kernel, its own networks and optimisers, its label and colour, and its row of the hyper-parameter
tables (``describe``). Methods are registered in ``ebmflow.methods.METHODS``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..checks import (InputError, check_density, check_dims_agree, check_generator, check_non_negative, check_points,
                      check_positive)
from ..samplers import Kernel, LogDensity

__all__ = ["Method", "Negatives", "DESCRIBE_COLUMNS"]

DESCRIBE_COLUMNS = ("MCMC sampler", "# MCMC steps", "use only last step?", "starting strategy", "learning rate")
"""The columns of the paper's hyper-parameter tables (Tables 4, 5, 7): the keys of ``Method.describe()``."""


class Negatives(NamedTuple):
    negatives: Tensor  # data-space negative samples x^(-) (n, d), no graph
    chains: Tensor  # the chain states written back to the persistent bank (n, ...)
    stats: dict[str, float]  # sampler statistics of this iteration (acceptance, adapted step, ...)


@dataclass(kw_only=True)
class Method(ABC):
    """A training method (one of the paper's four, or your own): subclass, set ``name``, ``label``, ``color``,
    implement the abstract methods, and add the class to ``METHODS``."""

    name: ClassVar[str]  # short key: glue keys, file names, CLI
    label: ClassVar[str]  # as the paper writes it
    color: ClassVar[str]  # one colour per method in every figure

    lr: float  # Adam learning rate of the EBM (and of the method's flow: gamma_flow = gamma_EBM, paper)
    ebm_average: float = 0.0  # EMA decay of the EBM's parameters reported as the trained model (0: the last ones)
    energy: nn.Module | None = field(default=None, init=False, repr=False)
    base: nn.Module | None = field(default=None, init=False, repr=False)
    averaged: AveragedModel | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        check_positive(f"{self.label} lr", self.lr)
        if check_non_negative(f"{self.label} ebm_average", self.ebm_average) >= 1:
            raise InputError(f"{self.label} ebm_average must be in [0, 1) (0: no average), got {self.ebm_average!r}")

    # --- set-up -------------------------------------------------------------------------------------------
    def prepare(self, energy: nn.Module, base: nn.Module, data: Tensor, generator: torch.Generator,
                reference: LogDensity | None = None) -> None:
        """Attach the EBM and the base rho; build (and pre-train) the method's own networks.

        ``reference`` is an exact log-density of the data, for pre-trainings that need one (reverse KL). Bad data
        or a bad generator are refused here, before any pre-training."""
        check_generator(generator)
        if not isinstance(energy, nn.Module) or not any(True for _ in energy.parameters()):
            raise InputError(f"energy must be a torch module with parameters (e.g. ToyEnergy), got "
                             f"{type(energy).__name__}")
        check_density("base", base)
        dim = check_dims_agree(energy=getattr(energy, "dim", None), base=getattr(base, "dim", None))
        check_points("data", data, dim=dim, dtype=next(energy.parameters()).dtype)
        if reference is not None and not callable(reference):
            raise InputError(f"reference must be a log-density function or None, got {type(reference).__name__}")
        self.energy, self.base = energy, base
        self.averaged = None
        if self.ebm_average:
            self.averaged = AveragedModel(energy, multi_avg_fn=get_ema_multi_avg_fn(self.ebm_average))
            self.averaged.requires_grad_(False)

    def after_ebm_step(self) -> None:
        """Called by the training loop after every EBM step: updates the average of the EBM's parameters."""
        if self.averaged is not None:
            self.averaged.update_parameters(self.energy)

    @property
    def tilt(self) -> nn.Module:
        """The density the EBM tilts: p_theta ∝ exp(-E_theta) · tilt (paper Eq. 6: rho)."""
        return self.base

    def log_target(self, x: Tensor) -> Tensor:
        """Unnormalised log p_theta(x) = -E_theta(x) + log tilt(x): what the chains sample while training."""
        return -self.energy(x) + self.tilt.log_prob(x)

    @property
    def model_energy(self) -> nn.Module:
        """The EBM the trained method reports: E_theta itself, or the exponential moving average of its
        parameters along training when ``ebm_average`` > 0 (training itself always uses E_theta)."""
        return self.energy if self.averaged is None else self.averaged

    def log_model(self, x: Tensor) -> Tensor:
        """Unnormalised log-density of the reported model, -E(x) + log tilt(x) with E = ``model_energy``."""
        return -self.model_energy(x) + self.tilt.log_prob(x)

    @property
    def proposal(self) -> nn.Module:
        """The method's own tractable density nearest its model (its flow if it has one, else its tilt): an
        importance-sampling proposal for the trained EBM (``ebmflow.estimators``)."""
        return self.tilt

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        """The method's own optimisers (the EBM's belongs to the training loop)."""
        return []

    # --- chains -------------------------------------------------------------------------------------------
    @abstractmethod
    def init_chains(self, n: int, generator: torch.Generator) -> Tensor:
        """The persistent bank at iteration 0, in the method's chain space."""

    def starts(self, chains: Tensor, generator: torch.Generator) -> Tensor:
        """Where a batch of chains starts its MCMC steps (Table 3's "init."): the persistent states."""
        return chains

    @abstractmethod
    def sample(self, chains: Tensor, generator: torch.Generator) -> Negatives:
        """Advance a batch of persistent chains on the current model and return the negatives."""

    def update(self, negatives: Tensor) -> dict[str, Tensor]:
        """Anything the method trains after the EBM step (Algorithm 1, step 5); returns statistics."""
        return {}

    @abstractmethod
    def kernel(self, substeps: bool = False) -> Kernel:
        """The method's MCMC kernel on the current model, in chain space (to keep sampling after training);
        with ``substeps`` a composite kernel reports its sub-steps' positions in ``info.trajectory``."""

    def positions(self, chains: Tensor) -> Tensor:
        """Data-space positions of chain states (the identity, except for latent-space chains)."""
        return chains

    # --- description and state ----------------------------------------------------------------------------
    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """One row of the paper's hyper-parameter tables (Tables 4, 5, 7), keyed by ``DESCRIBE_COLUMNS`` in that
        order: "MCMC sampler", "# MCMC steps", "use only last step?", "starting strategy", "learning rate"."""

    def state_dict(self) -> dict[str, Any]:
        """Everything the method changes while training (networks, optimisers, adapted steps, counters)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned (after ``prepare``)."""
