"""The reproduction report: every figure and table of the paper, the paper's number beside ours, a verdict.

Paper items and their claims are defined by the chapters' experiment modules (``ITEMS``); a claim reads the
values the chapters glued (``read_glued``), applies its stated rule, and renders its numbers and reasons from
the same values. ``expected_to_hold`` records whether it held when the committed chapters were executed, so a
test fails when a verdict regresses (or silently improves).
"""
from __future__ import annotations

from typing import Any

from .chapters import CHAPTERS, paper_items
from .claims import Claim, Glued, PaperItem, render
from .glued import read_glued

__all__ = ["VERDICTS", "all_claims", "load_glued", "verdict_rows", "paper_map_markdown", "runtime_markdown",
           "choices_by_chapter_markdown"]

VERDICTS = ("holds", "does not hold", "rebuilt", "not run")


def all_claims() -> list[tuple[PaperItem, Claim]]:
    """The claims of every item rebuilt by a chapter of the book."""
    return [(item, claim) for item in paper_items() for claim in item.claims]


def load_glued(chapters: list[str] | None = None) -> dict[str, Any]:
    """Glued values of the executed chapters (committed notebooks in book/), merged by key."""
    values: dict[str, Any] = {}
    for name in chapters or list(CHAPTERS):
        if CHAPTERS[name].notebook.exists():
            values.update(read_glued(CHAPTERS[name].notebook))
    return values


def verdict_rows(glued: Glued) -> list[dict[str, str]]:
    """One row per claim (items without a numeric claim get one row marked 'rebuilt')."""
    rows = []
    for item in paper_items():
        if not item.claims:
            rows.append({"item": item.item, "chapter": item.chapter, "claim": item.content, "paper": "—",
                         "ours": "—", "rule": "figure/table rebuilt from code", "verdict": "rebuilt"})
        for claim in item.claims:
            try:
                ours, verdict = render(claim.ours, glued), "holds" if claim.check(glued) else "does not hold"
            except KeyError as missing:
                ours, verdict = f"missing {missing}", "not run"
            rows.append({"item": item.item, "chapter": item.chapter, "claim": claim.statement,
                         "paper": claim.paper, "ours": ours, "rule": claim.rule, "verdict": verdict})
    return rows


def paper_map_markdown() -> str:
    """Markdown table: each figure and table of the paper, what it shows, the chapter that rebuilds it."""
    lines = ["| paper item | what it shows | rebuilt in | by the cell calling |", "|---|---|---|---|"]
    for item in paper_items():
        lines.append(f"| {item.item} | {item.content} | {{doc}}`{item.chapter}` | `{item.rebuilt_by}` |")
    return "\n".join(lines)


def runtime_markdown() -> str:
    """Markdown table of the measured runtimes per chapter and profile (book/runtimes.json)."""
    from .runner import read_runtimes

    runtimes = read_runtimes()
    profiles = ["smoke", "cpu", "paper"]
    lines = ["| chapter | " + " | ".join(profiles) + " |", "|---|" + "---|" * len(profiles)]
    for chapter in CHAPTERS.values():
        if chapter.summary:
            continue
        cells = [_duration(runtimes.get(chapter.name, {}).get(p)) for p in profiles]
        lines.append(f"| {{doc}}`{chapter.name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def choices_by_chapter_markdown() -> str:
    """Every chapter's choices where the paper is silent, under a link to the chapter."""
    parts = []
    for chapter in CHAPTERS.values():
        if chapter.choices:
            parts.append(f"**{{doc}}`{chapter.name}`**\n\n" + "\n".join(f"- {c}" for c in chapter.choices))
    return "\n\n".join(parts)
