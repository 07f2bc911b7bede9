"""The paper's claims and the items (figures, tables) they rest on, checked on the numbers chapters glue.

A claim's ``ours`` and ``why_not`` are templates rendered from the glued values (``"{fig1_final_weight_flowmc:.3f}"``),
so the text of a verdict can never go stale; ``check`` applies the stated rule to the same values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

__all__ = ["Glued", "OUTCOMES", "outcome", "Claim", "PaperItem", "render", "lowest"]

Glued = Mapping[str, Any]


def render(template: str, glued: Glued) -> str:
    """``template`` with its {key:format} fields filled from ``glued`` (a missing key raises KeyError)."""
    return template.format_map(glued)


OUTCOMES = ("all", "some", "none")  # a claim holds in every seed, in some seeds only, in none


def outcome(results: list[bool]) -> str:
    """"all", "some" or "none": in how many of the seeds' ``results`` a claim held."""
    held = sum(bool(r) for r in results)
    return "all" if held == len(results) else "none" if held == 0 else "some"


@dataclass(frozen=True)
class Claim:
    """A claim of the paper and the rule that checks it on one seed's glued values.

    ``expected`` records the outcome over the seeds of the committed cpu-profile records: "all" (holds in every
    seed), "some" (in some seeds only) or "none"; tests/test_claims.py fails when the committed records disagree.
    ``expected_to_hold`` is the older spelling of ``expected == "all"`` (kept in step with it); any outcome but
    "all" needs a ``why_not``."""

    statement: str
    paper: str  # the paper's number(s), as printed in the paper
    ours: str  # template of our number(s), rendered from the glued values
    rule: str  # the tolerance or ordering the verdict applies, in words
    check: Callable[[Glued], bool]
    expected_to_hold: bool = True  # in every seed at the committed cpu profile; False needs a why_not
    why_not: str = ""  # template: why it does not hold (everywhere), rendered from the glued values
    expected: str = ""  # "all", "some" or "none" over the committed seeds; "" = from expected_to_hold

    def __post_init__(self) -> None:
        if self.expected and self.expected not in OUTCOMES:
            raise ValueError(f"Claim {self.statement!r}: expected must be one of {', '.join(OUTCOMES)}, "
                             f"got {self.expected!r}")
        object.__setattr__(self, "expected", self.expected or ("all" if self.expected_to_hold else "none"))
        object.__setattr__(self, "expected_to_hold", self.expected == "all")


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
           best: str = "flowmc", expected: str = "", why_not: str = "") -> Claim:
    """The claim "``best`` has the lowest ``what``" over the methods of ``keys`` (method -> glue key); ``expected``
    and ``why_not`` as for ``Claim`` (the outcome over the committed seeds)."""
    others = [m for m in keys if m != best]
    return Claim(f"{labels[best]} has the lowest {what}",
                 ", ".join(f"{labels[m]} {paper[m]:{fmt}}" for m in keys),
                 ", ".join(f"{labels[m]} {{{keys[m]}:{fmt}}}" for m in keys),
                 f"{labels[best]} < every other method (a diverged run counts as worst)",
                 lambda g: all(_value(g, keys[best]) < _value(g, keys[m]) for m in others),
                 why_not=why_not, expected=expected)
