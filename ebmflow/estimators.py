"""Mode weights of an unnormalised density in any dimension, by two Monte-Carlo estimators that do not share a
failure mode, each with its standard error (our extension beyond the paper, chapter 07).

The mass of mode k is the density's mass on the mode's Voronoi cell V_k (the zones of paper Figure 4 in d
dimensions): w_k = Z_k / sum_j Z_j with Z_k = ∫_{V_k} p~(x) dx.

* ``snis_mode_weights``: self-normalised importance sampling with one tractable proposal for all modes (a
  trained flow): cheap, but blind to mass the proposal does not cover (its effective sample size warns).
* ``annealed_mode_weights``: one Gaussian per mode, fitted to that mode's data, annealed to p~ restricted to
  the mode's cell by MALA (annealed importance sampling, Neal 2001; ``n_steps = 0`` is plain per-mode
  importance sampling). It never uses a flow; it fails when the density's mass in a cell sits far from the
  data of that mode, which its per-mode effective sample sizes show.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .checks import InputError, check_generator, check_int, check_positive, check_probability
from .samplers import LogDensity, Proposal, mala
from .seeding import make_generator

__all__ = ["ModeWeights", "snis_mode_weights", "annealed_mode_weights", "final_mode_weights",
           "weights_along_training"]

ModeOf = Callable[[Tensor], Tensor]  # points (n, d) -> index of their mode's cell (n,)


@dataclass(frozen=True)
class ModeWeights:
    """Estimated mode weights (K,), their Monte-Carlo standard errors (K,) and the effective sample size (the
    smallest over the estimator's importance samplers)."""

    weights: Tensor
    stderr: Tensor
    ess: float
    n_samples: int  # draws from the proposal(s), all modes together

    def max_error(self, truth: Tensor) -> float:
        """Largest absolute error over modes (NaN when the estimate is not finite)."""
        return float((self.weights - truth.to(self.weights)).abs().max())

    @classmethod
    def undefined(cls, n_modes: int) -> "ModeWeights":
        nan = torch.full((n_modes,), float("nan"))
        return cls(nan, nan.clone(), float("nan"), 0)


def _check(n_modes: int, n_samples: int, generator: torch.Generator) -> None:
    check_int("n_modes", n_modes, minimum=2)
    check_int("n_samples", n_samples, minimum=2)
    check_generator(generator)


def _finite(log_w: Tensor) -> Tensor:
    return torch.nan_to_num(log_w, nan=-math.inf, posinf=-math.inf, neginf=-math.inf)


@torch.no_grad()
def snis_mode_weights(log_density: LogDensity, proposal: Proposal, mode_of: ModeOf, n_modes: int, n_samples: int,
                      generator: torch.Generator, chunk: int = 4096) -> ModeWeights:
    """w_k ≈ sum_i wbar_i 1[x_i in V_k], x_i ~ proposal, wbar ∝ p~(x_i) / q(x_i) normalised to sum 1.

    Standard error by the delta method for a ratio estimator, se_k^2 = sum_i wbar_i^2 (1[x_i in V_k] - w_k)^2;
    effective sample size (sum w)^2 / sum w^2 (Kong 1992). A proposal that misses mass of p~ gives a small ESS
    (or, when it misses whole modes, a confident wrong answer: compare with ``annealed_mode_weights``)."""
    _check(n_modes, n_samples, generator)
    log_w, modes = [], []
    for start in range(0, n_samples, chunk):
        x, log_q = proposal.sample_with_log_prob(min(chunk, n_samples - start), generator)
        log_w.append(_finite(log_density(x) - log_q))
        modes.append(mode_of(x))
    log_w, modes = torch.cat(log_w).double(), torch.cat(modes)
    if not torch.isfinite(log_w).any():
        return ModeWeights.undefined(n_modes)
    wbar = torch.softmax(log_w, 0)
    indicator = torch.nn.functional.one_hot(modes, n_modes).double()
    weights = wbar @ indicator
    stderr = ((wbar[:, None] ** 2) * (indicator - weights) ** 2).sum(0).sqrt()
    return ModeWeights(weights.float(), stderr.float(), float(1 / (wbar**2).sum()), n_samples)


def _ais_log_weights(log_density: LogDensity, in_cell: Callable[[Tensor], Tensor], mean: Tensor, std: Tensor,
                     n: int, n_steps: int, step_size: float, target_acceptance: float,
                     generator: torch.Generator) -> Tensor:
    """Log AIS weights of ``n`` particles from N(mean, diag std^2) to p~ restricted to a cell: their mean
    estimates Z = ∫_cell p~ (unbiased: the start's own normaliser is 1)."""
    def log_q(x: Tensor) -> Tensor:
        return (-0.5 * ((x - mean) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)

    def restricted(beta: float) -> LogDensity:
        def log_pi(x: Tensor) -> Tensor:
            value = (1 - beta) * log_q(x) + beta * log_density(x)
            return torch.where(in_cell(x), value, torch.full_like(value, -math.inf))
        return log_pi

    x = mean + std * torch.randn(n, len(mean), generator=generator, device=mean.device)
    with torch.no_grad():
        log_w = torch.where(in_cell(x), torch.zeros(n, device=x.device), torch.full((n,), -math.inf, device=x.device))
    betas = torch.linspace(0, 1, n_steps + 2).tolist()
    for beta_prev, beta in zip(betas[:-1], betas[1:]):
        with torch.no_grad():
            log_w = log_w + (beta - beta_prev) * _finite(log_density(x) - log_q(x))
        if beta < 1:  # a MALA move leaving pi_beta invariant (the cell's walls reject moves out of it)
            kernel = mala(restricted(beta), step_size, target_acceptance=target_acceptance)
            state, _ = kernel.step(kernel.init(x), generator)
            x, step_size = state.position, state.step_size
    return _finite(log_w)


def annealed_mode_weights(log_density: LogDensity, data: Tensor, mode_of: ModeOf, n_modes: int, n_samples: int,
                          generator: torch.Generator, *, n_steps: int = 16, inflation: float = 1.1,
                          step_size: float | None = None, target_acceptance: float = 0.6) -> ModeWeights:
    """Z_k = ∫_{V_k} p~ for each mode separately, by annealed importance sampling from a diagonal Gaussian fitted
    to the mode's ``data`` (its standard deviations times ``inflation``) through ``n_steps`` intermediate
    densities q^(1-beta) p~^beta restricted to V_k, each followed by one MALA move (initial step ``step_size``,
    default 0.5 d^(-1/3), near MALA's optimal scaling for unit-variance modes, adapted towards
    ``target_acceptance``); ``n_steps = 0`` is plain importance sampling. ``n_samples`` particles in all,
    split evenly over the modes; w_k = Z_k / sum_j Z_j.

    Standard error by the delta method with the Z_k independent: se_k^2 = sum_j (delta_kj - w_k)^2
    var(Z_j) / (sum Z)^2, var(Z_j) the sample variance of mode j's weights over its particle count; ``ess`` is
    the smallest per-mode effective sample size."""
    _check(n_modes, n_samples, generator)
    check_int("n_steps", n_steps, minimum=0)
    check_positive("inflation", inflation)
    step_size = 0.5 * data.shape[1] ** (-1 / 3) if step_size is None else check_positive("step_size", step_size)
    check_probability("target_acceptance", target_acceptance)
    per_mode = n_samples // n_modes
    if per_mode < 2:
        raise InputError(f"n_samples ({n_samples}) must give at least 2 particles per mode ({n_modes} modes)")
    labels = mode_of(data)
    log_z, log_var, ess = [], [], []
    for k in range(n_modes):
        points = data[labels == k]
        if len(points) < 2:
            raise InputError(f"mode {k} has {len(points)} data points: at least 2 are needed to fit its Gaussian")
        mean, std = points.mean(0), points.std(0) * inflation
        log_w = _ais_log_weights(log_density, lambda x, k=k: mode_of(x) == k, mean, std, per_mode, n_steps,
                                 step_size, target_acceptance, generator).double()
        if not torch.isfinite(log_w).any():
            return ModeWeights.undefined(n_modes)
        top = log_w.max()
        w = (log_w - top).exp()
        log_z.append(top + w.mean().log())
        log_var.append(2 * top + (w.var() / per_mode).log())
        ess.append(float(w.sum() ** 2 / (w**2).sum()))
    log_z, log_var = torch.stack(log_z), torch.stack(log_var)
    weights = torch.softmax(log_z, 0)
    var_share = (log_var - 2 * torch.logsumexp(log_z, 0)).exp()  # var(Z_j) / (sum Z)^2
    jacobian = torch.eye(n_modes, dtype=weights.dtype) - weights[:, None]  # [k, j] = delta_kj - w_k
    stderr = ((jacobian**2) * var_share[None]).sum(1).sqrt()
    return ModeWeights(weights.float(), stderr.float(), min(ess), per_mode * n_modes)


def final_mode_weights(log_density: LogDensity, proposal: Proposal, data: Tensor, mode_of: ModeOf, n_modes: int,
                       generator: torch.Generator, *, n_snis: int, n_ais: int, ais_steps: int,
                       inflation: float = 1.1) -> dict[str, ModeWeights]:
    """Both estimators on one model: {"snis": flow importance sampling, "ais": per-mode annealing}."""
    return {"snis": snis_mode_weights(log_density, proposal, mode_of, n_modes, n_snis, generator),
            "ais": annealed_mode_weights(log_density, data, mode_of, n_modes, n_ais, generator, n_steps=ais_steps,
                                         inflation=inflation)}


def weights_along_training(data: Tensor, mode_of: ModeOf, n_modes: int, n_samples: int, seed: int, stream: str,
                           inflation: float = 1.1) -> Callable:
    """An ``evaluate`` callback for ``fit_ebm``: the mode weights of the EBM being trained (``raw_k``) and, when
    the method reports an average of it, of the reported model (``reported_k``), by per-mode importance sampling
    (``annealed_mode_weights`` without annealing: cheap, flow-independent). Every measurement draws the same
    proposal points (common random numbers from ``stream``), so the curve shows the EBM's changes rather than
    fresh Monte-Carlo noise at each point, and a resumed run measures the same numbers."""
    def evaluate(state) -> dict[str, float]:
        models = {"raw": state.method.log_target}
        if state.method.model_energy is not state.energy:
            models["reported"] = state.method.log_model
        out = {}
        for name, log_density in models.items():
            generator = make_generator(seed, data.device, stream)
            weights = annealed_mode_weights(log_density, data, mode_of, n_modes, n_samples, generator, n_steps=0,
                                            inflation=inflation).weights
            out.update({f"{name}_{k}": float(w) for k, w in enumerate(weights)})
        return out
    return evaluate
