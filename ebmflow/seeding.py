"""One seeding helper: every random draw in ebmflow goes through an explicit ``torch.Generator``."""
from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["make_generator"]


def make_generator(seed: int) -> torch.Generator:
    """Seed the global RNGs (for code outside ebmflow) and return a CPU generator for ebmflow's own draws.

    The same ``seed`` and profile on CPU give identical numbers: all library randomness (data, chains,
    proposals, mini-batches) is drawn from the returned generator, never from global state.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
