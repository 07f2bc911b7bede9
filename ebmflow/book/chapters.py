"""The book's chapters: each notebook with the experiment module behind its parameters, choices and claims."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..experiments import (class_weights, extended, high_dim, images, mode_weights, motivating, ratio_sweep,
                           toy_benchmarks, your_data)
from .claims import PaperItem
from .config import ConfigError, check_namespace, parameters_cell, resolve_config

__all__ = ["SummaryConfig", "Chapter", "CHAPTERS", "BOOK_DIR", "BOOK_PROFILE", "get_chapter", "chapter_config",
           "choices_markdown", "paper_items", "sync_parameters_cells"]

BOOK_DIR = Path(__file__).resolve().parent.parent.parent / "book"
BOOK_PROFILE = "cpu"  # the profile the book's chapters are committed at (a copy of a chapter may name another)


@dataclass(frozen=True)
class SummaryConfig:
    """Summary pages (intro, report) only read what the chapters stored: no knob beyond the profile."""


class _Summary:
    Config = SummaryConfig
    PROFILES: dict[str, dict[str, Any]] = {"smoke": {}, "cpu": {}, "paper": {}}
    CHOICES: tuple[str, ...] = ()
    ITEMS: tuple[PaperItem, ...] = ()


@dataclass(frozen=True)
class Chapter:
    """A page of the book. A copy (``copy_of``) is another chapter's notebook executed at ``book_profile``
    (chapter 01 at the paper's settings): it shares that chapter's module, records and runtimes, and its paper
    items are its own ("Figure 1 (paper profile)"), judged on its own glued values."""

    name: str  # notebook stem in book/
    title: str
    module: Any  # the experiment module: Config, PROFILES, CHOICES, ITEMS (paper items and their claims)
    summary: bool = False  # summary pages run after every experiment chapter
    copy_of: str = ""  # the chapter whose notebook this page is, executed at book_profile ("": its own notebook)
    book_profile: str = BOOK_PROFILE  # the profile its committed notebook is executed at

    @property
    def notebook(self) -> Path:
        """The executed notebook the book shows (book/NAME.ipynb)."""
        return BOOK_DIR / f"{self.name}.ipynb"

    @property
    def source_notebook(self) -> Path:
        """The notebook papermill executes: the chapter's own, or the one it is a copy of."""
        return CHAPTERS[self.copy_of].notebook if self.copy_of else self.notebook

    @property
    def experiment(self) -> str:
        """The chapter whose experiment runs: itself, or the one it is a copy of (records and runtimes are kept
        under that name, by profile)."""
        return self.copy_of or self.name

    @property
    def config_cls(self) -> type:
        return self.module.Config

    @property
    def profiles(self) -> dict[str, dict[str, Any]]:
        return self.module.PROFILES

    @property
    def choices(self) -> tuple[str, ...]:
        return self.module.CHOICES

    @property
    def items(self) -> tuple[PaperItem, ...]:
        """The paper items the chapter rebuilds; a copy's are its source's, named with its profile
        ("Figure 1 (paper profile)") and judged on the copy's own glued values."""
        if not self.copy_of:
            return self.module.ITEMS
        return tuple(dataclasses.replace(item, item=f"{item.item} ({self.book_profile} profile)", chapter=self.name)
                     for item in self.module.ITEMS if item.chapter == self.copy_of)

    def validate(self, config: Any) -> Any:
        """The chapter module's ``validate(config)``: every cross-parameter check (the methods built, the derived
        settings resolved) that must pass before its first training step; a ConfigError names the parameter."""
        check = getattr(self.module, "validate", None)
        if check is not None:
            try:
                check(config)
            except ConfigError:
                raise
            except (TypeError, ValueError) as error:  # InputError from a method, target or grid the config builds
                raise ConfigError(str(error)) from None
        return config


CHAPTERS: dict[str, Chapter] = {c.name: c for c in [
    Chapter("01_motivating_example", "Figure 1: mode weights on a 2:1 mixture", motivating),
    Chapter("01_motivating_example_paper", "Figure 1 at the paper profile: the paper's 75 epochs", motivating,
            copy_of="01_motivating_example", book_profile="paper"),
    Chapter("02_toy_benchmarks", "Figure 2, Tables 1 and 5: 8 Gaussians and Rings, four methods", toy_benchmarks),
    Chapter("03_extended_example", "Figures 3-5, Tables 3 and 4: relative weights of four modes", extended),
    Chapter("04_high_dim_mixture", "Table 2 and Figure 6: R-hat on a 4-mode mixture in 16-64 dimensions", high_dim),
    Chapter("05_images", "Figures 7 and 8: flowMC-EBM on images", images),
    Chapter("06_class_weights", "Beyond the paper: class weights on imbalanced digits", class_weights),
    Chapter("07_mode_weights", "Beyond the paper: mode weights in d = 8-64", mode_weights),
    Chapter("08_your_data", "Beyond the paper: the four methods on your own data file", your_data),
    Chapter("09_ratio_sweep", "Beyond the paper: Figure 1's ratio from 1:1 to 19:1 (a sweep of chapter 01)", ratio_sweep,
            summary=True),
    Chapter("intro", "Introduction, map of the paper, runtimes", _Summary, summary=True),
    Chapter("99_report", "Reproduction report", _Summary, summary=True),
]}


def get_chapter(name: str) -> Chapter:
    """The chapter called ``name`` (with or without ``.ipynb`` / ``book/``), or a ValueError listing them."""
    stem = Path(name).stem
    if stem not in CHAPTERS:
        raise ValueError(f"unknown chapter {name!r}; chapters: {', '.join(CHAPTERS)}")
    return CHAPTERS[stem]


def chapter_config(name: str, profile: str, namespace: dict[str, Any]):
    """The chapter's configuration from its parameters cell: every config field found in ``namespace``
    (the notebook's globals) overrides the profile unless it is None. Everything is checked here, before the
    notebook does any work: a name set in the parameters cells that is not a parameter (``papermill -p epoch 5``),
    types, ranges and the chapter's cross-parameter checks (``validate``)."""
    chapter = get_chapter(name)
    check_namespace(chapter.config_cls, namespace)
    fields = [f.name for f in dataclasses.fields(chapter.config_cls)]
    return chapter.validate(resolve_config(chapter.config_cls, chapter.profiles, profile,
                                           **{field: namespace.get(field) for field in fields}))


def choices_markdown(name: str) -> str:
    """The chapter's choices where the paper is silent, as a Markdown list."""
    return "\n".join(f"- {choice}" for choice in get_chapter(name).choices)


def paper_items() -> list[PaperItem]:
    """Every paper item rebuilt by a chapter, in chapter order."""
    return [item for chapter in CHAPTERS.values() for item in chapter.items]


def sync_parameters_cells() -> list[str]:
    """Rewrite the ``parameters`` cell of every experiment chapter from its configuration class (run after
    adding or renaming a knob); returns the chapters whose cell changed."""
    import nbformat

    changed = []
    for chapter in CHAPTERS.values():
        if chapter.summary or not chapter.notebook.exists():
            continue
        notebook = nbformat.read(chapter.notebook, as_version=4)
        cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
        source = parameters_cell(chapter.config_cls, chapter.profiles)
        if cell.source != source:
            cell.source = source
            nbformat.write(notebook, chapter.notebook)
            changed.append(chapter.name)
    return changed
