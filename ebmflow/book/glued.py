"""Numbers a chapter computes, glued into its text (myst_nb.glue), and read back from executed notebooks."""
from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any, Mapping

import nbformat

__all__ = ["glue_numbers", "read_glued"]


def glue_numbers(values: Mapping[str, Any]) -> None:
    """Glue every value under its key (not displayed: the text shows them with {glue:text}). A value that is
    not a finite number (a diverged run's metric) is glued as NaN and rendered by the text as such."""
    from myst_nb import glue

    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = float("nan")
        glue(key, value, display=False)


def read_glued(notebook: Path) -> dict[str, Any]:
    """All glued values of an executed notebook, by key (values parsed from their stored repr; NaN kept)."""
    values: dict[str, Any] = {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is None:
                continue
            data = output["data"]
            text = data.get("application/papermill.record/text/plain", data.get("text/plain"))
            if text == "nan":
                values[name] = float("nan")
                continue
            try:
                values[name] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                values[name] = text
    return values
