"""8 Gaussians and Rings (paper §3.3, Figure 2, Tables 1 and 5, Appendix C.4): one EBM trained four ways.

The ``targets`` parameter picks the toy targets (the paper's two, or two moons, pinwheel, checkerboard). Beside
the four methods, two readings of the baselines are run once: NT-EBM with its flow pre-trained by reverse KL
towards p* (the paper's sentence) beside the default maximum-likelihood flow, on the paper's targets, and, when
the profile cuts CoopFlow's Langevin steps, CoopFlow at the full count on the first target beside the cut run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, ClassVar

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch import Tensor

from ..book.claims import Claim, PaperItem, lowest
from ..book.plotting import BOOK_FIGURE_WIDTH, density_panel, label
from ..checks import InputError
from ..methods import METHODS, Method
from ..metrics import median_squared_log_error, normalize_on_grid, normalized_log_density_at
from ..seeding import make_generator
from . import benchmarks as bench
from .common import Run, methods_line

__all__ = ["Config", "PROFILES", "CHOICES", "ITEMS", "TARGETS", "TOY_TARGETS", "PAPER_TABLE1", "PAPER_TABLE5",
           "methods",
           "runs_to_train", "train_all", "table1_error", "table1_key", "numbers", "seconds", "figure2", "table1",
           "table5", "variants_table", "figure_ntebm_variants"]

TARGETS = ("8gaussians", "rings")  # the paper's targets (the default of the ``targets`` parameter)
TOY_TARGETS = ("8gaussians", "rings", "moons", "pinwheel", "checkerboard")  # what ``targets`` accepts
PAPER_TABLE1 = {  # median squared log-density error, paper Table 1 (rows in the paper's order)
    "ula": {"8gaussians": 1.86, "rings": 5.39},
    "ntebm": {"8gaussians": 0.97, "rings": 0.62},
    "coopflow": {"8gaussians": 58.75, "rings": 7.78},
    "flowmc": {"8gaussians": 0.94, "rings": 0.40},
}
PAPER_TABLE5 = bench.paper_hyperparameters("flowMC with 1 global step and 127 mala local steps", 128,
                                           "subsampling by 4")
VARIANTS = {"": "the chapter's run", "reverse_kl": "NT-EBM, flow pre-trained by reverse KL to p*",
            "full_steps": "CoopFlow at coopflow_full_steps Langevin steps"}


@dataclass(frozen=True)
class Config(bench.BenchmarkConfig):
    targets: tuple[str, ...]  # toy targets: 8gaussians, rings, moons, pinwheel, checkerboard (paper: the first two)
    n_eval: int  # held-out p* samples on which Table 1's median is taken
    coopflow_full_steps: int  # CoopFlow's Langevin steps in one extra run on the first target (0: no extra run)

    NON_NEGATIVE: ClassVar[tuple[str, ...]] = bench.BenchmarkConfig.NON_NEGATIVE + ("coopflow_full_steps",)

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [t for t in self.targets if t not in TOY_TARGETS]
        if unknown:
            raise InputError(f"parameter 'targets': unknown target(s) {', '.join(map(repr, unknown))}; accepted "
                             f"targets: {', '.join(TOY_TARGETS)}")
        twice = sorted({t for t in self.targets if self.targets.count(t) > 1})
        if twice:
            raise InputError(f"parameter 'targets' lists {', '.join(map(repr, twice))} more than once: "
                             f"{','.join(self.targets)}")

    @property
    def reverse_kl_targets(self) -> tuple[str, ...]:
        """The targets of NT-EBM's reverse-KL reading: the paper's, among ``targets``."""
        return tuple(t for t in self.targets if t in TARGETS)


PAPER = {**bench.PAPER_SETTINGS, "flowmc_blocks": 1, "flowmc_local_steps": 127, "flowmc_keep": 4, "n_eval": 4096,
         "coopflow_full_steps": 0, "targets": TARGETS}
CPU = {**PAPER, "epochs": 2, "ula_steps": 32, "ntebm_steps": 8, "coopflow_steps": 32, "flowmc_local_steps": 15,
       "lr_ntebm": 1e-3, "coopflow_full_steps": 256}
PROFILES = {
    "smoke": {**CPU, "n_data": 1024, "epochs": 1, "n_persistent": 256, "ula_steps": 4, "ntebm_steps": 2,
              "coopflow_steps": 2, "coopflow_full_steps": 4, "flowmc_local_steps": 3, "n_particles": 8,
              "pretrain_steps": 8, "grid_size": 48, "n_eval": 256},
    "cpu": CPU,
    "paper": PAPER,
}
CHOICES = bench.SHARED_CHOICES + (
    "Table 1 metric: the median over `n_eval` held-out samples of p* of (log p_theta - log p*)^2, p_theta "
    "normalised by a Riemann sum on a `grid_size`² grid over the plotting box ([-2.5, 2.5]^2 for 8 Gaussians, "
    "[-5, 5]^2 for Rings, [-4, 4]^2 for two moons, [-4.5, 4.5]^2 for pinwheel and checkerboard). A diverged run "
    "has no entry: its cell reads 'diverged (it. N)'.",
    "Targets beyond the paper's (`targets`): two moons (its log p* a reference density: the noise integral along "
    "each arc by the midpoint rule on 256 nodes, within 0.01 of the exact integral where p* > 1e-4), pinwheel "
    "(FFJORD's five arms with the turn driven by the radius, which makes log p* exact) and checkerboard "
    "(uniform on 8 squares: exact, -inf off them, so Table 1 is read at p*'s samples only). The same "
    "hyper-parameters as for the paper's targets; the tilt's variance is each target's own.",
    "flowMC-EBM: 1 i-SIR step + `flowmc_local_steps` MALA steps per iteration, subsampling by 4 (a quarter of the "
    "batch's chains each give 4 evenly spaced states, the last included).",
    "NT-EBM's 'reverse KL' reading (shown once, beside the default, on the paper's targets among `targets`): "
    "the flow pre-trained by reverse KL towards p*'s exact log-density, everything else unchanged.",
    "The cpu profile runs 2 of the paper's 100 epochs (468 iterations) with 32 of 512 ULA steps, 8 of 128 latent "
    "MALA steps, 32 of 256 CoopFlow steps and 1 + 15 of 1 + 127 flowMC steps per iteration; data, batch, bank "
    "and pre-training are the paper's. One extra CoopFlow run on the first target (8 Gaussians by default) at "
    "the paper's 256 steps shows what the cut costs.",
    "Learning rates: the paper's, except NT-EBM at 1e-3 in the cpu profile: at the paper's 1e-2 its training "
    "diverged on both targets (energy gap above `divergence_gap`; with the faithful flow tilt and the frozen "
    "maximum-likelihood flow, as Nijkamp et al. define it).",
)


def table1_key(method: str, target: str, variant: str = "", quantity: str = "") -> str:
    """Glue key of a Table 1 number: ``table1_flowmc_rings`` (the error), ``table1_ntebm_reverse_kl_rings``
    (a variant's error), ``..._diverged_at`` (iteration, 0 = none), ``..._energy_gap``, ``..._step_size`` and
    ``..._flow`` (NT-EBM's adapted step, its flow alone), ``..._seconds``."""
    return "_".join(["table1", method] + [p for p in (variant, target, quantity) if p])


def _worst_if_nan(value: float) -> float:
    return math.inf if math.isnan(value) else value


# Outcomes over the committed cpu seeds that are not "all" (tests/test_claims.py checks them).
_TABLE1_OUTCOMES = {"8gaussians": dict(
    expected="some",
    why_not="NT-EBM, as Nijkamp et al. define it (a maximum-likelihood flow, frozen, tilted by the EBM), is as "
            "accurate on 8 Gaussians ({table1_ntebm_8gaussians:.2f} against flowMC-EBM's "
            "{table1_flowmc_8gaussians:.2f}): the two are within seed noise of each other, and which is lower "
            "changes from seed to seed")}


def _table1_claims() -> tuple[Claim, ...]:
    labels = {m: label(m) for m in METHODS}
    claims = [lowest({m: table1_key(m, t) for m in METHODS}, labels, {m: PAPER_TABLE1[m][t] for m in METHODS},
                     ".2f", f"Table 1 error on {bench.TARGET_LABELS[t]}", **_TABLE1_OUTCOMES.get(t, {}))
              for t in TARGETS]
    keys = {m: table1_key(m, "8gaussians") for m in METHODS}
    claims.append(Claim(
        "CoopFlow has the largest Table 1 error on 8 Gaussians",
        ", ".join(f"{labels[m]} {PAPER_TABLE1[m]['8gaussians']:.2f}" for m in METHODS),
        ", ".join(f"{labels[m]} {{{keys[m]}:.2f}}" for m in METHODS),
        "CoopFlow > every other method (a diverged run counts as worst)",
        lambda g: all(_worst_if_nan(g[keys["coopflow"]]) > _worst_if_nan(g[keys[m]]) for m in METHODS
                      if m != "coopflow")))
    return tuple(claims)


ITEMS = (
    PaperItem("Figure 2", "02_toy_benchmarks", "learned densities of the four methods on 8 Gaussians and Rings",
              rebuilt_by="toy_benchmarks.figure2"),
    PaperItem("Table 1", "02_toy_benchmarks", "median squared log-density error, 8 Gaussians and Rings",
              _table1_claims(), rebuilt_by="toy_benchmarks.table1"),
    PaperItem("Table 5", "02_toy_benchmarks", "hyper-parameters of the 8 Gaussians / Rings runs",
              rebuilt_by="toy_benchmarks.table5"),
)


def methods(config: Config, target: str) -> dict[str, Method]:
    """The four methods with the paper's Table 5 settings (ULA-EBM starts uniformly on ``target``'s box)."""
    return bench.make_methods(config, target)


def runs_to_train(config: Config) -> list[tuple[str, str, str]]:
    """(method, target, variant) of every training run: the four methods on every target, NT-EBM with the
    reverse-KL flow on the paper's targets, CoopFlow at ``coopflow_full_steps`` on the first target (when set)."""
    runs = [(m, t, "") for t in config.targets for m in METHODS]
    runs += [("ntebm", t, "reverse_kl") for t in config.reverse_kl_targets]
    return runs + ([("coopflow", config.targets[0], "full_steps")] if config.coopflow_full_steps else [])


def _method(config: Config, method: str, target: str, variant: str) -> Method:
    return bench.make_methods(config, target, ntebm_pretrain="reverse_kl" if variant == "reverse_kl" else "data",
                              coopflow_steps=config.coopflow_full_steps if variant == "full_steps" else None)[method]


def train_all(config: Config) -> dict[tuple[str, str, str], Run]:
    """Every run of ``runs_to_train``, by (method, target, variant); a diverged run is kept with its record."""
    data = {t: bench.make_data(config, t) for t in config.targets}
    return {(m, t, v): bench.train_method(config, t, _method(config, m, t, v), data[t],
                                          key="-".join(["02_toy_benchmarks", t, m] + ([v] if v else [])))
            for m, t, v in runs_to_train(config)}


def table1_error(log_density: Callable[[Tensor], Tensor], config: Config, target: str,
                 device: torch.device | str = "cpu") -> float:
    """Paper Table 1: median over ``n_eval`` held-out p* samples of (log p_theta - log p*)^2, the unnormalised
    ``log_density`` (evaluated on ``device``) normalised on the grid."""
    p_star = config.p_star(target)
    points = p_star.sample(config.n_eval, make_generator(config.seed, stream=f"table1/{target}"))
    log_model = normalized_log_density_at(log_density, points, bench.grid(config, target), device=device)
    return median_squared_log_error(log_model, p_star.log_prob(points))


def numbers(runs: dict[tuple[str, str, str], Run], config: Config) -> dict[str, float]:
    """Table 1's numbers for every run (NaN for a diverged one), the iteration of each divergence (0: none), the
    last energy gap |mean E(x-) - mean E(x+)|, and for NT-EBM its final adapted latent step and its frozen flow
    alone (how much of its error the backbone already has)."""
    values = {}
    for (m, t, v), run in runs.items():
        at = bench.diverged_at(run)
        values[table1_key(m, t, v)] = math.nan if at else table1_error(run.log_density, config, t, run.device)
        values[table1_key(m, t, v, "diverged_at")] = at
        values[table1_key(m, t, v, "energy_gap")] = run.energy_gap
        if m == "ntebm":
            values[table1_key(m, t, v, "step_size")] = run.method.step_size
            values[table1_key(m, t, v, "flow")] = table1_error(run.method.flow.log_prob, config, t, run.device)
    return values


def seconds(runs: dict[tuple[str, str, str], Run]) -> dict[str, float]:
    """Wall time of each run (pre-training included), glued apart: it differs between executions."""
    return {table1_key(m, t, v, "seconds"): run.seconds for (m, t, v), run in runs.items()}


def figure2(runs: dict[tuple[str, str, str], Run], config: Config):
    """Figure 2: the target and the four methods' normalised densities; one row per target (the paper's: 8
    Gaussians and Rings)."""
    fig, axes = plt.subplots(len(config.targets), 1 + len(METHODS), figsize=(BOOK_FIGURE_WIDTH, 1.65 * len(
        config.targets)), layout="constrained", squeeze=False)
    for row, t in zip(axes, config.targets):
        bench.density_row(list(row), {m: runs[m, t, ""] for m in METHODS}, config, t)
    return fig


def _cell(values: dict[str, float], method: str, target: str, variant: str = "", quantity: str = "") -> str:
    key = table1_key(method, target, variant, quantity)
    if key not in values:
        return "not run"
    at = 0 if quantity else values[table1_key(method, target, variant, "diverged_at")]
    return bench.table_cell(values[key], at, ".3g")


def table1(values: dict[str, float], config: Config) -> pd.DataFrame:
    """Paper Table 1 beside ours (rows in the paper's order), one column pair per target of ``config``; the paper's
    column reads "not in the paper" for a target it did not run."""
    def paper(m: str, t: str) -> float | str:
        return PAPER_TABLE1[m][t] if t in PAPER_TABLE1[m] else "not in the paper"

    return pd.DataFrame({label(m): {(bench.TARGET_LABELS[t], source): paper(m, t) if source == "paper"
                                    else _cell(values, m, t) for t in config.targets for source in ("paper", "ours")}
                         for m in PAPER_TABLE1}).T


def targets_markdown(config: Config) -> str:
    """This run's targets and their log-densities (exact, or the reference density where there is no closed form)."""
    return "This run's targets (the `targets` parameter):\n\n" + "\n".join(
        f"- **{bench.TARGET_LABELS[t]}**{'' if t in TARGETS else ' (not in the paper)'}: {bench.TARGET_DENSITIES[t]}."
        for t in config.targets)


def results_markdown(values: dict[str, float], config: Config) -> str:
    """One line per target of ``config``: the four errors, the lowest, and the paper's numbers where it ran it."""
    lines = []
    for t in config.targets:
        best = min(METHODS, key=lambda m: _worst_if_nan(values[table1_key(m, t)]))
        paper = f"paper: {', '.join(f'{label(m)} {PAPER_TABLE1[m][t]:.2f}' for m in METHODS)}" if t in TARGETS else None
        lines.append(methods_line(bench.TARGET_LABELS[t], {m: _cell(values, m, t) for m in METHODS},
                                  f"lowest: {label(best)}", paper))
    note = ("" if config.targets == TARGETS else "\n\nThis run's targets are not the paper's two. The discussion "
            "below was written for the paper's targets, 8 Gaussians and Rings: the numbers it cites for a target "
            "this run did not train on are missing.")
    return "Table 1's error on each target of this run:\n\n" + "\n".join(lines) + note


def table5(config: Config) -> pd.DataFrame:
    """Paper Table 5 beside the settings the code runs (each method's ``describe()``, 8 Gaussians' box)."""
    return bench.hyperparameter_table(methods(config, "8gaussians"), PAPER_TABLE5)


def variants_table(values: dict[str, float], config: Config) -> pd.DataFrame:
    """Table 1 errors of the baselines' readings: NT-EBM with either pre-training (and its frozen flow alone),
    CoopFlow at this profile's and at the full Langevin step count."""
    def row(method: str, variant: str) -> dict[tuple[str, str], str]:
        return {(bench.TARGET_LABELS[t], what): (_cell(values, method, t, variant, quantity)
                                                 if method == "ntebm" or not quantity else "—")
                for t in config.targets for what, quantity in (("EBM", ""), ("flow alone", "flow"))}

    return pd.DataFrame({
        ("NT-EBM", "flow by maximum likelihood on the data (default)"): row("ntebm", ""),
        ("NT-EBM", "flow by reverse KL to p*"): row("ntebm", "reverse_kl"),
        ("CoopFlow", f"{config.coopflow_steps} Langevin steps (this profile)"): row("coopflow", ""),
        ("CoopFlow", f"{config.coopflow_full_steps} Langevin steps"): row("coopflow", "full_steps")}).T


def figure_ntebm_variants(runs: dict[tuple[str, str, str], Run], config: Config):
    """NT-EBM's frozen flow and its EBM, with the flow pre-trained by maximum likelihood or by reverse KL."""
    fig, axes = plt.subplots(len(config.targets), 4, figsize=(BOOK_FIGURE_WIDTH, 2.05 * len(config.targets)),
                             layout="constrained", squeeze=False)
    for row, t in zip(axes, config.targets):
        box = bench.grid(config, t)
        for col, (variant, name) in enumerate((("", "max. likelihood"), ("reverse_kl", "reverse KL"))):
            if ("ntebm", t, variant) not in runs:  # reverse KL: the paper's targets only
                for ax in row[2 * col:2 * col + 2]:
                    ax.set_axis_off()
                row[2 * col].text(0.5, 0.5, f"flow: {name}\nnot run on\nthis target", ha="center", va="center",
                                  transform=row[2 * col].transAxes)
                continue
            run = runs["ntebm", t, variant]
            density_panel(row[2 * col], normalize_on_grid(run.method.flow.log_prob, box, device=run.device), box,
                          f"flow: {name}")
            bench.run_panel(row[2 * col + 1], run, config, t, "NT-EBM on it")
        row[0].set_ylabel(bench.TARGET_LABELS[t])
    return fig
