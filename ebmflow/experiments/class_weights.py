"""Class weights on real digits (beyond the paper; issue 11, item 4): does flowMC-EBM learn the relative weights
of the classes of an imbalanced data set better than ULA-EBM? Both train the same EBM on imbalanced digits (in
the space of their principal components); each trained EBM is then frozen and measured by ONE common sampler,
exact for the EBM, from several starts until the class mix no longer depends on the start; a classifier with a
reject option labels the decoded samples. The training chains' mix is reported separately, as the sampler's output.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import ClassVar, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from ..book.claims import Claim, PaperItem
from ..book.plotting import BOOK_FIGURE_WIDTH, color, label
from ..checks import InputError, check_probability, check_weights
from ..data import ImbalancedDigits, Measurement, measure_mix, refit, sampler_switches
from ..methods import FlowMCEBM, Method, ULAEBM
from ..models import DiagonalGaussian, RealNVP, ToyEnergy
from ..samplers import validate_schedule
from ..seeding import make_generator, resolve_device
from ..training import TrainingState
from .common import Run, checkpoint_for, train

__all__ = ["Config", "PROFILES", "CHOICES", "ITEMS", "DEFAULT_SEEDS", "methods", "load_data", "train_all",
           "measure", "own_switches", "key", "numbers", "verdicts", "summarize_seeds", "figure"]


@dataclass(frozen=True)
class Config:
    seed: int
    classes: tuple[int, ...]  # distinct digit classes 0-9 of the imbalanced training set
    proportions: tuple[float, ...]  # their proportions in it (one per class, positive, summing to 1)
    test_fraction: float  # share of the digits held out (the classifier's calibration and accuracy)
    n_components: int  # whitened principal components of the digits the EBMs live on
    epochs: int
    batch_size: int  # positives per iteration; as many persistent chains are advanced
    n_persistent: int  # persistent chains
    lr: float  # Adam, EBM and flow (both methods)
    ebm_average: float  # EMA decay of the EBM's parameters reported as each method's model (both methods; 0: off)
    lr_decay: float  # learning rates multiplied by lr_decay every lr_decay_every iterations
    lr_decay_every: int
    energy_l2: float  # lambda of the L2 energy regulariser (0: off)
    energy_width: int  # width of the EBM's MLP (n_components -> w -> 2w -> 2w -> 2w -> 1)
    flow_couplings: int  # RealNVP coupling layers (flowMC-EBM's flow and the common sampler's)
    flow_hidden: int  # hidden units of the coupling MLPs
    flowmc_schedule: str  # L: MALA step, G: i-SIR step (flowMC-EBM)
    flowmc_step_size: float  # MALA step of flowMC-EBM (and the common sampler's initial step)
    n_particles: int  # i-SIR candidates per global step of flowMC-EBM
    ula_steps: int  # ULA steps per iteration (ULA-EBM)
    ula_step_size: float
    mix_every: int  # iterations between two class-mix measurements of the training chains
    confidence: float  # the classifier rejects images whose largest class probability is below this
    measure_chains: int  # common sampler: chains per start (noise, and real images of each class)
    measure_schedule: str  # common sampler: each step runs this schedule of G (i-SIR) and L (MALA) moves
    measure_particles: int  # common sampler: i-SIR candidates per global move
    refit_steps: int  # maximum-likelihood steps of the common sampler's flow before it starts
    adapt_steps: int  # ... and after each of its first measure_block steps, on all chains seen so far
    measure_block: int  # common sampler steps between two R-hat checks (the first block adapts, discarded)
    measure_max_steps: int  # the common sampler's step budget after its first block
    rhat_target: float  # stop when the R-hat of the class labels is below this
    own_iterations: int  # iterations of each method's own sampler for its class switches
    device: str  # "cpu", "cuda" or "auto"
    stop_after: int  # stop each training run after this many iterations (0: train fully)

    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("energy_l2", "stop_after", "classes", "ebm_average")

    def __post_init__(self) -> None:
        validate_schedule(self.flowmc_schedule), validate_schedule(self.measure_schedule), resolve_device(self.device)
        check_probability("test_fraction", self.test_fraction), check_probability("confidence", self.confidence)
        classes, proportions = self.classes, self.proportions
        check_weights("proportions", proportions), methods(self)  # the methods check their knobs up front
        if len(classes) != len(proportions) or len(set(classes)) != len(classes) or not set(classes) <= set(range(10)):
            raise InputError(f"classes {classes!r} and proportions {proportions!r} need one proportion per distinct "
                             f"digit 0-9")
        if self.lr_decay > 1 or self.rhat_target <= 1 or self.n_components > 64:
            raise InputError(f"need lr_decay in (0, 1], rhat_target > 1 and n_components <= 64 (8x8 pixels), got "
                             f"{self.lr_decay}, {self.rhat_target}, {self.n_components}")


DEFAULT_SEEDS = (0, 1, 2, 3, 4)  # `ebmflow reproduce` runs five seeds: the verdict is a paired comparison over seeds
CPU = dict(seed=0, classes=(0, 1, 7), proportions=(0.6, 0.3, 0.1), test_fraction=0.2, n_components=16, epochs=800,
           batch_size=64, n_persistent=512, lr=1e-3, ebm_average=0.95, lr_decay=0.99, lr_decay_every=50, energy_l2=1e-4,
           energy_width=32, flow_couplings=6, flow_hidden=32, flowmc_schedule="G" + "L" * 8, flowmc_step_size=1e-2,
           n_particles=16, ula_steps=30, ula_step_size=3e-3, mix_every=60, confidence=0.9, measure_chains=16,
           measure_schedule="GLLLL", measure_particles=32, refit_steps=1000, adapt_steps=20, measure_block=50,
           measure_max_steps=800, rhat_target=1.05, own_iterations=10, device="cpu", stop_after=0)
PROFILES = {
    "smoke": {**CPU, "epochs": 2, "n_persistent": 64, "flow_couplings": 2, "flow_hidden": 8, "flowmc_schedule": "GLL",
              "n_particles": 4, "ula_steps": 3, "mix_every": 2, "measure_chains": 4, "measure_particles": 4,
              "refit_steps": 5, "adapt_steps": 1, "measure_block": 4, "measure_max_steps": 8, "own_iterations": 2},
    "cpu": CPU,
    "paper": {**CPU, "epochs": 3000, "measure_chains": 32, "refit_steps": 2000, "measure_max_steps": 4000,
              "device": "auto"},
}
CHOICES = (
    "Beyond the paper, so no paper setting: the paper profile only trains and measures longer.",
    "Data: scikit-learn's 8x8 digits split 80/20 at random; the training set is the largest subset of the training "
    "split with `classes` in `proportions` (the truth), dequantised afresh every batch. The EBMs live on the first "
    "`n_components` whitened principal components of all training digits: in pixel space, at a CPU budget, both "
    "EBMs grew deep spurious wells that the common sampler never crossed (its label R-hat stayed far above 1.05).",
    "Models: the toy EBM tilted by rho = N(0, I); flowMC-EBM with a RealNVP on rho; ULA-EBM's chains start from rho, "
    "unclipped. Same EBM initialisation per seed, learning rate, decay and L2 regulariser (chapter 05's recipe).",
    "Classifier: a logistic regression over all ten digits on projected training digits; it rejects an image whose "
    "largest class probability is below `confidence` or that is farther from every training image than 99 % of the "
    "projected test images are. Shares are over non-rejected samples; other digits count as errors.",
    "Common sampler (the same for both methods, exact for the EBM): a fresh RealNVP fitted by maximum likelihood "
    "(`refit_steps` Adam steps, lr 1e-3) on the method's final chains and the training images; steps of "
    "`measure_schedule` (i-SIR, `measure_particles` candidates; MALA) from `measure_chains` chains from noise (rho) "
    "and as many from training images of each class. The first `measure_block` steps adapt (MALA step to 60 % "
    "acceptance; `adapt_steps` flow steps on all chains so far) and are dropped; then the kernel is fixed.",
    "Stopping: every `measure_block` steps, the largest rank-normalised split R-hat of the label indicators (ten "
    "digits and 'rejected') over all chains, on the second half of the draws; stop below `rhat_target`. If "
    "`measure_max_steps` ends first, the numbers are kept with their R-hat and converged = 0 (they still depend on "
    "the starts; the text says so). A diverged training run gives NaN.",
    "Reported on the second half of the draws: the largest absolute class-share error over the ten digits (max "
    "error), the shares, the rejected share, R-hat, class switches per step (a label differing from the chain's "
    "last non-rejected one). Separately: the training chains' mix every `mix_every` iterations, its drift (largest "
    "change of a share between the last two quarters) and own-sampler switches per iteration (`own_iterations`).",
    "cpu profile (about 2.3 minutes per seed, one CPU thread): 16 components, 800 epochs (2400 iterations), ULA-EBM "
    "30 steps of 3e-3 (10 of 1e-2 diverged), flowMC-EBM G + 8 L with 16 candidates; common sampler 64 chains, 50 "
    "adaptation steps, then at most 800 steps of G + 4 L with 32 candidates. One seed per notebook (seeds 0-4).",
)
ITEMS = (
    PaperItem("Class weights (beyond the paper)", "06_class_weights", "imbalanced digits: class proportions of each "
              "trained EBM, measured by one common sampler", (
                  Claim("flowMC-EBM's class proportions are closer to the data's than ULA-EBM's (this seed)",
                        "not measured in the paper (its motivation)",
                        "max error flowMC-EBM {cw_maxerr_flowmc:.3f}, ULA-EBM {cw_maxerr_ula:.3f}",
                        "largest absolute class-proportion error: flowMC-EBM < ULA-EBM",
                        lambda g: g["cw_maxerr_flowmc"] < g["cw_maxerr_ula"], expected="some",
                        why_not="the trained EBMs' class proportions vary widely from seed to seed at the cpu "
                                "budget (max error flowMC-EBM {cw_maxerr_flowmc:.3f}, ULA-EBM "
                                "{cw_maxerr_ula:.3f}): which of the two is closer changes with the seed"),
              ), rebuilt_by="class_weights.measure"),
)


def methods(config: Config) -> dict[str, Method]:  # the same learning rate; the chains of both start from rho
    flow = partial(RealNVP, n_couplings=config.flow_couplings, hidden=config.flow_hidden)
    return {"flowmc": FlowMCEBM(lr=config.lr, schedule=config.flowmc_schedule, step_size=config.flowmc_step_size,
                                n_particles=config.n_particles, make_flow=flow, ebm_average=config.ebm_average),
            "ula": ULAEBM(lr=config.lr, step_size=config.ula_step_size, n_steps=config.ula_steps, init="rho",
                          ebm_average=config.ebm_average)}


def load_data(config: Config) -> ImbalancedDigits:
    """The digits, the imbalanced training set, the components of all training digits, the classifier."""
    return ImbalancedDigits.build(config.classes, config.proportions, n_components=config.n_components,
                                  test_fraction=config.test_fraction, confidence=config.confidence, seed=config.seed)


def train_all(config: Config, study: ImbalancedDigits) -> dict[str, Run]:
    """Both methods; the class mix of the whole persistent bank every ``mix_every`` iterations."""

    def evaluate(state: TrainingState) -> dict:
        shares, rejected = study.classifier.proportions(study.pca.decode(state.method.positions(state.bank)))
        return {**{f"mix_{c}": float(s) for c, s in enumerate(shares)}, "mix_rejected": rejected}

    energy = partial(ToyEnergy, config.n_components, config.energy_width)  # the same initialisation for both
    return {name: train(method, study.centres(), energy=energy(generator=make_generator(config.seed, stream="energy")),
                        base=DiagonalGaussian(config.n_components), seed=config.seed, epochs=config.epochs,
                        batch_size=config.batch_size, n_persistent=config.n_persistent, device=config.device,
                        evaluate=evaluate, eval_every=config.mix_every, energy_l2=config.energy_l2,
                        lr_decay=(config.lr_decay, config.lr_decay_every), stop_after=config.stop_after or None,
                        batch_transform=study.pca.dequantizer(study.digits.levels),
                        checkpoint=checkpoint_for(f"06_class_weights-{name}", config))
            for name, method in methods(config).items()}


def measure(run: Run, config: Config, study: ImbalancedDigits) -> Measurement | None:
    """The common sampler on ``run``'s frozen EBM (None if it diverged): a fresh flow fitted on its bank and the
    training images (then on the sampler's chains), ``measure_mix`` from noise and images of each class."""
    if run.divergence is not None:
        return None
    device = resolve_device(config.device)
    generator = make_generator(config.seed, device, f"{run.name}/measure")
    images_, base = study.images(generator), DiagonalGaussian(config.n_components).to(device)
    flow = RealNVP(base, config.flow_couplings, config.flow_hidden, generator=generator).to(device)
    adapt = refit(flow, torch.cat([run.bank_positions(), images_]), n_steps=config.refit_steps,
                  adapt_steps=config.adapt_steps, generator=generator)
    starts, labels = [base.sample_with_log_prob(config.measure_chains, generator)[0]], study.labels.to(device)
    for rows in (torch.nonzero(labels == c).squeeze(1) for c in config.classes):
        starts.append(images_[rows[torch.randint(len(rows), starts[0].shape[:1], generator=generator, device=device)]])
    return measure_mix(run.log_density, flow, torch.cat(starts), study.labeller, 10, schedule=config.measure_schedule,
                       n_particles=config.measure_particles, block=config.measure_block, adapt=adapt,
                       max_steps=config.measure_max_steps, rhat_target=config.rhat_target, generator=generator,
                       step_size=config.flowmc_step_size)


def own_switches(run: Run, config: Config, study: ImbalancedDigits, n_chains: int = 64) -> float:
    """Class switches per chain and training iteration of the method's own sampler, from its final bank."""
    generator = make_generator(config.seed, resolve_device(config.device), f"{run.name}/own")
    bank = run.history.final_chains
    chains = bank[torch.randperm(len(bank), generator=generator, device=generator.device)[:n_chains]]
    return sampler_switches(run.method, chains, study.labeller, config.own_iterations, generator)


def key(quantity: str, method: str = "") -> str:
    """Glue key of a class-weight number, e.g. ``cw_maxerr_flowmc``, ``cw_p7_ula``, ``cw_maxerr_diff``."""
    return f"cw_{quantity}_{method}" if method else f"cw_{quantity}"


def _mix(run: Run) -> Tensor:  # the training chains' mix at each measurement (measurements, 10)
    return torch.tensor([run.history.evaluations[f"mix_{c}"] for c in range(10)], dtype=torch.float64).T


def numbers(runs: dict[str, Run], measured: dict[str, Measurement | None], own: dict[str, float],
            study: ImbalancedDigits) -> dict[str, float]:
    """Per-seed numbers: per method, the common sampler's max error, shares, rejected share, R-hat, switches... and
    the training chains' mix, max error, drift, own switches; flowMC-EBM minus ULA-EBM max error (``maxerr_diff``)."""
    true, nan = study.truth, math.nan
    out = {key("classifier_accuracy"): study.classifier.test_accuracy, key("n_train"): len(study.labels),
           key("classifier_rejected"): study.classifier.test_rejected,
           **{key(f"truth_p{c}"): float(p) for c, p in enumerate(true) if p > 0}}
    for name, m in measured.items():
        mix, run = _mix(runs[name]), runs[name]
        quarter = max(1, len(mix) // 4)
        drift = float((mix[-quarter:].nanmean(0) - mix[-2 * quarter:-quarter].nanmean(0)).abs().max()) if len(mix) > 1 \
            else nan
        shares = m.shares if m else torch.full((10,), nan, dtype=torch.float64)
        measured_ = ("rejected", "rhat", "switches", "steps", "converged", "global_acceptance")
        out.update({key("maxerr", name): float((shares - true).abs().max()), key("own_switches", name): own[name],
                    **{key(q, name): float(getattr(m, q)) if m else nan for q in measured_},
                    key("train_maxerr", name): float((mix[-1] - true).abs().max()), key("train_drift", name): drift,
                    key("train_rejected", name): run.history.evaluations["mix_rejected"][-1],
                    key("diverged_at", name): run.divergence.iteration if run.divergence else 0,
                    **{key(f"p{c}", name): float(s) for c, s in enumerate(shares)},
                    **{key(f"train_p{c}", name): float(s) for c, s in enumerate(mix[-1])}})
    out[key("maxerr_diff")] = out[key("maxerr", "flowmc")] - out[key("maxerr", "ula")]
    return out


def verdicts(numbers: Mapping[str, float]) -> dict[str, str]:
    """The words the chapter glues beside its numbers, decided from the same numbers."""
    diff, prefix = numbers[key("maxerr_diff")], key("truth_p")
    return {key("truth_text"): ", ".join(f"digit {k[len(prefix):]} {v:.2f}" for k, v in numbers.items() if prefix in k),
            key("verdict"): "not comparable with" if math.isnan(diff) else "smaller than" if diff < 0 else
            "not smaller than", **{key("converged_text", m): "below the target: this mix no longer depends on where "
            "the chains started" if numbers[key("converged", m)] == 1 else "not below the target when the step "
            "budget ended (or the run diverged): this mix still depends on the starts" for m in ("flowmc", "ula")}}


def summarize_seeds(per_seed: Sequence[Mapping[str, float]], quantity: str = "maxerr",
                    pair: Sequence[str] = ("flowmc", "ula"), level: float = 0.95) -> dict[str, float]:
    """Mean and sd over seeds of each method's ``quantity`` and a paired ``level`` t-interval of the difference
    (first method minus second), from the per-seed glued dicts (the summary layer calls this)."""
    from scipy.stats import t

    values = {m: np.array([float(g[key(quantity, m)]) for g in per_seed]) for m in pair}
    out: dict[str, float] = {"n_seeds": len(per_seed)}
    for m, v in values.items():
        out[f"{key(quantity, m)}_mean"] = float(v.mean())
        out[f"{key(quantity, m)}_sd"] = float(v.std(ddof=1)) if len(v) > 1 else math.nan
    diff = values[pair[0]] - values[pair[1]]
    n = len(diff)
    half = t.ppf((1 + level) / 2, n - 1) * diff.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
    name = key(f"{quantity}_diff")
    out.update({f"{name}_mean": float(diff.mean()), f"{name}_low": float(diff.mean()) - half,
                f"{name}_high": float(diff.mean()) + half})
    return out


def figure(runs: dict[str, Run], measured: dict[str, Measurement | None], study: ImbalancedDigits):
    """(a, b) the training chains' class mix along training, true proportions dashed; (c) the true proportions
    beside each method's, measured by the common sampler (solid) and on its final training chains (hatched)."""
    true, palette, classes = study.truth, plt.get_cmap("tab10"), torch.nonzero(study.truth).squeeze(1).tolist()
    fig = plt.figure(figsize=(BOOK_FIGURE_WIDTH, 6.0), layout="constrained")
    axes = list(fig.subplot_mosaic("ab;cc").values())  # (a) (b) on top, (c) below at full width
    for ax, (panel, name) in zip(axes, zip("ab", runs)):
        iterations, mix = runs[name].history.evaluations["iteration"], _mix(runs[name])
        for i, c in enumerate(classes):
            ax.plot(iterations, mix[:, c], color=palette(i), label=f"digit {c}")
            ax.axhline(float(true[c]), color=palette(i), ls="--", lw=1)
        ax.plot(iterations, 1 - mix[:, list(classes)].sum(1), color="0.5", label="other digits")
        ax.plot(iterations, runs[name].history.evaluations["mix_rejected"], ":", color="k", label="rejected (of all)")
        ax.set(title=f"({panel}) {label(name)}", xlabel="iteration", ylim=(-0.02, 1.02),
               ylabel="training chains' class mix" if panel == "a" else "")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    grouped = lambda shares: [float(shares[c]) for c in classes] + [1 - sum(float(shares[c]) for c in classes)]  # noqa
    bars = [("training data (truth)", grouped(true), "0.3", "")]
    for name, shares in ((n, m.shares if m else torch.full((10,), math.nan)) for n, m in measured.items()):
        bars += [(f"{label(name)}: common sampler", grouped(shares), color(name), ""),
                 (f"{label(name)}: training chains", grouped(_mix(runs[name])[-1]), color(name), "//")]
    width = 0.8 / len(bars)
    for i, (text, values, colour, hatch) in enumerate(bars):
        x = np.arange(len(classes) + 1) + (i - (len(bars) - 1) / 2) * width
        axes[2].bar(x, values, width, color="white" if hatch else colour, edgecolor=colour, hatch=hatch, label=text)
    axes[2].set_xticks(np.arange(len(classes) + 1), [f"digit {c}" for c in classes] + ["other digits"])
    axes[2].set(title="(c) class proportions (non-rejected samples)", ylim=(0, 1), ylabel="class proportion")
    axes[2].legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    return fig
