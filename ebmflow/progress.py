"""Progress bars: shown in a terminal, silent in notebooks and CI logs."""
from __future__ import annotations

import io
import os
import sys
from typing import TextIO

from tqdm import tqdm

__all__ = ["progress_bar"]

_terminal: TextIO | None = None


def _stream(forced: str | None) -> TextIO:
    """Where bars go: stderr; with EBMFLOW_PROGRESS=terminal (set by ``ebmflow run`` for its kernel) the
    terminal the runner runs in, which an ipykernel's ``sys.stderr.fileno()`` still points to, so that bars never
    land in the notebook's outputs."""
    global _terminal
    if forced == "terminal" and type(sys.stderr).__module__.startswith("ipykernel"):
        if _terminal is None:
            try:
                _terminal = open(os.dup(sys.stderr.fileno()), "w", buffering=1, closefd=True)
            except (OSError, ValueError, io.UnsupportedOperation):
                return sys.stderr
        return _terminal
    return sys.stderr


def progress_bar(total: int, desc: str, initial: int = 0) -> tqdm:
    """A tqdm bar shown only when stderr is a terminal, or when EBMFLOW_PROGRESS=1 (or =terminal)."""
    forced = os.environ.get("EBMFLOW_PROGRESS")
    show = forced in ("1", "terminal") if forced is not None else sys.stderr.isatty()
    return tqdm(total=total, desc=desc, initial=initial, disable=not show, leave=False, file=_stream(forced))
