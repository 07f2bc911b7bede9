"""Images (paper §3.5, Figures 7-8, Appendix C.6): flowMC-EBM on images.

A convolutional EBM tilted by rho = N(0, I) pushed through the fixed affine + logit layers, a RealNVP on the
same layers as the companion flow, i-SIR + MALA negatives. Figure 7: energies of negatives, training and test
images; Figure 8: 64 samples, the last states of chains started from the persistent state, and the global
(flow) acceptance along training. scikit-learn's 8x8 digits offline; CIFAR-10 from a local copy (paper profile).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..book.claims import Claim, PaperItem
from ..book.plotting import BOOK_FIGURE_WIDTH, color, label
from ..checks import InputError, check_probability
from ..data import Dequantize, ImageData, cifar10_folder, load_images
from ..methods import FlowMCEBM, Method
from ..models import ConvEnergy, ImageRealNVP, LogitGaussian
from ..samplers import validate_schedule
from ..seeding import make_generator, resolve_device
from ..training import TrainingState
from .common import Run, checkpoint_for, train

__all__ = ["Config", "PROFILES", "CHOICES", "ITEMS", "PAPER_ACCEPTANCE", "methods", "load_data", "train_method",
           "energies", "figure7_energies", "figure8_samples", "key", "numbers", "table", "tail_mean", "image_grid",
           "figure7", "figure8"]

PAPER_ACCEPTANCE = (0.05, 0.10)  # the paper's global (flow) acceptance on CIFAR-10 (§3.5)


@dataclass(frozen=True)
class Config:
    seed: int
    dataset: str  # "digits" (scikit-learn, offline) or "cifar10" (read from data_root)
    data_root: str  # folder holding cifar-10-batches-py/ (dataset cifar10 only)
    test_fraction: float  # digits: share held out as test images
    epochs: int
    batch_size: int  # positives per iteration; as many persistent chains are advanced
    n_persistent: int  # persistent chains
    lr: float  # Adam, EBM and flow (the paper: the same rate for both)
    lr_decay: float  # learning rates multiplied by lr_decay every lr_decay_every iterations
    lr_decay_every: int
    energy_l2: float  # lambda of the L2 energy regulariser (0: off)
    energy_width: int  # ConvEnergy base width (88 gives the paper's ≈4.5 M parameters on CIFAR-10)
    flow_couplings: int  # RealNVP coupling layers
    flow_hidden: int  # channels of the coupling nets
    flow_blocks: int  # residual blocks per coupling net
    flowmc_schedule: str  # L: MALA step, G: i-SIR step (flowMC-EBM)
    flowmc_step_size: float  # MALA step of flowMC-EBM
    n_particles: int  # i-SIR candidates per global step
    sample_iterations: int  # sampler iterations from the persistent state for Figure 8
    device: str  # "cpu", "cuda" or "auto"
    stop_after: int  # stop training after this many iterations (0: train fully)

    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("energy_l2", "stop_after")

    def __post_init__(self) -> None:
        validate_schedule(self.flowmc_schedule)
        resolve_device(self.device)
        if self.dataset not in ("digits", "cifar10"):
            raise InputError(f"dataset must be 'digits' or 'cifar10', got {self.dataset!r}")
        check_probability("test_fraction", self.test_fraction)
        if self.lr_decay > 1:
            raise InputError(f"lr_decay must be in (0, 1], got {self.lr_decay!r}")
        methods(self)  # the methods check their own knobs before any training


PAPER = dict(seed=0, dataset="cifar10", data_root="~/data", test_fraction=0.2, epochs=70, batch_size=128,
             n_persistent=1024, lr=1e-4, lr_decay=0.99, lr_decay_every=50, energy_l2=1e-4, energy_width=88,
             flow_couplings=8, flow_hidden=64, flow_blocks=6, flowmc_schedule=("G" + "L" * 32) * 3,
             flowmc_step_size=1e-3, n_particles=128, sample_iterations=6, device="auto", stop_after=0)
CPU = {**PAPER, "dataset": "digits", "epochs": 12, "batch_size": 64, "n_persistent": 512, "lr": 1e-3,
       "energy_width": 16, "flow_couplings": 6, "flow_hidden": 16, "flow_blocks": 1,
       "flowmc_schedule": "G" + "L" * 8 + "G" + "L" * 8, "n_particles": 32, "sample_iterations": 8, "device": "cpu"}
PROFILES = {
    "smoke": {**CPU, "epochs": 1, "batch_size": 32, "n_persistent": 64, "energy_width": 8, "flow_couplings": 2,
              "flow_hidden": 8, "flowmc_schedule": "GLLL", "n_particles": 8, "sample_iterations": 2,
              "stop_after": 12},
    "cpu": CPU,
    "paper": PAPER,
}
CHOICES = (
    "Data: pixels dequantised with fresh noise at every batch, x = 2 (v + U) / L - 1 with L levels (256 for "
    "CIFAR-10: the paper's (255x + U)/256 rescaled to [-1, 1]; 17 for digits); random horizontal flips for "
    "CIFAR-10 only (a mirrored digit is not a digit); digits split at random 80 % train / 20 % test. CIFAR-10 is "
    "read from a local copy of the python pickles (nothing is downloaded).",
    "EBM: a Du & Mordatch-style residual convolutional net (SiLU, average pooling down to 4x4, global pooling, a "
    "small two-layer head whose last layer starts at zero, so E = 0 at initialisation); the paper's widths are "
    "unknown, width 88 gives its ≈4.5 M parameters on CIFAR-10.",
    "Flow: RealNVP (one squeeze, then affine couplings with convolutional residual nets alternating four channel "
    "masks; single scale and no batch norm, so the density does not depend on train/eval mode) after the fixed "
    "affine map to [0, 1] and logit(0.05 + 0.9 u); the tilt rho is N(0, I) pushed through the fixed layers, so "
    "the flow equals rho at initialisation. 8 couplings of 6 residual blocks of 64 channels give 3.6 M parameters "
    "on CIFAR-10 (the paper: ≈4 M).",
    "Optimiser: Adam for both nets; the paper's decay (x 0.99 every 50 iterations) and L2 energy regulariser "
    "(lambda = 1e-4 on the mean squared energies of positives and negatives) at every profile.",
    "Sampler: MALA step 1e-3 (unknown in the paper). The tilt lives on the image of the logit layer, the open box "
    "(-1/0.9, 1/0.9)^d around the pixel box [-1, 1]^d; a MALA proposal outside it has no density and is rejected.",
    "Figure 7: energies of the final persistent bank (the negatives) and of at most 10 000 dequantised training "
    "and test images each. Figure 8: 64 chains started from random persistent states, run `sample_iterations` "
    "iterations of the training sampler (paper: 512 steps; the paper profile's 6 iterations of 99 steps give "
    "594). The global acceptance quoted is the mean over the last quarter of training.",
    "cpu profile (cuts, to fit about 2 minutes on one CPU thread): 8x8 digits instead of CIFAR-10; 12 epochs "
    "(264 iterations) instead of 70; batch 64 and 512 persistent chains instead of 128 and 1024; lr 1e-3 "
    "instead of 1e-4 (to train in 264 iterations); EBM width 16 (≈20 k parameters) and a flow of 6 couplings "
    "of one 16-channel residual block (≈29 k); schedule G + 8 L + G + 8 L with 32 i-SIR candidates instead "
    "of 3 x (G + 32 L) with 128; Figure 8 from 8 iterations (144 steps) instead of 512 steps.",
)
ITEMS = (
    PaperItem("Figure 7", "05_images", "energy histograms of negatives, training and test images", (
        Claim("the energies of negative samples fall in the range of the data's", "in range (read off Figure 7)",
              "negatives' mean {fig7_energy_neg_mean:.1f}, training images' mean {fig7_energy_train_mean:.1f}, "
              "training images' sd {fig7_energy_train_std:.1f}",
              "|mean E(negatives) − mean E(training images)| ≤ sd of E(training images)",
              lambda g: abs(g["fig7_energy_neg_mean"] - g["fig7_energy_train_mean"]) <= g["fig7_energy_train_std"]),
    ), rebuilt_by="images.figure7"),
    PaperItem("Figure 8", "05_images", "samples: last states of chains from the persistent state; global acceptance", (
        Claim("flow proposals keep being accepted during training",
              f"{PAPER_ACCEPTANCE[0]:.0%}–{PAPER_ACCEPTANCE[1]:.0%} (CIFAR-10)", "{fig8_global_acceptance:.3f}",
              f"global acceptance over the last quarter of training ≥ {PAPER_ACCEPTANCE[0]} (the paper's lower end)",
              lambda g: g["fig8_global_acceptance"] >= PAPER_ACCEPTANCE[0]),
    ), rebuilt_by="images.figure8"),
)


def validate(config) -> None:
    """Before any work (``Chapter.validate``): CIFAR-10's files are on this machine (a config naming a missing
    copy is still a valid config: the paper profile's parameter table is built anywhere)."""
    if config.dataset == "cifar10":
        cifar10_folder(config.data_root)


def methods(config) -> dict[str, Method]:
    """flowMC-EBM with the chapter's image flow (the paper trains only flowMC-EBM on CIFAR-10)."""
    flow = partial(ImageRealNVP, n_couplings=config.flow_couplings, hidden=config.flow_hidden,
                   n_blocks=config.flow_blocks)
    return {"flowmc": FlowMCEBM(lr=config.lr, schedule=config.flowmc_schedule, step_size=config.flowmc_step_size,
                                n_particles=config.n_particles, make_flow=flow)}


def load_data(config) -> ImageData:
    return load_images(config.dataset, config.data_root, make_generator(config.seed, stream="data"),
                       config.test_fraction)


def train_method(config, method: Method, levels: Tensor, data: ImageData, chapter: str, *,
                 evaluate: Callable[[TrainingState], dict] | None = None, eval_every: int = 0) -> Run:
    """Train ``method`` on ``levels`` (n, C, H, W intensity levels) with the paper's image recipe: dequantised
    (and flipped, CIFAR-10) batches, L2 energy regulariser, learning-rate decay. Every method of a seed starts
    from the same EBM initialisation."""
    shape = data.image_shape
    return train(method, levels.flatten(1).float(),
                 energy=ConvEnergy(shape, config.energy_width, generator=make_generator(config.seed, stream="energy")),
                 base=LogitGaussian(shape), seed=config.seed, epochs=config.epochs, batch_size=config.batch_size,
                 n_persistent=config.n_persistent, device=config.device, evaluate=evaluate, eval_every=eval_every,
                 energy_l2=config.energy_l2, lr_decay=(config.lr_decay, config.lr_decay_every),
                 batch_transform=Dequantize(data.levels, shape, data.flips), stop_after=config.stop_after or None,
                 checkpoint=checkpoint_for(f"{chapter}-{method.name}", config))


@torch.no_grad()
def energies(energy: torch.nn.Module, x: Tensor, batch: int = 512) -> Tensor:
    """E_theta on ``x`` in batches, on the EBM's device; returned on the CPU."""
    device = next(energy.parameters()).device
    return torch.cat([energy(chunk.to(device)).cpu() for chunk in x.split(batch)])


def figure7_energies(run: Run, data: ImageData, config, max_images: int = 10_000) -> dict[str, Tensor]:
    """Energies of the negatives (final persistent bank) and of dequantised training and test images."""
    generator = make_generator(config.seed, stream="figure7")
    dequantize = Dequantize(data.levels, data.image_shape)

    def subset(images: Tensor) -> Tensor:
        rows = torch.randperm(len(images), generator=generator)[:max_images]
        return dequantize(images[rows].flatten(1), generator)

    return {"negative samples": energies(run.energy, run.bank_positions()),
            "train data": energies(run.energy, subset(data.train)),
            "test data": energies(run.energy, subset(data.test))}


def figure8_samples(run: Run, config, n_chains: int = 64) -> Tensor:
    """Last states of ``n_chains`` chains started from random persistent states and run
    ``sample_iterations`` iterations of the training sampler (Figure 8), on the CPU."""
    generator = make_generator(config.seed, resolve_device(config.device), "figure8")
    return run.continue_chains(n_chains, config.sample_iterations, generator).cpu()


def tail_mean(values: list[float], fraction: float = 0.25) -> float:
    """Mean of the last ``fraction`` of a training curve."""
    tail = values[-max(1, int(len(values) * fraction)):]
    return float(np.mean(tail)) if tail else float("nan")


def key(figure: int, quantity: str) -> str:
    """Glue key of a Figure 7 or 8 number, e.g. ``fig8_global_acceptance``."""
    return f"fig{figure}_{quantity}"


def numbers(run: Run, values: dict[str, Tensor]) -> dict[str, float]:
    """Figure 7's energy means and spreads, Figure 8's acceptances (last quarter of training) and the
    iteration of a divergence (0: none; the other numbers are then NaN)."""
    out, nan = {key(8, "diverged_at"): run.divergence.iteration if run.divergence else 0}, float("nan")
    for name, short in [("negative samples", "neg"), ("train data", "train"), ("test data", "test")]:
        out[key(7, f"energy_{short}_mean")] = nan if run.divergence else float(values[name].mean())
        out[key(7, f"energy_{short}_std")] = nan if run.divergence else float(values[name].std())
    for quantity in ("global_acceptance", "local_acceptance"):
        out[key(8, quantity)] = (float("nan") if run.divergence else
                                 tail_mean(run.history.steps.get(quantity, [])))
    return out


def table(numbers: dict[str, float], data_name: str, profile: str) -> pd.DataFrame:
    """The paper's Figure 7-8 numbers beside ours ("diverged (it. N)" for a diverged run)."""
    at = numbers[key(8, "diverged_at")]
    ours = (lambda text: f"diverged (it. {at:.0f})") if at else (lambda text: text)
    return pd.DataFrame({
        "paper (CIFAR-10)": [f"{PAPER_ACCEPTANCE[0]:.0%}–{PAPER_ACCEPTANCE[1]:.0%}",
                             "in the data's range, less diverse", "medium quality"],
        f"ours ({data_name}, {profile} profile)": [
            ours(f"{numbers[key(8, 'global_acceptance')]:.3f}"),
            ours(f"{numbers[key(7, 'energy_neg_mean')]:.1f} ± {numbers[key(7, 'energy_neg_std')]:.1f} (training "
                 f"images {numbers[key(7, 'energy_train_mean')]:.1f} ± {numbers[key(7, 'energy_train_std')]:.1f})"),
            ours("Figure 8 (a)")]},
        index=["global acceptance (last quarter of training)", "negative energies (mean ± sd)", "samples"])


def image_grid(samples: Tensor, shape: tuple[int, int, int], rows: int, pad: int = 1) -> np.ndarray:
    """(n, C·H·W) pixels in [-1, 1] -> one (rows·(H+pad)+pad, cols·(W+pad)+pad, C) picture in [0, 1] with
    ``pad`` white pixels between and around the images."""
    channels, height, width = shape
    images = ((samples.reshape(-1, *shape).clamp(-1, 1) + 1) / 2).numpy()
    cols = len(images) // rows
    grid = np.ones((rows * (height + pad) + pad, cols * (width + pad) + pad, channels))
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        top, left = pad + r * (height + pad), pad + c * (width + pad)
        grid[top:top + height, left:left + width] = images[i].transpose(1, 2, 0)
    return grid


def figure7(values: dict[str, Tensor], run: Run | None = None):
    """Figure 7: histograms of E_theta on negative samples, training data and test data (finite energies only: a
    diverged ``run`` is named in the title, and the legend counts the energies that are not finite)."""
    fig, ax = plt.subplots(figsize=(BOOK_FIGURE_WIDTH, 3.2), layout="constrained")
    colors = {"negative samples": color("flowmc"), "train data": "#4c72b0", "test data": "#8c8c8c"}
    for name, value in values.items():
        finite = value[torch.isfinite(value)].numpy()
        text = name + (f" ({len(value) - len(finite)} not finite)" if len(finite) < len(value) else "")
        if len(finite):
            ax.hist(finite, bins=40, density=True, histtype="stepfilled", alpha=0.45, color=colors[name], label=text)
        else:
            ax.plot([], [], color=colors[name], label=text)
    ax.set(xlabel=r"energy $E_\theta(x)$", ylabel="density")
    if run is not None and run.divergence is not None:
        ax.set_title(f"{label('flowmc')} diverged (it. {run.divergence.iteration})")
    ax.legend()
    return fig


def figure8(samples: Tensor, shape: tuple[int, int, int], run: Run, rows: int = 4, window: int = 25):
    """Figure 8: (a) a grid of samples (the paper shows 4 rows of 16), (b) global (i-SIR) and local (MALA)
    acceptance along training, moving averages over ``window`` iterations."""
    grid = image_grid(samples, shape, rows, pad=max(1, shape[1] // 16))
    width = BOOK_FIGURE_WIDTH
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(width, 2.8 + width * grid.shape[0] / grid.shape[1]),
                                      height_ratios=[grid.shape[0] / grid.shape[1] * 4, 1], layout="constrained")
    top.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1)
    top.set_axis_off()
    top.set_title("(a) samples")
    for name, text, line in [("global_acceptance", "global (flow, i-SIR)", "-"),
                             ("local_acceptance", "local (MALA)", ":")]:
        values = np.asarray(run.history.steps.get(name, []))
        width = max(1, min(window, len(values)))
        smooth = np.convolve(values, np.ones(width) / width, mode="valid")
        bottom.plot(np.arange(width, len(values) + 1), smooth, line, color=color("flowmc"), label=text)
        if run.divergence is not None and len(smooth):  # a diverged run ends at an x
            bottom.plot(len(values), smooth[-1], "x", ms=9, mew=2, color=color("flowmc"))
    bottom.axhspan(*PAPER_ACCEPTANCE, color="0.85", label="paper, CIFAR-10 (global)")
    bottom.set(xlabel="iteration", ylabel="acceptance", ylim=(0, 1), title=f"(b) {label('flowmc')} acceptance")
    bottom.legend(ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.3))
    return fig
