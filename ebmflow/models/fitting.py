"""Fitting a flow: one maximum-likelihood step (paper Algorithm 1, step 5) and the two pre-trainings of the
baselines' flows (paper §C.3-C.5: 1024 steps in 2-D, 512 in high dimension, lr 1e-2)."""
from __future__ import annotations

import torch
from torch import Tensor

from ..checks import (InputError, check_callable, check_finite_tensor, check_generator, check_int, check_points,
                      check_positive)
from ..progress import progress_bar
from ..samplers import LogDensity
from .flows import Flow

__all__ = ["flow_optimizer", "maximum_likelihood_step", "pretrain_maximum_likelihood", "pretrain_reverse_kl"]


def flow_optimizer(flow: Flow, lr: float) -> torch.optim.Adam:
    """Adam on the flow's parameters, fused (one kernel for all parameters: a small flow's step costs
    about a fifth of the per-parameter loop's)."""
    return torch.optim.Adam(flow.parameters(), lr=lr, fused=True)


def _check_flow(flow: Flow) -> None:
    if not isinstance(flow, Flow):
        raise InputError(f"flow must be an ebmflow Flow (e.g. RealNVP(base, generator=...)), got {type(flow).__name__}")


def maximum_likelihood_step(flow: Flow, optimizer: torch.optim.Optimizer, samples: Tensor) -> Tensor:
    """One forward-KL step of ``flow`` on ``samples``; returns the negative log-likelihood (a 0-d tensor).

    A non-finite sample would turn every flow parameter into NaN: it is refused instead. The gradients are those
    of ``zero_grad()`` then ``backward()`` for the optimiser's parameters, computed by ``torch.autograd.grad``
    (no accumulation nodes: a small batch costs per operation)."""
    params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
    nll = -flow.log_prob(samples).mean()
    if not torch.isfinite(nll):
        check_finite_tensor("the flow's maximum-likelihood samples", samples)
        raise InputError(f"the flow's negative log-likelihood is {float(nll)} on finite samples: the samples "
                         f"lie outside the flow's support")
    for param, grad in zip(params, torch.autograd.grad(nll, params, allow_unused=True)):
        param.grad = grad
    optimizer.step()
    return nll.detach()


def pretrain_maximum_likelihood(flow: Flow, data: Tensor, *, n_steps: int, lr: float, batch_size: int,
                                generator: torch.Generator, desc: str = "flow pre-training") -> list[float]:
    """Fit ``flow`` to samples ``data`` by Adam on the negative log-likelihood (forward KL) of random
    mini-batches: CoopFlow's "pre-trained on p* samples" and NT-EBM's maximum-likelihood backbone."""
    check_int("pre-training n_steps", n_steps, minimum=0)
    check_positive("pre-training lr", lr)
    check_int("pre-training batch_size", batch_size)
    check_generator(generator)
    _check_flow(flow)
    check_points("pre-training data", data, dim=flow.dim, dtype=next(flow.parameters()).dtype)
    optimizer = flow_optimizer(flow, lr)
    losses = []
    bar = progress_bar(n_steps, desc)
    for _ in range(n_steps):
        batch = data[torch.randint(len(data), (batch_size,), generator=generator, device=generator.device)]
        losses.append(maximum_likelihood_step(flow, optimizer, batch))
        bar.update()
    bar.close()
    return torch.stack(losses).tolist() if losses else []


def pretrain_reverse_kl(flow: Flow, log_target: LogDensity, *, n_steps: int, lr: float, batch_size: int,
                        generator: torch.Generator, desc: str = "flow pre-training") -> list[float]:
    """Fit ``flow`` to the unnormalised ``log_target`` by Adam on the reverse KL,
    KL(lambda || pi) = E_{z~rho}[log lambda(T z) - log pi(T z)] up to log Z (the paper's "reverse KL"
    pre-training, whose target it does not name); returns the losses."""
    check_int("pre-training n_steps", n_steps, minimum=0)
    check_positive("pre-training lr", lr)
    check_int("pre-training batch_size", batch_size)
    check_generator(generator)
    _check_flow(flow)
    check_callable("log_target", log_target)
    optimizer = flow_optimizer(flow, lr)
    losses = []
    bar = progress_bar(n_steps, desc)
    for _ in range(n_steps):
        z, log_latent = flow.latent.sample_with_log_prob(batch_size, generator)
        x, logdet = flow.from_latent(z)
        loss = (log_latent - logdet - log_target(x)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
        bar.update()
    bar.close()
    return torch.stack(losses).tolist() if losses else []
