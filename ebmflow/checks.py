"""Checks at the library's boundary: bad input gets one sentence naming the parameter, the value and what is
accepted, before any work starts."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

__all__ = ["InputError", "check_positive", "check_non_negative", "check_probability", "check_int",
           "check_generator", "check_finite_tensor", "check_points", "check_weights"]


class InputError(ValueError):
    """A bad argument or parameter value, detected before any work."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """An int (not a bool) of at least ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_positive(name: str, value: Any) -> float:
    """A finite number > 0."""
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def check_non_negative(name: str, value: Any) -> float:
    """A finite number >= 0."""
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise InputError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def check_probability(name: str, value: Any, *, open_interval: bool = True) -> float:
    """A number in (0, 1) (or [0, 1] with ``open_interval=False``)."""
    ok = _is_number(value) and (0 < value < 1 if open_interval else 0 <= value <= 1)
    if not ok:
        raise InputError(f"{name} must be a number in {'(0, 1)' if open_interval else '[0, 1]'}, got {value!r}")
    return value


def check_generator(generator: Any, name: str = "generator") -> torch.Generator:
    """An explicit torch.Generator: library randomness never comes from global state."""
    if not isinstance(generator, torch.Generator):
        raise InputError(f"{name} must be a torch.Generator (see ebmflow.seeding.make_generator), got "
                         f"{type(generator).__name__}")
    return generator


def check_finite_tensor(name: str, x: Any) -> Tensor:
    """A floating tensor whose values are all finite; names the first bad row."""
    if not isinstance(x, Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise InputError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    bad = ~torch.isfinite(x.reshape(len(x), -1)).all(dim=1) if x.dim() else ~torch.isfinite(x)
    if bad.any():
        row = int(torch.nonzero(bad)[0]) if x.dim() else 0
        raise InputError(f"{name} has non-finite values (NaN or inf), first in row {row}: remove or fix those rows")
    return x


def check_points(name: str, x: Any, dim: int | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """A finite (n, d) float tensor of the expected dtype (and dimension d, if given), n >= 1."""
    if not isinstance(x, Tensor):
        raise InputError(f"{name} must be a torch.Tensor of shape (n, d), got {type(x).__name__}")
    if x.dim() != 2 or len(x) == 0:
        raise InputError(f"{name} must have shape (n, d) with n >= 1, got shape {tuple(x.shape)}")
    if dim is not None and x.shape[1] != dim:
        raise InputError(f"{name} has dimension {x.shape[1]} but the model expects {dim}")
    if x.dtype != dtype:
        raise InputError(f"{name} must have dtype {dtype} (the models' dtype), got {x.dtype}: convert with "
                         f".to({dtype})")
    return check_finite_tensor(name, x)


def check_weights(name: str, weights: Any) -> tuple[float, ...]:
    """Positive mixture weights that sum to 1 (within 1e-6)."""
    try:
        values = tuple(float(w) for w in weights)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a sequence of positive numbers summing to 1, got {weights!r}") from None
    if len(values) < 2 or any(not math.isfinite(w) or w <= 0 for w in values) or abs(sum(values) - 1) > 1e-6:
        raise InputError(f"{name} must be at least two positive numbers summing to 1, got {weights!r}")
    return values
