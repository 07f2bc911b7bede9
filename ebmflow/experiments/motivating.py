"""Motivating example (paper §3.1, Figure 1, Appendix C.2): ULA-EBM vs flowMC-EBM on a 2:1 mixture (the
``weights`` and ``offset`` parameters set another two-mode mixture; book/09_ratio_sweep varies the ratio)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch import Tensor

from ..book.claims import Claim, PaperItem
from ..book.plotting import BOOK_FIGURE_WIDTH, color, density_panel, label
from ..checks import InputError, check_int
from ..methods import FlowMCEBM, Method, ULAEBM
from ..metrics import Grid2D, log_normalizer_on_grid, normalize_on_grid, zone_weights_on_grid
from ..models import DiagonalGaussian, RealNVP, ToyEnergy
from ..samplers import validate_schedule
from ..seeding import make_generator, resolve_device
from ..targets import GaussianMixture, check_mode_weights, two_mode_mixture
from ..training import TrainingState
from .common import Run, checkpoint_for, plot_along_training, target_note, train

__all__ = ["Config", "PROFILES", "CHOICES", "ITEMS", "PAPER_WEIGHT", "PAPER_WEIGHTS", "methods", "make_data",
           "train_all", "trajectories", "key", "numbers", "weight_table", "target_markdown", "figure1",
           "figure1_weights"]

PAPER_WEIGHT = (0.70, 0.78)  # the paper's flowMC-EBM weight of the 2/3 mode, read off Figure 1
PAPER_WEIGHTS, PAPER_OFFSET = (1 / 3, 2 / 3), 1.5  # the paper's target: weights of the two modes, mean offset
WIDEST_STD = 0.1**0.5  # the top-right mode's standard deviation (the wider one)


@dataclass(frozen=True)
class Config:
    seed: int
    weights: tuple[float, ...]  # weights of the bottom-left and top-right modes, positive, summing to 1 (paper 1/3,2/3)
    offset: float  # the modes' means are -offset·(1, 1) and +offset·(1, 1) (paper 1.5)
    n_data: int  # size of the fixed training set drawn from p*
    epochs: int
    batch_size: int  # positives (and negatives) per iteration
    n_persistent: int  # persistent chains; batch_size of them are advanced per iteration
    lr: float  # Adam learning rate, EBM and flow (gamma_EBM = gamma_flow, paper)
    step_size: float  # ULA and MALA step eta
    ula_steps: int  # ULA steps per iteration (ULA-EBM)
    flowmc_schedule: str  # L = MALA step, G = i-SIR step (flowMC-EBM)
    n_particles: int  # i-SIR candidates per global step
    flow_couplings: int  # RealNVP coupling layers
    flow_hidden: int  # hidden units of the coupling MLPs
    evals_per_epoch: int  # mode-weight measurements per epoch (Figure 1 right)
    grid_size: int  # grid points per axis for normalising the EBM
    grid_limit: float  # the grid covers [-grid_limit, grid_limit]^2
    device: str  # "cpu", "cuda" or "auto"
    stop_after: int  # stop each training run after this many iterations (0: train fully)

    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("stop_after",)

    def __post_init__(self) -> None:  # every knob checked before the first training step
        validate_schedule(self.flowmc_schedule)
        resolve_device(self.device)
        check_int("grid_size", self.grid_size, minimum=2)
        check_mode_weights(self.weights, 2, "parameter 'weights'")
        reach = self.offset + 4 * WIDEST_STD
        if self.grid_limit < reach:
            raise InputError(f"parameter 'grid_limit' ({self.grid_limit:g}) must cover both modes: at least offset + "
                             f"4 standard deviations = {reach:.3g} with offset {self.offset:g}")
        methods(self)  # the methods check their own knobs

    @property
    def target(self) -> GaussianMixture:
        return two_mode_mixture(self.weights, self.offset)

    @property
    def true_weight(self) -> float:
        """The weight of the top-right mode, whose estimate Figure 1 follows."""
        return self.weights[1]

    @property
    def paper_target(self) -> bool:
        return (all(abs(w - p) < 1e-6 for w, p in zip(self.weights, PAPER_WEIGHTS))
                and abs(self.offset - PAPER_OFFSET) < 1e-9)

    @property
    def grid(self) -> Grid2D:
        return Grid2D(-self.grid_limit, self.grid_limit, self.grid_size)


PAPER = dict(seed=0, weights=PAPER_WEIGHTS, offset=PAPER_OFFSET, n_data=16384, epochs=75, batch_size=64, n_persistent=1024, lr=0.01, step_size=0.01,
             ula_steps=10, flowmc_schedule="LLLLGGLLLL", n_particles=32, flow_couplings=4, flow_hidden=16,
             evals_per_epoch=16, grid_size=200, grid_limit=3.5, device="cpu", stop_after=0)
CHOICES = (
    "Tilt: rho = N(0, I) for both methods (paper silent for 2-D); the flow's base is the same rho.",
    "Optimiser: Adam at the paper's learning rate for the EBM and the flow (the paper writes plain gradient steps).",
    "Persistent chains: each iteration advances a random `batch_size` of the `n_persistent` chains and uses "
    "their last state as negatives (how the two sizes interact is not stated).",
    "ULA-EBM chains start uniformly on the plotting box [-3.5, 3.5]^2; flowMC-EBM chains start from the flow.",
    "`weights` and `offset` set another two-mode target (the variances stay the paper's 0.05 and 0.1); the "
    "paper ran only weights 1/3, 2/3 at offset 1.5, and its numbers are shown for that target only. "
    "book/09_ratio_sweep re-runs this chapter for several weights.",
    "flowMC schedule `LLLLGGLLLL`: the literal reading of \"2 global steps between two sequences of 4 local steps\".",
    "Mode weight (Figure 1, right): the EBM's mass on the top-right mode's side of x1 + x2 = 0 (nearest mean), with "
    "the EBM normalised on a 200 x 200 grid over [-3.5, 3.5]^2, measured 16 times per epoch; the final weight "
    "averages the last tenth of the measurements (a single measurement has a standard deviation of about 0.04).",
    "The cpu profile runs 30 of the paper's 75 epochs; all other settings are the paper's.",
)
PROFILES = {
    "smoke": {**PAPER, "n_data": 2048, "epochs": 2, "n_persistent": 256, "evals_per_epoch": 4, "grid_size": 64},
    "cpu": {**PAPER, "epochs": 30},
    "paper": PAPER,
}


ITEMS = (
    PaperItem("Figure 1", "01_motivating_example", "2:1 mixture: densities, chains and slices for ULA-EBM and "
              "flowMC-EBM; weight of the 2/3 mode along training", (
                  Claim("flowMC-EBM estimates the weight of the top-right mode (2/3 in the paper) correctly",
                        f"≈{PAPER_WEIGHT[0]:.2f}–{PAPER_WEIGHT[1]:.2f} (read off the figure)",
                        "{fig1_final_weight_flowmc:.3f}", "|final weight − true weight| ≤ 0.05",
                        lambda g: g["fig1_weight_error_flowmc"] <= 0.05),
                  Claim("ULA-EBM's estimate swings between extremes (modes erased and recreated)", "≈0 ↔ ≈1",
                        "{fig1_weight_min_ula:.2f} – {fig1_weight_max_ula:.2f}", "min < 0.2 and max > 0.9",
                        lambda g: g["fig1_weight_min_ula"] < 0.2 and g["fig1_weight_max_ula"] > 0.9)),
              rebuilt_by="motivating.figure1"),
)


def methods(config: Config) -> dict[str, Method]:
    """ULA-EBM and flowMC-EBM with the paper's §C.2 settings (same step, same 10 steps per iteration)."""
    flow = lambda base, generator: RealNVP(base, config.flow_couplings, config.flow_hidden,  # noqa: E731
                                           generator=generator)
    return {"ula": ULAEBM(lr=config.lr, step_size=config.step_size, n_steps=config.ula_steps, box=config.grid_limit),
            "flowmc": FlowMCEBM(lr=config.lr, schedule=config.flowmc_schedule, step_size=config.step_size,
                                n_particles=config.n_particles, make_flow=flow,
                                ebm_average=0.0)}  # the paper reports the last E_theta


def make_data(config: Config) -> Tensor:
    return config.target.sample(config.n_data, make_generator(config.seed, stream="data"))


def _weight_of_top_mode(log_density, target: GaussianMixture, grid: Grid2D, device: torch.device) -> float:
    return float(zone_weights_on_grid(normalize_on_grid(log_density, grid, device=device), grid, target.assign_mode,
                                      target.n_modes)[1])


def train_all(config: Config, data: Tensor) -> dict[str, Run]:
    """Both methods on ``data``, the weight of the top-right mode measured ``evals_per_epoch`` times per epoch."""
    target = config.target

    def evaluate(state: TrainingState) -> dict:
        return {"weight": _weight_of_top_mode(state.method.log_target, target, config.grid, state.device)}

    eval_every = max(1, (config.n_data // config.batch_size) // config.evals_per_epoch)
    return {name: train(method, data, energy=ToyEnergy(2, generator=make_generator(config.seed, stream="energy")),
                        base=DiagonalGaussian(2), seed=config.seed, epochs=config.epochs,
                        batch_size=config.batch_size, n_persistent=config.n_persistent, device=config.device,
                        evaluate=evaluate, eval_every=eval_every, stop_after=config.stop_after or None,
                        checkpoint=checkpoint_for(f"01_motivating_example-{name}", config))
            for name, method in methods(config).items()}


def trajectories(runs: dict[str, Run], config: Config, n_chains: int = 4, n_iterations: int = 12) -> dict[str, Tensor]:
    """Positions (steps, n_chains, 2) of a few chains run on each trained model from its final persistent state,
    ``n_iterations`` training iterations' worth of the method's own steps (Figure 1 panels c and g); one chain
    starts in each mode when the bank has both, so the panels show (or not) mode hopping."""
    out = {}
    for name, run in runs.items():
        generator = make_generator(config.seed, run.device, "trajectories")
        bank = run.bank_positions()
        modes = config.target.assign_mode(bank)
        starts = torch.cat([bank[modes == k][: n_chains // 2] for k in (0, 1)])
        starts = torch.cat([starts, bank[: n_chains - len(starts)]])
        steps = n_iterations * (config.ula_steps if name == "ula" else 1)
        out[name] = torch.cat([starts[None], run.continue_chains(n_chains, steps, generator, starts=starts,
                                                                 record=True)])
    return out


def key(quantity: str, method: str) -> str:
    """Glue key of a Figure 1 number, e.g. ``fig1_final_weight_flowmc``."""
    return f"fig1_{quantity}_{method}"


def numbers(runs: dict[str, Run], config: Config) -> dict[str, float]:
    """Figure 1's numbers: the true weight of the top-right mode, its final estimate (mean of the last tenth of the
    measurements) and that estimate's error |final - true|, the estimate's range after the first epoch, the
    iteration of a divergence (0: none), flowMC-EBM's i-SIR acceptance. A diverged run has no final weight, error
    nor acceptance (NaN); its range covers the measurements made before it diverged (Figure 1 shows them)."""
    values = {"fig1_true_weight": config.true_weight}
    for name, run in runs.items():
        weights, epochs = run.history.evaluations["weight"], run.history.evaluations["epoch"]
        tail = weights[-max(1, len(weights) // 10):]
        after_first = [w for w, e in zip(weights, epochs) if e >= 1] or weights
        final = math.nan if run.divergence else sum(tail) / len(tail)
        values.update({key("final_weight", name): final, key("weight_error", name): abs(final - config.true_weight),
                       key("weight_min", name): min(after_first),
                       key("weight_max", name): max(after_first),
                       key("diverged_at", name): run.divergence.iteration if run.divergence else 0})
    acceptance = runs["flowmc"].history.steps["global_acceptance"]
    values[key("global_acceptance", "flowmc")] = (math.nan if runs["flowmc"].divergence else
                                                  sum(acceptance) / len(acceptance))
    return values


def diagonal_slice(log_density_fn, grid: Grid2D, n: int = 400, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """Normalised log-density along the line x1 = x2 through both centroids (Figure 1 panels d and h);
    returns the signed coordinate t (x = t·(1,1)/sqrt 2) and the log-density."""
    _, log_z = log_normalizer_on_grid(log_density_fn, grid, device=device)
    t = torch.linspace(grid.low * 2**0.5, grid.high * 2**0.5, n)
    with torch.no_grad():
        return t, log_density_fn((torch.stack([t, t], 1) / 2**0.5).to(device)).cpu() - log_z


def figure1(runs: dict[str, Run], config: Config, paths: dict[str, Tensor]):
    """Figure 1, panels (a)-(h): target and flow, each method's density, chains and diagonal slice."""
    target, grid = config.target, config.grid
    fig, axes = plt.subplots(2, 4, figsize=(BOOK_FIGURE_WIDTH, 3.9), layout="constrained")
    t_true, slice_true = diagonal_slice(target.log_prob, grid)
    density_panel(axes[0, 0], normalize_on_grid(target.log_prob, grid), grid, "(a) target p*")
    flow, device = runs["flowmc"].method.flow, runs["flowmc"].device
    density_panel(axes[1, 0], normalize_on_grid(flow.log_prob, grid, device=device), grid, "(e) companion flow")
    axes[1, 0].annotate("", xy=tuple(target.means[1]), xytext=tuple(target.means[0]),
                        arrowprops=dict(arrowstyle="->", color="white", lw=1.5, ls="--"))
    for row, name in enumerate(["ula", "flowmc"]):
        run = runs[name]
        density = normalize_on_grid(run.log_density, grid, device=run.device)
        density = torch.where(torch.isfinite(density), density, -math.inf)  # a diverged EBM: an empty panel
        stopped = f"\ndiverged (it. {run.divergence.iteration})" if run.divergence else ""
        density_panel(axes[row, 1], density, grid, f"({'bf'[row]}) {label(name)}{stopped}")
        ax = axes[row, 2]
        density_panel(ax, density, grid, f"({'cg'[row]}) its chains")
        for chain in paths[name].cpu().unbind(1):
            ax.plot(chain[:, 0], chain[:, 1], "-", lw=0.8, alpha=0.9)
        ax.set(xlim=(grid.low, grid.high), ylim=(grid.low, grid.high))
        ax = axes[row, 3]
        t, values = diagonal_slice(run.log_density, grid, device=run.device)
        ax.plot(t_true, slice_true.exp(), "k--", lw=1)  # the target, dashed (the caption says so)
        ax.plot(t, values.exp(), color=color(name))
        ax.set(title=f"({'dh'[row]}) slice x1 = x2", yticks=[])
    return fig


def figure1_weights(runs: dict[str, Run], config: Config):
    """Figure 1 (right): the estimated weight of the top-right mode along training, both methods."""
    fig, ax = plt.subplots(figsize=(BOOK_FIGURE_WIDTH, 3.0), layout="constrained")
    for name, run in runs.items():
        plot_along_training(ax, run, "epoch", "weight", color=color(name), label=label(name))
    ax.axhline(config.true_weight, color="k", ls="--", lw=1, label=f"true weight {config.true_weight:.3g}")
    ax.set(xlabel="epoch", ylabel="weight of the top-right mode", ylim=(-0.02, 1.02))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def weight_table(values: dict[str, float], config: Config) -> pd.DataFrame:
    """The final weight and the range of the top-right mode's estimate, ours beside the paper's (its target only);
    "diverged (it. N)" for a diverged run's final weight."""
    def final(m: str) -> str | float:
        at = values.get(key("diverged_at", m), 0)
        return f"diverged (it. {at:.0f})" if at else round(values[key("final_weight", m)], 3)

    paper = ([f"≈{PAPER_WEIGHT[0]:.2f}–{PAPER_WEIGHT[1]:.2f} throughout", "swings ≈0 ↔ ≈1; ≈0.9 at the end"]
             if config.paper_target else ["not run in the paper"] * 2)
    return pd.DataFrame({
        "paper (read off Figure 1)": paper,
        "ours: final weight (last tenth)": [final(m) for m in ("flowmc", "ula")],
        "ours: range after the first epoch": [f"{values[key('weight_min', m)]:.2f}–{values[key('weight_max', m)]:.2f}"
                                              for m in ("flowmc", "ula")],
    }, index=[label("flowmc"), label("ula")]).rename_axis(f"weight of the top-right mode (truth "
                                                          f"{config.true_weight:.3f})")


def target_markdown(config: Config) -> str:
    """This run's target, and whether the paper ran it."""
    w0, w1 = config.weights
    return target_note(f"weights {w0:.3g} (bottom left) and {w1:.3g} (top right, a {w1 / w0:.3g}:1 ratio), means at "
                       f"±{config.offset:g}·(1, 1)", None if config.paper_target else "weights 1/3, 2/3, offset 1.5")
