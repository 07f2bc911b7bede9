"""Checkpoints of a training run, written atomically and refused when they come from another configuration."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .checks import InputError, check_int

__all__ = ["Checkpoint", "CheckpointMismatch"]


class CheckpointMismatch(InputError):
    """A checkpoint written by a different configuration or library version."""


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): repr(value)}


@dataclass
class Checkpoint:
    """Where and how often a run saves itself: every ``every_iterations`` iterations or ``every_seconds``
    seconds, whichever comes first (None: never by that rule), and at the end.

    ``fingerprint`` describes the run (configuration, method, seed, device); the library version is added. A
    checkpoint whose fingerprint differs is refused, naming the first field that differs."""

    path: Path
    fingerprint: dict[str, Any]
    every_iterations: int | None = None
    every_seconds: float | None = 300.0
    _last_save: float = field(default_factory=time.monotonic, init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.path, (str, os.PathLike)):
            raise InputError(f"Checkpoint path must be a file path (str or Path), got {self.path!r}")
        if not isinstance(self.fingerprint, dict):
            raise InputError(f"Checkpoint fingerprint must be a dict, got {type(self.fingerprint).__name__}")
        if self.every_iterations is not None:
            check_int("Checkpoint every_iterations (or None)", self.every_iterations)
        if self.every_seconds is not None and (not isinstance(self.every_seconds, (int, float))
                                               or isinstance(self.every_seconds, bool) or not self.every_seconds >= 0):
            raise InputError(f"Checkpoint every_seconds must be a number >= 0 or None, got {self.every_seconds!r}")
        self.path = Path(self.path)
        self.fingerprint = {**self.fingerprint, "ebmflow_version": __version__}

    def due(self, iteration: int) -> bool:
        by_count = self.every_iterations is not None and iteration % self.every_iterations == 0
        by_time = self.every_seconds is not None and time.monotonic() - self._last_save >= self.every_seconds
        return by_count or by_time

    def extended(self, **fields: Any) -> "Checkpoint":
        """The same checkpoint (path, frequency) with ``fields`` added to its fingerprint."""
        return Checkpoint(self.path, {**self.fingerprint, **fields}, self.every_iterations, self.every_seconds)

    def exists(self) -> bool:
        return self.path.exists()

    def save(self, payload: dict[str, Any]) -> None:
        """Write ``payload`` (with the fingerprint) to a temporary file and move it into place; temporaries left
        by killed runs are removed."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
        try:
            torch.save({"fingerprint": self.fingerprint, **payload}, temporary)
            os.replace(temporary, self.path)
        finally:
            temporary.unlink(missing_ok=True)
        for stale in self.path.parent.glob(f".{self.path.name}.tmp*"):
            stale.unlink(missing_ok=True)
        self._last_save = time.monotonic()

    def load(self, map_location: torch.device | str = "cpu") -> dict[str, Any]:
        """The saved payload; CheckpointMismatch if it was written by another configuration or cannot be read."""
        try:
            payload = torch.load(self.path, map_location=map_location, weights_only=True)
        except Exception as error:  # a truncated or foreign file
            detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CheckpointMismatch(f"checkpoint {self.path} cannot be read: the file is truncated (a run killed "
                                     f"while writing it?) or not an ebmflow checkpoint ({type(error).__name__}: "
                                     f"{detail[:200]}); delete it to start the run afresh") from None
        if not isinstance(payload, dict):
            raise CheckpointMismatch(f"checkpoint {self.path} is not an ebmflow checkpoint (it holds a "
                                     f"{type(payload).__name__}); delete it to start the run afresh")
        theirs, ours = _flatten(payload.get("fingerprint", {})), _flatten(self.fingerprint)
        for key in sorted(set(theirs) | set(ours)):
            if theirs.get(key) != ours.get(key):
                raise CheckpointMismatch(
                    f"checkpoint {self.path} was written by a different run: {key} is {theirs.get(key, 'absent')} "
                    f"there and {ours.get(key, 'absent')} here; delete it or run without resuming")
        return payload
