"""The reproduction report: every figure and table of the paper, the paper's number beside ours, a verdict.

Paper items and their claims are defined by the chapters' experiment modules (``ITEMS``); a claim reads the
values the chapters glued, applies its stated rule, and renders its numbers and reasons from the same values.
``Claim.expected`` records in how many of the committed seeds it held ("all", "some", "none"), so a test fails
when a verdict regresses (or silently improves).

Where the numbers come from (``load_evidence``): the results records of one profile (``results/<profile>/``,
one per seed, written by ``ebmflow sweep`` / ``reproduce``), never mixed: per chapter only the runs with the
profile's own parameters and one library version are combined (the current one when it has records); other
runs are listed, not used. A chapter with no such records falls back to its executed notebook in ``book/`` (one
seed), and says so. Every number is shown with its profile, seeds and commit; a chapter whose book copy was
executed at another profile (or with other parameters) is marked.

Everything here takes the glued values *per seed*: ``{chapter: [glued dict of seed 0, of seed 1, ...]}``
(``GluedBySeed``) or the evidence itself. A claim is checked on every seed ("holds in k of n seeds") and our
numbers are shown as mean ± sd over the seeds. A flat mapping (one executed notebook per chapter, merged, as
``load_glued`` returns) counts as one seed of every chapter.
"""
from __future__ import annotations

import math
import re
import statistics
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from .. import __version__
from .chapters import CHAPTERS, paper_items
from .claims import Claim, Glued, PaperItem, outcome, render
from ..checks import InputError
from .glued import check_numbers, read_glued

__all__ = ["VERDICTS", "GluedBySeed", "Evidence", "Quantity", "all_claims", "claim_id", "load_glued",
           "load_glued_by_seed", "load_evidence", "by_seed", "check_seeds", "verdict_rows", "quantities",
           "paper_values", "item_label", "verdict_summary_markdown", "verdict_table_markdown",
           "provenance_markdown", "provenance_sentence", "per_seed_markdown", "paper_vs_ours_figure",
           "glue_summaries", "summary_keys", "summaries", "page_verdicts", "glue_page_verdicts", "verdict_table",
           "paper_map_markdown", "runtime_markdown", "choices_dropdown", "choices_by_chapter_markdown"]

VERDICTS = ("holds", "holds in some seeds", "does not hold", "rebuilt", "not run")
GluedBySeed = Mapping[str, Sequence[Glued]]  # chapter -> the glued values of each seed's run


def all_claims() -> list[tuple[PaperItem, Claim]]:
    """The claims of every item rebuilt by a chapter of the book."""
    return [(item, claim) for item in paper_items() for claim in item.claims]


def claim_id(item: PaperItem, claim: Claim) -> str:
    """A claim's short name, ``<item label>-<n>`` (``figure-1-1``: the first claim of Figure 1): the report glues
    its "k of n seeds" under ``held_<claim id>`` for the chapters' boxes."""
    return f"{item_label(item)}-{item.claims.index(claim) + 1}"


def _claim_keys(chapter: str) -> list[str]:
    """The glue keys the claims of ``chapter`` render (their ``ours`` and ``why_not`` fields)."""
    return [key for item in paper_items() if item.chapter == chapter for claim in item.claims
            for template in (claim.ours, claim.why_not) for _, key, _, _ in string.Formatter().parse(template) if key]


def _read_checked(name: str, warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The glued values of chapter ``name``'s notebook; GluedError names the notebook (and the key and value) when
    it is damaged or a number its claims read is stored as text. A claim's value that is NaN or infinite (a
    diverged run: its claim counts it as the worst) is accepted; ``warn`` gets a line naming the notebook, the
    key and the value."""
    notebook = CHAPTERS[name].notebook
    values = read_glued(notebook)
    keys = _claim_keys(name)
    check_numbers(notebook, values, keys)
    for key in dict.fromkeys(keys):
        if warn is not None and isinstance(values.get(key), float) and not math.isfinite(values[key]):
            warn(f"notebook {notebook}: glued value {key!r} = {values[key]!r} (a diverged run or a failed measurement; "
                 f"its claims count it as the worst)")
    return values


def load_glued(chapters: list[str] | None = None, warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Glued values of the executed chapters (committed notebooks in book/), merged by key; ``warn`` gets one line
    per non-finite value a claim reads. By default the copies of a chapter at another profile are left out: their
    keys are their source's (``load_glued_by_seed`` keeps every page apart)."""
    values: dict[str, Any] = {}
    for name in chapters or [name for name, chapter in CHAPTERS.items() if not chapter.copy_of]:
        _check_chapter(name)
        if CHAPTERS[name].notebook.exists():
            values.update(_read_checked(name, warn))
    return values


def load_glued_by_seed(chapters: list[str] | None = None,
                       warn: Callable[[str], None] | None = None) -> dict[str, list[dict[str, Any]]]:
    """The glued values of each experiment chapter, one dict per seed (today: the committed notebook, one seed); a
    copy of a chapter at another profile is a chapter of its own here (its claims read its own values)."""
    for name in chapters or []:
        _check_chapter(name)
    return {name: [_read_checked(name, warn)] for name in chapters or list(CHAPTERS)
            if not CHAPTERS[name].summary and CHAPTERS[name].notebook.exists()}


def _check_chapter(name: str) -> None:
    if name not in CHAPTERS:
        raise InputError(f"unknown chapter {name!r}; chapters: {', '.join(CHAPTERS)}")


# --- where the numbers come from: the records of one profile, or the committed notebook ----------------------

@dataclass(frozen=True)
class Evidence:
    """The runs one chapter's verdicts rest on: one glued mapping per seed, all of one profile and one library
    version (``source`` "records"), or the committed notebook's single run (``source`` "notebook"), or nothing
    ("none"). ``notes`` say what was left out and why; ``copy_*`` describe the chapter's page in the book."""

    chapter: str
    source: str  # "records", "notebook" or "none"
    profile: str | None = None
    seeds: tuple[int, ...] = ()
    glued: tuple[Mapping[str, Any], ...] = ()  # one per seed, in the order of ``seeds``
    versions: tuple[str, ...] = ()
    commits: tuple[str, ...] = ()
    copy_profile: str | None = None  # the profile the book's page of the chapter was executed at
    copy_seed: int | None = None
    copy_parameters: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def copy_differs(self) -> bool:
        """The book's page of the chapter shows a run that is not one of these (another profile or parameters)."""
        return (self.source == "records" and self.copy_profile is not None
                and (self.copy_profile != self.profile or bool(self.copy_parameters)))

    @property
    def seeds_text(self) -> str:
        """"cpu profile, seeds 0, 1, 2" (or one seed, or "not run")."""
        if self.source == "none":
            return "not run"
        seeds = ", ".join(map(str, self.seeds))
        overrides = ""
        if self.source == "notebook" and self.copy_parameters:  # the page's run: its parameters are stated
            overrides = " with " + ", ".join(f"{k}={v}" for k, v in sorted(self.copy_parameters.items()))
        text = f"{self.profile} profile{overrides}, {'seed' if len(self.seeds) == 1 else 'seeds'} {seeds}"
        return text + (" (the book's page: no records)" if self.source == "notebook" else "")

    @property
    def commit_text(self) -> str:
        return ", ".join(_short_commit(c) for c in self.commits) or "unknown"


def _short_commit(commit: str | None) -> str:
    if not commit:
        return "unknown"
    head, _, dirty = commit.partition("+")
    return head[:8] + (f"+{dirty}" if dirty else "")


def _number_or_nan(value: Any) -> Any:
    return math.nan if value is None else value


def _copy_metadata(chapter: str) -> dict[str, Any]:
    import nbformat

    try:
        return dict(nbformat.read(CHAPTERS[chapter].notebook, as_version=4).metadata.get("ebmflow", {}))
    except Exception:  # noqa: BLE001 - a missing or damaged page has no metadata; its glued values say the rest
        return {}


def _records_of(chapter: str, profile: str, root: Path | None) -> tuple[list[dict[str, Any]], list[str]]:
    """The readable records of ``chapter`` at ``profile`` and a note per file that cannot be read."""
    from .records import RecordError, read_record, results_dir

    found, notes = [], []
    for path in sorted(((root or results_dir()) / profile / chapter).glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            found.append(read_record(path))
        except RecordError as error:
            notes.append(f"left out: {error}")
    return found, notes


def _choose(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The runs one verdict may combine: the profile's own parameters and one library version (this one if it has
    runs, else the only one there is); a note for everything left out. Several other versions and none of this
    one: nothing is combined."""
    default = [r for r in records if not r.get("parameters")]
    notes = []
    if len(default) < len(records):
        notes.append(f"{len(records) - len(default)} run(s) with other parameters (e.g. a sweep of this chapter) "
                     f"are not part of these verdicts")
    versions = sorted({str(r.get("ebmflow_version")) for r in default})
    if len(versions) > 1:
        if __version__ not in versions:
            notes.append(f"records of ebmflow versions {', '.join(versions)} and none of this one ({__version__}): "
                         f"not combined into one verdict; re-run the sweep")
            return [], notes
        notes.append(f"{sum(str(r.get('ebmflow_version')) != __version__ for r in default)} run(s) of other ebmflow "
                     f"versions ({', '.join(v for v in versions if v != __version__)}) are not combined with "
                     f"version {__version__}'s")
        default = [r for r in default if str(r.get("ebmflow_version")) == __version__]
    return sorted(default, key=lambda r: r["seed"]), notes


def load_evidence(profile: str = "cpu", root: Path | None = None, chapters: Sequence[str] | None = None,
                  warn: Callable[[str], None] | None = None) -> dict[str, Evidence]:
    """Per experiment chapter, the runs its verdicts rest on: the records of ``profile`` under ``root`` (default
    results/), chosen by ``_choose``; with none, the chapter's executed notebook in book/ (whatever its profile,
    which is then stated; read by ``load_glued``, ``warn`` getting its non-finite values); with neither, nothing
    ("none"). A copy of a chapter at another profile (``Chapter.copy_of``: chapter 01 at the paper profile) is
    judged apart, on its source's records of the copy's own profile."""
    out = {}
    for name in chapters or [c.name for c in CHAPTERS.values() if not c.summary]:
        _check_chapter(name)
        chapter = CHAPTERS[name]
        meta = _copy_metadata(name)
        copy = dict(copy_profile=meta.get("profile"), copy_seed=meta.get("seed"),
                    copy_parameters={k: v for k, v in (meta.get("parameters") or {}).items() if k != "seed"})
        profile_here = chapter.book_profile if chapter.copy_of else profile
        records, notes = _records_of(chapter.experiment, profile_here, root)
        chosen, more = _choose(records)
        notes += more
        if chosen:
            glued = tuple({**r.get("values", {}), **{k: _number_or_nan(v) for k, v in r["numbers"].items()}}
                          for r in chosen)
            out[name] = Evidence(name, "records", profile_here, tuple(r["seed"] for r in chosen), glued,
                                 tuple(sorted({str(r.get("ebmflow_version")) for r in chosen})),
                                 tuple(dict.fromkeys(str(r.get("commit")) for r in chosen if r.get("commit"))),
                                 notes=tuple(notes), **copy)
            continue
        values = load_glued([name], warn) if CHAPTERS[name].notebook.exists() else {}
        if values:
            notes.append(f"no records at profile {profile_here}: one seed, from the book's page of the chapter")
            out[name] = Evidence(name, "notebook", meta.get("profile") or "unknown", (meta.get("seed", 0),),
                                 (values,), (str(meta.get("ebmflow_version", "unknown")),), (), notes=tuple(notes),
                                 **copy)
        else:
            notes.append(f"no records at profile {profile_here} and the book's page was not executed")
            out[name] = Evidence(name, "none", notes=tuple(notes), **copy)
    return out


def by_seed(glued: Glued | GluedBySeed | Mapping[str, Evidence]) -> dict[str, list[Glued]]:
    """``glued`` as {chapter: [one glued mapping per seed]}. Evidence gives its seeds; a flat mapping of glued
    values (no value is a list of mappings) is one seed of every chapter but the copies at another profile (their
    keys are their source's: a flat mapping cannot hold both)."""
    values = list(glued.values())
    if values and all(isinstance(v, Evidence) for v in values):
        return {chapter: list(evidence.glued) for chapter, evidence in glued.items()}
    if values and all(isinstance(v, (list, tuple)) and all(isinstance(s, Mapping) for s in v) for v in values):
        return {chapter: list(seeds) for chapter, seeds in glued.items()}
    return {name: [glued] for name, chapter in CHAPTERS.items() if not chapter.copy_of}


def check_seeds(claim: Claim, seeds: Sequence[Glued]) -> list[bool | None]:
    """The claim checked on each seed's glued values (None: a seed without the values it reads)."""
    return [_check(claim, glued_seed) for glued_seed in seeds]


# --- our numbers over seeds --------------------------------------------------------------------------------

def _fields(template: str) -> list[tuple[str, str, str]]:
    """(label, key, format spec) of each field of a template; the label is the text before the field since
    the last comma ("flowMC-EBM {key:.2f}, NT-EBM ..." -> "flowMC-EBM"), empty when it has no letter."""
    fields, text = [], ""
    for literal, key, spec, _ in string.Formatter().parse(template):
        text += literal
        if key is None:
            continue
        label = re.split(r"[,;]", text)[-1].strip(" ≈~:=–-↔")
        fields.append((label if re.search(r"[A-Za-z]", label) else "", key, spec or ""))
        text = ""
    return fields


def _number(value: Any, spec: str) -> str:
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return format(round(value), spec) if isinstance(value, float) and math.isfinite(value) else str(value)


def _summary(values: list[Any], spec: str) -> str:
    """One seed's value as the template formats it; several as "mean ± sd" (sample sd) of the finite ones,
    with the number of diverged seeds (NaN)."""
    if len(values) == 1:
        return _number(values[0], spec)
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if len(finite) > 1:
        text = _mean_sd(statistics.fmean(finite), statistics.stdev(finite), spec)
    else:
        text = _number(finite[0], spec) if finite else "nan"
    diverged = len(values) - len(finite)
    return text + (f" ({diverged} of {len(values)} seeds diverged)" if diverged else "")


def _mean_sd(mean: float, sd: float, spec: str) -> str:
    """"0.52 ± 0.03"; in scientific notation the sd shares the mean's exponent: "(1.05 ± 0.08)e-03"."""
    match = re.fullmatch(r"(.*?)\.?(\d*)([eE])", spec)
    if match is None or mean == 0:
        return f"{_number(mean, spec)} ± {_number(sd, spec)}"
    exponent = math.floor(math.log10(abs(mean)))
    digits = match.group(2) or "2"
    return f"({mean / 10 ** exponent:.{digits}f} ± {sd / 10 ** exponent:.{digits}f}){match.group(3)}{exponent:+03d}"


def _render_over_seeds(template: str, seeds: Sequence[Glued]) -> str:
    """``template`` with each field replaced by the value of every seed that has it, summarised."""
    parts = []
    for literal, key, spec, _ in string.Formatter().parse(template):
        parts.append(literal)
        if key is None:
            continue
        values = [seed[key] for seed in seeds if key in seed]
        if not values:
            raise KeyError(key)
        parts.append(_summary(values, spec or ""))
    return "".join(parts)


# --- the paper's numbers -------------------------------------------------------------------------------------

_NUMBER = r"(?<![\w.])(?<![A-Za-z]-)[-−]?\d+(?:\.\d+)?(?:[eE][-+−]?\d+)?"
_VALUE = re.compile(rf"(?P<low>{_NUMBER})(?:\s*[–—]\s*(?P<high>{_NUMBER}))?\s*(?P<percent>%)?")


def _float(text: str) -> float:
    return float(text.replace("−", "-"))


def paper_values(paper: str) -> list[tuple[str, float, float]]:
    """The numbers of a claim's ``paper`` text as (label, low, high): "NT-EBM 0.97, CoopFlow 1.23" gives one
    entry per comma-separated part, labelled by the words before the number; a range "0.70–0.78" gives low <
    high; a percentage is turned into a fraction (as glued values are); remarks in parentheses are ignored."""
    values = []
    for part in re.split(r"[,;]", re.sub(r"\([^)]*\)", "", paper)):
        label_end = None
        for match in _VALUE.finditer(part):
            label_end = match.start() if label_end is None else label_end
            scale = 0.01 if match["percent"] else 1.0
            low = _float(match["low"]) * scale
            high = _float(match["high"]) * scale if match["high"] else low
            label = part[:label_end].strip(" ≈~<>≤≥:=↔")
            values.append((label if re.search(r"[A-Za-z]", label) else "", low, high))
    return values


def _paired(claim: Claim) -> list[tuple[str, str, tuple[float, float] | None]]:
    """(label, glue key, the paper's (low, high) or None) for each field of the claim's ``ours``: paired by
    label when every field has one the paper also names, else by position when the counts agree."""
    fields, paper = _fields(claim.ours), paper_values(claim.paper)
    by_label = {label.lower(): (low, high) for label, low, high in paper if label}
    if fields and all(label and label.lower() in by_label for label, _, _ in fields):
        return [(label, key, by_label[label.lower()]) for label, key, _ in fields]
    if len(fields) == len(paper):
        return [(label, key, (low, high)) for (label, key, _), (_, low, high) in zip(fields, paper)]
    return [(label, key, None) for label, key, _ in fields]


def _key_labels(keys: list[str]) -> list[str]:
    """Names for unlabelled fields from their glue keys: the words that differ between the keys (a method
    name written as the paper writes it)."""
    from ..methods import METHODS

    words = [key.split("_") for key in keys]
    if len(words) > 1:
        while all(len(w) > 1 and w[0] == words[0][0] for w in words):
            words = [w[1:] for w in words]
        while all(len(w) > 1 and w[-1] == words[0][-1] for w in words):
            words = [w[:-1] for w in words]
    else:
        words = [w[1:] or w for w in words]  # drop the item prefix ("fig1", "table2")
    def word(t: str) -> str:
        return METHODS[t].label if t in METHODS else f"d = {t[1:]}" if re.fullmatch(r"d\d+", t) else t

    return [" ".join(map(word, w)) for w in words]


@dataclass(frozen=True)
class Quantity:
    """One number of a claim: the paper's value (or range) beside ours over the seeds."""

    item: str
    statement: str
    label: str  # the method or the quantity
    key: str  # glue key
    paper: tuple[float, float] | None  # (low, high); low == high for a single value; None: not in the paper
    values: tuple[float, ...]  # ours, one per seed that has the key (NaN: diverged)
    verdict: str

    @property
    def finite(self) -> list[float]:
        return [v for v in self.values if math.isfinite(v)]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.finite) if self.finite else math.nan

    @property
    def sd(self) -> float:
        return statistics.stdev(self.finite) if len(self.finite) > 1 else 0.0


# --- one row per claim -------------------------------------------------------------------------------------

def item_label(item: PaperItem) -> str:
    """The label a chapter gives the figure or table that rebuilds ``item`` ("Figure 1" -> ``figure-1``), for
    ``:name:`` in the chapter; the report links to it when the chapter defines it, else to the chapter."""
    return re.sub(r"\W+", "-", item.item.strip().lower()).strip("-")


_TARGET = re.compile(r"^\s*\(([\w-]+)\)=\s*$|:name:\s*([\w-]+)", re.M)


def _targets(notebook: Path) -> set[str]:
    """The labels the notebook file defines."""
    import nbformat

    return notebook_labels(nbformat.read(notebook, as_version=4))


def notebook_labels(notebook: Any) -> set[str]:
    """The labels a notebook defines: MyST targets ``(name)=``, ``:name:`` options, figure names in cell metadata."""
    labels = set()
    for cell in notebook.cells:
        labels.update(a or b for a, b in _TARGET.findall(cell.source))
        figure = cell.metadata.get("mystnb", {}).get("figure", {})
        if figure.get("name"):
            labels.add(figure["name"])
    return labels


def _link(item: PaperItem) -> str:
    """MyST link to the item: its labelled figure/table when the chapter's notebook names it, else the page."""
    chapter = CHAPTERS.get(item.chapter)
    if chapter is not None and chapter.notebook.exists() and item_label(item) in _targets(chapter.notebook):
        return f"{{ref}}`{_unbroken(item.item)} <{item_label(item)}>`"
    return f"{{doc}}`{_unbroken(item.item)} <{item.chapter}>`"


def _unbroken(item: str) -> str:
    """"Figure 1" with a no-break space: a narrow column never splits an item's name from its number."""
    return re.sub(r"(Figure|Table)s? (\d)", lambda m: m.group(0).replace(" ", "\u00a0"), item)


def _verdict(results: list[bool | None]) -> tuple[str, str]:
    run = [r for r in results if r is not None]
    if not run:
        return "not run", "—"
    held = sum(run)
    verdict = "holds" if held == len(run) else "does not hold" if held == 0 else "holds in some seeds"
    return verdict, f"{held} of {len(run)}"


def _check(claim: Claim, glued: Glued) -> bool | None:
    try:
        return bool(claim.check(glued))
    except KeyError:
        return None
    except (TypeError, ValueError):  # a value that is not a number (values read by load_glued are checked there)
        keys = [key for _, key, _, _ in string.Formatter().parse(claim.ours + claim.why_not) if key]
        bad = {key: glued[key] for key in keys if key in glued and (isinstance(glued[key], bool) or
                                                                    not isinstance(glued[key], (int, float)))}
        raise InputError(f"claim {claim.statement!r} cannot be checked: its glued value(s) "
                         f"{', '.join(f'{k} = {v!r}' for k, v in bad.items()) or 'it reads'} are not numbers: re-run "
                         f"the chapter that glues them") from None


def verdict_rows(glued: Glued | GluedBySeed | Mapping[str, Evidence]) -> list[dict[str, str]]:
    """One row per claim, checked on every seed of its chapter (items without a numeric claim get one row
    marked 'rebuilt'). Keys: item, chapter, link (MyST), id (``claim_id``), claim, paper, ours (mean ± sd over
    the seeds), rule, seeds ("k of n": the seeds in which the claim holds), verdict, why_not, expected (the
    recorded outcome), source (where the numbers come from: "cpu · seeds 0–2 · commit abc12345", empty unless
    ``glued`` is evidence)."""
    seeds_of = by_seed(glued)
    evidence = glued if glued and all(isinstance(v, Evidence) for v in glued.values()) else {}
    rows = []
    for item in paper_items():
        seeds = seeds_of.get(item.chapter, [])
        common = {"item": item.item, "chapter": item.chapter, "link": _link(item),
                  "source": _source_text(evidence[item.chapter]) if item.chapter in evidence else ""}
        if not item.claims:
            rows.append({**common, "id": item_label(item), "claim": item.content, "paper": "—", "ours": "—",
                         "rule": "figure/table rebuilt from code", "seeds": "—", "verdict": "rebuilt", "why_not": "",
                         "expected": ""})
        for claim in item.claims:
            verdict, held = _verdict(check_seeds(claim, seeds))
            try:
                ours = _render_over_seeds(claim.ours, seeds)
            except KeyError as missing:
                ours = f"missing {missing}" if seeds else "—"
            why_not = ""
            if verdict != "holds" and claim.why_not:
                try:
                    why_not = _render_over_seeds(claim.why_not, seeds)
                except KeyError:
                    why_not = ""
            rows.append({**common, "id": claim_id(item, claim), "claim": claim.statement, "paper": claim.paper,
                         "ours": ours, "rule": claim.rule, "seeds": held, "verdict": verdict, "why_not": why_not,
                         "expected": claim.expected})
    return rows


def _source_text(evidence: Evidence) -> str:
    if evidence.source == "none":
        return "not run"
    seeds = _seed_range(evidence.seeds)
    where = "records" if evidence.source == "records" else "the book's page"
    return f"{evidence.profile} · {'seed' if len(evidence.seeds) == 1 else 'seeds'} {seeds} · {where} · " \
           f"commit {evidence.commit_text}"


def _seed_range(seeds: Sequence[int]) -> str:
    """0, 1, 2, 3 -> "0–3"; 0, 2, 7 -> "0, 2, 7"."""
    seeds = sorted(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def quantities(glued: Glued | GluedBySeed | Mapping[str, Evidence]) -> list[Quantity]:
    """Every number of every claim, the paper's beside ours over the seeds (claims never run are left out)."""
    seeds_of = by_seed(glued)
    out = []
    for item in paper_items():
        seeds = seeds_of.get(item.chapter, [])
        for claim in item.claims:
            verdict, _ = _verdict(check_seeds(claim, seeds))
            paired = [(label, key, paper) for label, key, paper in _paired(claim)
                      if any(isinstance(seed.get(key), (int, float)) for seed in seeds)]
            names = _key_labels([key for _, key, _ in paired])
            labelled = all(label for label, _, _ in paired)  # else every number is named from its key, alike
            for (label, key, paper), name in zip(paired, names):
                values = tuple(float(seed[key]) for seed in seeds if isinstance(seed.get(key), (int, float)))
                out.append(Quantity(item.item, claim.statement, label if labelled else name, key, paper, values,
                                    verdict))
    return out


# --- the report page ---------------------------------------------------------------------------------------

_BADGES = {"holds": "bdg-success", "holds in some seeds": "bdg-warning", "does not hold": "bdg-danger",
           "rebuilt": "bdg-secondary", "not run": "bdg-light"}


def _escape(text: str) -> str:
    """Plain text for a MyST cell: Markdown's special characters escaped, no line break."""
    text = re.sub(r"[ \t\r\n]+", " ", str(text)).strip()  # one line; no-break spaces kept
    return re.sub(r"([\\`*_\[\]<>{}|#])", r"\\\1", text)


def verdict_table_markdown(rows: list[dict[str, str]]) -> str:
    """The verdict rows as a MyST list-table that wraps to the page width (CSS class ``ebmflow-report``): under
    each claim its rule, why it does not hold (if so) and where its numbers come from; "k of n" links to the
    claim's per-seed values (``per_seed_markdown``)."""
    lines = [":::{list-table}", ":header-rows: 1", ":widths: 11 35 15 18 9 12", ":class: ebmflow-report", "",
             "* - item", "  - claim (the rule applied; where the numbers come from)", "  - paper",
             "  - ours (mean ± sd)", "  - seeds", "  - verdict"]
    for row in rows:
        claim = [_escape(row["claim"])]
        if row["verdict"] != "rebuilt":
            claim.append(f"rule: {_escape(row['rule'])}")
        if row.get("why_not"):
            claim.append(f"why not: {_escape(row['why_not'])}")
        if row.get("source") and row["verdict"] != "rebuilt":
            claim.append(f"numbers: {_escape(row['source'])}")
        seeds = _escape(row["seeds"])
        if " of " in row["seeds"]:
            seeds = f"{{ref}}`{seeds} <seeds-{_item_anchor(row['item'])}>`"
        lines.append(f"* - {row['link']}")
        lines.append("  - " + "\n\n    ".join(claim))
        lines.extend("  - " + "\n\n    ".join(_escape(part) for part in _parts(row[column]))
                     for column in ("paper", "ours"))
        lines.append(f"  - {seeds}")
        lines.append(f"  - {{{_BADGES[row['verdict']]}}}`{row['verdict']}`")
    lines.append(":::")
    return "\n".join(lines)


def _parts(text: str) -> list[str]:
    """A list of labelled numbers ("flowMC-EBM 0.94, NT-EBM 0.97") as one line each."""
    return re.split(r"(?<=[\d)%])[,;] (?=[A-Za-z])", text)


def _item_anchor(item: str) -> str:
    return re.sub(r"\W+", "-", item.strip().lower()).strip("-")


def verdict_summary_markdown(rows: list[dict[str, str]]) -> str:
    """One sentence above the table: how many claims hold, in how many seeds (zero counts left out)."""
    claims = [r for r in rows if r["verdict"] != "rebuilt"]
    count = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    seeds = max((int(r["seeds"].split(" of ")[1]) for r in claims if " of " in r["seeds"]), default=0)
    parts = [f"**{count['holds']} hold{'s' if count['holds'] == 1 else ''}**"]
    if count["holds in some seeds"]:
        parts.append(f"**{count['holds in some seeds']} in some seeds only**")
    parts.append(f"**{count['does not hold']} do{'es' if count['does not hold'] == 1 else ''} not**")
    if count["not run"]:
        parts.append(f"{count['not run']} not run")
    on = f" (checked on each of {seeds} seeds)" if seeds > 1 else " (one seed)" if seeds == 1 else ""
    text = f"Of the paper's {len(claims)} claims, " + ", ".join(parts) + on + "."
    if count["rebuilt"]:
        text += f" {count['rebuilt']} further items have no number to compare and are rebuilt from the code."
    return text


def provenance_markdown(evidence: Mapping[str, Evidence]) -> str:
    """Where every chapter's numbers come from, one row per chapter: records or the book's page, profile, seeds,
    library version, commit(s), what was left out, and what the chapter's page in the book shows."""
    lines = [":::{list-table}", ":header-rows: 1", ":widths: 12 48 13 27", ":class: ebmflow-report", "",
             "* - chapter", "  - numbers from", "  - ebmflow", "  - the chapter's page shows"]
    for name, ev in evidence.items():
        where = {"records": f"results records, **{_escape(ev.seeds_text)}**, commit {_escape(ev.commit_text)}",
                 "notebook": f"the book's page only (**{_escape(ev.seeds_text)}**)", "none": "**not run**"}[ev.source]
        cell = [where] + [_escape(note) for note in ev.notes]
        if ev.copy_profile is None:
            page = "not executed"
        else:
            extra = f", parameters {_escape(ev.copy_parameters)}" if ev.copy_parameters else ""
            page = f"{_escape(ev.copy_profile)} profile, seed {ev.copy_seed}{extra}"
            if ev.copy_differs:
                page = f"{{bdg-warning}}`other run` {page}: its figures and text are not these records'"
        lines += [f"* - {{doc}}`{name.split('_')[0]} <{name}>`", "  - " + "\n\n    ".join(cell),
                  f"  - {_escape(', '.join(ev.versions))}",
                  f"  - {page}"]
    lines.append(":::")
    return "\n".join(lines)


def provenance_sentence(evidence: Mapping[str, Evidence], profile: str) -> str:
    """One sentence above the verdicts: the profile of the records, and every chapter that differs from it."""
    records = [e for e in evidence.values() if e.source == "records"]
    pages = [e for e in evidence.values() if e.source == "notebook"]
    none = [e for e in evidence.values() if e.source == "none"]
    counts = sorted({len(e.seeds) for e in records})
    seeds = "" if not counts else (f", {counts[0]} seeds each" if len(counts) == 1 else
                                   f", {counts[0]} to {counts[-1]} seeds per chapter")
    text = (f"Our numbers are the results records of the **{profile} profile** ({len(records)} chapter"
            f"{'' if len(records) == 1 else 's'}{seeds}, ebmflow {__version__}); records of other profiles, "
            f"parameters or library versions are never combined with them.")
    if pages:
        text += (" No records for " + ", ".join(f"{{doc}}`{e.chapter}` ({e.profile} profile)" for e in pages) +
                 ": one seed each, from the chapter's page.")
    if none:
        text += " Not run: " + ", ".join(f"{{doc}}`{e.chapter}`" for e in none) + "."
    differs = [e for e in evidence.values() if e.copy_differs]
    if differs:
        text += (" The page of " + ", ".join(f"{{doc}}`{e.chapter}`" for e in differs) + " shows another run (" +
                 ", ".join(f"{e.copy_profile} profile" for e in differs) + ") than these records.")
    return text + " {ref}`Where the numbers come from <report-provenance>` gives the commits."


def _seed_cell(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "diverged"
    return _number(value, spec)


def per_seed_markdown(evidence: Mapping[str, Evidence]) -> str:
    """For every paper item with claims, a collapsed table (a dropdown) of each glued number its claims read, per
    seed, and whether each claim held in that seed; the verdict table's "k of n" links here."""
    blocks = []
    for item in paper_items():
        ev = evidence.get(item.chapter)
        if not item.claims or ev is None or ev.source == "none":
            continue
        fields = {}
        for claim in item.claims:
            for label, key, spec in _fields(claim.ours):
                fields.setdefault(key, spec)
        header = ["* - ", *[f"  - seed {seed}" for seed in ev.seeds]]
        lines = [f"(seeds-{item_label(item)})=", f"::::{{dropdown}} {item.item}: per-seed values "
                 f"({_escape(ev.seeds_text)})", ":::{list-table}", ":header-rows: 1",
                 ":class: ebmflow-report ebmflow-seeds", "", *header]
        for key, spec in fields.items():
            lines.append(f"* - `{key}`")
            lines.extend(f"  - {_seed_cell(glued.get(key), spec)}" for glued in ev.glued)
        for number, claim in enumerate(item.claims, 1):
            lines.append(f"* - claim {number}: {_escape(claim.statement)}")
            lines.extend(f"  - {'—' if held is None else 'holds' if held else 'does not hold'}"
                         for held in check_seeds(claim, ev.glued))
        lines += [":::", "::::"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _specs() -> dict[str, str]:
    """Every glue key the claims render, with the format of its first appearance."""
    specs: dict[str, str] = {}
    for _, claim in all_claims():
        for template in (claim.ours, claim.why_not):
            for _, key, spec, _ in string.Formatter().parse(template):
                if key:
                    specs.setdefault(key, spec or ".3g")
    return specs


def summary_keys() -> list[str]:
    """The keys the report glues for the chapters' "paper vs ours" boxes (``{glue:text}`99_report.ipynb::KEY:s```):
    ``seeds_<chapter>`` (profile and seeds), ``seeds_<key>`` (mean ± sd over the seeds of every number a claim
    renders), ``held_<claim id>`` ("k of n seeds") and ``verdict_<claim id>``, and ``seeds_cw_maxerr_diff_interval``
    (chapter 06's paired interval)."""
    chapters = [f"seeds_{c.name}" for c in CHAPTERS.values() if not c.summary]
    claims = [f"{kind}_{claim_id(item, claim)}" for item, claim in all_claims() for kind in ("held", "verdict")]
    return chapters + [f"seeds_{key}" for key in _specs()] + claims + ["seeds_cw_maxerr_diff_interval"]


def summaries(evidence: Mapping[str, Evidence]) -> dict[str, str]:
    """The text of every ``summary_keys()`` key from ``evidence`` ("—" where a chapter has no such number)."""
    out = {f"seeds_{name}": ev.seeds_text for name, ev in evidence.items()}
    chapter_of: dict[str, str] = {}  # a key's chapter: the first that glues it (a copy's keys are its source's)
    for item, claim in all_claims():
        for template in (claim.ours, claim.why_not):
            for _, key, _, _ in string.Formatter().parse(template):
                if key:
                    chapter_of.setdefault(key, item.chapter)
    for key, spec in _specs().items():
        ev = evidence.get(chapter_of[key])
        values = [_number_or_nan(g[key]) for g in (ev.glued if ev else ()) if key in g]
        out[f"seeds_{key}"] = _summary(values, spec) if values else "—"
    for item, claim in all_claims():
        ev = evidence.get(item.chapter)
        verdict, held = _verdict(check_seeds(claim, ev.glued if ev else ()))
        out[f"held_{claim_id(item, claim)}"] = f"{held} seeds" if " of " in held else "not run"
        out[f"verdict_{claim_id(item, claim)}"] = verdict
    out["seeds_cw_maxerr_diff_interval"] = _class_weight_interval(evidence.get("06_class_weights"))
    for key in summary_keys():
        out.setdefault(key, "—")
    return out


def _class_weight_interval(ev: Evidence | None) -> str:
    """flowMC-EBM minus ULA-EBM largest class-share error: mean and paired 95 % interval over the seeds."""
    from ..experiments import class_weights

    if ev is None or not ev.glued or not all("cw_maxerr_flowmc" in g and "cw_maxerr_ula" in g for g in ev.glued):
        return "—"
    summary = class_weights.summarize_seeds([{k: _number_or_nan(v) for k, v in g.items()} for g in ev.glued])
    mean, low, high = (summary[f"cw_maxerr_diff_{q}"] for q in ("mean", "low", "high"))
    if len(ev.glued) < 2:
        return f"{mean:.3f} (one seed: no interval)"
    return f"{mean:.3f}, 95 % interval [{low:.3f}, {high:.3f}] over {len(ev.glued)} seeds (paired t)"


def _page_verdict(held: bool | None) -> str:
    return "not run (its target is not in this run)" if held is None else "holds" if held else "does not hold"


def page_verdicts(items: Sequence[PaperItem], values: Glued) -> dict[str, str]:
    """This page's verdict of each claim of ``items`` on its own run's ``values``, under ``here_<claim id>``
    ("holds", "does not hold" or "not run ..."), for the chapter's text."""
    return {f"here_{claim_id(item, claim)}": _page_verdict(_check(claim, values))
            for item in items for claim in item.claims}


def verdict_table(items: Sequence[PaperItem], values: Glued, paper_target: bool = True) -> pd.DataFrame:
    """A page's claims checked on its own run's ``values``: the paper's value, ours (rendered), the rule, the
    verdict (``page_verdicts``' wording). With ``paper_target`` False (the run's target is not the paper's) the
    paper's column says so instead of quoting numbers of another target."""
    rows = []
    for item in items:
        for claim in item.claims:
            held = _check(claim, values)
            rows.append({"item": item.item, "claim": claim.statement,
                         "paper": claim.paper if paper_target else "not run in the paper (another target)",
                         "ours": "—" if held is None else render(claim.ours, values), "rule": claim.rule,
                         "verdict": _page_verdict(held)})
    return pd.DataFrame(rows, columns=["item", "claim", "paper", "ours", "rule", "verdict"]).set_index(
        ["item", "claim"])


def glue_page_verdicts(items: Sequence[PaperItem], values: Glued) -> dict[str, str]:
    """Glue ``page_verdicts(items, values)`` (not displayed); returns them."""
    from myst_nb import glue

    texts = page_verdicts(items, values)
    for key, text in texts.items():
        glue(key, text, display=False)
    return texts


def glue_summaries(evidence: Mapping[str, Evidence]) -> dict[str, str]:
    """Glue every ``summaries(evidence)`` text (not displayed) for the chapters' boxes; returns them."""
    from myst_nb import glue

    texts = summaries(evidence)
    for key, text in texts.items():
        glue(key, text, display=False)
    return texts


_VERDICT_COLORS = {"holds": "#1a7f37", "holds in some seeds": "#9a6700", "does not hold": "#cf222e"}


def _log_axis_if_wide(ax, values: list[float]) -> None:
    """A log x axis with plain tick labels (0.003, 0.01, ...) when the positive ``values`` span over a decade."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if not values or min(values) <= 0 or max(values) / min(values) <= 10:
        return
    decades = math.log10(max(values) / min(values))
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades <= 1.5 else (1.0, 3.0) if decades <= 2.2
                                          else (1.0,)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _claim_panel(ax, title: str, group: list[Quantity]) -> None:
    """One claim: per number a row, the paper's value above ours."""
    import textwrap

    from matplotlib.ticker import MaxNLocator

    from ..methods import METHODS

    _log_axis_if_wide(ax, [v for q in group for v in (*q.finite, *(q.paper or ()))])
    for y, q in enumerate(group):
        method = next((m for m, cls in METHODS.items() if q.label.split(" d = ")[0] == cls.label
                       or q.key.endswith(f"_{m}")), None)
        colour = METHODS[method].color if method else "0.25"
        if q.paper is not None:
            low, high = q.paper
            if high > low:
                ax.plot([low, high], [y - 0.15] * 2, color="0.6", lw=6, solid_capstyle="butt")
            else:
                ax.plot(low, y - 0.15, "D", ms=7, mfc="white", mec="0.2", mew=1.3)
        if q.finite:
            ax.errorbar(q.mean, y + 0.15, xerr=q.sd if len(q.finite) > 1 else None, fmt="o", ms=7, color=colour,
                        capsize=3, elinewidth=1.3)
        if len(q.finite) < len(q.values):
            where = (q.mean, y + 0.15) if q.finite else (0.02, y + 0.15)
            ax.annotate(f"{len(q.values) - len(q.finite)} of {len(q.values)} diverged", where,
                        xycoords="data" if q.finite else ("axes fraction", "data"), xytext=(9, 0),
                        textcoords="offset points", va="center", fontsize=9, color=colour)
    if ax.get_xscale() == "linear":
        ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.set_yticks(range(len(group)), [textwrap.fill(q.label, 20, break_on_hyphens=False) for q in group])
    ax.set_ylim(len(group) - 0.4, -0.6)
    ax.margins(x=0.08)
    ax.grid(axis="x", color="0.92")
    verdict = group[0].verdict
    ax.set_title(textwrap.fill(title, 30, break_on_hyphens=False) + f"\n→ {verdict}", loc="left", fontsize=10,
                 color=_VERDICT_COLORS.get(verdict, "black"))


def paper_vs_ours_figure(glued: Glued | GluedBySeed | Mapping[str, Evidence], columns: int = 2):
    """One panel per quantitative claim: each of its numbers as the paper gives it (a diamond, or a bar for a
    range read off a figure) beside ours (a dot, ± sd over seeds as an error bar when there are several), on
    a log axis when the values span more than a decade. The panel's title gives the verdict."""
    import matplotlib.pyplot as plt

    from .plotting import BOOK_FIGURE_WIDTH

    items = quantities(glued)
    claims = list(dict.fromkeys((q.item, q.statement) for q in items))
    if not claims:
        fig, ax = plt.subplots(figsize=(BOOK_FIGURE_WIDTH, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no chapter has been run yet", ha="center", va="center")
        return fig
    columns = min(columns, len(claims))
    groups = [[q for q in items if (q.item, q.statement) == c] for c in claims]
    rows = math.ceil(len(claims) / columns)
    heights = [1.0 + 0.35 * max(len(g) for g in groups[r * columns:(r + 1) * columns]) for r in range(rows)]
    fig, axes = plt.subplots(rows, columns, figsize=(BOOK_FIGURE_WIDTH, sum(heights) + 0.8), squeeze=False,
                             gridspec_kw={"height_ratios": heights}, layout="constrained")
    for ax, (item, statement), group in zip(axes.flat, claims, groups):
        _claim_panel(ax, f"{item}: {statement}", group)
    for ax in axes.flat[len(claims):]:
        ax.axis("off")
    counts = sorted({len(q.values) for q in items})
    ours = ("ours (one seed)" if counts == [1] else f"ours, mean ± sd of {counts[0]} seeds" if len(counts) == 1
            else f"ours, mean ± sd of each chapter's seeds ({counts[0]}–{counts[-1]})")
    handles = [plt.Line2D([], [], ls="none", marker="D", ms=7, mfc="white", mec="0.2", label="paper"),
               plt.Line2D([], [], color="0.6", lw=6, label="paper, read off a figure"),
               plt.Line2D([], [], ls="none", marker="o", ms=7, color="0.25", label=ours)]
    fig.legend(handles=handles, loc="outside lower center", ncols=3)
    return fig


# --- the intro page ----------------------------------------------------------------------------------------

def paper_map_markdown() -> str:
    """Markdown table: each figure and table of the paper (linked to where the book shows it), what it shows,
    the chapter that rebuilds it and the library function its cell calls."""
    lines = ["| paper item | what it shows | chapter | rebuilt by |", "|---|---|---|---|"]
    for item in paper_items():
        number, content = item.chapter.split("_")[0], item.content.replace("|", "\\|")
        lines.append(f"| {_link(item)} | {content} | {{doc}}`{number} <{item.chapter}>` | "
                     f"`{item.rebuilt_by}` |")
    return "\n".join(lines)


def runtime_markdown() -> str:
    """Markdown table of the measured runtimes per chapter and profile (book/runtimes.json)."""
    from .runner import read_runtimes

    runtimes = read_runtimes()
    profiles = ["smoke", "cpu", "paper"]
    lines = ["| chapter | " + " | ".join(profiles) + " |", "|---|" + "---|" * len(profiles)]
    for chapter in CHAPTERS.values():
        if chapter.summary or chapter.copy_of:  # a copy's runtime is its source's at the copy's profile
            continue
        cells = [_duration(runtimes.get(chapter.name, {}).get(p)) for p in profiles]
        lines.append(f"| {{doc}}`{chapter.name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.0f}\u00a0s" if seconds < 120 else f"{seconds / 60:.1f}\u00a0min"  # no break before the unit


def choices_dropdown(name: str) -> str:
    """Chapter ``name``'s choices where the paper is silent, as a collapsed dropdown (MyST) titled with their count."""
    choices = CHAPTERS[name].choices
    from .chapters import choices_markdown

    return (f":::{{dropdown}} The {len(choices)} choice{'s' if len(choices) != 1 else ''} of this chapter\n"
            f"{choices_markdown(name)}\n:::")


def choices_by_chapter_markdown() -> str:
    """Every chapter's choices where the paper is silent, one collapsed dropdown per chapter with a link to it."""
    parts = []
    for chapter in CHAPTERS.values():
        if chapter.choices and not chapter.copy_of:
            number = chapter.name.split("_")[0]
            parts.append(f":::{{dropdown}} {number}: {chapter.title} ({len(chapter.choices)} choices)\n"
                         f"{{doc}}`Go to the chapter <{chapter.name}>`\n\n" +
                         "\n".join(f"- {c}" for c in chapter.choices) + "\n:::")
    return "\n\n".join(parts)
