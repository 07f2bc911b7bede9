"""Seeds and devices: every random draw in ebmflow goes through an explicit ``torch.Generator``."""
from __future__ import annotations

import hashlib

import torch

from .checks import MAX_SEED, InputError, check_seed

__all__ = ["MAX_SEED", "make_generator", "resolve_device"]



def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """"cpu", "cuda" (or "cuda:N") or "auto" (cuda when available) as a torch.device."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed = torch.device(name)
    except (RuntimeError, ValueError):
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda"):
        raise InputError(f"device must be 'cpu', 'cuda' (or 'cuda:N') or 'auto', got {device!r}")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r} was asked for but no CUDA GPU is available here: use device='cpu' or "
                         f"'auto'")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise InputError(f"device {name!r} was asked for but this machine has {torch.cuda.device_count()} CUDA "
                         f"GPU(s), numbered from 0")
    return parsed


def make_generator(seed: int, device: str | torch.device = "cpu", stream: str = "") -> torch.Generator:
    """A generator on ``device`` for the random ``stream`` (a purpose: "data", "training", ...) of ``seed``.

    Streams of one seed are independent, and so are the same stream of two seeds (the stream's seed is a hash
    of both). Global random state is never touched: the same seed, profile and device give identical numbers
    because every draw of the library (data, initialisation, chains, proposals, mini-batches) uses such a
    generator.
    """
    check_seed(seed)
    if not isinstance(stream, str):
        raise InputError(f"stream must be a string naming the purpose of the draws (\"data\", \"training\"), got "
                         f"{stream!r}")
    if stream:
        seed = int.from_bytes(hashlib.sha256(f"{seed}/{stream}".encode()).digest()[:7], "big")
    generator = torch.Generator(device=resolve_device(device))
    generator.manual_seed(seed)
    return generator
