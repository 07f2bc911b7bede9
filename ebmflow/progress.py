"""Progress bars: shown in a terminal, silent in notebooks and CI logs."""
from __future__ import annotations

import os
import sys

from tqdm import tqdm

__all__ = ["progress_bar"]


def progress_bar(total: int, desc: str, initial: int = 0) -> tqdm:
    """A tqdm bar shown only when stderr is a terminal, or when EBMFLOW_PROGRESS=1."""
    forced = os.environ.get("EBMFLOW_PROGRESS")
    show = forced == "1" if forced is not None else sys.stderr.isatty()
    return tqdm(total=total, desc=desc, initial=initial, disable=not show, leave=False, file=sys.stderr)
