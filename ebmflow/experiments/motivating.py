"""Motivating example (paper §3.1, Figure 1, Appendix C.2): ULA-EBM vs flowMC-EBM on a 2:1 mixture."""
from __future__ import annotations

import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from torch import Tensor

from ..energy import ToyEnergy
from ..flows import DiagonalGaussian, RealNVP
from ..metrics import Grid2D, log_normalizer_on_grid, normalize_on_grid, zone_weights_on_grid
from ..plotting import METHOD_COLORS, METHOD_LABELS, density_panel
from ..samplers import FlowMCKernel, init_state, ula_step
from ..samplers.flowmc import validate_schedule
from ..seeding import make_generator
from ..targets import two_mode_mixture
from ..training import FlowMCNegatives, History, ULANegatives, fit_ebm, tilted_log_density

__all__ = ["MotivatingConfig", "PROFILES", "CHOICES", "MethodResult", "make_data", "run_method", "chain_trajectories",
           "figure1"]


@dataclass(frozen=True)
class MotivatingConfig:
    seed: int
    n_data: int  # size of the fixed training set drawn from p*
    epochs: int
    batch_size: int  # positives (and negatives) per iteration
    n_persistent: int  # persistent chains; batch_size of them are advanced per iteration
    lr: float  # Adam learning rate, EBM and flow (gamma_EBM = gamma_flow, paper)
    step_size: float  # ULA and MALA step eta
    ula_steps: int  # ULA steps per iteration (ULA-EBM)
    flowmc_schedule: str  # L = MALA step, G = i-SIR step (flowMC-EBM)
    n_particles: int  # i-SIR candidates per global step
    flow_couplings: int
    flow_hidden: int
    evals_per_epoch: int  # mode-weight evaluations per epoch (Figure 1 right)
    grid_size: int  # grid points per axis for normalising the EBM
    grid_limit: float  # the grid covers [-grid_limit, grid_limit]^2

    def __post_init__(self) -> None:
        validate_schedule(self.flowmc_schedule)


PAPER = dict(seed=0, n_data=16384, epochs=75, batch_size=64, n_persistent=1024, lr=0.01, step_size=0.01,
             ula_steps=10, flowmc_schedule="LLLLGGLLLL", n_particles=32, flow_couplings=4, flow_hidden=16,
             evals_per_epoch=16, grid_size=200, grid_limit=3.5)
CHOICES = (
    "Tilt: rho = N(0, I) for both methods (paper silent for 2-D); the flow's base is the same rho.",
    "Optimiser: Adam at the paper's learning rate for the EBM and the flow (the paper writes plain gradient steps).",
    "Persistent chains: each iteration advances a random `batch_size` of the `n_persistent` chains and uses "
    "their last state as negatives (how the two sizes interact is not stated).",
    "ULA-EBM chains start uniformly on the plotting box [-3.5, 3.5]^2; flowMC-EBM chains start from the flow.",
    "flowMC schedule `LLLLGGLLLL`: the literal reading of \"2 global steps between two sequences of 4 local steps\".",
    "Mode weight (Figure 1, right): the EBM's mass on the 2/3 mode's side of x1 + x2 = 0 (nearest mean), with "
    "the EBM normalised on a 200 x 200 grid over [-3.5, 3.5]^2, measured 16 times per epoch; the final weight "
    "averages the last tenth of the measurements (a single measurement has a standard deviation of about 0.04).",
    "The cpu profile runs 30 of the paper's 75 epochs; all other settings are the paper's.",
)
PROFILES = {
    "smoke": {**PAPER, "n_data": 2048, "epochs": 2, "n_persistent": 256, "evals_per_epoch": 4, "grid_size": 64},
    "cpu": {**PAPER, "epochs": 30},
    "paper": PAPER,
}


@dataclass
class MethodResult:
    name: str
    energy: ToyEnergy
    base: DiagonalGaussian
    flow: RealNVP | None
    history: History
    seconds: float


def _weight_of_top_mode(energy: ToyEnergy, base: DiagonalGaussian, grid: Grid2D) -> float:
    target = two_mode_mixture()
    log_density = normalize_on_grid(tilted_log_density(energy, base), grid)
    return float(zone_weights_on_grid(log_density, grid, target.assign_mode, target.n_modes)[1])


def run_method(config: MotivatingConfig, method: str, data: Tensor) -> MethodResult:
    """Train one method ("ula" or "flowmc") on ``data``; the seed makes the run reproducible."""
    generator = make_generator(config.seed)
    energy = ToyEnergy(dim=2)
    base = DiagonalGaussian(dim=2, std=1.0)
    flow = None
    if method == "ula":
        sampler = ULANegatives(step_size=config.step_size, n_steps=config.ula_steps,
                               init_low=-config.grid_limit, init_high=config.grid_limit)
    elif method == "flowmc":
        flow = RealNVP(base, n_couplings=config.flow_couplings, hidden=config.flow_hidden)
        kernel = FlowMCKernel(config.flowmc_schedule, config.step_size, config.n_particles)
        sampler = FlowMCNegatives(flow, kernel, lr=config.lr)
    else:
        raise ValueError(f"unknown method {method!r}; accepted: 'ula', 'flowmc'")
    grid = Grid2D(-config.grid_limit, config.grid_limit, config.grid_size)
    start = time.perf_counter()
    history = fit_ebm(data, energy, base, sampler, epochs=config.epochs, batch_size=config.batch_size,
                      n_persistent=config.n_persistent, lr=config.lr, generator=generator,
                      evaluate=lambda: {"weight": _weight_of_top_mode(energy, base, grid)},
                      eval_every=max(1, (config.n_data // config.batch_size) // config.evals_per_epoch),
                      desc=f"{method}-EBM")
    return MethodResult(method, energy, base, flow, history, time.perf_counter() - start)


def make_data(config: MotivatingConfig) -> Tensor:
    return two_mode_mixture().sample(config.n_data, make_generator(config.seed + 1))


def chain_trajectories(result: MethodResult, config: MotivatingConfig, n_chains: int = 4,
                       n_iterations: int = 12) -> Tensor:
    """Positions (n_iterations * steps, n_chains, 2) of a few chains run on the trained model from the
    final persistent state, with the method's own sampler (Figure 1 panels c and g)."""
    generator = make_generator(config.seed + 2)
    log_target = tilted_log_density(result.energy, result.base)
    bank = result.history.final_chains
    # one chain started in each mode when the bank has both, so the panels show (or not) mode hopping
    modes = two_mode_mixture().assign_mode(bank)
    starts = torch.cat([bank[modes == k][: n_chains // 2] for k in (0, 1)])
    starts = torch.cat([starts, bank[: n_chains - len(starts)]])
    state = init_state(starts, log_target)
    positions = [state.position]
    kernel = FlowMCKernel(config.flowmc_schedule, config.step_size, config.n_particles)
    for _ in range(n_iterations):
        if result.flow is None:
            for _ in range(config.ula_steps):
                state, _ = ula_step(state, log_target, config.step_size, generator)
                positions.append(state.position)
        else:
            state, info = kernel.step(state, log_target, result.flow, generator, record=True)
            positions += info.trajectory
    return torch.stack(positions)


def diagonal_slice(log_density_fn, grid: Grid2D, n: int = 400) -> tuple[Tensor, Tensor]:
    """Normalised log-density along the line x1 = x2 through both centroids (Figure 1 panels d and h);
    returns the signed coordinate t (x = t·(1,1)/sqrt 2) and the log-density."""
    _, log_z = log_normalizer_on_grid(log_density_fn, grid)
    t = torch.linspace(grid.low * 2**0.5, grid.high * 2**0.5, n)
    with torch.no_grad():
        return t, log_density_fn(torch.stack([t, t], 1) / 2**0.5) - log_z


def figure1(results: dict[str, MethodResult], config: MotivatingConfig, trajectories: dict[str, Tensor]):
    """Figure 1: panels (a)-(h) on the left, estimated weight of the 2/3 mode along training on the right."""
    target = two_mode_mixture()
    grid = Grid2D(-config.grid_limit, config.grid_limit, config.grid_size)
    fig = plt.figure(figsize=(13, 5.2), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[2.1, 1])
    axes = left.subplots(2, 4)
    t_true, slice_true = diagonal_slice(target.log_prob, grid)
    density_panel(axes[0, 0], normalize_on_grid(target.log_prob, grid), grid, "(a) target p*")
    flow = results["flowmc"].flow
    density_panel(axes[1, 0], normalize_on_grid(flow.log_prob, grid), grid, "(e) companion flow")
    with torch.no_grad():  # one flow proposal link between the modes, as drawn in the paper
        axes[1, 0].annotate("", xy=tuple(target.means[1]), xytext=tuple(target.means[0]),
                            arrowprops=dict(arrowstyle="->", color="white", lw=1.5, ls="--"))
    for row, method in enumerate(["ula", "flowmc"]):
        result = results[method]
        log_target = tilted_log_density(result.energy, result.base)
        label = METHOD_LABELS[method]
        density_panel(axes[row, 1], normalize_on_grid(log_target, grid), grid, f"({'bf'[row]}) {label}")
        ax = axes[row, 2]
        density_panel(ax, normalize_on_grid(log_target, grid), grid, f"({'cg'[row]}) {label} chains")
        for chain in trajectories[method].unbind(1):
            ax.plot(chain[:, 0], chain[:, 1], "-", lw=0.6, alpha=0.9)
        ax.set_xlim(grid.low, grid.high)
        ax.set_ylim(grid.low, grid.high)
        ax = axes[row, 3]
        t, values = diagonal_slice(log_target, grid)
        ax.plot(t_true, slice_true.exp(), "k--", lw=1, label="target")
        ax.plot(t, values.exp(), color=METHOD_COLORS[method], label=label)
        ax.set_title(f"({'dh'[row]}) slice along x1 = x2")
        ax.legend(fontsize="x-small")
    ax = right.subplots()
    for method, result in results.items():
        evaluations = result.history.evaluations
        ax.plot(evaluations["epoch"], evaluations["weight"], color=METHOD_COLORS[method],
                label=METHOD_LABELS[method])
    ax.axhline(2 / 3, color="k", ls="--", lw=1, label="true weight 2/3")
    ax.set(xlabel="epoch", ylabel="estimated weight of the top-right mode", ylim=(-0.02, 1.02))
    ax.legend(loc="lower left")
    return fig
