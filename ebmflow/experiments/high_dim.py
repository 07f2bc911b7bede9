"""High-dimensional Gaussian mixture (paper §4, Table 2, Figure 6, Tables 6-7, Appendix C.5).

Four methods train the same tilted EBM p^rho_theta ∝ exp(-E_theta) rho on a 4-mode mixture in d = 16, 32,
64; mixing is measured by the maximum over coordinates of the rank-normalised R-hat of 128 chains started
from the persistent state (from the flow for CoopFlow), along training and at its end.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from arviz_stats.base import array_stats
from scipy.stats import norm
from torch import Tensor

from ..energy import ToyEnergy
from ..flows import DiagonalGaussian, RealNVP
from ..plotting import METHOD_COLORS, METHOD_LABELS
from ..samplers import FlowMCKernel, LogDensity, init_state, ula_step
from ..seeding import make_generator
from ..targets import GaussianMixture
from ..training import (METHODS, CoopFlowNegatives, MethodSpec, NegativeSampler, NTEBMNegatives,
                        TrainingDivergedError, ULANegatives, fit_ebm, make_sampler, tilted_log_density)

__all__ = ["HighDimConfig", "PROFILES", "CHOICES", "DIMS", "METHODS", "FLOW_SIZES", "PAPER_TABLE2", "PAPER_A",
           "four_mode_mixture", "coordinate_magnitude", "misassignment_table", "max_rhat", "RunResult",
           "run_method", "make_data", "make_flow", "pretrain_on_data", "divergence_table", "table2", "table6",
           "table7", "figure6"]

DIMS = (16, 32, 64)
FLOW_SIZES = {16: (32, 2), 32: (39, 2), 64: (51, 2)}  # Table 6: hidden units, RealNVP blocks
COUPLINGS_PER_BLOCK = 2  # a block = two couplings with complementary masks (flow_mcmc convention)
PRETRAIN_OBJECTIVES = ("data", "reverse_kl")
MIN_RHAT_DRAWS = 4  # rank-normalised split R-hat is undefined on shorter chains
PAPER_A = 0.5919  # Appendix C.5's constant
PAPER_TABLE2 = {"coopflow": (20.52, 44.12, 51.66), "ntebm": (2.02, 2.50, 3.10), "ula": (7.30, 9.29, 90.90),
                "flowmc": (1.01, 1.01, 1.05)}


@dataclass(frozen=True)
class HighDimConfig:
    seed: int
    max_misassignment: float  # mode separation: probability that a sample's nearest mean is not its own
    n_misassignment: int  # samples per dimension to measure that probability
    n_data: int  # size of the fixed training set drawn from p*
    epochs: int
    batch_size: int  # positives and negatives per iteration; also the number of R-hat chains
    n_persistent: int
    lr_ula: float  # Adam learning rates (EBM, and flow where there is one)
    lr_ntebm: float
    lr_coopflow: float
    lr_flowmc: float
    ula_step_size: float
    ula_steps: int  # ULA steps per iteration (ULA-EBM)
    ntebm_steps: int  # latent MALA steps per iteration (NT-EBM)
    coopflow_step_size: float
    coopflow_steps: int  # noiseless Langevin steps per iteration (CoopFlow)
    flowmc_steps: int  # stacked (1 i-SIR + flowmc_local_steps MALA) steps per iteration (flowMC-EBM)
    flowmc_local_steps: int
    mala_step_size: float  # MALA step: flowMC-EBM's local moves; NT-EBM's initial (adapted) step
    n_particles: int  # i-SIR candidates per global step
    pretrain_objective: str  # baseline flow pre-training: "data" (maximum likelihood) or "reverse_kl" (to p*)
    pretrain_steps: int  # baseline flow pre-training (NT-EBM, CoopFlow)
    pretrain_lr: float
    rhat_sweeps: int  # R-hat chains run this many times one iteration's MCMC length
    rhat_evals: int  # R-hat measurements along training (Figure 6)

    def __post_init__(self) -> None:
        if self.pretrain_objective not in PRETRAIN_OBJECTIVES:
            raise ValueError(f"pretrain_objective must be one of {', '.join(PRETRAIN_OBJECTIVES)}, got "
                             f"{self.pretrain_objective!r}")
        shortest = self.rhat_sweeps * min(self.ula_steps, self.ntebm_steps, self.coopflow_steps,
                                          self.flowmc_steps)
        if shortest < MIN_RHAT_DRAWS:
            raise ValueError(f"R-hat chains need at least {MIN_RHAT_DRAWS} draws, the shortest here has "
                             f"{shortest}: raise rhat_sweeps")


PAPER = dict(seed=0, max_misassignment=1e-10, n_misassignment=1_000_000, n_data=50_000, epochs=150,
             batch_size=128, n_persistent=8192, lr_ula=1e-2, lr_ntebm=1e-2, lr_coopflow=1e-3, lr_flowmc=1e-3,
             ula_step_size=1e-3, ula_steps=512, ntebm_steps=128, coopflow_step_size=1e-4, coopflow_steps=256,
             flowmc_steps=16, flowmc_local_steps=8, mala_step_size=0.2, n_particles=128,
             pretrain_objective="data", pretrain_steps=512, pretrain_lr=1e-2, rhat_sweeps=1, rhat_evals=30)
# cpu: every sampler runs 1/8 of the paper's MCMC steps per iteration (R-hat chains keep the paper's length
# through rhat_sweeps = 8), i-SIR uses 64 candidates, and training is 1200 iterations instead of 58 500.
CPU = {**PAPER, "n_data": 12_800, "epochs": 12, "ula_steps": 64, "ntebm_steps": 16, "coopflow_steps": 32,
       "flowmc_steps": 2, "n_particles": 64, "rhat_sweeps": 8, "rhat_evals": 10}
CHOICES = (
    "Mean scaling: the paper's sign pattern with per-coordinate magnitude m_d = Δ/sqrt(2d), so the two closest "
    "means are Δ ≈ 12.93 apart in every dimension, the smallest gap for which the union bound 2Φ̄(Δ/2) on the "
    "misassignment rate equals the paper's 1e-10 (its literal a = 0.5919 misassigns about 9% of samples in d = 16).",
    "Flows (Table 6): a RealNVP block is two affine couplings with complementary half masks; coupling nets have 3 "
    "hidden layers and a zero last layer, so each flow is the identity at initialisation.",
    "R-hat: rank-normalised split R-hat (arviz-stats) per coordinate, maximum over coordinates, on the `batch_size` "
    "= 128 chains just drawn from the persistent bank (fresh flow samples for CoopFlow), run with the method's own "
    "MCMC on the current model for the paper's per-iteration length (512 ULA, 128 latent MALA, 256 Langevin or 16 "
    "stacked flowMC steps) on a separate random stream; draws are the states after each step (each stacked step for "
    "flowMC), thinned evenly to at most 64. Figure 6's time axis excludes these measurements.",
    "Every method, ULA-EBM included, trains the tilted EBM; ULA-EBM's chains start from rho (\"gaussian\"), the "
    "others' from their flow. Optimiser: Adam at the paper's learning rates, shared by EBM and flow.",
    "flowMC-EBM: MALA step 0.2 (not given; 0.05 gave 92% local acceptance in d = 64 and a slower fall of R-hat, "
    "0.2 gives about 75%); \"use only last step? = no\" read as one negative per stacked step, from "
    "`batch_size / flowmc_steps` chains.",
    "NT-EBM (fixed flow, latent MALA adapted to 75%) and CoopFlow (flow frozen for the first 4% of iterations) use "
    "the library's samplers. Their flows are pre-trained (512 steps, lr 1e-2) by maximum likelihood on the data: "
    "the paper's \"reverse KL\" has no stated target, and reverse KL towards p* (`pretrain_objective = "
    "\"reverse_kl\"`) put all 4096 flow samples in one mode in d = 16 and 64, after which both baselines diverged "
    "within 200 iterations in d = 64.",
    "Divergence: the training loop stops a run whose mean energy exceeds 1e4 in absolute value; the run is shown up "
    "to that point (x in Figure 6) and Table 2 gives its R-hat at the last measurement before it stopped.",
    "cpu profile: 1200 iterations (paper about 58 500), 1/8 of the paper's MCMC steps per iteration, i-SIR with 64 "
    "candidates (paper 128), R-hat measured 10 times per run; the R-hat chains keep the paper's length. With 600 "
    "iterations and 32 candidates flowMC-EBM ended at R-hat 1.04 / 1.13 / 1.07, still falling in d = 32.",
)
PROFILES = {
    "smoke": {**CPU, "n_misassignment": 100_000, "n_data": 1024, "epochs": 1, "batch_size": 64,
              "n_persistent": 256, "ula_steps": 8, "ntebm_steps": 4, "coopflow_steps": 8, "flowmc_steps": 1,
              "flowmc_local_steps": 2, "n_particles": 8, "pretrain_steps": 8, "rhat_sweeps": 4, "rhat_evals": 2},
    "cpu": CPU,
    "paper": PAPER,
}


# --- the target -------------------------------------------------------------------------------------------

def coordinate_magnitude(dim: int, max_misassignment: float) -> float:
    """Per-coordinate mean magnitude m such that the two closest means, m·sqrt(2d) apart, are separated
    enough: by the union bound over those two neighbours, P(misassigned) <= 2 Φ̄(m sqrt(2d) / 2) equals
    ``max_misassignment`` (the farthest mean, sqrt(2) times further, adds a negligible term)."""
    if not 0 < max_misassignment < 0.5:
        raise ValueError(f"max_misassignment must be in (0, 0.5), got {max_misassignment}")
    half_gap = norm.isf(max_misassignment / 2)
    return 2 * half_gap / math.sqrt(2 * dim)


def four_mode_mixture(dim: int, magnitude: float) -> GaussianMixture:
    """p* = 1/4 sum_i N(mu_i, I_d) with mu_1 = m·1, mu_2 = m·(-1..-1, 1..1), mu_3 = -mu_2, mu_4 = -mu_1
    (Appendix C.5, with its typo mu_2 = -mu_2 read as mu_3 = -mu_2)."""
    if dim < 2 or dim % 2:
        raise ValueError(f"the sign pattern needs an even dimension >= 2, got {dim}")
    half = torch.cat([-torch.ones(dim // 2), torch.ones(dim // 2)])
    means = magnitude * torch.stack([torch.ones(dim), half, -half, -torch.ones(dim)])
    return GaussianMixture(means=means, stds=torch.ones(4), weights=torch.full((4,), 0.25))


def _misassignment_bound(target: GaussianMixture) -> float:
    """Union bound sum_{j != 1} Φ̄(|mu_j - mu_1| / 2): the exact rate up to a negligible overlap term."""
    gaps = torch.cdist(target.means[:1], target.means[1:])[0]
    return float(sum(norm.sf(g / 2) for g in gaps.tolist()))


def _measured_misassignment(target: GaussianMixture, n: int, generator: torch.Generator,
                            chunk: int = 100_000) -> int:
    """Number of n exact samples (n/4 per component) whose nearest mean is not their own."""
    wrong = 0
    for start in range(0, n, chunk):
        labels = torch.arange(start, min(n, start + chunk)) % target.n_modes
        x = target.means[labels] + torch.randn(len(labels), target.dim, generator=generator)
        wrong += int((target.assign_mode(x) != labels).sum())
    return wrong


def misassignment_table(config: HighDimConfig) -> pd.DataFrame:
    """Mode separation per dimension: the paper's literal constant a = 0.5919 against the scaling used here,
    each with the union-bound rate and the rate measured on ``n_misassignment`` exact samples."""
    generator = make_generator(config.seed + 10)
    rows = []
    for dim in DIMS:
        for name, magnitude in [("paper's a = 0.5919", PAPER_A),
                                ("ours", coordinate_magnitude(dim, config.max_misassignment))]:
            target = four_mode_mixture(dim, magnitude)
            wrong = _measured_misassignment(target, config.n_misassignment, generator)
            rows.append({"d": dim, "scaling": name, "per-coordinate |mean|": magnitude,
                         "closest means apart": magnitude * math.sqrt(2 * dim),
                         "rate (union bound)": _misassignment_bound(target),
                         "misassigned / samples": f"{wrong} / {config.n_misassignment}",
                         "rate (measured)": wrong / config.n_misassignment})
    return pd.DataFrame(rows).set_index(["d", "scaling"])


def make_data(config: HighDimConfig, dim: int) -> tuple[GaussianMixture, Tensor]:
    target = four_mode_mixture(dim, coordinate_magnitude(dim, config.max_misassignment))
    return target, target.sample(config.n_data, make_generator(config.seed + dim))


def make_flow(dim: int, base: DiagonalGaussian) -> RealNVP:
    """The companion RealNVP of Table 6, identity at initialisation."""
    hidden, blocks = FLOW_SIZES[dim]
    return RealNVP(base, n_couplings=COUPLINGS_PER_BLOCK * blocks, hidden=hidden, n_hidden_layers=3)


# --- R-hat ------------------------------------------------------------------------------------------------

def max_rhat(trajectory: Tensor, max_draws: int = 64) -> float:
    """Largest rank-normalised split R-hat over coordinates (Vehtari et al. 2021, arviz-stats) of a
    trajectory shaped (draws, chains, d), thinned evenly to at most ``max_draws`` draws (the last one
    kept); +inf if a chain left the real line."""
    n_draws = trajectory.shape[0]
    if n_draws > max_draws:
        trajectory = trajectory[n_draws - 1 - torch.arange(max_draws).flip(0) * (n_draws // max_draws)]
    if trajectory.shape[0] < MIN_RHAT_DRAWS:
        raise ValueError(f"R-hat needs at least {MIN_RHAT_DRAWS} draws per chain, got {trajectory.shape[0]}")
    if not torch.isfinite(trajectory).all():
        return math.inf
    per_coordinate = array_stats.rhat(trajectory.permute(2, 1, 0).double().numpy(), chain_axis=-2,
                                      draw_axis=-1, method="rank")
    return float(np.max(per_coordinate))


Trajectory = Callable[[Tensor, LogDensity, torch.Generator], Tensor]
"""Chains from starting points (n, d) on the current target: the states after each MCMC step, (draws, n, d)."""


def _ula_trajectory(step_size: float, n_steps: int, noise: bool = True) -> Trajectory:
    def run(start: Tensor, log_target: LogDensity, generator: torch.Generator) -> Tensor:
        state, states = init_state(start, log_target), []
        for _ in range(n_steps):
            state, _ = ula_step(state, log_target, step_size, generator, noise=noise)
            states.append(state.position)
        return torch.stack(states)
    return run


def _flowmc_trajectory(kernel: FlowMCKernel, flow: RealNVP, n_steps: int) -> Trajectory:
    """One draw per stacked step (the state after its global and local moves)."""
    def run(start: Tensor, log_target: LogDensity, generator: torch.Generator) -> Tensor:
        state, states = init_state(start, log_target), []
        for _ in range(n_steps):
            state, _ = kernel.step(state, log_target, flow, generator)
            states.append(state.position)
        return torch.stack(states)
    return run


# --- the four methods ---------------------------------------------------------------------------------------

@dataclass
class GaussianStartULA:
    """ULA-EBM with Table 7's "gaussian" start: persistent chains initialised from rho."""

    ula: ULANegatives
    base: DiagonalGaussian

    def init_chains(self, n: int, dim: int, generator: torch.Generator) -> Tensor:
        return self.base.sample_with_log_prob(n, generator)[0]

    def sample(self, x: Tensor, log_target: LogDensity, generator: torch.Generator) -> tuple[Tensor, dict]:
        return self.ula.sample(x, log_target, generator)

    def update(self, negatives: Tensor) -> dict:
        return {}


def _ntebm_trajectory(sampler: NTEBMNegatives, n_steps: int) -> Trajectory:
    """Latent MALA (a copy of the training sampler, so its step adaptation does not leak back), mapped
    through the flow."""
    def run(start: Tensor, log_target: LogDensity, generator: torch.Generator) -> Tensor:
        chains = dataclasses.replace(sampler, n_steps=n_steps, record=True)
        chains.sample(start, log_target, generator)
        with torch.no_grad():
            latent = chains.trajectory[1:]
            return sampler.flow.from_latent(latent.flatten(0, 1))[0].view_as(latent)
    return run


@dataclass
class Setup:
    """What one method needs: its negative sampler, its learning rate, how its R-hat chains move, and where
    they start (None: from the persistent state)."""

    sampler: NegativeSampler
    lr: float
    trajectory: Trajectory
    rhat_start: Callable[[int, torch.Generator], Tensor] | None = None


def method_spec(config: HighDimConfig, method: str) -> MethodSpec:
    """One row of Table 7 at this profile."""
    iterations = config.epochs * (config.n_data // config.batch_size)
    pretrain = dict(pretrain_steps=config.pretrain_steps, pretrain_lr=config.pretrain_lr)
    if method == "ula":
        return MethodSpec("ula", config.lr_ula, n_steps=config.ula_steps, step_size=config.ula_step_size)
    if method == "ntebm":
        return MethodSpec("ntebm", config.lr_ntebm, n_steps=config.ntebm_steps, step_size=config.mala_step_size,
                          **pretrain)
    if method == "coopflow":
        return MethodSpec("coopflow", config.lr_coopflow, n_steps=config.coopflow_steps,
                          step_size=config.coopflow_step_size, freeze_iterations=iterations // 25, **pretrain)
    if method == "flowmc":
        return MethodSpec("flowmc", config.lr_flowmc, step_size=config.mala_step_size,
                          schedule=("G" + "L" * config.flowmc_local_steps) * config.flowmc_steps,
                          n_particles=config.n_particles, keep=config.flowmc_steps)
    raise ValueError(f"unknown method {method!r}; accepted: {', '.join(METHODS)}")


def pretrain_on_data(flow: RealNVP, data: Tensor, spec: MethodSpec, generator: torch.Generator) -> list[float]:
    """Maximum-likelihood (forward-KL) pre-training of a baseline's flow on samples of p* (CoopFlow's
    "pre-trained on p* samples", paper §2); returns the negative log-likelihoods."""
    optimizer = torch.optim.Adam(flow.parameters(), lr=spec.pretrain_lr)
    losses = []
    for _ in range(spec.pretrain_steps):
        batch = data[torch.randint(len(data), (spec.pretrain_batch,), generator=generator)]
        loss = -flow.log_prob(batch).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def build_method(config: HighDimConfig, method: str, target: GaussianMixture, base: DiagonalGaussian,
                 data: Tensor, generator: torch.Generator) -> Setup:
    """The method's sampler (issue-3 samplers, ``make_sampler`` where its pre-training applies) with the
    Table 6 flow, and its R-hat chains: its own MCMC for ``rhat_sweeps`` times one iteration's length."""
    spec = method_spec(config, method)
    hidden, blocks = FLOW_SIZES[target.dim]
    sweeps = config.rhat_sweeps
    if method in ("ntebm", "coopflow") and config.pretrain_objective == "data":
        flow = make_flow(target.dim, base)
        pretrain_on_data(flow, data, spec, generator)
        if method == "ntebm":
            flow.requires_grad_(False)  # a fixed preconditioner during EBM training, as in make_sampler
            sampler = NTEBMNegatives(flow, n_steps=spec.n_steps, step_size=spec.step_size,
                                     target_acceptance=spec.target_acceptance)
        else:
            sampler = CoopFlowNegatives(flow, step_size=spec.step_size, n_steps=spec.n_steps, lr=spec.lr,
                                        freeze_iterations=spec.freeze_iterations)
    else:
        sampler, flow = make_sampler(spec, base, generator, pretrain_target=target.log_prob,
                                     flow_couplings=COUPLINGS_PER_BLOCK * blocks, flow_hidden=hidden)
    if method == "ula":
        return Setup(GaussianStartULA(sampler, base), spec.lr,
                     _ula_trajectory(spec.step_size, sweeps * spec.n_steps))
    if method == "ntebm":
        return Setup(sampler, spec.lr, _ntebm_trajectory(sampler, sweeps * spec.n_steps))
    if method == "coopflow":
        def from_flow(n: int, g: torch.Generator) -> Tensor:
            return sampler.initial_states(torch.empty(n, target.dim), g)
        return Setup(sampler, spec.lr, _ula_trajectory(spec.step_size, sweeps * spec.n_steps, noise=False),
                     rhat_start=from_flow)
    kernel = FlowMCKernel("G" + "L" * config.flowmc_local_steps, spec.step_size, spec.n_particles)
    return Setup(sampler, spec.lr, _flowmc_trajectory(kernel, flow, sweeps * config.flowmc_steps))


# --- training with R-hat along the way ------------------------------------------------------------------------

@dataclass
class RecordingSampler:
    """Wraps a negative sampler; keeps the last batch of persistent states it was given (``batch_size``
    distinct rows of the persistent bank: the R-hat chains start there, paper Table 2) and counts the
    iterations. The inputs, not the negatives: flowMC's negatives with ``keep`` = k hold k states of each
    of batch_size / k chains, which would start R-hat from neighbouring states."""

    inner: NegativeSampler
    last: Tensor | None = None
    iterations: int = 0

    def init_chains(self, n: int, dim: int, generator: torch.Generator) -> Tensor:
        return self.inner.init_chains(n, dim, generator)

    def sample(self, x: Tensor, log_target: LogDensity, generator: torch.Generator) -> tuple[Tensor, dict]:
        negatives, stats = self.inner.sample(x, log_target, generator)
        self.last = x.detach()
        self.iterations += 1
        return negatives, stats

    def update(self, negatives: Tensor) -> dict:
        return self.inner.update(negatives)


@dataclass
class RunResult:
    method: str
    dim: int
    evaluations: dict[str, list]  # iteration, seconds (training time, R-hat excluded), rhat
    seconds: float  # training wall time (flow pre-training included, R-hat evaluations excluded)
    diverged_at: int | None  # iteration at which TrainingDivergedError stopped the run, if it did

    @property
    def final_rhat(self) -> float:
        """Max R-hat at the end of training, or at the last measurement before a divergence."""
        return self.evaluations["rhat"][-1]


def run_method(config: HighDimConfig, method: str, dim: int) -> RunResult:
    """Train one method in dimension ``dim``, measuring max R-hat ``rhat_evals`` times along the way.

    A run whose energies explode (``TrainingDivergedError``) stops there; its measurements so far are kept.
    """
    target, data = make_data(config, dim)
    generator = make_generator(config.seed)
    eval_generator = make_generator(config.seed + 1)
    clock = {"start": time.perf_counter(), "evaluating": 0.0}
    base = DiagonalGaussian(dim, std=math.sqrt(target.max_coordinate_variance()))
    energy = ToyEnergy(dim)
    setup = build_method(config, method, target, base, data, generator)
    sampler = RecordingSampler(setup.sampler)
    log_target = tilted_log_density(energy, base)
    evaluations: dict[str, list] = {"iteration": [], "seconds": [], "rhat": []}

    def evaluate() -> dict:
        began = time.perf_counter()
        if setup.rhat_start is not None:
            start = setup.rhat_start(config.batch_size, eval_generator)
        elif sampler.last is None:  # before the first iteration: a fresh persistent bank
            start = sampler.init_chains(config.batch_size, dim, eval_generator)
        else:
            start = sampler.last
        rhat = max_rhat(setup.trajectory(start, log_target, eval_generator))
        values = {"iteration": sampler.iterations, "seconds": began - clock["start"] - clock["evaluating"],
                  "rhat": rhat}
        for key, value in values.items():
            evaluations[key].append(value)
        clock["evaluating"] += time.perf_counter() - began
        return values

    iterations = config.epochs * (config.n_data // config.batch_size)
    diverged_at = None
    try:
        fit_ebm(data, energy, base, sampler, epochs=config.epochs, batch_size=config.batch_size,
                n_persistent=config.n_persistent, lr=setup.lr, generator=generator, evaluate=evaluate,
                eval_every=max(1, iterations // config.rhat_evals), desc=f"{method}-EBM d={dim}")
    except TrainingDivergedError:
        diverged_at = sampler.iterations
    seconds = time.perf_counter() - clock["start"] - clock["evaluating"]
    return RunResult(method, dim, evaluations, seconds, diverged_at)


# --- tables and figure ----------------------------------------------------------------------------------------

def table2(results: dict[tuple[str, int], RunResult]) -> pd.DataFrame:
    """Table 2: max R-hat at the end of training, the paper's value beside ours."""
    rows = {}
    for method in METHODS:
        row = {}
        for i, dim in enumerate(DIMS):
            row[(f"Dim {dim}", "paper")] = PAPER_TABLE2[method][i]
            result = results.get((method, dim))
            row[(f"Dim {dim}", "ours")] = round(result.final_rhat, 2) if result else float("nan")
        rows[METHOD_LABELS[method]] = row
    return pd.DataFrame(rows).T


def divergence_table(results: dict[tuple[str, int], RunResult]) -> pd.DataFrame:
    """Iteration at which each run stopped because its energies exploded ("-" if it ran to the end)."""
    return pd.DataFrame({f"Dim {dim}": {METHOD_LABELS[m]: "-" if results[(m, dim)].diverged_at is None
                                        else results[(m, dim)].diverged_at for m in METHODS if (m, dim) in results}
                         for dim in DIMS}).rename_axis("diverged at iteration")


def table6() -> pd.DataFrame:
    """Table 6: the RealNVP sizes the code builds (read back from the flows themselves)."""
    rows = []
    for dim in DIMS:
        flow = make_flow(dim, DiagonalGaussian(dim))
        couplings = flow.transform._transforms
        hidden = couplings[0].transform_net.net[0].out_features
        rows.append({"Dimension": dim, "Size of hidden layers": hidden,
                     "# RealNVP blocks": len(couplings) // COUPLINGS_PER_BLOCK,
                     "parameters": sum(p.numel() for p in flow.parameters())})
    return pd.DataFrame(rows).set_index("Dimension")


def table7(config: HighDimConfig) -> pd.DataFrame:
    """Table 7: each method's sampler as configured in this run, with the paper's values beside."""
    paper = HighDimConfig(**PROFILES["paper"])

    def rows(c: HighDimConfig) -> dict[str, tuple[str, int, str]]:
        return {
            "ula": (f"ULA, step {c.ula_step_size:g}", c.ula_steps, "gaussian (rho)"),
            "ntebm": ("MALA in the flow's latent space, adapted to 75% acceptance", c.ntebm_steps, "flow"),
            "coopflow": (f"noiseless Langevin, step {c.coopflow_step_size:g}", c.coopflow_steps, "flow"),
            "flowmc": (f"flowMC: 1 i-SIR ({c.n_particles} candidates) + {c.flowmc_local_steps} MALA "
                       f"(step {c.mala_step_size:g})", c.flowmc_steps, "flow"),
        }

    ours, theirs = rows(config), rows(paper)
    return pd.DataFrame({METHOD_LABELS[m]: {
        "MCMC sampler": ours[m][0], "# MCMC steps (this run)": ours[m][1], "# MCMC steps (paper)": theirs[m][1],
        "use only last step?": "no: each stacked step's state" if m == "flowmc" else "yes",
        "starting strategy": ours[m][2],
        "learning rate": getattr(config, f"lr_{m}")} for m in METHODS}).T


def figure6(results: dict[tuple[str, int], RunResult]):
    """Figure 6: max R-hat against training time, one panel per dimension, log scale."""
    fig, axes = plt.subplots(1, len(DIMS), figsize=(12, 3.6), layout="constrained", sharey=True)
    for ax, dim in zip(axes, DIMS):
        for method in METHODS:
            result = results.get((method, dim))
            if result is None:
                continue
            evaluations = result.evaluations
            ax.plot(evaluations["seconds"], evaluations["rhat"], "o-", ms=3, color=METHOD_COLORS[method],
                    label=METHOD_LABELS[method])
            if result.diverged_at is not None:  # the run stopped here: energies exploded
                ax.plot(evaluations["seconds"][-1], evaluations["rhat"][-1], "x", ms=9, mew=2,
                        color=METHOD_COLORS[method])
        ax.axhline(1.1, color="k", ls=":", lw=1)
        ax.set(title=f"Dim {dim}", xlabel="training time (s)", yscale="log")
    axes[0].set_ylabel("max R-hat over coordinates (× : run diverged)")
    axes[-1].legend(fontsize="small")
    return fig
