"""Images (paper §3.5, Figures 7–8, Appendix C.6) and class weights measured on real images (beyond the paper).

flowMC-EBM on images: a convolutional EBM tilted by rho = N(0, I) pushed through the fixed affine + logit
layers, a RealNVP on the same layers as the companion flow, i-SIR + MALA negatives. Figure 7: energies of
negatives, training and test images; Figure 8: 64 samples, the last states of chains started from the
persistent state. The class-weight study trains flowMC-EBM and ULA-EBM on an imbalanced subset of digits and
classifies each model's samples with a classifier trained on the data.
"""
from __future__ import annotations

from typing import ClassVar

import dataclasses
import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from ..data import Dequantize, ImageData, imbalanced_subset, load_images
from ..image_energy import ConvEnergy
from ..image_flows import ImageRealNVP, LogitGaussian
from ..plotting import METHOD_COLORS, METHOD_LABELS
from ..samplers import FlowMCKernel, init_state, ula_step
from ..samplers.flowmc import validate_schedule
from ..seeding import make_generator
from ..training import FlowMCNegatives, History, ULANegatives, fit_ebm, tilted_log_density

__all__ = ["ImagesConfig", "PROFILES", "CHOICES", "ImageResult", "parse_classes", "load_data", "class_weight_data",
           "train_method", "sample_from_persistent", "energies", "fit_classifier", "class_proportions", "class_weights_run",
           "tail_mean", "figure7", "figure8", "acceptance_figure", "class_weights_figure"]


@dataclass(frozen=True)
class ImagesConfig:
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("energy_l2",)  # 0 turns the L2 energy regulariser off

    seed: int
    dataset: str  # "digits" (scikit-learn, offline) or "cifar10" (read from data_root)
    data_root: str  # folder holding cifar-10-batches-py/ (dataset="cifar10" only)
    test_fraction: float  # digits: share held out as test images
    epochs: int
    batch_size: int  # positives per iteration; as many persistent chains are advanced
    n_persistent: int
    lr: float  # Adam, EBM and flow (gamma_EBM = gamma_flow, paper)
    lr_decay: float  # learning rates multiplied by lr_decay every lr_decay_every iterations
    lr_decay_every: int
    energy_l2: float  # lambda of the L2 energy regulariser
    energy_width: int  # ConvEnergy base width (88 gives the paper's ≈4.5 M parameters on CIFAR-10)
    flow_couplings: int
    flow_hidden: int  # channels of the coupling nets
    flow_blocks: int  # residual blocks per coupling net
    flowmc_schedule: str  # L = MALA step, G = i-SIR step
    step_size: float  # MALA step of flowMC-EBM
    n_particles: int  # i-SIR candidates per global step
    sample_iterations: int  # sampler iterations from the persistent state for Figure 8 and class weights
    cw_classes: str  # class-weight study: digit classes, comma separated
    cw_proportions: str  # their proportions in the imbalanced training subset
    cw_epochs: int
    cw_seeds: int  # independent training runs per method (seeds seed, seed + 1, ...)
    ula_steps: int  # ULA steps per iteration (ULA-EBM)
    ula_step_size: float

    def __post_init__(self) -> None:
        validate_schedule(self.flowmc_schedule)
        if self.dataset not in ("digits", "cifar10"):
            raise ValueError(f"dataset must be 'digits' or 'cifar10', got {self.dataset!r}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        classes, proportions = parse_classes(self)
        if len(classes) != len(proportions) or abs(sum(proportions) - 1) > 1e-6:
            raise ValueError(f"cw_classes {self.cw_classes!r} and cw_proportions {self.cw_proportions!r} need "
                             f"one proportion per class, summing to 1")


CPU = dict(seed=0, dataset="digits", data_root="~/data", test_fraction=0.2, epochs=15, batch_size=64,
           n_persistent=512, lr=1e-3, lr_decay=0.99, lr_decay_every=50, energy_l2=1e-4, energy_width=16,
           flow_couplings=6, flow_hidden=16, flow_blocks=1, flowmc_schedule="G" + "L" * 8 + "G" + "L" * 8,
           step_size=1e-3, n_particles=32, sample_iterations=20, cw_classes="0,1,7", cw_proportions="0.6,0.3,0.1",
           cw_epochs=240, cw_seeds=2, ula_steps=20, ula_step_size=1e-3)
PAPER = {**CPU, "dataset": "cifar10", "epochs": 70, "batch_size": 128, "n_persistent": 1024, "lr": 1e-4,
         "energy_width": 88, "flow_couplings": 8, "flow_hidden": 64, "flow_blocks": 6,
         "flowmc_schedule": ("G" + "L" * 32) * 3, "n_particles": 128, "sample_iterations": 6, "cw_epochs": 1000}
CHOICES = (
    "Data: pixels dequantised with fresh noise at every batch, x = 2 (v + U) / L - 1 with L levels (256 for "
    "CIFAR-10: the paper's (255x + U)/256 rescaled to [-1, 1]; 17 for digits); random horizontal flips for "
    "CIFAR-10 only (a mirrored digit is not a digit); digits split at random 80 % train / 20 % test.",
    "EBM: a Du & Mordatch-style residual convolutional net (SiLU, average pooling down to 4x4, global pooling, a "
    "small two-layer head whose last layer starts at zero, so E = 0 at initialisation); the paper's widths are "
    "unknown, width 88 gives its ≈4.5 M parameters on CIFAR-10. The cpu profile uses width 16 (≈20 k).",
    "Flow: RealNVP on nflows, one squeeze to (4C, H/2, W/2) then affine couplings with convolutional residual "
    "nets alternating four channel masks (single scale, no batch norm, so the density does not depend on "
    "train/eval mode), after the fixed affine map to [0, 1] and logit(0.05 + 0.9 u); the tilt rho is N(0, I) "
    "pushed through the fixed layers only, so the flow equals rho at initialisation.",
    "Optimiser: Adam for both nets; the paper's decay (x 0.99 every 50 iterations) and L2 energy regulariser "
    "(lambda = 1e-4 on the mean squared energies of positives and negatives) at every profile.",
    "Sampler: MALA step size fixed at 1e-3 (unknown in the paper; 3e-3 let the MALA acceptance fall to 1-16 %); "
    "a MALA proposal outside the pixel box has no tilt density and is rejected; ULA-EBM's chains start uniformly "
    "in [-1, 1] and are clipped back into it after every step (as Du & Mordatch do).",
    "cpu profile: flowMC schedule G + 8 L + G + 8 L with 32 i-SIR particles, 512 persistent chains of which 64 "
    "advance per iteration, lr 1e-3, 15 epochs of the 1438 training digits (Figures 7-8) and 240 epochs of the "
    "255 imbalanced images (class weights); ULA-EBM: 20 ULA steps of size 1e-3 per iteration.",
    "Figure 8: 64 chains started from randomly chosen persistent states, run `sample_iterations` sampler "
    "iterations (the paper: 512 steps; the paper profile's 6 iterations of 99 steps give 594).",
    "Class weights: each model's samples are its persistent chains run `sample_iterations` more iterations of "
    "its own sampler; a logistic regression trained on all training images of the classes (balanced, so it has "
    "no prior towards the imbalance) labels them; a run's error is the largest absolute error over classes, "
    "and the glued error of a method is its mean over `cw_seeds` runs (seeds `seed`, `seed` + 1, ...).",
)
PROFILES = {
    "smoke": {**CPU, "epochs": 1, "batch_size": 32, "n_persistent": 64, "energy_width": 8, "flow_couplings": 2,
              "flow_hidden": 8, "flowmc_schedule": "GLLL", "n_particles": 8, "sample_iterations": 2,
              "cw_epochs": 2, "cw_seeds": 1, "ula_steps": 3},
    "cpu": CPU,
    "paper": PAPER,
}


def parse_classes(config: ImagesConfig) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The class-weight study's classes and proportions, from their comma-separated strings."""
    try:
        return (tuple(int(c) for c in config.cw_classes.split(",")),
                tuple(float(p) for p in config.cw_proportions.split(",")))
    except ValueError as error:
        raise ValueError(f"cw_classes / cw_proportions must be comma-separated numbers, got "
                         f"{config.cw_classes!r} / {config.cw_proportions!r}") from error


@dataclass
class ImageResult:
    method: str
    energy: ConvEnergy
    tilt: LogitGaussian
    flow: ImageRealNVP | None
    history: History
    seconds: float


def load_data(config: ImagesConfig) -> ImageData:
    return load_images(config.dataset, config.data_root, make_generator(config.seed + 1), config.test_fraction)


def class_weight_data(config: ImagesConfig) -> tuple[ImageData, Tensor, Tensor]:
    """Digits (always: the study must run offline), and the imbalanced training subset with labels 0..K-1."""
    digits = load_images("digits", config.data_root, make_generator(config.seed + 1), config.test_fraction)
    classes, proportions = parse_classes(config)
    images, labels = imbalanced_subset(digits.train, digits.train_labels, classes, proportions,
                                       make_generator(config.seed + 3))
    return digits, images, labels


def train_method(config: ImagesConfig, method: str, images: Tensor, data: ImageData, epochs: int) -> ImageResult:
    """Train flowMC-EBM (``method="flowmc"``) or ULA-EBM (``"ula"``) on ``images`` (levels, (n, C, H, W))."""
    generator = make_generator(config.seed)
    shape = data.image_shape
    energy = ConvEnergy(shape, config.energy_width)
    tilt = LogitGaussian(shape)
    flow = None
    if method == "flowmc":
        flow = ImageRealNVP(tilt, config.flow_couplings, config.flow_hidden, config.flow_blocks)
        kernel = FlowMCKernel(config.flowmc_schedule, config.step_size, config.n_particles)
        sampler = FlowMCNegatives(flow, kernel, lr=config.lr)
    elif method == "ula":
        sampler = ULANegatives(config.ula_step_size, config.ula_steps, init_low=-1.0, init_high=1.0, clip=True)
    else:
        raise ValueError(f"unknown method {method!r}; accepted: 'flowmc', 'ula'")
    start = time.perf_counter()
    history = fit_ebm(images.flatten(1).float(), energy, tilt, sampler, epochs=epochs,
                      batch_size=config.batch_size, n_persistent=config.n_persistent, lr=config.lr,
                      generator=generator, energy_l2=config.energy_l2,
                      lr_decay=(config.lr_decay, config.lr_decay_every),
                      batch_transform=Dequantize(data.levels, shape, data.flips), desc=f"{method}-EBM")
    return ImageResult(method, energy, tilt, flow, history, time.perf_counter() - start)


def sample_from_persistent(result: ImageResult, config: ImagesConfig, n_chains: int, seed_offset: int = 2) -> Tensor:
    """Last states of ``n_chains`` chains run for ``sample_iterations`` iterations of the method's own
    sampler on the trained model, started from the final persistent state (Figure 8)."""
    generator = make_generator(config.seed + seed_offset)
    log_target = tilted_log_density(result.energy, result.tilt)
    bank = result.history.final_chains
    state = init_state(bank[torch.randperm(len(bank), generator=generator)[:n_chains]], log_target)
    kernel = FlowMCKernel(config.flowmc_schedule, config.step_size, config.n_particles)
    for _ in range(config.sample_iterations):
        if result.flow is not None:
            state, _ = kernel.step(state, log_target, result.flow, generator)
        else:
            for _ in range(config.ula_steps):
                state, _ = ula_step(state, log_target, config.ula_step_size, generator, bounds=(-1.0, 1.0))
    return state.position


def energies(energy: ConvEnergy, x: Tensor, batch: int = 512) -> Tensor:
    """E_theta on ``x`` in batches, without gradients."""
    with torch.no_grad():
        return torch.cat([energy(chunk) for chunk in x.split(batch)])


def fit_classifier(data: ImageData, classes: tuple[int, ...], generator: torch.Generator):
    """Logistic regression on dequantised pixels of ``classes`` (all their training images, so the classifier
    carries no imbalance prior); returns the classifier (labels 0..K-1) and its held-out test accuracy."""
    from sklearn.linear_model import LogisticRegression

    dequantize = Dequantize(data.levels, data.image_shape)

    def select(images: Tensor, labels: Tensor) -> tuple[np.ndarray, np.ndarray]:
        keep = torch.isin(labels, torch.tensor(classes))
        index = torch.tensor([classes.index(int(c)) for c in labels[keep]])
        return dequantize(images[keep].flatten(1), generator).numpy(), index.numpy()

    x_train, y_train = select(data.train, data.train_labels)
    x_test, y_test = select(data.test, data.test_labels)
    classifier = LogisticRegression(max_iter=2000).fit(x_train, y_train)
    return classifier, float((classifier.predict(x_test) == y_test).mean())


def class_proportions(predict, samples: Tensor, n_classes: int) -> np.ndarray:
    """Fraction of ``samples`` that ``predict`` (array (n, d) -> labels 0..K-1) assigns to each class."""
    labels = np.asarray(predict(samples.flatten(1).numpy()))
    return np.bincount(labels, minlength=n_classes)[:n_classes] / len(labels)


def class_weights_run(config: ImagesConfig, method: str, seed: int, digits: ImageData, images: Tensor,
                      predict, n_classes: int) -> tuple[np.ndarray, ImageResult]:
    """Train ``method`` with ``seed`` on the imbalanced ``images``; return the class proportions of its samples
    (persistent chains run ``sample_iterations`` more iterations, labelled by ``predict``) and the run."""
    seeded = dataclasses.replace(config, seed=seed)
    result = train_method(seeded, method, images, digits, config.cw_epochs)
    samples = sample_from_persistent(result, seeded, n_chains=config.n_persistent)
    return class_proportions(predict, samples, n_classes), result


def tail_mean(values: list[float], fraction: float = 0.25) -> float:
    """Mean of the last ``fraction`` of a training curve."""
    tail = values[-max(1, int(len(values) * fraction)):]
    return float(np.mean(tail))


def _image_grid(samples: Tensor, shape: tuple[int, int, int], rows: int) -> np.ndarray:
    """(n, C·H·W) pixels in [-1, 1] -> one (rows·H, cols·W, C) picture in [0, 1]."""
    channels, height, width = shape
    images = ((samples.view(-1, *shape).clamp(-1, 1) + 1) / 2).numpy()
    cols = len(images) // rows
    grid = images[: rows * cols].reshape(rows, cols, channels, height, width).transpose(0, 3, 1, 4, 2)
    return grid.reshape(rows * height, cols * width, channels)


def figure7(values: dict[str, Tensor]):
    """Figure 7: histograms of E_theta on negative samples, training data and test data."""
    fig, ax = plt.subplots(figsize=(6, 3.4), layout="constrained")
    colors = {"negative samples": METHOD_COLORS["flowmc"], "train data": "#4c72b0", "test data": "#8c8c8c"}
    for label, value in values.items():
        ax.hist(value.numpy(), bins=40, density=True, histtype="stepfilled", alpha=0.45, color=colors.get(label),
                label=label)
    ax.set(xlabel=r"energy $E_\theta(x)$", ylabel="density")
    ax.legend()
    return fig


def figure8(samples: Tensor, shape: tuple[int, int, int], rows: int = 4):
    """Figure 8: a grid of samples (the paper shows 4 rows of 16)."""
    grid = _image_grid(samples, shape, rows)
    fig, ax = plt.subplots(figsize=(12, 12 * grid.shape[0] / grid.shape[1] + 0.3), layout="constrained")
    ax.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    return fig


def acceptance_figure(history: History, window: int = 25):
    """Global (i-SIR) and local (MALA) acceptance along training, moving averages over ``window`` iterations."""
    fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
    for key, label, color in [("global_acceptance", "global (flow, i-SIR)", METHOD_COLORS["flowmc"]),
                              ("local_acceptance", "local (MALA)", "#7570b3")]:
        values = np.asarray(history.steps[key])
        width = min(window, len(values))
        smooth = np.convolve(values, np.ones(width) / width, mode="valid")
        ax.plot(np.arange(width, len(values) + 1), smooth, color=color, label=label)
    ax.axhspan(0.05, 0.10, color="0.85", label="paper, CIFAR-10 (global)")
    ax.set(xlabel="iteration", ylabel="acceptance rate", ylim=(0, 1))
    ax.legend(fontsize="small")
    return fig


def class_weights_figure(true: np.ndarray, estimated: dict[str, list[np.ndarray]], classes: tuple[int, ...]):
    """True class proportions beside each method's estimates: bars at the mean over seeds, one dot per seed."""
    fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
    bars = {"training data (truth)": ([true], "0.3")}
    bars.update({METHOD_LABELS[m]: (runs, METHOD_COLORS[m]) for m, runs in estimated.items()})
    width = 0.8 / len(bars)
    for i, (label, (runs, color)) in enumerate(bars.items()):
        x = np.arange(len(classes)) + (i - (len(bars) - 1) / 2) * width
        ax.bar(x, np.mean(runs, axis=0), width, color=color, label=label)
        if len(runs) > 1:
            for run in runs:
                ax.plot(x, run, "o", color="k", ms=3)
    ax.set_xticks(np.arange(len(classes)), [f"digit {c}" for c in classes])
    ax.set(ylabel="class proportion", ylim=(0, 1))
    ax.legend(fontsize="small")
    return fig
