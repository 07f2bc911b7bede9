"""Reading class proportions off a model: a classifier with a reject option, and a common sampler run until
the class mix of its chains no longer depends on where they started (label R-hat, class switches).

A logistic regression over every class of the data set (not only the classes a model was trained on, so
an image of another class is counted as such) labels an image when it is confident (largest class
probability >= ``confidence``) AND the image resembles real images (its distance to the nearest training
image is at most the ``distance_quantile`` of the held-out test images' distances). Anything else is
rejected: noise, blank or saturated images, blends of two digits. A linear classifier alone would label
noise and blank images with high confidence (it extrapolates linearly), hence the distance gate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from ..checks import check_generator, check_probability
from ..models import maximum_likelihood_step, pretrain_maximum_likelihood
from ..samplers import LogDensity, Proposal, flowmc, isir, mala, run_chains
from .images import Dequantize, ImageData

__all__ = ["REJECTED", "RejectingClassifier", "label_rhat", "class_switches", "sampler_switches", "Measurement",
           "refit", "measure_mix"]

REJECTED = -1  # the label of a rejected image


@dataclass
class RejectingClassifier:
    model: Any  # sklearn LogisticRegression on pixels in [-1, 1]
    neighbours: Any  # sklearn NearestNeighbors on the training images
    max_distance: float  # images farther than this from every training image are rejected
    confidence: float  # images whose largest class probability is below this are rejected
    n_classes: int
    test_accuracy: float  # on the held-out test images it does not reject
    test_rejected: float  # share of held-out test images it rejects (real digits: the floor of any sample's)

    @classmethod
    def fit(cls, data: ImageData, generator: torch.Generator, confidence: float = 0.9,
            distance_quantile: float = 0.99,
            project: Callable[[Tensor], Tensor] | None = None) -> "RejectingClassifier":
        """Fit on the dequantised training images of every class; calibrate the distance gate on the test
        images (their ``distance_quantile``) and report accuracy and rejected share on them. With ``project``,
        the images are first mapped by it (e.g. onto principal components) to match the samples' space."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.neighbors import NearestNeighbors

        check_generator(generator)
        check_probability("confidence", confidence)
        check_probability("distance_quantile", distance_quantile)
        dequantize = Dequantize(data.levels, data.image_shape)
        project = project or (lambda x: x)
        train = project(dequantize(data.train.flatten(1), generator)).numpy()
        test = project(dequantize(data.test.flatten(1), generator)).numpy()
        model = LogisticRegression(C=10.0, max_iter=5000).fit(train, data.train_labels.numpy())
        neighbours = NearestNeighbors(n_neighbors=1).fit(train)
        max_distance = float(np.quantile(neighbours.kneighbors(test)[0][:, 0], distance_quantile))
        classifier = cls(model, neighbours, max_distance, confidence, int(data.train_labels.max()) + 1,
                         float("nan"), float("nan"))
        labels = classifier.labels(torch.from_numpy(test)).numpy()
        kept = labels != REJECTED
        classifier.test_rejected = float(1 - kept.mean())
        classifier.test_accuracy = float((labels[kept] == data.test_labels.numpy()[kept]).mean())
        return classifier

    def labels(self, images: Tensor) -> Tensor:
        """Class of each image (n, d) or (n, C, H, W) in [-1, 1], or REJECTED; a non-finite image is rejected."""
        x = images.detach().flatten(1).double().cpu()
        finite = torch.isfinite(x).all(dim=1)
        x = torch.where(finite[:, None], x, torch.zeros_like(x)).numpy()
        probabilities = self.model.predict_proba(x)
        labels = self.model.classes_[probabilities.argmax(axis=1)]
        close = self.neighbours.kneighbors(x)[0][:, 0] <= self.max_distance
        keep = (probabilities.max(axis=1) >= self.confidence) & close & finite.numpy()
        return torch.from_numpy(np.where(keep, labels, REJECTED).astype(np.int64))

    def proportions(self, images: Tensor) -> tuple[Tensor, float]:
        """Share of each class among the images it does not reject (n_classes,), and the rejected share."""
        labels = self.labels(images)
        kept = labels[labels != REJECTED]
        shares = (torch.bincount(kept, minlength=self.n_classes).double() / len(kept) if len(kept)
                  else torch.full((self.n_classes,), float("nan"), dtype=torch.float64))
        return shares, float((labels == REJECTED).double().mean())


def label_rhat(labels: Tensor, n_labels: int) -> float:
    """Largest rank-normalised split R-hat over the indicators of each label present in ``labels`` (draws,
    chains; REJECTED counts as one more label); inf when some label's chains never vary but disagree."""
    from arviz_stats.base import array_stats

    codes = torch.where(labels == REJECTED, n_labels, labels)
    worst = 1.0
    for value in codes.unique():
        indicator = (codes == value).double().T.numpy()  # (chains, draws)
        if indicator.min() == indicator.max():
            continue
        with np.errstate(divide="ignore", invalid="ignore"):  # a label constant within every chain: inf
            rhat = float(array_stats.rhat(indicator, chain_axis=0, draw_axis=1, method="rank"))
        worst = max(worst, rhat if math.isfinite(rhat) else math.inf)
    return worst


def class_switches(labels: Tensor) -> float:
    """Class switches per chain and step in ``labels`` (steps, chains): a chain switches when its label is a
    class different from its last non-rejected one (a passage through rejected images is not a switch by
    itself)."""
    last, switches = labels[0].clone(), 0
    for current in labels[1:]:
        seen = current != REJECTED
        switches += int((seen & (last != REJECTED) & (current != last)).sum())
        last = torch.where(seen, current, last)
    return switches / max(1, (len(labels) - 1) * labels.shape[1])


def sampler_switches(method: Any, chains: Tensor, labeller: Callable[[Tensor], Tensor], n_iterations: int,
                     generator: torch.Generator) -> float:
    """Class switches per chain and iteration of a training method's own sampler (``method.sample``, as in
    training) run ``n_iterations`` iterations from ``chains``."""
    labels = [labeller(method.positions(chains))]
    for _ in range(n_iterations):
        chains = method.sample(method.starts(chains, generator), generator).chains
        labels.append(labeller(method.positions(chains)))
    return class_switches(torch.stack(labels))


def refit(flow: nn.Module, data: Tensor, *, n_steps: int, adapt_steps: int,
          generator: torch.Generator) -> Callable[[Tensor], None]:
    """Fit ``flow`` by maximum likelihood on ``data`` (``n_steps`` Adam steps, lr 1e-3, batches of 128) and return
    ``adapt(positions)``, which adds ``positions`` to the data and takes ``adapt_steps`` more steps."""
    pretrain_maximum_likelihood(flow, data, n_steps=n_steps, lr=1e-3, batch_size=128, generator=generator,
                                desc="common sampler's flow")
    optimizer, seen = torch.optim.Adam(flow.parameters(), lr=1e-3), [data]

    def adapt(positions: Tensor) -> None:
        seen.append(positions.detach())
        pool = torch.cat(seen)
        for _ in range(adapt_steps):
            rows = torch.randint(len(pool), (128,), generator=generator, device=pool.device)
            maximum_likelihood_step(flow, optimizer, pool[rows])

    return adapt


@dataclass
class Measurement:
    shares: Tensor  # (n_labels,) class proportions among the non-rejected samples
    rejected: float  # share of rejected samples
    rhat: float  # of the class labels over all chains (second half of the draws)
    switches: float  # class switches per chain and step (second half of the draws)
    steps: int  # steps after the adaptation block
    converged: bool  # rhat < target before the budget ended
    global_acceptance: float  # share of i-SIR moves to a fresh flow proposal (after adaptation)
    samples: Tensor  # the chains' final positions


def measure_mix(log_density: LogDensity, flow: Proposal, starts: Tensor, labeller: Callable[[Tensor], Tensor],
                n_labels: int, *, schedule: str, n_particles: int, block: int, max_steps: int, rhat_target: float,
                generator: torch.Generator, step_size: float = 1e-3,
                adapt: Callable[[Tensor], None] | None = None) -> Measurement:
    """Run the common sampler (i-SIR from ``flow`` + MALA, one ``schedule`` per step) on ``log_density`` from
    ``starts`` until the R-hat of the labels is below ``rhat_target`` or ``max_steps`` steps. The first ``block``
    steps adapt, and are discarded: the MALA step towards 60 % acceptance, and the flow through ``adapt(positions)``
    after each step (e.g. maximum-likelihood steps on the chains); then both are fixed, so every later step
    leaves ``log_density`` invariant (flowMC's tuning and production phases)."""
    global_ = isir(log_density, flow, n_particles)
    adaptive = flowmc(schedule, mala(log_density, step_size, target_acceptance=0.6), global_)
    state = adaptive.init(starts)
    for _ in range(block):
        state, _, _ = run_chains(adaptive, state, 1, generator)
        if adapt is not None:
            adapt(state.position)
    kernel = flowmc(schedule, mala(log_density, state.step_size), global_)
    labels, steps, rhat, accepted = [], 0, math.inf, []
    while steps < max_steps:
        state, trajectory, infos = run_chains(kernel, state, min(block, max_steps - steps), generator, record=True)
        labels += [labeller(x) for x in trajectory]
        accepted += [info.global_acceptance for info in infos]
        steps += len(trajectory)
        rhat = label_rhat(torch.stack(labels[len(labels) // 2:]), n_labels)
        if rhat < rhat_target:
            break
    kept = torch.stack(labels[len(labels) // 2:])
    counted = kept[kept != REJECTED]
    shares = (torch.bincount(counted, minlength=n_labels).double() / len(counted) if len(counted)
              else torch.full((n_labels,), math.nan, dtype=torch.float64))  # everything rejected: no mix
    return Measurement(shares, float((kept == REJECTED).double().mean()), rhat, class_switches(kept), steps,
                       rhat < rhat_target, float(np.mean(accepted)), state.position)
