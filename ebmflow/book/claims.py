"""The paper's claims and the items (figures, tables) they rest on, checked on the numbers chapters glue.

A claim's ``ours`` and ``why_not`` are templates rendered from the glued values (``"{fig1_final_weight_flowmc:.3f}"``),
so the text of a verdict can never go stale; ``check`` applies the stated rule to the same values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

__all__ = ["Glued", "Claim", "PaperItem", "render", "lowest"]

Glued = Mapping[str, Any]


def render(template: str, glued: Glued) -> str:
    """``template`` with its {key:format} fields filled from ``glued`` (a missing key raises KeyError)."""
    return template.format_map(glued)


@dataclass(frozen=True)
class Claim:
    statement: str
    paper: str  # the paper's number(s), as printed in the paper
    ours: str  # template of our number(s), rendered from the glued values
    rule: str  # the tolerance or ordering the verdict applies, in words
    check: Callable[[Glued], bool]
    expected_to_hold: bool = True  # at the committed cpu profile; False needs a why_not
    why_not: str = ""  # template: why it does not hold, rendered from the glued values


@dataclass(frozen=True)
class PaperItem:
    item: str  # "Figure 1", "Table 3", ...
    chapter: str  # chapter stem that rebuilds it
    content: str
    claims: tuple[Claim, ...] = field(default_factory=tuple)
    rebuilt_by: str = ""  # the library function the chapter's cell calls (in ebmflow.experiments)


def _value(glued: Glued, key: str) -> float:
    """A glued metric; a diverged run's NaN counts as the worst value (+inf) in orderings."""
    value = glued[key]
    return math.inf if isinstance(value, float) and math.isnan(value) else value


def lowest(keys: dict[str, str], labels: dict[str, str], paper: dict[str, float], fmt: str, what: str,
           best: str = "flowmc") -> Claim:
    """The claim "``best`` has the lowest ``what``" over the methods of ``keys`` (method -> glue key)."""
    others = [m for m in keys if m != best]
    return Claim(f"{labels[best]} has the lowest {what}",
                 ", ".join(f"{labels[m]} {paper[m]:{fmt}}" for m in keys),
                 ", ".join(f"{labels[m]} {{{keys[m]}:{fmt}}}" for m in keys),
                 f"{labels[best]} < every other method (a diverged run counts as worst)",
                 lambda g: all(_value(g, keys[best]) < _value(g, keys[m]) for m in others))
