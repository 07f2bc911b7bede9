"""The reproduction report: every figure and table of the paper, the paper's number beside ours, a verdict.

Paper items and their claims are defined by the chapters' experiment modules (``ITEMS``); a claim reads the
values the chapters glued (``read_glued``), applies its stated rule, and renders its numbers and reasons from
the same values. ``expected_to_hold`` records whether it held when the committed chapters were executed, so a
test fails when a verdict regresses (or silently improves).

Everything here takes the glued values *per seed*: ``{chapter: [glued dict of seed 0, of seed 1, ...]}``
(``GluedBySeed``). A claim is checked on every seed ("holds in k of n seeds") and our numbers are shown as
mean ± sd over the seeds. A flat mapping (one executed notebook per chapter, merged, as ``load_glued`` returns)
counts as one seed of every chapter.
"""
from __future__ import annotations

import math
import re
import statistics
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .chapters import CHAPTERS, paper_items
from .claims import Claim, Glued, PaperItem
from ..checks import InputError
from .glued import check_numbers, read_glued

__all__ = ["VERDICTS", "GluedBySeed", "Quantity", "all_claims", "load_glued", "load_glued_by_seed", "by_seed",
           "verdict_rows", "quantities", "paper_values", "item_label", "verdict_summary_markdown",
           "verdict_table_markdown", "paper_vs_ours_figure", "paper_map_markdown", "runtime_markdown",
           "choices_by_chapter_markdown"]

VERDICTS = ("holds", "holds in some seeds", "does not hold", "rebuilt", "not run")
GluedBySeed = Mapping[str, Sequence[Glued]]  # chapter -> the glued values of each seed's run


def all_claims() -> list[tuple[PaperItem, Claim]]:
    """The claims of every item rebuilt by a chapter of the book."""
    return [(item, claim) for item in paper_items() for claim in item.claims]


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


def by_seed(glued: Glued | GluedBySeed) -> dict[str, list[Glued]]:
    """``glued`` as {chapter: [one glued mapping per seed]}. A flat mapping of glued values (no value is a
    list of mappings) is one seed of every chapter but the copies at another profile (their keys are their
    source's: a flat mapping cannot hold both)."""
    values = list(glued.values())
    if values and all(isinstance(v, (list, tuple)) and all(isinstance(s, Mapping) for s in v) for v in values):
        return {chapter: list(seeds) for chapter, seeds in glued.items()}
    return {name: [glued] for name, chapter in CHAPTERS.items() if not chapter.copy_of}


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
        text = f"{_number(statistics.fmean(finite), spec)} ± {_number(statistics.stdev(finite), spec)}"
    else:
        text = _number(finite[0], spec) if finite else "nan"
    diverged = len(values) - len(finite)
    return text + (f" ({diverged} of {len(values)} seeds diverged)" if diverged else "")


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
    return [" ".join(METHODS[t].label if t in METHODS else t for t in w) for w in words]


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
    return re.sub(r"\W+", "-", item.item.strip().lower())


_TARGET = re.compile(r"^\s*\(([\w-]+)\)=\s*$|:name:\s*([\w-]+)", re.M)


def _targets(notebook: Path) -> set[str]:
    """The labels a notebook defines: MyST targets ``(name)=``, ``:name:`` options, figure names in cell metadata."""
    import nbformat

    labels = set()
    for cell in nbformat.read(notebook, as_version=4).cells:
        labels.update(a or b for a, b in _TARGET.findall(cell.source))
        figure = cell.metadata.get("mystnb", {}).get("figure", {})
        if figure.get("name"):
            labels.add(figure["name"])
    return labels


def _link(item: PaperItem) -> str:
    """MyST link to the item: its labelled figure/table when the chapter's notebook names it, else the page."""
    chapter = CHAPTERS.get(item.chapter)
    if chapter is not None and chapter.notebook.exists() and item_label(item) in _targets(chapter.notebook):
        return f"{{ref}}`{item.item} <{item_label(item)}>`"
    return f"{{doc}}`{item.item} <{item.chapter}>`"


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


def verdict_rows(glued: Glued | GluedBySeed) -> list[dict[str, str]]:
    """One row per claim, checked on every seed of its chapter (items without a numeric claim get one row
    marked 'rebuilt'). Keys: item, chapter, link (MyST), claim, paper, ours (mean ± sd over the seeds),
    rule, seeds ("k of n": the seeds in which the claim holds), verdict, why_not."""
    seeds_of = by_seed(glued)
    rows = []
    for item in paper_items():
        seeds = seeds_of.get(item.chapter, [])
        common = {"item": item.item, "chapter": item.chapter, "link": _link(item)}
        if not item.claims:
            rows.append({**common, "claim": item.content, "paper": "—", "ours": "—",
                         "rule": "figure/table rebuilt from code", "seeds": "—", "verdict": "rebuilt", "why_not": ""})
        for claim in item.claims:
            verdict, held = _verdict([_check(claim, glued_seed) for glued_seed in seeds])
            try:
                ours = _render_over_seeds(claim.ours, seeds)
            except KeyError as missing:
                ours = f"missing {missing}"
            why_not = ""
            if verdict != "holds" and claim.why_not:
                try:
                    why_not = _render_over_seeds(claim.why_not, seeds)
                except KeyError:
                    why_not = ""
            rows.append({**common, "claim": claim.statement, "paper": claim.paper, "ours": ours, "rule": claim.rule,
                         "seeds": held, "verdict": verdict, "why_not": why_not})
    return rows


def quantities(glued: Glued | GluedBySeed) -> list[Quantity]:
    """Every number of every claim, the paper's beside ours over the seeds (claims never run are left out)."""
    seeds_of = by_seed(glued)
    out = []
    for item in paper_items():
        seeds = seeds_of.get(item.chapter, [])
        for claim in item.claims:
            verdict, _ = _verdict([_check(claim, glued_seed) for glued_seed in seeds])
            paired = [(label, key, paper) for label, key, paper in _paired(claim)
                      if any(isinstance(seed.get(key), (int, float)) for seed in seeds)]
            names = _key_labels([key for _, key, _ in paired])
            for (label, key, paper), name in zip(paired, names):
                values = tuple(float(seed[key]) for seed in seeds if isinstance(seed.get(key), (int, float)))
                out.append(Quantity(item.item, claim.statement, label or name, key, paper, values, verdict))
    return out


# --- the report page ---------------------------------------------------------------------------------------

_BADGES = {"holds": "bdg-success", "holds in some seeds": "bdg-warning", "does not hold": "bdg-danger",
           "rebuilt": "bdg-secondary", "not run": "bdg-light"}


def _escape(text: str) -> str:
    """Plain text for a MyST cell: Markdown's special characters escaped, no line break."""
    return re.sub(r"([\\`*_\[\]<>{}|#])", r"\\\1", " ".join(str(text).split()))


def verdict_table_markdown(rows: list[dict[str, str]]) -> str:
    """The verdict rows as a MyST list-table that wraps to the page width (CSS class ``ebmflow-report``)."""
    lines = [":::{list-table}", ":header-rows: 1", ":widths: 10 38 16 15 8 13", ":class: ebmflow-report", "",
             "* - item", "  - claim (and the rule applied)", "  - paper", "  - ours", "  - seeds", "  - verdict"]
    for row in rows:
        claim = [_escape(row["claim"])]
        if row["verdict"] != "rebuilt":
            claim.append(f"rule: {_escape(row['rule'])}")
        if row.get("why_not"):
            claim.append(f"why not: {_escape(row['why_not'])}")
        lines.append(f"* - {row['link']}")
        lines.append("  - " + "\n\n    ".join(claim))
        lines.extend(f"  - {_escape(row[column])}" for column in ("paper", "ours", "seeds"))
        lines.append(f"  - {{{_BADGES[row['verdict']]}}}`{row['verdict']}`")
    lines.append(":::")
    return "\n".join(lines)


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


_VERDICT_COLORS = {"holds": "#1a7f37", "holds in some seeds": "#9a6700", "does not hold": "#cf222e"}


def _log_axis_if_wide(ax, values: list[float]) -> None:
    """A log x axis with plain tick labels (0.003, 0.01, ...) when the positive ``values`` span over a decade."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if not values or min(values) <= 0 or max(values) / min(values) <= 10:
        return
    decades = math.log10(max(values) / min(values))
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades <= 1.5 else (1.0, 3.0) if decades <= 3
                                          else (1.0,)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _claim_panel(ax, title: str, group: list[Quantity]) -> None:
    """One claim: per number a row, the paper's value above ours."""
    import textwrap

    from ..methods import METHODS

    _log_axis_if_wide(ax, [v for q in group for v in (*q.finite, *(q.paper or ()))])
    for y, q in enumerate(group):
        method = next((m for m, cls in METHODS.items() if q.label == cls.label or q.key.endswith(f"_{m}")), None)
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
    ax.set_yticks(range(len(group)), [textwrap.fill(q.label, 16, break_on_hyphens=False) for q in group])
    ax.set_ylim(len(group) - 0.4, -0.6)
    ax.margins(x=0.08)
    ax.grid(axis="x", color="0.92")
    verdict = group[0].verdict
    ax.set_title(textwrap.fill(title, 30, break_on_hyphens=False) + f"\n→ {verdict}", loc="left", fontsize=10,
                 color=_VERDICT_COLORS.get(verdict, "black"))


def paper_vs_ours_figure(glued: Glued | GluedBySeed, columns: int = 2):
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
    n_seeds = max(len(q.values) for q in items)
    handles = [plt.Line2D([], [], ls="none", marker="D", ms=7, mfc="white", mec="0.2", label="paper"),
               plt.Line2D([], [], color="0.6", lw=6, label="paper, read off a figure"),
               plt.Line2D([], [], ls="none", marker="o", ms=7, color="0.25",
                          label="ours" if n_seeds == 1 else f"ours, mean ± sd of {n_seeds} seeds")]
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


def choices_by_chapter_markdown() -> str:
    """Every chapter's choices where the paper is silent, under a link to the chapter."""
    parts = []
    for chapter in CHAPTERS.values():
        if chapter.choices and not chapter.copy_of:
            parts.append(f"**{{doc}}`{chapter.name}`**\n\n" + "\n".join(f"- {c}" for c in chapter.choices))
    return "\n\n".join(parts)
