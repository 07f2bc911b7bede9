"""Network initialisation from an explicit generator (torch's default distributions, no global RNG)."""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from ..checks import check_generator

__all__ = ["zero_last", "initialize", "global_rng_untouched"]


def zero_last(layer: nn.Module) -> nn.Module:
    """Mark ``layer`` to start at zero (E ≡ 0 and T = Id at initialisation, paper §2.3)."""
    layer.zero_init = True
    return layer


@contextmanager
def global_rng_untouched() -> Iterator[None]:
    """Build layers inside this block: torch layers draw a default initialisation from the global CPU RNG when
    they are constructed (``initialize`` then redraws them from an explicit generator); the global RNG is
    restored on exit, so building a model never changes the random numbers of code running alongside."""
    with torch.random.fork_rng(devices=[]):
        yield


@torch.no_grad()
def initialize(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Draw every linear and convolutional layer of ``module`` from ``generator`` with torch's default
    distributions (Kaiming-uniform weights, uniform biases); layers marked by ``zero_last`` start at zero."""
    check_generator(generator)
    for layer in module.modules():
        if not isinstance(layer, (nn.Linear, nn.Conv2d)):
            continue
        if getattr(layer, "zero_init", False):
            layer.weight.zero_()
            if layer.bias is not None:
                layer.bias.zero_()
            continue
        nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
        if layer.bias is not None:
            fan_in = layer.weight[0].numel()
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return module
