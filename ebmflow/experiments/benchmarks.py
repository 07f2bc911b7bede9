"""The four-method 2-D benchmarks shared by Figures 2-5 and Tables 1, 3-5 (paper §3.2-3.3, Appendix C.3-C.4).

One configuration class for both chapters (their profiles differ); ``method_specs`` turns it into the
per-method hyper-parameters of Tables 4-5, ``run_method`` trains one method on one target.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import pandas as pd
from matplotlib.axes import Axes
from torch import Tensor

from ..energy import ToyEnergy
from ..flows import DiagonalGaussian, RealNVP
from ..metrics import Grid2D, median_squared_log_error, normalize_on_grid, normalized_log_density_at
from ..plotting import METHOD_LABELS, density_panel
from ..seeding import make_generator
from ..targets import GaussianMixture, Rings, eight_gaussians, four_collinear_modes, rings
from ..training import (METHODS, History, MethodSpec, NegativeSampler, fit_ebm, make_sampler,
                        tilted_log_density)

__all__ = ["BenchmarkConfig", "CHOICES", "TARGETS", "TARGET_LABELS", "MethodResult", "method_specs", "make_data",
           "run_method", "table1_error", "hyperparameter_table", "density_row"]

TARGETS: dict[str, tuple[Callable[[], GaussianMixture | Rings], float]] = {
    # name: (target, half-width of the square box of the grid and of ULA's uniform start)
    "8gaussians": (eight_gaussians, 2.5),
    "rings": (rings, 5.0),
    "extended": (four_collinear_modes, 4.5),
}
CHOICES = (
    "Tilt rho = N(0, s^2 I) with s^2 the largest per-coordinate variance of p* (the paper's rule for its "
    "high-dimensional example, §C.5); it is also the flow's base. NT-EBM's latent chains target the pull-back "
    "of the same tilted model, -E(T z) + log rho(T z) + log|det dT/dz|, so all four methods learn one model family.",
    "Flow pre-training (NT-EBM, CoopFlow): reverse KL to p* itself (exact for these targets), Adam at lr 1e-2. "
    "NT-EBM keeps that flow fixed (Nijkamp et al. 2022); CoopFlow freezes it for the first 4% of the iterations, "
    "then fits it by maximum likelihood on its revised samples.",
    "Persistent bank of `n_persistent` chains, a random `batch_size` of them advanced per iteration; CoopFlow "
    "restarts its chains from fresh flow samples every iteration.",
    "Negatives: the last state for ULA-EBM, NT-EBM and CoopFlow; for flowMC-EBM ('use only last step? = no') "
    "batch_size/k chains each give k states evenly spaced along the iteration's schedule (the last included).",
    "flowMC-EBM's MALA step 0.01, fixed; NT-EBM's latent MALA step adapted after every step (x/÷1.05) to 75%.",
    "Optimiser: Adam at the paper's learning rates, except NT-EBM in the cpu profiles: 1e-3 for 8 Gaussians and "
    "Rings, 3e-4 for the four-mode example (its training diverged at 1e-2, and at 1e-3 on the four modes).",
    "ULA-EBM chains start uniformly on the plotting box.",
)
TARGET_LABELS = {"8gaussians": "8 Gaussians", "rings": "Rings", "extended": "4 modes (0.1, 0.2, 0.3, 0.4)"}


@dataclass(frozen=True)
class BenchmarkConfig:
    seed: int
    n_data: int  # size of the fixed training set drawn from p*
    epochs: int
    batch_size: int  # positives and negatives per iteration
    n_persistent: int  # persistent chains; batch_size of them advanced per iteration
    lr_ula: float  # Adam learning rate of the EBM (and flow) per method
    lr_ntebm: float
    lr_coopflow: float
    lr_flowmc: float
    ula_steps: int  # ULA-EBM: ULA steps per iteration, last state kept
    ula_step_size: float
    ntebm_steps: int  # NT-EBM: latent MALA steps per iteration, last state kept
    ntebm_step_size: float  # initial latent MALA step, adapted to 75% acceptance
    coopflow_steps: int  # CoopFlow: noiseless ULA steps from fresh flow samples
    coopflow_step_size: float
    coopflow_freeze_fraction: float  # fraction of the iterations with the flow frozen at the start
    flowmc_local_steps: int  # flowMC-EBM: MALA steps after each i-SIR step
    flowmc_cycles: int  # (1 i-SIR + local MALA) cycles per iteration
    flowmc_keep: int  # states kept per chain ("subsampling by k")
    flowmc_step_size: float  # flowMC's MALA step
    n_particles: int  # i-SIR candidates
    pretrain_steps: int  # reverse-KL flow pre-training (NT-EBM, CoopFlow)
    pretrain_lr: float
    flow_couplings: int
    flow_hidden: int
    grid_size: int  # grid points per axis to normalise the EBMs
    n_eval: int  # held-out p* samples on which Table 1's median is taken

    @property
    def flowmc_schedule(self) -> str:
        return ("G" + "L" * self.flowmc_local_steps) * self.flowmc_cycles

    def __post_init__(self) -> None:
        if len(self.flowmc_schedule) % self.flowmc_keep or self.batch_size % self.flowmc_keep:
            raise ValueError(f"flowmc_keep ({self.flowmc_keep}) must divide the flowMC steps per iteration "
                             f"({len(self.flowmc_schedule)}) and batch_size ({self.batch_size})")
        if self.coopflow_freeze_fraction >= 1:
            raise ValueError(f"coopflow_freeze_fraction must be < 1, got {self.coopflow_freeze_fraction}")

    @property
    def iterations(self) -> int:
        return self.epochs * (self.n_data // self.batch_size)


def method_specs(config: BenchmarkConfig, box: float) -> dict[str, MethodSpec]:
    """Paper Tables 4-5 as run by the code (ULA's uniform start on the plotting box [-box, box]^2)."""
    pretrain = dict(pretrain_steps=config.pretrain_steps, pretrain_lr=config.pretrain_lr,
                    pretrain_batch=config.batch_size)
    return {
        "ula": MethodSpec("ula", lr=config.lr_ula, n_steps=config.ula_steps, step_size=config.ula_step_size,
                          init_limit=box),
        "ntebm": MethodSpec("ntebm", lr=config.lr_ntebm, n_steps=config.ntebm_steps,
                            step_size=config.ntebm_step_size, **pretrain),
        "coopflow": MethodSpec("coopflow", lr=config.lr_coopflow, n_steps=config.coopflow_steps,
                               step_size=config.coopflow_step_size,
                               freeze_iterations=int(config.coopflow_freeze_fraction * config.iterations),
                               **pretrain),
        "flowmc": MethodSpec("flowmc", lr=config.lr_flowmc, schedule=config.flowmc_schedule,
                             step_size=config.flowmc_step_size, n_particles=config.n_particles,
                             keep=config.flowmc_keep),
    }


@dataclass
class MethodResult:
    method: str
    target: str
    energy: ToyEnergy
    base: DiagonalGaussian  # rho: the flow's base and the EBM's tilt
    flow: RealNVP | None
    sampler: NegativeSampler
    history: History
    seconds: float

    @property
    def log_density(self) -> Callable[[Tensor], Tensor]:
        """Unnormalised log p^rho_theta (paper Eq. 6)."""
        return tilted_log_density(self.energy, self.base)


def make_data(config: BenchmarkConfig, target: str) -> Tensor:
    return TARGETS[target][0]().sample(config.n_data, make_generator(config.seed + 1))


def run_method(config: BenchmarkConfig, target: str, method: str, data: Tensor) -> MethodResult:
    """Train ``method`` (one of METHODS) on ``data`` from ``target``; reproducible from the seed.

    The tilt and flow base is rho = N(0, s^2 I) with s^2 the largest per-coordinate variance of p*
    (the paper's rule for its high-dimensional example, §C.5, applied in 2-D too); NT-EBM's chains
    target its pull-back through the flow."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; accepted: {', '.join(METHODS)}")
    make_target, box = TARGETS[target]
    p_star = make_target()
    generator = make_generator(config.seed)
    base = DiagonalGaussian(dim=2, std=p_star.max_coordinate_variance() ** 0.5)
    energy = ToyEnergy(dim=2)
    spec = method_specs(config, box)[method]
    start = time.perf_counter()
    sampler, flow = make_sampler(spec, base, generator, pretrain_target=p_star.log_prob,
                                 flow_couplings=config.flow_couplings, flow_hidden=config.flow_hidden)
    history = fit_ebm(data, energy, base, sampler, epochs=config.epochs, batch_size=config.batch_size,
                      n_persistent=config.n_persistent, lr=spec.lr, generator=generator,
                      desc=f"{method} on {target}")
    return MethodResult(method, target, energy, base, flow, sampler, history, time.perf_counter() - start)


def grid_of(config: BenchmarkConfig, target: str) -> Grid2D:
    box = TARGETS[target][1]
    return Grid2D(-box, box, config.grid_size)


def table1_error(result: MethodResult, config: BenchmarkConfig) -> float:
    """Paper Table 1: median over ``n_eval`` held-out p* samples of (log p_theta - log p*)^2, the EBM
    normalised on the grid."""
    p_star = TARGETS[result.target][0]()
    points = p_star.sample(config.n_eval, make_generator(config.seed + 3))
    log_model = normalized_log_density_at(result.log_density, points, grid_of(config, result.target))
    return median_squared_log_error(log_model, p_star.log_prob(points))


def _sampler_text(spec: MethodSpec) -> tuple[str, int, str, str]:
    if spec.name == "ula":
        return f"ula, step {spec.step_size:.3g}", spec.n_steps, "yes", "uniform"
    if spec.name == "ntebm":
        return (f"latent mala, {spec.target_acceptance:.0%} target acceptance (initial step {spec.step_size:.3g})",
                spec.n_steps, "yes", "flow")
    if spec.name == "coopflow":
        return f"noiseless ula, step {spec.step_size:.3g}", spec.n_steps, "yes", "flow (every iteration)"
    n_global = spec.schedule.count("G")
    local = spec.schedule.count("L") // n_global
    keep = "no: subsampling by %d" % spec.keep if spec.keep > 1 else "yes"
    return (f"flowMC: {n_global} × (1 i-SIR ({spec.n_particles} particles) + {local} mala, step "
            f"{spec.step_size:.3g})", len(spec.schedule), keep, "flow")


def hyperparameter_table(config: BenchmarkConfig, box: float, paper: dict[str, tuple]) -> pd.DataFrame:
    """Paper Tables 4-5 generated from the specs the code runs, with the paper's values beside them."""
    rows = {}
    for name, spec in method_specs(config, box).items():
        sampler, steps, last, start = _sampler_text(spec)
        rows[METHOD_LABELS[name]] = {"MCMC sampler": sampler, "# MCMC steps": steps, "use only last step?": last,
                                     "starting strategy": start, "lr (EBM, flow)": spec.lr,
                                     "flow pre-training (reverse KL)": spec.pretrain_steps or "none",
                                     "paper: sampler": paper[name][0], "paper: # steps": paper[name][1],
                                     "paper: last step?": paper[name][2], "paper: lr": paper[name][3]}
    return pd.DataFrame(rows).T


def density_row(axes: list[Axes], results: dict[str, MethodResult], config: BenchmarkConfig, target: str,
                order: tuple[str, ...] = ("flowmc", "ntebm", "coopflow", "ula")) -> None:
    """One row of Figures 2-3: the target, then each method's normalised density on the grid."""
    grid = grid_of(config, target)
    p_star = TARGETS[target][0]()
    density_panel(axes[0], normalize_on_grid(p_star.log_prob, grid), grid, f"target ({TARGET_LABELS[target]})")
    for ax, method in zip(axes[1:], order):
        density_panel(ax, normalize_on_grid(results[method].log_density, grid), grid, METHOD_LABELS[method])
