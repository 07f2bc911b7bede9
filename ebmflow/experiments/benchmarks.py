"""The four-method 2-D benchmarks shared by chapters 02 (8 Gaussians, Rings: Figure 2, Tables 1, 5) and 03
(four collinear modes: Figures 3-5, Tables 3, 4): the knobs both chapters share, the methods built from them,
training, the grid metrics, the density panels and the hyper-parameter tables generated from ``describe()``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import pandas as pd
import torch
from matplotlib.axes import Axes
from torch import Tensor

from ..book.claims import PaperItem, render
from ..book.plotting import density_panel, label
from ..checks import InputError, check_int
from ..methods import METHODS, CoopFlow, FlowMCEBM, Method, NTEBM, ULAEBM
from ..metrics import Grid2D, normalize_on_grid, zone_weights_on_grid
from ..models import DiagonalGaussian, RealNVP, ToyEnergy
from ..seeding import make_generator, resolve_device
from ..targets import (Checkerboard, GaussianMixture, Pinwheel, Rings, TwoMoons, checkerboard, eight_gaussians,
                       four_collinear_modes, pinwheel, rings, two_moons)
from ..training import DivergenceRule
from .common import Run, checkpoint_for, diverged_at, hyperparameter_table, table_cell, train  # noqa: F401 (re-exported)

__all__ = ["TARGETS", "TARGET_LABELS", "TARGET_DENSITIES", "BenchmarkConfig", "PAPER_SETTINGS", "SHARED_CHOICES",
           "paper_hyperparameters", "target", "grid", "make_data", "make_methods", "train_method", "diverged_at",
           "table_cell", "model_zone_weights", "run_panel", "density_row", "hyperparameter_table"]

Target = GaussianMixture | Rings | TwoMoons | Pinwheel | Checkerboard
TARGETS: dict[str, tuple[Callable[..., Target], float]] = {
    # name: (p*, half-width L of the plotting box [-L, L]^2: the grid, and ULA-EBM's uniform start)
    "8gaussians": (eight_gaussians, 2.5),
    "rings": (rings, 5.0),
    "moons": (two_moons, 4.0),
    "pinwheel": (pinwheel, 4.5),
    "checkerboard": (checkerboard, 4.5),
    "extended": (four_collinear_modes, 4.5),
}
TARGET_LABELS = {"8gaussians": "8 Gaussians", "rings": "Rings", "moons": "Two moons", "pinwheel": "Pinwheel",
                 "checkerboard": "Checkerboard", "extended": "4 modes"}
TARGET_DENSITIES = {  # what log p* is, for each target (the text of chapter 02 lists those it runs)
    "8gaussians": "eight equal-weight N(mu_i, 0.15^2 I), mu_i on the unit circle; exact log-density; modes: the "
                  "Gaussians (nearest mean)",
    "rings": "radius ~ (1/4) sum_k N(k, 0.15^2), k = 1..4, uniform angle; exact log-density (polar change of "
             "variables); modes: the rings (nearest radius)",
    "moons": "scikit-learn's two moons, doubled, noise 0.2; no closed form: a reference density, the noise "
             "integral along each arc by the midpoint rule on 256 nodes (within 0.01 in log-density); modes: the "
             "moons",
    "pinwheel": "five arms, FFJORD's shape, each a Gaussian turned by an angle that grows with the radius (an "
                "area-preserving warp); exact log-density; modes: the arms",
    "checkerboard": "uniform on the 8 dark squares of a 4 x 4 board on [-4, 4]^2; exact log-density (-inf off "
                    "the squares); modes: the squares (nearest centre)",
    "extended": "four N(mu_i, 0.05 I) on the horizontal axis at x = -3, -1, 1, 3; exact log-density; modes: "
                "the Gaussians (nearest mean)",
}


@dataclass(frozen=True)
class BenchmarkConfig:
    seed: int
    n_data: int  # size of the fixed training set drawn from p*
    epochs: int
    batch_size: int  # positives and negatives per iteration
    n_persistent: int  # persistent chains; batch_size of them advanced per iteration
    lr_ula: float  # Adam learning rate of ULA-EBM
    lr_ntebm: float  # Adam learning rate of NT-EBM's EBM (its flow is frozen)
    lr_coopflow: float  # Adam learning rate of CoopFlow (EBM and flow)
    lr_flowmc: float  # Adam learning rate of flowMC-EBM (EBM and flow)
    ula_steps: int  # ULA steps per iteration (ULA-EBM)
    ula_step_size: float  # ULA step (ULA-EBM)
    ntebm_steps: int  # latent MALA steps per iteration (NT-EBM)
    ntebm_step_size: float  # initial latent MALA step, adapted to 75% acceptance (NT-EBM)
    coopflow_steps: int  # noiseless Langevin steps from fresh flow samples (CoopFlow)
    coopflow_step_size: float  # noiseless Langevin step (CoopFlow)
    coopflow_freeze_fraction: float  # fraction of the iterations with CoopFlow's pre-trained flow frozen
    coopflow_max_drift: float  # clamp of each coordinate's displacement per Langevin step (0: no clamp)
    flowmc_blocks: int  # blocks of (1 i-SIR step + flowmc_local_steps MALA steps) per iteration (flowMC-EBM)
    flowmc_local_steps: int  # MALA steps after each i-SIR step (flowMC-EBM)
    flowmc_keep: int  # states kept per flowMC chain and iteration ("subsampling by k"; 1: last state only)
    flowmc_step_size: float  # MALA step of flowMC-EBM
    n_particles: int  # i-SIR candidates per global step
    pretrain_steps: int  # maximum-likelihood flow pre-training steps (NT-EBM, CoopFlow)
    pretrain_lr: float  # flow pre-training learning rate
    flow_couplings: int  # RealNVP coupling layers
    flow_hidden: int  # hidden units of the coupling MLPs
    grid_size: int  # grid points per axis to normalise the EBMs
    divergence_gap: float  # a run diverges when |mean E(x-) - mean E(x+)| exceeds this
    divergence_box: float  # a run diverges when a chain leaves [-b L, b L]^2: b this factor, L the plotting half-width
    device: str  # "cpu", "cuda" or "auto"
    stop_after: int  # stop each training run after this many iterations (0: train fully)

    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("stop_after", "coopflow_max_drift")

    def __post_init__(self) -> None:
        resolve_device(self.device)
        if len(self.flowmc_schedule) % self.flowmc_keep or self.batch_size % self.flowmc_keep:
            raise InputError(f"flowmc_keep ({self.flowmc_keep}) must divide the flowMC steps per iteration "
                             f"({len(self.flowmc_schedule)}) and batch_size ({self.batch_size})")
        if self.coopflow_freeze_fraction >= 1:
            raise InputError(f"coopflow_freeze_fraction must be below 1, got {self.coopflow_freeze_fraction!r}")
        make_methods(self, next(iter(TARGETS)))  # the methods check their own knobs before any training
        check_int("grid_size", self.grid_size, minimum=2)

    def p_star(self, name: str) -> Target:
        """Target ``name`` as this configuration sets it (a chapter's Config overrides this for its parameters)."""
        return TARGETS[name][0]()

    @property
    def flowmc_schedule(self) -> str:
        return ("G" + "L" * self.flowmc_local_steps) * self.flowmc_blocks

    @property
    def iterations(self) -> int:
        return self.epochs * (self.n_data // self.batch_size)


PAPER_SETTINGS = dict(  # Appendix C.3-C.4, shared by both chapters (flowMC-EBM's schedule differs)
    seed=0, n_data=60000, epochs=100, batch_size=256, n_persistent=8192, lr_ula=1e-2, lr_ntebm=1e-2,
    lr_coopflow=1e-3, lr_flowmc=1e-3, ula_steps=512, ula_step_size=0.125**2 / 2, ntebm_steps=128,
    ntebm_step_size=0.01, coopflow_steps=256, coopflow_step_size=5e-4, coopflow_freeze_fraction=0.04,
    coopflow_max_drift=0.0, flowmc_step_size=0.01, n_particles=64, pretrain_steps=1024, pretrain_lr=1e-2,
    flow_couplings=4, flow_hidden=16, grid_size=200, divergence_gap=1e4, divergence_box=4.0, device="cpu",
    stop_after=0)
SHARED_CHOICES = (
    "Tilt rho = N(0, s^2 I) with s^2 the largest per-coordinate variance of p* (the paper's rule for its "
    "high-dimensional example, §C.5), also the base of every flow. ULA-EBM, CoopFlow and flowMC-EBM learn "
    "p_theta ∝ exp(-E_theta) rho (paper Eq. 6); NT-EBM learns exp(-E_theta) lambda, lambda its frozen flow "
    "(Nijkamp et al. 2022's exponential tilting of the flow), with latent chains on -E_theta(T z) + log rho(z).",
    "Flow pre-training (NT-EBM, CoopFlow): maximum likelihood on the training data, `pretrain_steps` Adam steps "
    "at `pretrain_lr` on batches of `batch_size` (the originals' likelihood-trained backbones; the paper's "
    "'reverse KL' sentence names no target). NT-EBM keeps its flow frozen; CoopFlow freezes it for the first "
    "`coopflow_freeze_fraction` of the iterations, then takes one maximum-likelihood step per iteration on the "
    "revised samples.",
    "Persistent bank of `n_persistent` chains, a random `batch_size` of them advanced per iteration; NT-EBM's "
    "bank holds latent states z (negatives T(z)); CoopFlow restarts its chains from fresh flow samples every "
    "iteration (its chains are not persistent).",
    "NT-EBM's latent MALA step starts at `ntebm_step_size` and is multiplied (divided) by 1.05 after every step "
    "when the batch acceptance is above 78% (below 72%), carried across iterations (the first author's "
    "flow_mcmc rule); flowMC-EBM's MALA step is fixed.",
    "CoopFlow's Langevin is noiseless (as its authors advise); `coopflow_max_drift` > 0 clamps each "
    "coordinate's displacement per step as the original code does (±0.1); 0 = no clamp, the paper's text.",
    "Optimiser: Adam (default betas) at the paper's learning rates for every network (gamma_flow = gamma_EBM); "
    "the paper names no optimiser.",
    "ULA-EBM chains start uniformly on the plotting box [-L, L]^2.",
    "Divergence: a run stops (and is shown as diverged, never dropped) when an energy or a chain is not finite, "
    "when the energy gap |mean E(x-) - mean E(x+)| exceeds `divergence_gap`, or when a negative leaves "
    "[-b L, b L]^2 with b = `divergence_box` (far outside every target's mass and the tilt's); the level of E, "
    "defined up to a constant, is not a criterion.",
)


def paper_hyperparameters(flowmc_sampler: str, flowmc_steps: int, flowmc_last: str) -> dict[str, dict[str, Any]]:
    """The paper's rows of Tables 4-5 (their columns, §C.3-C.4 for the learning rates); only flowMC-EBM's
    row differs between the two tables."""
    def row(sampler: str, steps: int, last: str, start: str, lr: float) -> dict[str, Any]:
        return {"MCMC sampler": sampler, "# MCMC steps": str(steps), "use only last step?": last,
                "starting strategy": start, "learning rate": str(lr)}

    rows = {"flowmc": row(flowmc_sampler, flowmc_steps, flowmc_last, "flow", 1e-3),
            "ntebm": row("mala with target acceptance 75%", 128, "yes", "flow", 1e-2),
            "coopflow": row("ula with 5e-4 step size", 256, "yes", "flow", 1e-3),
            "ula": row("ula with (1.25e-1)^2/2 step size", 512, "yes", "uniform", 1e-2)}
    return {name: rows[name] for name in METHODS}


def target(name: str) -> Target:
    """Target ``name`` with the paper's settings (chapters read ``config.p_star(name)``)."""
    return TARGETS[name][0]()


def grid(config: BenchmarkConfig, name: str) -> Grid2D:
    box = TARGETS[name][1]
    return Grid2D(-box, box, config.grid_size)


def make_data(config: BenchmarkConfig, name: str) -> Tensor:
    """The fixed training set: ``n_data`` samples of p*."""
    return config.p_star(name).sample(config.n_data, make_generator(config.seed, stream=f"data/{name}"))


def make_methods(config: BenchmarkConfig, name: str = "", *, box: float | None = None, ntebm_pretrain: str = "data",
                 coopflow_steps: int | None = None) -> dict[str, Method]:
    """The four methods of Tables 4-5 on target ``name`` (or, for other data, with ULA-EBM's box [-box, box]^d), in
    the paper's figure order (flowMC-EBM, NT-EBM, CoopFlow, ULA-EBM); ``ntebm_pretrain`` and ``coopflow_steps``
    build the chapter's variants."""
    def flow(base, generator):
        return RealNVP(base, config.flow_couplings, config.flow_hidden, generator=generator)

    pretrain = dict(pretrain_steps=config.pretrain_steps, pretrain_lr=config.pretrain_lr,
                    pretrain_batch=config.batch_size, make_flow=flow)
    built = {
        "flowmc": FlowMCEBM(lr=config.lr_flowmc, schedule=config.flowmc_schedule, step_size=config.flowmc_step_size,
                            n_particles=config.n_particles, keep=config.flowmc_keep, make_flow=flow,
                            ebm_average=0.0),  # the paper reports the last E_theta
        "ntebm": NTEBM(lr=config.lr_ntebm, n_steps=config.ntebm_steps, step_size=config.ntebm_step_size,
                       pretrain=ntebm_pretrain, **pretrain),
        "coopflow": CoopFlow(lr=config.lr_coopflow, n_steps=coopflow_steps or config.coopflow_steps,
                             step_size=config.coopflow_step_size,
                             freeze_iterations=int(config.coopflow_freeze_fraction * config.iterations),
                             max_drift=config.coopflow_max_drift or None, **pretrain),
        "ula": ULAEBM(lr=config.lr_ula, step_size=config.ula_step_size, n_steps=config.ula_steps,
                      box=TARGETS[name][1] if box is None else box),
    }
    return {key: built[key] for key in METHODS}


def train_method(config: BenchmarkConfig, name: str, method: Method, data: Tensor, key: str) -> Run:
    """Train ``method`` on ``data`` drawn from target ``name``; ``key`` names its checkpoint (chapter, target,
    method, variant). Every method starts from the same EBM initialisation; a divergence is recorded."""
    p_star = config.p_star(name)
    return train(method, data, energy=ToyEnergy(2, generator=make_generator(config.seed, stream="energy")),
                 base=DiagonalGaussian(2, std=p_star.max_coordinate_variance() ** 0.5), seed=config.seed,
                 epochs=config.epochs, batch_size=config.batch_size, n_persistent=config.n_persistent,
                 device=config.device, reference=p_star.log_prob,
                 divergence=DivergenceRule(config.divergence_gap, config.divergence_box * TARGETS[name][1]),
                 checkpoint=checkpoint_for(key, config), stop_after=config.stop_after or None,
                 desc=f"{method.label} on {TARGET_LABELS[name]}")


@torch.no_grad()
def model_zone_weights(log_density: Callable[[Tensor], Tensor], config: BenchmarkConfig, name: str,
                       device: torch.device | str = "cpu") -> Tensor:
    """Mass of each mode's zone (nearest mode) under the unnormalised ``log_density`` (evaluated on ``device``),
    normalised on the grid."""
    p_star, box = config.p_star(name), grid(config, name)
    return zone_weights_on_grid(normalize_on_grid(log_density, box, device=device), box, p_star.assign_mode,
                                p_star.n_modes)


def run_panel(ax: Axes, run: Run, config: BenchmarkConfig, name: str | Grid2D, title: str) -> None:
    """The run's normalised density on the grid of target ``name`` (or on a given grid); a diverged run says so (and
    shows its last finite density)."""
    box = grid(config, name) if isinstance(name, str) else name
    log_density = normalize_on_grid(run.log_density, box, device=run.device)
    if run.divergence is not None:
        title = f"{title}\ndiverged (it. {run.divergence.iteration})"
    if not torch.isfinite(log_density).all():
        log_density = torch.full_like(log_density, -math.inf)
        ax.text(0.5, 0.5, "not finite", transform=ax.transAxes, ha="center", color="white")
    density_panel(ax, log_density, box, title)


def density_row(axes: list[Axes], runs: dict[str, Run], config: BenchmarkConfig, name: str) -> None:
    """One row of Figures 2-3: the target, then each method's normalised density, in the paper's order."""
    box = grid(config, name)
    density_panel(axes[0], normalize_on_grid(config.p_star(name).log_prob, box), box, "target")
    axes[0].set_ylabel(TARGET_LABELS[name])
    for ax, (method, run) in zip(axes[1:], runs.items()):
        run_panel(ax, run, config, name, label(method))
