"""The paper's tables and headline numbers rebuilt over seeds, for the report page: ours as mean ± sd over the
seeds of one profile (``report.load_evidence``) beside the paper's value, each table stating its seeds.

Tables: Figure 1's final weight, Table 1, Table 3, Table 2, Figures 7 and 8 (acceptance, energies), the class
weights of chapter 06 (mean ± sd per method and the paired interval of the difference,
``class_weights.summarize_seeds``) and chapter 07's mode-weight errors. Each is a MyST list-table with a caption
and a name (``report-table-<n>``) that fits the page (CSS class ``ebmflow-report``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from .report import Evidence, _escape, _summary, _number_or_nan

__all__ = ["SeedTable", "seed_tables", "tables_markdown"]


@dataclass(frozen=True)
class SeedTable:
    """One reproduced table: rows × columns of "paper" and "ours (mean ± sd)" cells."""

    name: str  # MyST label
    title: str
    chapter: str
    header: tuple[str, ...]  # the column headers after the row label's
    rows: tuple[tuple[str, tuple[str, ...]], ...]  # (row label, cells)
    note: str = ""
    paired: bool = False  # rows come in pairs, the paper's line then ours (``_grid``)


def _over_seeds(ev: Evidence, key: str, spec: str) -> str:
    """Mean ± sd of ``key`` over the seeds, never split across lines (no-break spaces around ±)."""
    values = [_number_or_nan(g[key]) for g in ev.glued if key in g]
    return _summary(values, spec).replace(" ± ", "\u00a0±\u00a0") if values else "—"


def _paper(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _grid(ev: Evidence, rows: Sequence[tuple[str, str]], columns: Sequence[tuple[str, Any]],
          key: Callable[[str, Any], str], paper: Callable[[str, Any], float | None], spec: str):
    """Per row (method, label) two lines, the paper's and ours, × columns (column id, label)."""
    header = tuple(label for _, label in columns)
    body = tuple(line for row, label in rows for line in (
        (f"{label}: paper", tuple(_paper(paper(row, col), spec) for col, _ in columns)),
        (f"{label}: ours", tuple(_over_seeds(ev, key(row, col), spec) for col, _ in columns))))
    return header, body


def _methods() -> list[tuple[str, str]]:
    from ..methods import METHODS

    return [(name, cls.label) for name, cls in METHODS.items()]


def _figure1(ev: Evidence) -> SeedTable:
    from ..experiments import motivating as m

    low, high = m.PAPER_WEIGHT
    paper = {"flowmc": (f"≈{low:.2f}–{high:.2f}", f"≈{low:.2f}–{high:.2f}"), "ula": ("≈0.9", "≈0 ↔ ≈1")}
    rows = tuple((label, (paper[name][0], _over_seeds(ev, m.key("final_weight", name), ".3f"), paper[name][1],
                          f"{_over_seeds(ev, m.key('weight_min', name), '.2f')} to "
                          f"{_over_seeds(ev, m.key('weight_max', name), '.2f')}"))
                 for name, label in _methods() if name in ("flowmc", "ula"))
    truth = _over_seeds(ev, "fig1_true_weight", ".3f")
    return SeedTable("report-figure-1", f"The paper's Figure 1: estimated weight of the top-right mode (truth {truth})",
                     ev.chapter, ("final weight: paper", "final weight: ours", "range after epoch 1: paper",
                                  "range: ours (lowest to highest)"), rows,
                     "the paper's values are read off its figure")


def _table1(ev: Evidence) -> SeedTable:
    from ..experiments import benchmarks, toy_benchmarks as t

    header, body = _grid(ev, _methods(), [(target, benchmarks.TARGET_LABELS[target]) for target in t.TARGETS],
                         t.table1_key, lambda m, target: t.PAPER_TABLE1[m][target], ".2f")
    return SeedTable("report-table-1", "The paper's Table 1: median squared log-density error (lower is better)",
                     ev.chapter, header, body, paired=True)


def _table3(ev: Evidence) -> SeedTable:
    from ..experiments import extended as e

    columns = [("init", "init. vs E_θ"), ("neg", "negatives vs E_θ"), ("ebm", "E_θ vs −log p*")]
    header, body = _grid(ev, _methods(), columns, e.table3_key, lambda m, c: e.PAPER_TABLE3[m][c], ".2e")
    return SeedTable("report-table-3", "The paper's Table 3: zone-weight mean squared errors (lower is better)",
                     ev.chapter, header, body, paired=True)


def _table2(ev: Evidence) -> SeedTable:
    from ..experiments import high_dim as h

    header, body = _grid(ev, _methods(), [(d, f"d = {d}") for d in h.DIMS], h.table2_key,
                         lambda m, d: h.PAPER_TABLE2[m][d], ".2f")
    return SeedTable("report-table-2", "The paper's Table 2: largest R-hat of 128 negative chains at the end of "
                     "training (≈1: the chains mix)", ev.chapter, header, body, "nan: a run stopped by a divergence",
                     paired=True)


def _images(ev: Evidence) -> SeedTable:
    from ..experiments import images as i

    low, high = i.PAPER_ACCEPTANCE
    rows = (("global (flow) acceptance", f"{low:.0%}–{high:.0%} (CIFAR-10)",
             _over_seeds(ev, i.key(8, "global_acceptance"), ".3f")),
            ("local (MALA) acceptance", "—", _over_seeds(ev, i.key(8, "local_acceptance"), ".3f")),
            ("mean energy of the negatives", "in the data's range",
             _over_seeds(ev, i.key(7, "energy_neg_mean"), ".1f")),
            ("mean energy of training images", "—", _over_seeds(ev, i.key(7, "energy_train_mean"), ".1f")),
            ("sd of the training images' energy", "—", _over_seeds(ev, i.key(7, "energy_train_std"), ".1f")),
            ("mean energy of test images", "—", _over_seeds(ev, i.key(7, "energy_test_mean"), ".1f")))
    return SeedTable("report-figure-8", "The paper's Figures 7 and 8: acceptance over the last quarter of "
                     "training, and energies", ev.chapter, ("paper", "ours"), tuple((r[0], r[1:]) for r in rows),
                     "the paper trains on CIFAR-10; the cpu profile on scikit-learn's 8×8 digits")


def _class_weights(ev: Evidence) -> SeedTable:
    from ..experiments import class_weights as cw
    from .report import _class_weight_interval

    digits = sorted({int(k[len("cw_truth_p"):]) for g in ev.glued for k in g if k.startswith("cw_truth_p")})
    truth = {c: format(ev.glued[0].get(cw.key(f"truth_p{c}"), math.nan), ".2f") for c in digits}  # as every seed
    rows = tuple((label, (_over_seeds(ev, cw.key("maxerr", name), ".3f"),
                          *(_over_seeds(ev, cw.key(f"p{c}", name), ".3f") for c in digits)))
                 for name, label in _methods() if name in ("flowmc", "ula"))
    rows += (("flowMC-EBM − ULA-EBM (largest error)", (_class_weight_interval(ev),) + ("",) * len(digits)),)
    return SeedTable("report-class-weights", "Class weights (beyond the paper): largest class-share error and each "
                     "digit's share under the common sampler", ev.chapter,
                     ("largest error", *(f"digit {c} (truth {truth[c]})" for c in digits)), rows,
                     "not measured in the paper; the last row is the paired difference of the two methods")


def _mode_weights(ev: Evidence) -> SeedTable:
    from ..experiments import mode_weights as mw
    from ..methods import METHODS

    names = [*METHODS, mw.UNSTABILISED]
    labels = {**{n: c.label for n, c in METHODS.items()}, mw.UNSTABILISED: "flowMC-EBM, no parameter average"}
    rows = tuple((labels[n], tuple(_over_seeds(ev, mw.key("maxerr", n, d), ".3f") for d in mw.DIMS)) for n in names)
    return SeedTable("report-mode-weights", "Mode weights in d = 8–64 (beyond the paper): largest mode-weight "
                     "error of each method's EBM", ev.chapter, tuple(f"d = {d}" for d in mw.DIMS), rows,
                     "not measured in the paper; nan: every seed diverged")


BUILDERS: tuple[tuple[str, Callable[[Evidence], SeedTable]], ...] = (
    ("01_motivating_example", _figure1), ("02_toy_benchmarks", _table1), ("03_extended_example", _table3),
    ("04_high_dim_mixture", _table2), ("05_images", _images), ("06_class_weights", _class_weights),
    ("07_mode_weights", _mode_weights))


def seed_tables(evidence: Mapping[str, Evidence]) -> list[SeedTable]:
    """The reproduced tables of the chapters that were run."""
    return [build(evidence[chapter]) for chapter, build in BUILDERS
            if chapter in evidence and evidence[chapter].source != "none"]


def _table_markdown(table: SeedTable, ev: Evidence) -> str:
    source = "results records" if ev.source == "records" else "the book's page, no records"
    caption = f"{table.title}. Ours: mean ± sd over {ev.seeds_text}"
    caption += f" ({source}, commit {ev.commit_text})" if ev.source == "records" else f" ({source})"
    caption += f"; {table.note}." if table.note else "."
    columns = 1 + len(table.header)
    classes = "ebmflow-report ebmflow-numbers" + (" ebmflow-paired" if table.paired else "")
    lines = [f":::{{list-table}} {_escape(caption)}", ":header-rows: 1", f":class: {classes}",
             f":name: {table.name}", "", "* - ", *(f"  - {_escape(h)}" for h in table.header)]
    for label, cells in table.rows:
        lines.append(f"* - {_escape(label)}")
        lines.extend(f"  - {_escape(c)}" for c in cells)
        assert 1 + len(cells) == columns, (table.name, label)
    lines.append(":::")
    return "\n".join(lines)


def tables_markdown(evidence: Mapping[str, Evidence]) -> str:
    """Every reproduced table as a numbered MyST table, ours (mean ± sd) beside the paper's."""
    parts = [_table_markdown(table, evidence[table.chapter]) for table in seed_tables(evidence)]
    return "\n\n".join(parts) if parts else "No chapter has been run yet."

