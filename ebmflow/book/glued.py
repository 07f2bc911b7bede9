"""Numbers a chapter computes, glued into its text (myst_nb.glue), and read back from executed notebooks."""
from __future__ import annotations

import ast
import math
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import nbformat

from ..checks import InputError

__all__ = ["glue_numbers", "read_glued", "GluedError", "check_numbers"]


class GluedError(InputError):
    """An executed notebook whose glued values cannot be read (damaged file, a number stored as text)."""


def glue_numbers(values: Mapping[str, Any]) -> None:
    """Glue every value under its key (not displayed: the text shows them with {glue:text}). A value that is
    not a finite number (a diverged run's metric) is glued as NaN and rendered by the text as such."""
    from myst_nb import glue

    for key, value in values.items():
        if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # a numpy or torch scalar: its number
            value = value.item()  # (its repr, np.float64(0.5), would be read back as text)
        if isinstance(value, float) and not math.isfinite(value):
            value = float("nan")
        glue(key, value, display=False)


_NUMBER_WRAPPER = re.compile(r"^(?:np|numpy)\.(?:float|int|uint)\d*\((.*)\)$|^tensor\((.*)\)$")
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "infinity": math.inf, "-infinity": -math.inf}


def _parse(text: Any) -> Any:
    """A glued value from its stored text: a Python literal, NaN/inf in any spelling, or a numpy/torch scalar's
    repr (``np.float64(0.5)``: numpy 2 writes scalars so); other text stays a string."""
    if not isinstance(text, str):
        return text
    stripped = text.strip()
    wrapped = _NUMBER_WRAPPER.match(stripped)
    if wrapped:
        stripped = (wrapped.group(1) or wrapped.group(2) or "").strip()
    if stripped.lower() in _NON_FINITE:
        return _NON_FINITE[stripped.lower()]
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def read_glued(notebook: Path) -> dict[str, Any]:
    """All glued values of an executed notebook, by key (values parsed from their stored repr; NaN kept).

    A notebook that cannot be read (damaged JSON, not a notebook, missing) raises GluedError naming the file."""
    try:
        cells = nbformat.read(notebook, as_version=4).cells
    except Exception as error:  # noqa: BLE001 - JSON, schema or OS errors: one sentence naming the file
        reason = " ".join(str(error).split())[:160] or type(error).__name__
        raise GluedError(f"notebook {notebook} cannot be read ({reason}): restore it (git checkout -- {notebook}) or "
                         f"re-run its chapter (ebmflow run {Path(notebook).stem})") from None
    values: dict[str, Any] = {}
    for cell in cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is None:
                continue
            data = output.get("data", {})
            values[name] = _parse(data.get("application/papermill.record/text/plain", data.get("text/plain")))
    return values


def check_numbers(notebook: Path | str, values: Mapping[str, Any], keys: Iterable[str]) -> None:
    """Each of ``keys`` present in ``values`` (glued by ``notebook``) is a number (NaN allowed: a diverged run);
    GluedError names the notebook, the key and the value otherwise."""
    for key in keys:
        value = values.get(key)
        if key in values and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise GluedError(f"notebook {notebook}: glued value {key!r} = {value!r} is not a number: re-run its "
                             f"chapter (ebmflow run {Path(str(notebook)).stem})")
