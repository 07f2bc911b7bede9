"""Read the numbers a chapter glued (myst_nb.glue) from its stored outputs."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import nbformat

__all__ = ["read_glued"]


def read_glued(notebook: Path) -> dict[str, Any]:
    """All glued values of an executed notebook, by key (values parsed from their stored repr)."""
    values: dict[str, Any] = {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is None:
                continue
            data = output["data"]
            text = data.get("application/papermill.record/text/plain", data.get("text/plain"))
            try:
                values[name] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                values[name] = text
    return values
