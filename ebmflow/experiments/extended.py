"""Extended motivating example (paper §3.2, Figures 3-5, Tables 3-4, Appendix C.3): four collinear modes with
weights 0.1, 0.2, 0.3, 0.4 (the ``weights`` parameter), the four methods, and how well each gets the relative
weights (zone weights)."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.colors import ListedColormap
from torch import Tensor

from ..book.claims import Claim, PaperItem, lowest
from ..book.plotting import BOOK_FIGURE_WIDTH, density_panel, label
from ..methods import METHODS, Method
from ..metrics import Grid2D, normalize_on_grid, zone_mse, zone_weights_of_samples
from ..samplers import run_chains
from ..seeding import make_generator
from ..targets import GaussianMixture, check_mode_weights, four_collinear_modes
from . import benchmarks as bench
from .common import Run, target_note

__all__ = ["Config", "PROFILES", "CHOICES", "ITEMS", "TARGET", "PAPER_WEIGHTS", "PAPER_TABLE3", "PAPER_TABLE4",
           "methods", "target_markdown",
           "train_all", "table3_row", "table3_key", "figure5_key", "latent_chains", "numbers", "seconds", "table3",
           "table4", "figure3", "figure4", "figure5"]

TARGET = "extended"
PAPER_WEIGHTS = (0.1, 0.2, 0.3, 0.4)
COLUMNS = {"init": "MSE of the init. wrt E_θ", "neg": "MSE of the neg. samples wrt E_θ",
           "ebm": "MSE of E_θ wrt −log p*"}
PAPER_TABLE3 = {  # zone-weight MSEs, paper Table 3 (rows in the paper's order)
    "ula": {"init": 1.19e-03, "neg": 1.79e-03, "ebm": 1.24e-03},
    "coopflow": {"init": 1.21e-01, "neg": 1.11e-01, "ebm": 1.24e-01},
    "ntebm": {"init": 9.27e-04, "neg": 3.85e-04, "ebm": 9.87e-04},
    "flowmc": {"init": 5.19e-04, "neg": 3.12e-05, "ebm": 4.29e-04},
}
FLOW_METHODS = ("flowmc", "ntebm", "coopflow")  # the methods with a flow, whose own zone weights are measured
PAPER_TABLE4 = bench.paper_hyperparameters("flowMC with 1 global step and 24 mala local steps", 128, "no")


@dataclass(frozen=True)
class Config(bench.BenchmarkConfig):
    weights: tuple[float, ...]  # the four mode weights, left to right, positive, summing to 1 (paper 0.1,0.2,0.3,0.4)
    fig5_steps: int  # latent MALA steps of the four NT-EBM chains of Figure 5, on the trained model

    def __post_init__(self) -> None:
        super().__post_init__()
        check_mode_weights(self.weights, 4, "parameter 'weights'")

    def p_star(self, name: str) -> GaussianMixture:
        return four_collinear_modes(self.weights) if name == TARGET else super().p_star(name)

    @property
    def paper_target(self) -> bool:
        """Whether the weights are the paper's (its numbers apply only then)."""
        return all(abs(w - p) < 1e-9 for w, p in zip(self.weights, PAPER_WEIGHTS))


# "128 steps, 1 global + 24 MALA, use only last step = no": 5 blocks of (1 i-SIR + 24 MALA) = 125 steps, the
# last state of each block kept (subsampling by 5), batch 255 (a multiple of 5).
PAPER = {**bench.PAPER_SETTINGS, "flowmc_blocks": 5, "flowmc_local_steps": 24, "flowmc_keep": 5, "batch_size": 255,
         "fig5_steps": 1024, "weights": PAPER_WEIGHTS}
CPU = {**PAPER, "epochs": 5, "ula_steps": 32, "ntebm_steps": 8, "coopflow_steps": 32, "flowmc_local_steps": 5,
       "lr_ntebm": 1e-3}
PROFILES = {
    "smoke": {**CPU, "n_data": 1530, "epochs": 1, "n_persistent": 510, "ula_steps": 4, "ntebm_steps": 2,
              "coopflow_steps": 2, "flowmc_local_steps": 1, "n_particles": 8, "pretrain_steps": 8, "grid_size": 48,
              "fig5_steps": 32},
    "cpu": CPU,
    "paper": PAPER,
}
CHOICES = bench.SHARED_CHOICES + (
    "Zones (Figure 4): nearest mean, i.e. vertical strips with boundaries x1 = -2, 0, 2.",
    "EBM zone weights: p_theta normalised by a Riemann sum on a `grid_size`² grid over [-4.5, 4.5]^2, its mass "
    "summed per zone; sample zone weights: the fraction of the samples in each zone.",
    "`weights` sets the four modes' weights (means and widths stay the paper's); Table 3's EBM column compares "
    "with them. The paper ran only 0.1, 0.2, 0.3, 0.4: for other weights its numbers are not shown.",
    "Table 3, measured once after training from the final persistent bank: init. = the chains' starting points "
    "(the bank; fresh flow samples for CoopFlow), neg. = the negatives one call of the method's sampler draws "
    "from them, EBM = p_theta's zone weights against `weights`; each MSE averages the four zones. A "
    "diverged run has no entry: its cells read 'diverged (it. N)'.",
    "flowMC-EBM's '128 steps, 1 global + 24 MALA, use only last step = no': `flowmc_blocks` = 5 blocks of "
    "(1 i-SIR + `flowmc_local_steps` MALA), the last state of each block kept (subsampling by 5), batch 255 (a "
    "multiple of 5).",
    "Figure 5: four NT-EBM chains, one started in each zone from the final bank (any bank state when a zone has "
    "none), run `fig5_steps` latent MALA steps at NT-EBM's final adapted step on the trained model.",
    "The cpu profile runs 5 of the paper's 100 epochs (1175 iterations) with 32 of 512 ULA steps, 8 of 128 latent "
    "MALA steps, 32 of 256 CoopFlow steps (chapter 02 shows what that cut costs) and 5 x (1 + 5) of 5 x (1 + 24) "
    "flowMC steps per iteration, and NT-EBM at lr 1e-3 (as in chapter 02); data, batch, bank, pre-training and the "
    "other learning rates are the paper's.",
)


def table3_key(method: str, column: str) -> str:
    """Glue key of a Table 3 number: ``table3_flowmc_neg``; also the ``diverged_at``, ``flow`` (the method's
    flow against p*) and ``seconds`` columns."""
    return f"table3_{method}_{column}"


def figure5_key(quantity: str) -> str:
    """Glue key of a Figure 5 number, e.g. ``fig5_max_zones_visited``."""
    return f"fig5_{quantity}"


_LABELS = {m: label(m) for m in METHODS}
ITEMS = (
    PaperItem("Figure 3", "03_extended_example", "learned densities on the 4-mode (0.1/0.2/0.3/0.4) example",
              rebuilt_by="extended.figure3"),
    PaperItem("Figure 4", "03_extended_example", "zone partition used for the mode-weight histograms",
              rebuilt_by="extended.figure4"),
    PaperItem("Figure 5", "03_extended_example", "NT-EBM's negative chains in its latent space", (
        Claim("NT-EBM's latent chains do not mix: each stays in one mode",
              "1 zone per chain (the four chains each stay in their mode)",
              "{fig5_max_zones_visited:.0f} zones (the most one chain visits)", "every chain visits a single zone",
              lambda g: g["fig5_max_zones_visited"] == 1, expected_to_hold=False,
              why_not="with the original's maximum-likelihood flow, frozen and tilted by the EBM, a chain visits up "
                      "to {fig5_max_zones_visited:.0f} zones: the flow already spreads the modes over the latent "
                      "Gaussian (its own zone-weight error {table3_ntebm_flow:.2e}), so latent MALA (final step "
                      "{fig5_step_size:.2g}) crosses between them, the mixing Nijkamp et al. report"),),
              rebuilt_by="extended.figure5"),
    PaperItem("Table 3", "03_extended_example", "zone-weight errors: initialisation, negatives, EBM", tuple(
        lowest({m: table3_key(m, c) for m in METHODS}, _LABELS, {m: PAPER_TABLE3[m][c] for m in METHODS}, ".2e",
               f"Table 3 error '{text}'") for c, text in COLUMNS.items()), rebuilt_by="extended.table3"),
    PaperItem("Table 4", "03_extended_example", "hyper-parameters of the extended example",
              rebuilt_by="extended.table4"),
)


def methods(config: Config) -> dict[str, Method]:
    """The four methods with the paper's Table 4 settings."""
    return bench.make_methods(config, TARGET)


def train_all(config: Config) -> dict[str, Run]:
    """The four methods on the same data; a diverged run is kept with its record."""
    data = bench.make_data(config, TARGET)
    return {m: bench.train_method(config, TARGET, method, data, key=f"03_extended_example-{m}")
            for m, method in methods(config).items()}


@torch.no_grad()
def table3_row(run: Run, config: Config) -> dict[str, float]:
    """Paper Table 3 from the final persistent bank: "init" = zone weights of the chains' starting points (fresh
    flow samples for CoopFlow) against the EBM's, "neg" = of the negatives one sampler call draws from them,
    "ebm" = the EBM's against p*'s weights (NaN everywhere for a diverged run)."""
    if run.divergence is not None:
        return dict.fromkeys(COLUMNS, math.nan)
    p_star = config.p_star(TARGET)
    ebm = bench.model_zone_weights(run.log_density, config, TARGET, run.device)
    generator = make_generator(config.seed, config.device, "table3")
    bank = run.history.final_chains
    bank = bank[: len(bank) - len(bank) % config.flowmc_keep]
    starts = run.method.positions(run.method.starts(bank, generator))
    saved = copy.deepcopy(run.method.state_dict())  # a sampler call adapts steps: leave the trained method as it was
    negatives = run.method.sample(bank, generator).negatives
    run.method.load_state_dict(saved)

    def weights(x: Tensor) -> Tensor:
        return zone_weights_of_samples(x.cpu(), p_star.assign_mode, p_star.n_modes)

    return {"init": zone_mse(weights(starts), ebm), "neg": zone_mse(weights(negatives), ebm),
            "ebm": zone_mse(ebm, p_star.weights)}


def latent_chains(run: Run, config: Config) -> Tensor:
    """Latent positions (fig5_steps + 1, 4, 2) of four NT-EBM chains on the trained model, one started in each
    zone when the final bank has a state there (paper Figure 5); randomness from the seed's "figure5" stream."""
    bank = run.history.final_chains
    zones = config.p_star(TARGET).assign_mode(run.method.positions(bank).cpu()).to(bank.device)
    starts = torch.stack([bank[zones == k][0] if (zones == k).any() else bank[k] for k in range(4)])
    generator = make_generator(config.seed, config.device, "figure5")
    _, path, _ = run_chains(run.method.kernel(), starts, config.fig5_steps, generator, record=True)
    return torch.cat([starts[None], path]).cpu()


def numbers(runs: dict[str, Run], config: Config, paths: Tensor) -> dict[str, float]:
    """Table 3 for every method (NaN and the iteration for a diverged run, 0: none), the zone-weight error of
    each method's flow against p* ("flow"), the most zones a Figure 5 chain visits (NaN if NT-EBM diverged) and
    NT-EBM's final step."""
    values = {}
    p_star = config.p_star(TARGET)
    for m, run in runs.items():
        values.update({table3_key(m, c): v for c, v in table3_row(run, config).items()})
        values[table3_key(m, "diverged_at")] = bench.diverged_at(run)
        if m in FLOW_METHODS:
            weights = bench.model_zone_weights(run.method.flow.log_prob, config, TARGET, run.device)
            values[table3_key(m, "flow")] = zone_mse(weights, p_star.weights)
    flow = runs["ntebm"].method.flow
    with torch.no_grad():
        x = flow.from_latent(paths.flatten(0, 1).to(next(flow.parameters()).device))[0].cpu().view(paths.shape)
    zones = p_star.assign_mode(x.flatten(0, 1)).view(paths.shape[:2])
    visited = [len(torch.unique(zones[:, i])) for i in range(zones.shape[1])]
    stopped = runs["ntebm"].divergence is not None  # a diverged NT-EBM's chains say nothing about its mixing
    values[figure5_key("max_zones_visited")] = math.nan if stopped else max(visited)
    values[figure5_key("step_size")] = runs["ntebm"].method.step_size
    return values


def seconds(runs: dict[str, Run]) -> dict[str, float]:
    """Wall time of each run (pre-training included), glued apart: it differs between executions."""
    return {table3_key(m, "seconds"): run.seconds for m, run in runs.items()}


def table3(values: dict[str, float], config: Config) -> pd.DataFrame:
    """Paper Table 3 beside ours (rows in the paper's order); the paper's column only for the paper's weights."""
    def ours(m: str, c: str) -> str:
        return bench.table_cell(values[table3_key(m, c)], values[table3_key(m, "diverged_at")], ".2e")

    def paper(m: str, c: str) -> str:
        return f"{PAPER_TABLE3[m][c]:.2e}" if config.paper_target else "not run in the paper"

    return pd.DataFrame({label(m): {(text, source): (paper(m, c) if source == "paper" else ours(m, c))
                                    for c, text in COLUMNS.items() for source in ("paper", "ours")}
                         for m in PAPER_TABLE3}).T


def table4(config: Config) -> pd.DataFrame:
    """Paper Table 4 beside the settings the code runs (each method's ``describe()``)."""
    return bench.hyperparameter_table(methods(config), PAPER_TABLE4)


def figure3(runs: dict[str, Run], config: Config):
    """Figure 3: the target and the four methods' normalised densities."""
    fig, axes = plt.subplots(1, 1 + len(runs), figsize=(BOOK_FIGURE_WIDTH, 1.9), layout="constrained")
    bench.density_row(list(axes), runs, config, TARGET)
    return fig


def figure4(config: Config):
    """Figure 4: the zone partition (nearest mean: boundaries x1 = -2, 0, 2) over p*'s level lines."""
    p_star, box = config.p_star(TARGET), bench.grid(config, TARGET)
    zones = p_star.assign_mode(box.points).reshape(box.n, box.n).T.numpy()
    fig, ax = plt.subplots(figsize=(4.6, 3.6), layout="constrained")
    colors = ListedColormap(["#a6cee3", "#b2df8a", "#fb9a99", "#fdbf6f"])
    ax.imshow(zones, origin="lower", extent=(box.low, box.high, box.low, box.high), cmap=colors)
    axis = box.axis.numpy()
    levels = p_star.log_prob(box.points).reshape(box.n, box.n).T.numpy()
    ax.contour(axis, axis, levels, levels=[-12, -8, -4, -2, 0], colors="k", linewidths=0.7)
    for k, (mean, weight) in enumerate(zip(p_star.means, p_star.weights)):
        ax.text(float(mean[0]), 1.2, f"zone {k + 1}\nw = {weight:.3g}", ha="center", fontsize="small")
    ax.set(xlabel="$x_1$", ylabel="$x_2$", title="zones and level lines of log p*")
    return fig


def figure5(run: Run, paths: Tensor, n: int = 160):
    """Figure 5: four NT-EBM chains in its latent space, over the latent target density (start: red dot); the
    plot covers three standard deviations of the latent base rho and every chain."""
    limit = max(3 * float(run.method.flow.latent.std), 1.05 * float(paths.abs().max()))
    box = Grid2D(-limit, limit, n)
    title = "NT-EBM latent space: 4 negative chains"
    if run.divergence is not None:
        title += f"\ndiverged (it. {run.divergence.iteration})"
    latent = normalize_on_grid(run.method.latent_log_target, box, device=run.device)
    fig, ax = plt.subplots(figsize=(4.6, 4.2), layout="constrained")
    density_panel(ax, torch.nan_to_num(latent, nan=-math.inf), box, title)
    for chain in paths.unbind(1):
        ax.plot(chain[:, 0], chain[:, 1], "-", lw=0.7, color="white", alpha=0.9)
        ax.plot(chain[0, 0], chain[0, 1], "o", ms=4, color="red")
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    return fig


def target_markdown(config: Config) -> str:
    """This run's mode weights, and whether the paper ran them."""
    return target_note(f"weights $w = ({', '.join(f'{w:.3g}' for w in config.weights)})$",
                       None if config.paper_target else "w = (0.1, 0.2, 0.3, 0.4)")
