"""What every chapter does with a method: train it (one ``train``) and keep the result (one ``Run``)."""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch
from torch import Tensor, nn

from ..checkpoint import Checkpoint
from ..checks import InputError, check_callable, check_generator, check_int, check_seed
from ..methods import METHODS, Method
from ..samplers import LogDensity, run_chains
from ..seeding import make_generator, resolve_device
from ..training import Divergence, DivergenceRule, History, TrainingState, check_training_arguments, fit_ebm

__all__ = ["Run", "train", "checkpoint_for", "chain_evaluation", "hyperparameter_table", "target_note", "methods_line",
           "diverged_at", "table_cell", "plot_along_training", "CHECKPOINT_DIR_ENV"]

CHECKPOINT_DIR_ENV = "EBMFLOW_CHECKPOINT_DIR"  # set by the runner: where a chapter's training runs checkpoint


def checkpoint_for(key: str, config: Any, **extra: Any) -> Checkpoint | None:
    """The checkpoint of one training run of a chapter (``key``: chapter, method, target, ...), when the runner
    asked for checkpoints ($EBMFLOW_CHECKPOINT_DIR); its fingerprint is the chapter's configuration (without
    ``stop_after``, which only says where to pause) plus ``extra``."""
    directory = os.environ.get(CHECKPOINT_DIR_ENV)
    if not directory:
        return None
    fingerprint = {k: v for k, v in dataclasses.asdict(config).items() if k != "stop_after"}
    every = float(os.environ.get("EBMFLOW_CHECKPOINT_SECONDS", 300))
    return Checkpoint(Path(directory) / f"{key}.pt", {**fingerprint, **extra}, every_seconds=every)


def _check_types(**objects: Any) -> None:
    """``method`` is a Method, ``data`` a tensor, ``energy`` and ``base`` torch modules (before anything is moved)."""
    expected = {"method": (Method, "a Method (e.g. ebmflow.methods.FlowMCEBM(...))"),
                "data": (Tensor, "a torch.Tensor of shape (n, d)"),
                "energy": (nn.Module, "a torch module (e.g. ToyEnergy)"),
                "base": (nn.Module, "a torch module (e.g. DiagonalGaussian)")}
    for name, value in objects.items():
        kind, what = expected[name]
        if not isinstance(value, kind):
            raise InputError(f"{name} must be {what}, got {type(value).__name__}")


@dataclass
class Run:
    """A trained method: its EBM, its sampler (with the flow it trained), its history and its cost."""

    method: Method
    energy: nn.Module
    history: History
    seconds: float  # wall time of preparation (flow pre-training) and training

    @property
    def name(self) -> str:
        return self.method.name

    @property
    def log_density(self) -> LogDensity:
        """Unnormalised log p_theta = -E_theta + log tilt of the reported model (``Method.model_energy``: the
        parameter average where the method keeps one; the chains of ``continue_chains`` follow the last E_theta)."""
        return self.method.log_model

    @property
    def device(self) -> torch.device:
        """Where the trained networks live (pass it to grid evaluations: ``normalize_on_grid(..., device=)``)."""
        return next(self.energy.parameters()).device

    @property
    def divergence(self) -> Divergence | None:
        return self.history.divergence

    @property
    def energy_gap(self) -> float:
        """The energy gap ``|mean E(x-) - mean E(x+)|`` at the last iteration (the divergence rule's criterion)."""
        return abs(self.history.steps["energy_neg"][-1] - self.history.steps["energy_pos"][-1])

    def bank_positions(self) -> Tensor:
        """The final persistent bank in data space."""
        return self.method.positions(self.history.final_chains)

    def continue_chains(self, n_chains: int, n_steps: int, generator: torch.Generator, *,
                        starts: Tensor | None = None, record: bool = False) -> Tensor:
        """Run ``n_chains`` chains ``n_steps`` steps of the method's kernel on the trained model.

        The chains start at ``starts`` (chain space) or at the method's starts from random persistent states
        (fresh flow samples for CoopFlow). Returns the final data-space positions (n, d), or with ``record``
        the positions after every step (every sub-step of a composite kernel), (steps, n, d)."""
        check_int("n_chains", n_chains)
        check_int("n_steps", n_steps, minimum=0)
        check_generator(generator)
        if starts is not None and (not isinstance(starts, Tensor) or starts.dim() < 2 or len(starts) == 0):
            raise InputError(f"starts must be a tensor of chain states (n, ...) with n >= 1, got "
                             f"{tuple(starts.shape) if isinstance(starts, Tensor) else type(starts).__name__}")
        if starts is None:
            bank = self.history.final_chains
            rows = torch.randperm(len(bank), generator=generator, device=generator.device)[:n_chains]
            starts = self.method.starts(bank[rows], generator)
        state, trajectory, infos = run_chains(self.method.kernel(substeps=record), starts, n_steps, generator,
                                              record=record)
        if not record:
            return self.method.positions(state.position)
        substeps = [info.trajectory for info in infos if getattr(info, "trajectory", None) is not None]
        if substeps:
            trajectory = torch.cat(substeps)
        return self.method.positions(trajectory.flatten(0, 1)).view(*trajectory.shape[:2], -1)


def chain_evaluation(measure: Callable[[Tensor], dict], n_steps: int, *, seed: int, stream: str, n_chains: int,
                     device: str | torch.device = "cpu", every: int = 1) -> Callable[[TrainingState], dict]:
    """A ``fit_ebm`` callback that measures the method's chains along training: ``n_chains`` chains start where the
    last iteration's chains started (through ``method.starts``: fresh flow samples for CoopFlow; the first rows of
    the bank at iteration 0), run ``n_steps`` kernel steps on the current model with the ONE loop, and ``measure``
    gets their data-space positions after every ``every``-th recorded (sub-)step, (draws, n, d). Each call draws
    from its own generator, of (seed, stream, iteration), never from the training's: a resumed run repeats exactly."""
    check_callable("measure", measure)
    check_int("n_steps", n_steps, minimum=0)
    check_seed(seed)
    check_int("n_chains", n_chains)
    check_int("every", every)
    def evaluate(state: TrainingState) -> dict:
        generator = make_generator(seed, device, f"{stream}/{state.iteration}")
        chains = state.last_chains if state.last_chains is not None else state.bank
        starts = state.method.starts(chains[:n_chains], generator)
        run = Run(state.method, state.energy, History(final_chains=state.bank), 0.0)
        trajectory = run.continue_chains(len(starts), n_steps, generator, starts=starts, record=True)
        return measure(trajectory[every - 1::every])
    return evaluate


def hyperparameter_table(methods: dict[str, Method], paper: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The paper's hyper-parameter tables (4, 5, 7): for each method, the paper's row (``paper[name]``, as printed
    or as its configuration describes it) above the row the code runs (``describe()``)."""
    rows = {}
    for name, method in methods.items():
        rows[(method.label, "paper")] = {key: str(value) for key, value in paper[name].items()}
        rows[(method.label, "ours")] = {key: str(value) for key, value in method.describe().items()}
    return pd.DataFrame(rows).T.rename_axis(["method", "source"])


def diverged_at(run: Run) -> int:
    """The iteration at which the run diverged (0: it did not)."""
    return run.divergence.iteration if run.divergence is not None else 0


def table_cell(value: float, iteration: int, fmt: str) -> str:
    """A table entry: the value, or "diverged (it. N)" for a diverged run."""
    return f"diverged (it. {iteration})" if iteration else format(value, fmt)


def plot_along_training(ax: Any, run: Run, x: str, y: str, fmt: str = "-", **style: Any) -> None:
    """One run's evaluation ``y`` against ``x`` (keys of ``run.history.evaluations``) on ``ax``; a cross (×) at its
    last point when the run stopped on a divergence."""
    evaluations = run.history.evaluations
    ax.plot(evaluations[x], evaluations[y], fmt, **style)
    if run.divergence is not None:
        ax.plot(evaluations[x][-1], evaluations[y][-1], "x", ms=10, mew=2, color=style.get("color"))


def target_note(this_run: str, paper: str | None) -> str:
    """The sentence a chapter shows under its configuration: this run's target and, when it is not the paper's
    (``paper`` describes the paper's; None or the same text: this run's is the paper's), that the paper did not run
    it."""
    if paper is None or paper == this_run:
        return f"This run's target: {this_run}, the paper's."
    return (f"This run's target: {this_run}. **The paper did not run this target** (its own: {paper}): the paper's "
            f"numbers quoted below are for its target, not for this one.")


def methods_line(title: str, cells: dict[str, str], verdict: str, paper: str | None) -> str:
    """One Markdown bullet of a chapter's results: ``title``, each method's value (method -> text), a ``verdict``,
    and the paper's values (``paper``) or, when None, that the paper did not run this."""
    return (f"- **{title}**: " + ", ".join(f"{METHODS[m].label} {c}" for m, c in cells.items())
            + f"; {verdict} ({paper or 'the paper did not run this'}).")


def train(method: Method, data: Tensor, *, energy: nn.Module, base: nn.Module, seed: int, epochs: int,
          batch_size: int, n_persistent: int, device: str | torch.device = "cpu", reference: LogDensity | None = None,
          evaluate: Callable[[TrainingState], dict] | None = None, eval_every: int = 0, energy_l2: float = 0.0,
          lr_decay: tuple[float, int] | None = None,
          batch_transform: Callable[[Tensor, torch.Generator], Tensor] | None = None,
          divergence: DivergenceRule = DivergenceRule(), checkpoint: Checkpoint | None = None,
          stop_after: int | None = None, desc: str | None = None) -> Run:
    """Prepare ``method`` (its flow and pre-training) and train ``energy`` on ``data`` with it (Algorithm 1).

    ``energy``, ``base`` and ``data`` are moved to ``device``; randomness comes from the seed's streams
    "<method>/prepare" and "<method>/training", so the same seed and device give identical runs.
    ``reference`` is the data's exact log-density where one is known (reverse-KL pre-training).
    A divergence ends this method's run and is recorded in ``run.divergence``; it is never raised."""
    device = resolve_device(device)
    _check_types(method=method, data=data, energy=energy, base=base)
    energy, base, data = energy.to(device), base.to(device), data.to(device)
    generator = make_generator(seed, device, f"{method.name}/training")
    check_training_arguments(data, energy, method, epochs=epochs, batch_size=batch_size, n_persistent=n_persistent,
                             generator=generator, evaluate=evaluate, eval_every=eval_every, energy_l2=energy_l2,
                             lr_decay=lr_decay, batch_transform=batch_transform, divergence=divergence,
                             checkpoint=checkpoint, stop_after=stop_after)  # all of it before any pre-training
    if reference is not None:
        check_callable("reference", reference)
    start = time.perf_counter()
    method.prepare(energy, base, data, make_generator(seed, device, f"{method.name}/prepare"), reference)
    history = fit_ebm(data, energy, method, epochs=epochs, batch_size=batch_size, n_persistent=n_persistent,
                      generator=generator, evaluate=evaluate,
                      eval_every=eval_every, energy_l2=energy_l2, lr_decay=lr_decay, batch_transform=batch_transform,
                      divergence=divergence, checkpoint=checkpoint, stop_after=stop_after,
                      desc=desc or method.label)
    return Run(method, energy, history, time.perf_counter() - start)
