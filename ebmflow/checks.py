"""Checks at the library's boundary: bad input gets one sentence naming the parameter, the value and what is
accepted, before any work starts."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

__all__ = ["InputError", "MAX_SEED", "check_positive", "check_non_negative", "check_probability", "check_int",
           "check_number", "check_seed", "check_choice", "check_callable", "check_density", "check_dims_agree",
           "check_finite_parameters", "check_image_shape", "check_generator", "check_finite_tensor", "check_points",
           "check_weights", "check_kernel", "check_chain_start", "check_bounds"]

MAX_SEED = 2**62  # seeds are hashed with a stream name into torch's seed range; < 2**62 keeps them exact


class InputError(ValueError):
    """A bad argument or parameter value, detected before any work."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """An int (not a bool) of at least ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_number(name: str, value: Any) -> float:
    """A finite real number (not a bool)."""
    if not _is_number(value) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    return value


def check_seed(value: Any, name: str = "seed") -> int:
    """An int in [0, 2**62) (not a bool, not a float)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < MAX_SEED:
        raise InputError(f"{name} must be an integer in [0, 2**62), got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Any) -> Any:
    """One of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        accepted = " or ".join(map(repr, choices)) if len(choices) == 2 else f"one of {', '.join(map(repr, choices))}"
        raise InputError(f"{name} must be {accepted}, got {value!r}")
    return value


def check_callable(name: str, value: Any) -> Any:
    """A function (or any callable)."""
    if not callable(value):
        raise InputError(f"{name} must be callable (a function), got {type(value).__name__} {value!r}")
    return value


def check_density(name: str, value: Any) -> Any:
    """A proposal: an object with ``log_prob(x)`` and ``sample_with_log_prob(n, generator)`` (a flow or a base)."""
    missing = [m for m in ("log_prob", "sample_with_log_prob") if not callable(getattr(value, m, None))]
    if missing:
        raise InputError(f"{name} must be a density with log_prob(x) and sample_with_log_prob(n, generator) (a flow "
                         f"or a base such as DiagonalGaussian), got {type(value).__name__} without "
                         f"{' and '.join(missing)}")
    return value


def check_dims_agree(**dims: Any) -> int | None:
    """The dimensions of the named objects agree (None: that object has no ``dim``); returns the common one."""
    known = {name: dim for name, dim in dims.items() if dim is not None}
    if len(set(known.values())) > 1:
        raise InputError("dimensions must agree, got " + ", ".join(f"{name} of dimension {dim}"
                                                                     for name, dim in known.items()))
    return next(iter(known.values()), None)


def check_finite_parameters(name: str, module: Any) -> Any:
    """A torch module whose parameters are all finite (a network loaded with NaN weights is refused)."""
    for parameter_name, parameter in module.named_parameters():
        if not torch.isfinite(parameter).all():
            raise InputError(f"{name} parameter {parameter_name!r} has non-finite values (NaN or inf): rebuild or "
                             f"reload the network")
    return module


def check_image_shape(name: str, shape: Any) -> tuple[int, int, int]:
    """(channels, height, width), three positive ints."""
    try:
        values = tuple(shape)
    except TypeError:
        values = ()
    if len(values) != 3 or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
        raise InputError(f"{name} must be (channels, height, width), three positive integers, got {shape!r}")
    return values


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
    if not isinstance(generator, torch.Generator):  # None would silently use the global RNG
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
        total = f" (sum {sum(values):.6g})" if len(values) >= 2 and all(math.isfinite(w) for w in values) else ""
        raise InputError(f"{name} must be at least two positive numbers summing to 1 (within 1e-6), got "
                         f"{weights!r}{total}")
    return values


def check_kernel(name: str, value: Any) -> Any:
    """A sampler Kernel (from ``ebmflow.samplers``: mala, ula, imh, isir, flowmc)."""
    from .samplers.base import Kernel  # the samplers import this module

    if not isinstance(value, Kernel):
        raise InputError(f"{name} must be a Kernel (from mala, ula, imh, isir or flowmc), got {type(value).__name__}")
    return value


def check_chain_start(start: Any, name: str = "start") -> Any:
    """Chain positions (n, ...) with n >= 1, or a ChainState holding them."""
    from .samplers.base import ChainState

    position = start.position if isinstance(start, ChainState) else start
    if not isinstance(position, Tensor) or position.dim() < 2 or len(position) == 0:
        raise InputError(f"{name} must be chain positions (n, d) with n >= 1 or a ChainState, got "
                         f"{tuple(position.shape) if isinstance(position, Tensor) else type(start).__name__}")
    return start


def check_bounds(name: str, bounds: Any) -> Any:
    """None or (low, high): two finite numbers with low < high."""
    if bounds is not None and not (isinstance(bounds, (tuple, list)) and len(bounds) == 2
                                   and all(_is_number(b) and math.isfinite(b) for b in bounds)
                                   and bounds[0] < bounds[1]):
        raise InputError(f"{name} must be (low, high), two finite numbers with low < high, got {bounds!r}")
    return bounds
