"""The book's chapters: each notebook with the configuration class and profiles behind its parameters."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import resolve_config
from .experiments import extended, high_dim, images, motivating, toy_benchmarks
from .experiments.benchmarks import BenchmarkConfig

__all__ = ["SummaryConfig", "Chapter", "CHAPTERS", "BOOK_DIR", "get_chapter", "chapter_config", "choices_markdown"]

BOOK_DIR = Path(__file__).resolve().parent.parent / "book"


@dataclass(frozen=True)
class SummaryConfig:
    """Summary pages (intro, report) only read what the chapters stored: no knob beyond the profile."""


SUMMARY_PROFILES: dict[str, dict[str, Any]] = {"smoke": {}, "cpu": {}, "paper": {}}


@dataclass(frozen=True)
class Chapter:
    name: str  # notebook stem in book/
    title: str
    config_cls: type
    profiles: dict[str, dict[str, Any]]
    choices: tuple[str, ...] = ()  # choices made where the paper is silent
    summary: bool = False  # summary pages run after every experiment chapter

    @property
    def notebook(self) -> Path:
        return BOOK_DIR / f"{self.name}.ipynb"


CHAPTERS: dict[str, Chapter] = {c.name: c for c in [
    Chapter("01_motivating_example", "Figure 1: mode weights on a 2:1 mixture",
            motivating.MotivatingConfig, motivating.PROFILES, motivating.CHOICES),
    Chapter("02_toy_benchmarks", "Figure 2, Tables 1 and 5: 8 Gaussians and Rings, four methods",
            BenchmarkConfig, toy_benchmarks.PROFILES, toy_benchmarks.CHOICES),
    Chapter("03_extended_example", "Figures 3-5, Tables 3 and 4: relative weights of four modes",
            BenchmarkConfig, extended.PROFILES, extended.CHOICES),
    Chapter("04_high_dim_mixture", "Table 2 and Figure 6: R-hat on a 4-mode mixture in 16-64 dimensions",
            high_dim.HighDimConfig, high_dim.PROFILES, high_dim.CHOICES),
    Chapter("05_images", "Figures 7–8: images, and class weights on real images",
            images.ImagesConfig, images.PROFILES, images.CHOICES),
    Chapter("intro", "Introduction, map of the paper, runtimes", SummaryConfig, SUMMARY_PROFILES, summary=True),
    Chapter("99_report", "Reproduction report", SummaryConfig, SUMMARY_PROFILES, summary=True),
]}


def get_chapter(name: str) -> Chapter:
    """The chapter called ``name`` (with or without ``.ipynb`` / ``book/``), or a ValueError listing them."""
    stem = Path(name).stem
    if stem not in CHAPTERS:
        raise ValueError(f"unknown chapter {name!r}; chapters: {', '.join(CHAPTERS)}")
    return CHAPTERS[stem]


def chapter_config(name: str, profile: str, namespace: dict[str, Any]):
    """The chapter's configuration from its parameters cell: every config field found in ``namespace``
    (the notebook's globals) overrides the profile unless it is None."""
    chapter = get_chapter(name)
    fields = [f.name for f in dataclasses.fields(chapter.config_cls)]
    return resolve_config(chapter.config_cls, chapter.profiles, profile,
                          **{field: namespace.get(field) for field in fields})


def choices_markdown(name: str) -> str:
    """The chapter's choices where the paper is silent, as a Markdown list."""
    return "\n".join(f"- {choice}" for choice in get_chapter(name).choices)
