"""Persistent-chain maximum-likelihood training of an EBM (paper Algorithm 1).

p_theta(x) ∝ exp(-E_theta(x)) · tilt(x) (paper Eq. 6: tilt = rho). Each iteration: a data batch (step 1),
negatives from the method's sampler started at a random batch of the persistent bank (step 2), the bank
overwritten (step 3), a gradient step on L(theta) = mean E(x+) - mean E(x-) (step 4, Appendix B), then the
method's own update (step 5: the flow's maximum-likelihood step for flowMC-EBM). A divergence ends the run
(it is recorded, never raised), so one method's failure never stops the others.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor, nn

from .checkpoint import Checkpoint, CheckpointMismatch
from .checks import (InputError, check_callable, check_finite_parameters, check_generator, check_int,
                     check_non_negative, check_points)
from .methods import Method
from .progress import progress_bar

__all__ = ["Divergence", "DivergenceRule", "History", "TrainingState", "fit_ebm", "check_training_arguments"]


@dataclass(frozen=True)
class Divergence:
    """Why and when a run stopped: the iteration, the quantity that failed, its value and the likely cause."""

    iteration: int
    quantity: str
    value: float
    cause: str

    def __str__(self) -> str:
        return f"diverged at iteration {self.iteration}: {self.quantity} = {self.value:.4g} ({self.cause})"


@dataclass(frozen=True)
class DivergenceRule:
    """A run diverges when an energy or a chain is not finite, when the energy gap between negatives and
    data ``|mean E(x-) - mean E(x+)|`` exceeds ``max_energy_gap`` (the negatives sit where the model has
    essentially no mass), or when a chain leaves the box [-box, box]^d (``box`` None: no box). The level
    of E is not a criterion: E is defined up to an additive constant."""

    max_energy_gap: float = 1e4
    box: float | None = None

    def __post_init__(self) -> None:
        for name, value in (("max_energy_gap", self.max_energy_gap), ("box", self.box)):
            if value is None and name == "box":
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise InputError(f"DivergenceRule {name} must be a number > 0 (inf: no bound"
                                 f"{'; None: no box' if name == 'box' else ''}), got {value!r}")

    def check(self, iteration: int, energy_pos: float, energy_neg: float, negatives: Tensor) -> Divergence | None:
        for quantity, value in (("mean energy of the data batch", energy_pos),
                                ("mean energy of the negatives", energy_neg)):
            if not math.isfinite(value):
                return Divergence(iteration, quantity, value, "the EBM overflowed: try a smaller learning rate")
        largest = float(negatives.abs().max())
        if not math.isfinite(largest):
            return Divergence(iteration, "largest |negative coordinate|", largest,
                              "a chain overflowed: try a smaller sampler step size")
        gap = abs(energy_neg - energy_pos)
        if gap > self.max_energy_gap:
            return Divergence(iteration, "energy gap |mean E(x-) - mean E(x+)|", gap,
                              f"above {self.max_energy_gap:g}: the negatives no longer follow the model (a "
                              f"sampler too slow for the learning rate)")
        if self.box is not None and largest > self.box:
            return Divergence(iteration, "largest |negative coordinate|", largest,
                              f"chains left the box [-{self.box:g}, {self.box:g}]^d: the sampler is unstable at "
                              f"this step size or learning rate")
        return None


@dataclass
class History:
    """Per-iteration losses and sampler statistics, periodic evaluations, the final bank, how the run ended."""

    steps: dict[str, list[float]] = field(default_factory=dict)  # one entry per iteration (NaN: not reported)
    evaluations: dict[str, list] = field(default_factory=dict)
    final_chains: Tensor | None = None  # the persistent bank at the end (method's chain space)
    divergence: Divergence | None = None
    iterations: int = 0  # iterations done
    completed: bool = False  # ran all its iterations (no divergence, no stop_after)

    def log(self, where: dict[str, list], values: dict[str, Any]) -> None:
        for key, value in values.items():
            where.setdefault(key, []).append(float(value) if isinstance(value, Tensor) else value)

    def log_step(self, values: dict[str, Any]) -> None:
        """Record the statistics of iteration ``self.iterations``: every list in ``steps`` keeps one entry per
        iteration, NaN where a statistic was not reported (CoopFlow's flow loss while its flow is frozen)."""
        for key, value in values.items():
            self.steps.setdefault(key, [math.nan] * (self.iterations - 1)).append(
                float(value) if isinstance(value, Tensor) else value)
        for column in self.steps.values():
            if len(column) < self.iterations:
                column.append(math.nan)

    def as_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "evaluations": self.evaluations, "iterations": self.iterations,
                "divergence": asdict(self.divergence) if self.divergence else None, "completed": self.completed}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "History":
        divergence = Divergence(**state["divergence"]) if state["divergence"] else None
        return cls(state["steps"], state["evaluations"], None, divergence, state["iterations"], state["completed"])


@dataclass
class TrainingState:
    """What an ``evaluate`` callback may read: the iteration, the epoch, the bank and the chains just advanced."""

    iteration: int
    epoch: float
    bank: Tensor
    last_chains: Tensor | None  # the persistent states the last iteration started from (None at iteration 0)
    method: Method
    energy: nn.Module

    @property
    def device(self) -> torch.device:
        return next(self.energy.parameters()).device


def _run_fingerprint(method: Method, energy: nn.Module, data: Tensor, **settings: Any) -> dict[str, Any]:
    """What a checkpoint must agree on to be resumed by this run (besides the caller's own fingerprint): the
    method and its settings (callables such as ``make_flow`` aside), the energy, the data's shape and the loop's
    sizes."""
    method_settings = {f.name: getattr(method, f.name) for f in dataclasses.fields(method)
                       if f.init and not callable(getattr(method, f.name))} if dataclasses.is_dataclass(method) else {}
    return {"method": method.name, "method_settings": method_settings, "energy": type(energy).__name__,
            "energy_parameters": sum(p.numel() for p in energy.parameters()), "data_shape": tuple(data.shape),
            "data_dtype": str(data.dtype), **settings}


def _data_at_fault(diverged: Divergence, positives: Tensor) -> Divergence | None:
    """When the data batch itself is not finite (a ``batch_transform`` producing NaN: the data were checked before
    training), say so instead of blaming the learning rate."""
    bad = ~torch.isfinite(positives.reshape(len(positives), -1)).all(dim=1)
    if not bad.any():
        return None
    row = int(torch.nonzero(bad)[0])
    return Divergence(diverged.iteration, "data batch after batch_transform", math.nan,
                      f"batch_transform returned non-finite values (first in row {row} of the batch): the data "
                      f"pipeline, not the training, is at fault")


def check_training_arguments(data: Tensor, energy: nn.Module, method: Method, *, epochs: int, batch_size: int,
                             n_persistent: int, generator: torch.Generator,
                             evaluate: Callable[[TrainingState], dict] | None = None, eval_every: int = 0,
                             energy_l2: float = 0.0, lr_decay: tuple[float, int] | None = None,
                             batch_transform: Callable[[Tensor, torch.Generator], Tensor] | None = None,
                             divergence: DivergenceRule = DivergenceRule(), checkpoint: Checkpoint | None = None,
                             stop_after: int | None = None) -> None:
    """Every check of ``fit_ebm``'s arguments (InputError naming the argument and the value), callable on its own
    before any preparation (``experiments.common.train`` runs it before pre-training a flow). Non-finite data,
    energy parameters or settings are refused here, so a later divergence is the training's own."""
    for name, value in {"epochs": epochs, "batch_size": batch_size, "n_persistent": n_persistent}.items():
        check_int(name, value)
    check_generator(generator)
    check_non_negative("energy_l2", energy_l2)
    check_int("eval_every", eval_every, minimum=0)
    if stop_after is not None:
        check_int("stop_after", stop_after)
    if not isinstance(method, Method):
        raise InputError(f"method must be a Method (e.g. ebmflow.methods.FlowMCEBM(...)), got {type(method).__name__}")
    if not isinstance(energy, nn.Module) or not any(True for _ in energy.parameters()):
        raise InputError(f"energy must be a torch module with parameters (e.g. ToyEnergy), got "
                         f"{type(energy).__name__}")
    check_finite_parameters("energy", energy)
    for name, function in {"evaluate": evaluate, "batch_transform": batch_transform}.items():
        if function is not None:
            check_callable(name, function)
    if not callable(getattr(divergence, "check", None)):
        raise InputError(f"divergence must be a DivergenceRule, got {type(divergence).__name__}")
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        raise InputError(f"checkpoint must be an ebmflow.checkpoint.Checkpoint or None, got "
                         f"{type(checkpoint).__name__}")
    if isinstance(data, Tensor):
        devices = {"data": data.device, "the generator": generator.device,
                   "the energy": next(energy.parameters()).device}
        if len({torch.device(d).type for d in devices.values()}) > 1:
            raise InputError("data, the energy and the generator must live on one device, got "
                             + ", ".join(f"{name} on {device}" for name, device in devices.items()))
    dim = getattr(energy, "dim", None)
    check_points("data", data, dim=dim, dtype=next(energy.parameters()).dtype)
    if batch_size > n_persistent:
        raise InputError(f"batch_size ({batch_size}) cannot exceed n_persistent ({n_persistent})")
    if batch_size > len(data):
        raise InputError(f"batch_size ({batch_size}) exceeds the data set ({len(data)} points): use more data or a "
                         f"smaller batch")
    if lr_decay is not None and not (isinstance(lr_decay, (tuple, list)) and len(lr_decay) == 2
                                     and isinstance(lr_decay[0], (int, float)) and 0 < lr_decay[0] <= 1
                                     and isinstance(lr_decay[1], int) and lr_decay[1] >= 1):
        raise InputError(f"lr_decay must be (factor in (0, 1], every >= 1 iterations), got {lr_decay!r}")



def fit_ebm(data: Tensor, energy: nn.Module, method: Method, *, epochs: int, batch_size: int, n_persistent: int,
            generator: torch.Generator, evaluate: Callable[[TrainingState], dict] | None = None,
            eval_every: int = 0, energy_l2: float = 0.0, lr_decay: tuple[float, int] | None = None,
            batch_transform: Callable[[Tensor, torch.Generator], Tensor] | None = None,
            divergence: DivergenceRule = DivergenceRule(), checkpoint: Checkpoint | None = None,
            stop_after: int | None = None, desc: str = "training") -> History:
    """Train ``energy`` on ``data`` (n, d) with negatives from the prepared ``method``; returns the History.

    ``evaluate(state)`` is called at iteration 0, every ``eval_every`` iterations and at the end; its values are
    logged with the iteration and the (fractional) epoch; it must draw its randomness from generators of its
    own, so that a resumed run repeats exactly. Options of the paper's CIFAR-10 set-up (Appendix C.6):
    ``energy_l2`` adds lambda (mean E(x+)^2 + mean E(x-)^2) to the loss; ``lr_decay`` = (factor, every)
    multiplies every learning rate (EBM and the method's own) by factor every ``every`` iterations;
    ``batch_transform(batch, generator)`` maps each data batch (dequantisation, flips). ``checkpoint`` saves the
    run (and resumes it when its file exists; a checkpoint of another method, method setting, energy, data shape
    or loop size is refused with ``CheckpointMismatch`` naming the field); ``stop_after`` ends training after
    that many iterations (the run can then be resumed from its checkpoint, bit-identically on CPU). Every bad
    argument raises ``InputError`` before the first iteration.
    """
    check_training_arguments(data, energy, method, epochs=epochs, batch_size=batch_size, n_persistent=n_persistent,
                             generator=generator, evaluate=evaluate, eval_every=eval_every, energy_l2=energy_l2,
                             lr_decay=lr_decay, batch_transform=batch_transform, divergence=divergence,
                             checkpoint=checkpoint, stop_after=stop_after)
    if method.energy is not energy:
        raise InputError(f"the method {method.label} is not prepared with this energy: call method.prepare(energy, "
                         f"base, data, generator) first (experiments.common.train does both)")

    optimizer = torch.optim.Adam(energy.parameters(), lr=method.lr)
    optimizers = [optimizer] + method.optimizers
    schedulers = ([torch.optim.lr_scheduler.StepLR(o, step_size=lr_decay[1], gamma=lr_decay[0]) for o in optimizers]
                  if lr_decay is not None else [])
    per_epoch = len(data) // batch_size
    total = epochs * per_epoch
    device = data.device

    history, order, bank, last_chains = History(), None, None, None
    if checkpoint is not None:
        checkpoint = checkpoint.extended(run=_run_fingerprint(method, energy, data, epochs=epochs,
                                                              batch_size=batch_size, n_persistent=n_persistent,
                                                              energy_l2=energy_l2, lr_decay=lr_decay))
    if checkpoint is not None and checkpoint.exists():
        saved = checkpoint.load(map_location=device)
        try:
            energy.load_state_dict(saved["energy"])
            method.load_state_dict(saved["method"])
            if method.averaged is not None:
                method.averaged.load_state_dict(saved["average"])
            optimizer.load_state_dict(saved["optimizer"])
            for scheduler, state in zip(schedulers, saved["schedulers"], strict=True):
                scheduler.load_state_dict(state)
            generator.set_state(saved["generator"].to(generator.get_state().device))
            history, order, bank = History.from_dict(saved["history"]), saved["order"], saved["bank"]
            last_chains = saved["last_chains"]
        except (KeyError, RuntimeError, TypeError, ValueError) as error:
            detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise CheckpointMismatch(f"checkpoint {checkpoint.path} does not fit this run's networks or state "
                                     f"({type(error).__name__}: {detail[:200]}): it was written by another "
                                     f"architecture or library version; delete it or run without resuming") from None
        if history.completed or history.divergence is not None:
            history.final_chains = bank
            return history
    else:
        bank = method.init_chains(n_persistent, generator)

    def state_now() -> TrainingState:
        return TrainingState(history.iterations, history.iterations / per_epoch, bank, last_chains, method, energy)

    def record_evaluation() -> None:
        if evaluate is not None:
            history.log(history.evaluations, {"iteration": history.iterations,
                                              "epoch": history.iterations / per_epoch, **evaluate(state_now())})

    def save() -> None:
        if checkpoint is not None:
            checkpoint.save({"energy": energy.state_dict(), "method": method.state_dict(),
                             "optimizer": optimizer.state_dict(), "schedulers": [s.state_dict() for s in schedulers],
                             "generator": generator.get_state(), "history": history.as_dict(), "order": order,
                             "bank": bank, "last_chains": last_chains,
                             "average": method.averaged.state_dict() if method.averaged is not None else None})

    if history.iterations == 0:
        record_evaluation()
    transform_checked = False
    bar = progress_bar(total, desc, initial=history.iterations)
    while history.iterations < total:
        if stop_after is not None and history.iterations >= stop_after:
            save()
            bar.close()
            history.final_chains = bank
            return history
        b = history.iterations % per_epoch
        if b == 0:
            order = torch.randperm(len(data), generator=generator, device=generator.device)
        positives = data[order[b * batch_size:(b + 1) * batch_size]]
        if batch_transform is not None:
            positives = batch_transform(positives, generator)
            if not transform_checked:  # its first output, before the first training step
                check_points("batch_transform's output", positives, dim=getattr(energy, "dim", None),
                             dtype=next(energy.parameters()).dtype)
                transform_checked = True
        rows = torch.randperm(n_persistent, generator=generator, device=generator.device)[:batch_size]
        last_chains = bank[rows]
        negatives, chains, sampler_stats = method.sample(last_chains, generator)
        negatives = negatives.detach()
        bank[rows] = chains.detach()
        optimizer.zero_grad()
        energies_pos, energies_neg = energy(positives), energy(negatives)
        energy_pos, energy_neg = energies_pos.mean(), energies_neg.mean()
        loss = energy_pos - energy_neg
        if energy_l2:
            (loss + energy_l2 * (energies_pos.pow(2).mean() + energies_neg.pow(2).mean())).backward()
        else:
            loss.backward()
        optimizer.step()
        method.after_ebm_step()
        # the iteration's energies and negatives are checked before the method trains on them (a flow fitted to
        # negatives far outside its support would fail, or turn NaN); a failure of that step is a divergence too
        diverged = divergence.check(history.iterations + 1, energy_pos.item(), energy_neg.item(), negatives)
        if diverged is not None and not math.isfinite(energy_pos.item()):
            diverged = _data_at_fault(diverged, positives) or diverged
        update_stats = {}
        if diverged is None:
            try:
                update_stats = method.update(negatives)
            except InputError as error:  # the negatives are finite (checked): the method cannot fit them
                diverged = Divergence(history.iterations + 1, f"{method.label}'s own update", math.nan,
                                      " ".join(str(error).split()))
        with warnings.catch_warnings():  # a frozen network's optimizer (CoopFlow) is not stepped: its lr still decays
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
            for scheduler in schedulers:
                scheduler.step()
        history.iterations += 1
        stats = {"loss": loss.detach(), "energy_pos": energy_pos.detach(), "energy_neg": energy_neg.detach()}
        history.log_step({**stats, **sampler_stats, **update_stats})
        bar.update()
        if history.iterations % 50 == 0:
            bar.set_postfix(energy_data=history.steps["energy_pos"][-1], energy_neg=history.steps["energy_neg"][-1],
                            **{k: f"{history.steps[k][-1]:.2f}" for k in ("global_acceptance",) if k in history.steps})
        if diverged is not None:
            history.divergence = diverged
            break
        if eval_every and history.iterations % eval_every == 0 and history.iterations != total:
            record_evaluation()
        if checkpoint is not None and checkpoint.due(history.iterations):
            save()
    bar.close()
    if history.divergence is None:
        record_evaluation()
        history.completed = True
    history.final_chains = bank
    save()
    return history
