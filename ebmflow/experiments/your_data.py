"""Your own data (beyond the paper): the four methods trained on a data file the reader supplies, and what can be
shown without a known truth: learned densities (2-D) or pairwise marginals, samples beside the data, the weights each
EBM gives to clusters of the data, and the samplers' diagnostics. Files are read by ``ebmflow.data.points``."""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..book.plotting import BOOK_FIGURE_WIDTH, color, density_panel, label
from ..checks import InputError
from ..data.points import load_data
from ..methods import METHODS, Method
from ..metrics import Grid2D, mixing_diagnostics, normalize_on_grid, zone_weights_of_samples, zone_weights_on_grid
from ..models import DiagonalGaussian, ToyEnergy
from ..seeding import make_generator
from ..targets import FullCovarianceMixture, fit_gaussian_mixture
from ..training import DivergenceRule
from . import benchmarks as bench
from .common import Run, checkpoint_for, diverged_at, table_cell, train

__all__ = ["Config", "PROFILES", "CHOICES", "ITEMS", "YourData", "prepare", "methods", "train_all", "importance_samples",
           "cluster_weights", "chains", "numbers", "key", "data_table", "weights_table", "diagnostics_table",
           "figure_clusters", "figure_densities", "figure_samples"]

CHAPTER = "08_your_data"
PAIRS = 3  # coordinate pairs shown for d > 2: (1, 2), (1, 3), (2, 3)


@dataclass(frozen=True)
class Config(bench.BenchmarkConfig):
    n_data: int  # rows used for training: all of the file's, or a random subset of this many when it has more
    data_path: str  # .npy or .csv file, one point per row, >= 2 columns ("": the shipped book/data/example_clusters.csv)
    max_clusters: int  # clusters of the data: Gaussian mixtures of 1..max_clusters components, the lowest BIC kept
    n_importance: int  # importance samples measuring each EBM's cluster weights (and its marginals for d > 2)
    n_chains: int  # chains run on each trained model (samples figure, diagnostics)
    chain_steps: int  # steps of those chains (the method's own kernel)

    PATHS: ClassVar[tuple[str, ...]] = ("data_path",)  # `ebmflow run/sweep` make them absolute from the current folder

    def __post_init__(self) -> None:
        super().__post_init__()
        rows = min(self.n_data, len(load_data(self.data_path)))
        if self.batch_size > rows:
            raise InputError(f"parameter 'batch_size' ({self.batch_size}) cannot exceed the rows used for training: "
                             f"{rows}, the smaller of n_data ({self.n_data}) and the data file's rows")
        if self.chain_steps < 4 or self.n_chains < 2:
            raise InputError(f"chain_steps must be >= 4 and n_chains >= 2 (R-hat of the chains), got {self.chain_steps} "
                             f"and {self.n_chains}")

    @property
    def iterations(self) -> int:
        return self.epochs * (min(self.n_data, len(load_data(self.data_path))) // self.batch_size)


PAPER = {**bench.PAPER_SETTINGS, "flowmc_blocks": 1, "flowmc_local_steps": 127, "flowmc_keep": 4, "data_path": "",
         "max_clusters": 8, "n_importance": 50_000, "n_chains": 512, "chain_steps": 256}
CPU = {**PAPER, "n_data": 4000, "epochs": 50, "ula_steps": 32, "ntebm_steps": 8, "coopflow_steps": 32,
       "flowmc_local_steps": 15, "lr_ntebm": 1e-3, "pretrain_steps": 512, "n_importance": 20_000, "n_chains": 256,
       "chain_steps": 64}
PROFILES = {
    "smoke": {**CPU, "n_data": 1024, "epochs": 1, "batch_size": 128, "n_persistent": 512, "ula_steps": 4,
              "ntebm_steps": 2, "coopflow_steps": 2, "flowmc_local_steps": 3, "n_particles": 8, "pretrain_steps": 8,
              "grid_size": 48, "max_clusters": 5, "n_importance": 2000, "n_chains": 32, "chain_steps": 8},
    "cpu": CPU,
    "paper": PAPER,
}
CHOICES = bench.SHARED_CHOICES[:6] + (
    "Data: the file's rows (a random `n_data` of them when it has more), each coordinate standardised to mean 0 and "
    "standard deviation 1 (the training, the clusters and every figure use standardised units); the tilt and flow "
    "base rho = N(0, I). The plotting box [-L, L]^d, where ULA-EBM's chains start uniformly, has L = 1.2 max|z| + 0.5.",
    "Clusters: Gaussian mixtures with full covariances and 1 to `max_clusters` components fitted to the standardised "
    "data (scikit-learn, k-means initialisation, 3 restarts, random state `seed`); the one of lowest BIC is kept. "
    "A point belongs to its most probable component; clusters are numbered by decreasing weight, and the data's "
    "cluster weights are the fractions of the data in each.",
    "An EBM's cluster weights: self-normalised importance sampling of p_theta with `n_importance` draws from a "
    "defensive proposal, the fitted mixture with standard deviations widened 1.5 times plus N(0, (L/2)^2 I) of "
    "weight 0.2; each weight has a delta-method standard error and the proposal an effective sample size (ESS). In "
    "2-D the same weights from the grid normalisation are shown as a check; for d > 2 the pairwise marginals of "
    "p_theta are the importance-weighted histograms of the same draws.",
    "Diagnostics: `n_chains` chains of each method's kernel started from its final persistent bank (fresh flow "
    "samples for CoopFlow) for `chain_steps` steps: how often a chain changes cluster, the max R-hat over "
    "coordinates; the acceptance rates the training recorded (mean over its last tenth; ULA-EBM and CoopFlow do not "
    "accept or reject), the last energy gap and the divergence rule of chapter 02.",
    "cpu profile: chapter 02's cuts (32 ULA, 8 latent MALA, 32 Langevin, 1 + 15 flowMC steps per iteration, NT-EBM at "
    "lr 1e-3), 512 pre-training steps, 50 epochs of the shipped example's 4000 rows (750 iterations).",
)
ITEMS = ()  # beyond the paper: no paper item, no claim
DEFAULT_SEEDS = (0,)  # `ebmflow reproduce` runs one seed: an example of the chapter, with no claim to average over


@dataclass(frozen=True)
class YourData:
    raw: np.ndarray  # the rows used, in the file's units
    mean: np.ndarray  # per-coordinate mean of those rows (the standardisation: (raw - mean) / std)
    std: np.ndarray  # per-coordinate standard deviation of those rows
    points: Tensor  # standardised rows, float32 (n, d)
    box: float  # half-width L of the plotting box [-L, L]^d
    clusters: FullCovarianceMixture
    bics: dict[int, float]

    digest = property(lambda self: hashlib.sha256(self.raw.tobytes()).hexdigest()[:16],
                      doc="A hash of the rows used (a checkpoint of other data is refused).")

    @property
    def weights(self) -> Tensor:
        """The data's cluster weights: the fraction of the rows in each cluster."""
        return zone_weights_of_samples(self.points, self.clusters.assign_mode, self.clusters.n_modes)


def prepare(config: Config) -> YourData:
    """The data as the chapter trains on it: rows, standardisation, box, clusters (see the choices)."""
    raw = load_data(config.data_path)
    if len(raw) > config.n_data:
        rows = torch.randperm(len(raw), generator=make_generator(config.seed, stream="data"))[:config.n_data]
        raw = raw[np.sort(rows.numpy())]
    mean, std = raw.mean(0), raw.std(0)
    points = torch.tensor((raw - mean) / std, dtype=torch.float32)
    clusters, bics = fit_gaussian_mixture(points, config.max_clusters, config.seed)
    return YourData(raw, mean, std, points, round(1.2 * float(points.abs().max()) + 0.5, 1), clusters, bics)


def methods(config: Config, data: YourData) -> dict[str, Method]:
    """The four methods with chapter 02's settings, ULA-EBM starting uniformly on the data's box."""
    return bench.make_methods(config, box=data.box)


def train_all(config: Config, data: YourData) -> dict[str, Run]:
    dim = data.points.shape[1]
    return {m: train(method, data.points, energy=ToyEnergy(dim, generator=make_generator(config.seed, stream="energy")),
                     base=DiagonalGaussian(dim), seed=config.seed, epochs=config.epochs, batch_size=config.batch_size,
                     n_persistent=config.n_persistent, device=config.device, stop_after=config.stop_after or None,
                     divergence=DivergenceRule(config.divergence_gap, config.divergence_box * data.box),
                     checkpoint=checkpoint_for(f"{CHAPTER}-{m}", config, data=data.digest), desc=method.label)
            for m, method in methods(config, data).items()}


def importance_samples(config: Config, data: YourData) -> tuple[Tensor, Tensor]:
    """Draws x from the defensive proposal (see the choices) and their log-density log q(x)."""
    proposal = data.clusters.widened(1.5, 0.2, data.box / 2)
    return proposal.sample_with_log_prob(config.n_importance, make_generator(config.seed, stream="importance"))


def _normalised_weights(log_density, x: Tensor, log_q: Tensor, device: torch.device | str = "cpu") -> Tensor:
    with torch.no_grad():
        log_w = log_density(x.to(device)).cpu().double() - log_q.double()
    return torch.softmax(torch.nan_to_num(log_w, nan=-math.inf, posinf=-math.inf), 0)


def cluster_weights(log_density, data: YourData, samples: tuple[Tensor, Tensor],
                    device: torch.device | str = "cpu") -> tuple[Tensor, Tensor, float]:
    """The mass of each cluster under the unnormalised ``log_density`` by self-normalised importance sampling of the
    proposal's draws ``samples``: weights (K,), their delta-method standard errors (K,) and the effective sample
    size (sum w)^2 / sum w^2."""
    x, log_q = samples
    zones = torch.nn.functional.one_hot(data.clusters.assign_mode(x), data.clusters.n_modes).double()
    wbar = _normalised_weights(log_density, x, log_q, device)
    weights = wbar @ zones
    return weights, ((wbar[:, None] ** 2) * (zones - weights) ** 2).sum(0).sqrt(), float(1 / (wbar**2).sum())


def chains(runs: dict[str, Run], config: Config) -> dict[str, Tensor]:
    """Positions (steps, n_chains, d) of ``n_chains`` chains of each method's kernel on its trained model."""
    return {m: run.continue_chains(config.n_chains, config.chain_steps, make_generator(config.seed, run.device,
                                   f"chains/{m}"), record=True).cpu() for m, run in runs.items()}


def key(quantity: str, method: str = "", cluster: int | None = None) -> str:
    """Glue key, e.g. ``yourdata_weight_error_flowmc``, ``yourdata_weight_flowmc_c1``, ``yourdata_n_clusters``."""
    return "_".join(["yourdata", quantity] + [method] * bool(method) + [f"c{cluster}"] * (cluster is not None))


def numbers(runs: dict[str, Run], data: YourData, samples: tuple[Tensor, Tensor], paths: dict[str, Tensor],
            config: Config) -> dict[str, float]:
    """The data's size and clusters; per method its cluster weights (importance sampling, with standard errors and
    ESS; the grid's in 2-D), the largest error against the data's weights, the chains' diagnostics, the recorded
    acceptance rates, the last energy gap and the iteration of a divergence (0: none; NaN metrics then)."""
    (n, dim), k = data.points.shape, data.clusters.n_modes
    values = {key("n_rows"): n, key("dim"): dim, key("n_clusters"): k}
    values.update({key("weight", "data", c + 1): float(w) for c, w in enumerate(data.weights)})
    for m, run in runs.items():
        weights, stderr, ess = cluster_weights(run.log_density, data, samples, run.device)
        at = diverged_at(run)
        for c in range(k):
            values[key("weight", m, c + 1)] = math.nan if at else float(weights[c])
            values[key("stderr", m, c + 1)] = math.nan if at else float(stderr[c])
        values[key("weight_error", m)] = math.nan if at else float((weights - data.weights.double()).abs().max())
        values[key("ess", m)] = math.nan if at else ess
        if dim == 2:
            box = Grid2D(-data.box, data.box, config.grid_size)
            grid = zone_weights_on_grid(normalize_on_grid(run.log_density, box, device=run.device), box,
                                        data.clusters.assign_mode, k).double()
            values[key("grid_gap", m)] = math.nan if at else float((grid - weights).abs().max())
        mixing = mixing_diagnostics(paths[m], data.clusters.assign_mode, 64)
        values.update({key(q, m): mixing[q] for q in ("switches", "rhat")})
        for name in ("local_acceptance", "global_acceptance"):
            recorded = run.history.steps.get(name)
            values[key(name, m)] = float(np.mean(recorded[-max(1, len(recorded) // 10):])) if recorded else math.nan
        values[key("energy_gap", m)], values[key("diverged_at", m)] = run.energy_gap, at
    return values


def data_table(data: YourData) -> pd.DataFrame:
    """The clusters found: weight (fraction of the rows), centre in the file's units, and the BIC of every k."""
    centres = data.clusters.means.double().numpy() * data.std + data.mean
    return pd.DataFrame({f"cluster {c + 1}": {"weight (fraction of rows)": f"{float(w):.3f}",
                                              "centre (file units)": ", ".join(f"{v:.3g}" for v in centres[c])}
                         for c, w in enumerate(data.weights)}).T


def weights_table(values: dict[str, float], data: YourData) -> pd.DataFrame:
    """Each cluster's weight in the data and under each EBM (± standard error), the largest error, the ESS."""
    def cell(m: str, c: int) -> str:
        at, stderr = values[key("diverged_at", m)], values[key("stderr", m, c)]
        return table_cell(values[key("weight", m, c)], at, ".3f") + ("" if at else f" ± {stderr:.3f}")

    rows = {f"cluster {c}": {"data": f"{values[key('weight', 'data', c)]:.3f}", **{label(m): cell(m, c) for m in
                                                                                  METHODS}}
            for c in range(1, data.clusters.n_modes + 1)}
    for quantity, what, fmt in (("weight_error", "largest |error|", ".3f"), ("ess", "ESS of the estimate", ".0f"),
                                ("grid_gap", "2-D grid check: largest |difference|", ".3f")):
        if key(quantity, "flowmc") in values:
            rows[what] = {"data": "", **{label(m): table_cell(values[key(quantity, m)], values[key("diverged_at", m)],
                                                              fmt) for m in METHODS}}
    return pd.DataFrame(rows).T


def diagnostics_table(values: dict[str, float]) -> pd.DataFrame:
    """Per method: cluster changes per chain and max R-hat of its chains, recorded acceptance, energy gap, stop."""
    columns = {"switches": ("cluster changes per chain", ".2f"), "rhat": ("max R-hat of the chains", ".2f"),
               "local_acceptance": ("MALA acceptance (training)", ".2f"),
               "global_acceptance": ("i-SIR acceptance (training)", ".2f"), "energy_gap": ("energy gap (last)", ".3g")}
    return pd.DataFrame({label(m): {**{name: "—" if math.isnan(values[key(q, m)]) else format(values[key(q, m)], fmt)
                                       for q, (name, fmt) in columns.items()},
                                    "stopped": f"diverged (it. {values[key('diverged_at', m)]})"
                                    if values[key("diverged_at", m)] else "no"} for m in METHODS}).T


def _pairs(dim: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(dim) for b in range(a + 1, dim)][:PAIRS]


def figure_clusters(data: YourData):
    """The standardised data coloured by cluster, one panel per coordinate pair (at most three)."""
    pairs, zones = _pairs(data.points.shape[1]), data.clusters.assign_mode(data.points)
    fig, axes = plt.subplots(1, len(pairs), figsize=(3.2 * len(pairs) + 1, 3.2), layout="constrained", squeeze=False)
    for ax, (a, b) in zip(axes[0], pairs):
        for c in range(data.clusters.n_modes):
            ax.scatter(*data.points[zones == c][:, [a, b]].T, s=2, label=f"cluster {c + 1} ({data.weights[c]:.2f})")
        ax.set(xlabel=f"$z_{a + 1}$", ylabel=f"$z_{b + 1}$", xlim=(-data.box, data.box), ylim=(-data.box, data.box))
    axes[0, -1].legend(markerscale=4, fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    return fig


def figure_densities(runs: dict[str, Run], data: YourData, samples: tuple[Tensor, Tensor], config: Config):
    """The data's histogram and each EBM's density: normalised on the grid in 2-D, for d > 2 its pairwise marginals
    as importance-weighted histograms of the proposal's draws; one row per coordinate pair (at most three)."""
    pairs, grid = _pairs(data.points.shape[1]), Grid2D(-data.box, data.box, config.grid_size)
    fig, axes = plt.subplots(len(pairs), 1 + len(runs), figsize=(BOOK_FIGURE_WIDTH, 1.5 * len(pairs) + 0.3),
                             layout="constrained", squeeze=False)
    edges = np.linspace(-data.box, data.box, config.grid_size + 1)

    def histogram(ax, points: Tensor, weights: Tensor | None, title: str) -> None:
        counts = np.histogram2d(*points.numpy().T, bins=[edges, edges], weights=None if weights is None else
                                weights.numpy())[0]
        density_panel(ax, torch.tensor(counts / max(counts.sum(), 1e-300)).log().flatten(), grid, title)

    for i, (row, (a, b)) in enumerate(zip(axes, pairs)):
        histogram(row[0], data.points[:, [a, b]], None, "" if i else "data")
        row[0].set_ylabel(f"$z_{a + 1}$, $z_{b + 1}$" if len(pairs) > 1 else "")
        for ax, (m, run) in zip(row[1:], runs.items()):
            title = "" if i else label(m)
            if data.points.shape[1] == 2:
                bench.run_panel(ax, run, config, grid, title)
            else:
                histogram(ax, samples[0][:, [a, b]], _normalised_weights(run.log_density, *samples, run.device),
                          title + (f"\ndiverged (it. {diverged_at(run)})" if diverged_at(run) and not i else ""))
    return fig


def figure_samples(paths: dict[str, Tensor], data: YourData):
    """Each method's chains after their last step (coloured) over the data (grey), one row per coordinate pair."""
    pairs = _pairs(data.points.shape[1])
    fig, axes = plt.subplots(len(pairs), len(paths), figsize=(BOOK_FIGURE_WIDTH, 1.9 * len(pairs) + 0.3),
                             layout="constrained", squeeze=False, sharex=True, sharey=True)
    for i, (row, (a, b)) in enumerate(zip(axes, pairs)):
        for ax, (m, path) in zip(row, paths.items()):
            ax.scatter(*data.points[:, [a, b]].T, s=1, color="0.8")
            ax.scatter(*path[-1][:, [a, b]].T, s=4, color=color(m))
            ax.set(title="" if i else label(m), xlim=(-data.box, data.box), ylim=(-data.box, data.box))
    return fig
