"""Persistent-chain maximum-likelihood training of a tilted EBM (paper Eq. 6, Algorithm 1).

p^rho_theta(x) ∝ exp(-E_theta(x)) rho(x). Each iteration: a data batch (step 1), negatives from the
method's sampler started at a random batch of the persistent bank (step 2), the bank overwritten (step 3),
a gradient step on L(theta) = mean E(x+) - mean E(x-) (step 4, Appendix B), then the method's own update
(step 5: the flow's maximum-likelihood step for flowMC-EBM).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch
from torch import Tensor, nn

from ..flows import DiagonalGaussian
from ..progress import progress_bar
from ..samplers import LogDensity

__all__ = ["NegativeSampler", "TrainingDivergedError", "History", "fit_ebm"]


class TrainingDivergedError(RuntimeError):
    """Raised when energies or chains stop being finite or explode."""


class NegativeSampler(Protocol):
    def init_chains(self, n: int, dim: int, generator: torch.Generator) -> Tensor: ...

    def sample(self, x: Tensor, log_target: LogDensity, generator: torch.Generator) -> tuple[Tensor, dict]: ...

    def update(self, negatives: Tensor) -> dict: ...


@dataclass
class History:
    """What the figures need: per-iteration losses and sampler statistics, and periodic evaluations."""

    steps: dict[str, list[float]] = field(default_factory=dict)
    evaluations: dict[str, list] = field(default_factory=dict)
    final_chains: Tensor | None = None  # the persistent bank at the end of training

    def log(self, where: dict[str, list], values: dict) -> None:
        for key, value in values.items():
            where.setdefault(key, []).append(value)


def tilted_log_density(energy: nn.Module, base: DiagonalGaussian) -> LogDensity:
    """log pi(x) = -E_theta(x) + log rho(x) (paper Eq. 6)."""
    return lambda x: -energy(x) + base.log_prob(x)


def fit_ebm(data: Tensor, energy: nn.Module, base: DiagonalGaussian, sampler: NegativeSampler, *,
            epochs: int, batch_size: int, n_persistent: int, lr: float, generator: torch.Generator,
            evaluate: Callable[[], dict] | None = None, eval_every: int = 0, max_energy: float = 1e4,
            desc: str = "training", energy_l2: float = 0.0, lr_decay: tuple[float, int] | None = None,
            batch_transform: Callable[[Tensor, torch.Generator], Tensor] | None = None) -> History:
    """Train ``energy`` on ``data`` (n, d) with negatives from ``sampler``; returns the History.

    ``evaluate`` (if given) is called every ``eval_every`` iterations and at the end; its dict of values
    is logged with the iteration and the (fractional) epoch. Options of the paper's CIFAR-10 set-up
    (Appendix C.6): ``energy_l2`` adds lambda (mean E(x+)^2 + mean E(x-)^2) to the loss; ``lr_decay`` =
    (factor, every) multiplies the learning rate of the EBM, and of the sampler's ``optimizer`` if it has
    one (the flow), by factor every ``every`` iterations; ``batch_transform(batch, generator)`` maps each
    data batch before use (fresh dequantisation noise and flips).
    """
    for name, value in {"epochs": epochs, "batch_size": batch_size, "n_persistent": n_persistent}.items():
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
    if batch_size > n_persistent:
        raise ValueError(f"batch_size ({batch_size}) cannot exceed n_persistent ({n_persistent})")
    if batch_size > len(data):
        raise ValueError(f"batch_size ({batch_size}) exceeds the data set ({len(data)} points): use more data "
                         f"or a smaller batch")
    optimizer = torch.optim.Adam(energy.parameters(), lr=lr)
    schedulers = []
    if lr_decay is not None:
        factor, every = lr_decay
        optimizers = [optimizer] + ([sampler.optimizer] if hasattr(sampler, "optimizer") else [])
        schedulers = [torch.optim.lr_scheduler.StepLR(o, step_size=every, gamma=factor) for o in optimizers]
    log_target = tilted_log_density(energy, base)
    bank = sampler.init_chains(n_persistent, data.shape[1], generator)
    history = History()
    per_epoch = len(data) // batch_size
    total = epochs * per_epoch

    def record_evaluation(iteration: int) -> None:
        if evaluate is not None:
            history.log(history.evaluations, {"iteration": iteration, "epoch": iteration / per_epoch, **evaluate()})

    record_evaluation(0)
    bar = progress_bar(total, desc)
    iteration = 0
    for _ in range(epochs):
        order = torch.randperm(len(data), generator=generator)
        for b in range(per_epoch):
            positives = data[order[b * batch_size:(b + 1) * batch_size]]
            if batch_transform is not None:
                positives = batch_transform(positives, generator)
            chains = torch.randperm(n_persistent, generator=generator)[:batch_size]
            negatives, sampler_stats = sampler.sample(bank[chains], log_target, generator)
            negatives = negatives.detach()
            bank[chains] = negatives
            optimizer.zero_grad()
            energies_pos, energies_neg = energy(positives), energy(negatives)
            energy_pos, energy_neg = energies_pos.mean(), energies_neg.mean()
            loss = energy_pos - energy_neg
            if energy_l2:
                (loss + energy_l2 * (energies_pos.pow(2).mean() + energies_neg.pow(2).mean())).backward()
            else:
                loss.backward()
            optimizer.step()
            update_stats = sampler.update(negatives)
            for scheduler in schedulers:
                scheduler.step()
            iteration += 1
            stats = {"loss": loss.item(), "energy_pos": energy_pos.item(), "energy_neg": energy_neg.item()}
            _check_finite(iteration, stats, negatives, max_energy)
            history.log(history.steps, {**stats, **sampler_stats, **update_stats})
            if eval_every and iteration % eval_every == 0 and iteration != total:
                record_evaluation(iteration)
            bar.update()
    bar.close()
    record_evaluation(iteration)
    history.final_chains = bank
    return history


def _check_finite(iteration: int, stats: dict[str, float], negatives: Tensor, max_energy: float) -> None:
    """Stop with a message at the first NaN/inf or exploding energy (|mean energy| > max_energy)."""
    values = {"mean positive energy": stats["energy_pos"], "mean negative energy": stats["energy_neg"],
              "largest |negative sample|": float(negatives.abs().max())}
    for name, value in values.items():
        if not math.isfinite(value) or (name != "largest |negative sample|" and abs(value) > max_energy):
            raise TrainingDivergedError(
                f"training diverged at iteration {iteration}: {name} = {value:.4g}. Try a smaller learning "
                f"rate or sampler step size, or more sampler steps per iteration.")
