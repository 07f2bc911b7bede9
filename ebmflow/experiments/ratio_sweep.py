"""A worked sweep beyond the paper (book/09_ratio_sweep): Figure 1's 2:1 ratio, which the paper held fixed, varied
from 1:1 to 19:1. Chapter 01 is re-executed with ``-p weights=...`` by the same ``ebmflow sweep`` commands a reader
would type (``commands``; ``make ratio-sweep PROFILE=...`` runs them, through ``python -m
ebmflow.experiments.ratio_sweep``); the page reads their results records (``ebmflow.book.records``) and plots the
learned weight error of ULA-EBM and flowMC-EBM against the ratio."""
from __future__ import annotations

import argparse
import math
import shlex
import statistics
import subprocess
import sys
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Sequence

import matplotlib.pyplot as plt
import pandas as pd

from .. import __version__
from ..book.plotting import BOOK_FIGURE_WIDTH, color, label
from ..book.records import load_records
from . import motivating

__all__ = ["Config", "PROFILES", "CHOICES", "ITEMS", "CHAPTER", "TOP_WEIGHTS", "EPOCHS", "SEEDS", "METHODS",
           "commands", "book_runs", "sweep_records", "table", "figure", "main"]

CHAPTER = "01_motivating_example"
TOP_WEIGHTS = (Fraction(1, 2), Fraction(2, 3), Fraction(4, 5), Fraction(9, 10), Fraction(19, 20))  # 1:1 ... 19:1
EPOCHS = 2  # the sweep's setting at every profile (-p epochs=2): 15 runs of about 16 s at the cpu profile
SEEDS = "0-2"
METHODS = ("ula", "flowmc")


@dataclass(frozen=True)
class Config:
    """A summary page: no knob beyond the profile (it reads what the sweep's runs stored)."""


PROFILES: dict[str, dict[str, Any]] = {"smoke": {}, "cpu": {}, "paper": {}}
CHOICES = (
    f"Ratios 1:1, 2:1, 4:1, 9:1 and 19:1: chapter 01's `weights` set to (1 - w, w) for the top-right mode's weight w = "
    f"{', '.join(str(w) for w in TOP_WEIGHTS)}; offset and variances stay the paper's.",
    f"Each ratio runs seeds {SEEDS} with `-p epochs={EPOCHS}` at every profile ({EPOCHS} epochs, "
    f"{EPOCHS * 16384 // 64} iterations at the cpu and paper profiles' data and batch sizes: far shorter than the "
    f"paper's 75 epochs, so that the 15 runs cost about 4 CPU-minutes at the cpu profile); every other setting is "
    f"the profile's.",
    "Learned weight error: |final estimate - w| for the top-right mode, the final estimate being chapter 01's (the "
    "mean of the last tenth of its measurements on the grid); mean ± sample standard deviation over the seeds.",
    "Records used: the results records of chapter 01 at this page's profile and library version whose parameters "
    "differ from the profile's only in `weights`, `epochs` (the sweep's) and `device`.",
)
ITEMS = ()


def _weights(top: Fraction) -> str:
    return f"{1 - top},{top}"


def commands(profile: str, executable: str = "ebmflow") -> list[list[str]]:
    """The sweep: one ``ebmflow sweep`` of chapter 01 per ratio (the 2:1 one is the paper's weights), then this page."""
    runs = [[executable, "sweep", CHAPTER, "--profile", profile, "--seeds", SEEDS, "-p", f"weights={_weights(w)}",
             "-p", f"epochs={EPOCHS}"] for w in TOP_WEIGHTS]
    return runs + [[executable, "run", "09_ratio_sweep", "--profile", profile]]


def book_runs(profile: str) -> list[tuple[str, tuple[int, ...], dict[str, Any]]]:
    """The same runs as ``commands``, as (chapter, seeds, parameters): ``ebmflow reproduce`` schedules them with
    the chapters' own runs, so that ``make book`` fills this page."""
    low, high = map(int, SEEDS.split("-"))
    return [(CHAPTER, tuple(range(low, high + 1)), {"weights": (float(1 - w), float(w)), "epochs": EPOCHS})
            for w in TOP_WEIGHTS]


def commands_markdown(profile: str) -> str:
    return "```bash\n" + "\n".join(shlex.join(c) for c in commands(profile)) + "\n```"


def _matches(record: dict[str, Any]) -> bool:
    return (set(record["parameters"]) <= {"weights", "epochs", "device"} and record["config"]["epochs"] == EPOCHS
            and record.get("ebmflow_version") == __version__)


def sweep_records(profile: str) -> dict[Fraction, list[dict[str, Any]]]:
    """The sweep's records at ``profile``, by the top-right mode's weight (one per seed, sorted by seed)."""
    found: dict[Fraction, list[dict[str, Any]]] = {}
    for record in load_records(CHAPTER, profile):
        top = min(TOP_WEIGHTS, key=lambda w: abs(record["config"]["weights"][1] - float(w)))
        if _matches(record) and abs(record["config"]["weights"][1] - float(top)) < 1e-9:
            found.setdefault(top, []).append(record)
    return {w: sorted(found[w], key=lambda r: r["seed"]) for w in TOP_WEIGHTS if w in found}


def _errors(records: list[dict[str, Any]], method: str) -> list[float]:
    values = [r["numbers"].get(motivating.key("weight_error", method)) for r in records]
    return [math.nan if v is None else float(v) for v in values]


def _summary(values: list[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    text = (f"{statistics.fmean(finite):.3f} ± {statistics.stdev(finite):.3f}" if len(finite) > 1 else
            f"{finite[0]:.3f}" if finite else "—")
    return text + (f" ({len(values) - len(finite)} diverged)" if len(finite) < len(values) else "")


def table(found: dict[Fraction, list[dict[str, Any]]]) -> pd.DataFrame:
    """Per ratio: the true weight, the seeds run, each method's learned weight error (mean ± sd) and per seed."""
    rows = {}
    for top, records in found.items():
        row = {"true weight w": f"{float(top):.3f}", "seeds": ", ".join(str(r["seed"]) for r in records)}
        for m in METHODS:
            errors = _errors(records, m)
            row[f"{label(m)}: |error|"] = _summary(errors)
            row[f"{label(m)}: per seed"] = ", ".join("nan" if math.isnan(e) else f"{e:.3f}" for e in errors)
        rows[f"{float(top / (1 - top)):g}:1"] = row
    return pd.DataFrame(rows).T.rename_axis("ratio")


def figure(found: dict[Fraction, list[dict[str, Any]]]):
    """Learned weight error against the ratio w / (1 - w) (log scale): each seed (dots), the mean ± sd (line, bars);
    the paper's Figure 1 range at 2:1 (read off, flowMC-EBM) as a grey bar."""
    fig, ax = plt.subplots(figsize=(BOOK_FIGURE_WIDTH, 3.6), layout="constrained")
    ratios = {w: float(w / (1 - w)) for w in found}
    for shift, m in zip((0.97, 1.03), METHODS):
        means, sds, xs = [], [], []
        for w, records in found.items():
            finite = [e for e in _errors(records, m) if math.isfinite(e)]
            ax.plot([ratios[w] * shift] * len(finite), finite, ".", color=color(m), alpha=0.4, ms=5)
            if finite:
                xs.append(ratios[w] * shift)
                means.append(statistics.fmean(finite))
                sds.append(statistics.stdev(finite) if len(finite) > 1 else 0.0)
        ax.errorbar(xs, means, yerr=sds, fmt="o-", color=color(m), capsize=3, label=label(m))
    low, high = (abs(p - 2 / 3) for p in motivating.PAPER_WEIGHT)
    ax.plot([2, 2], [low, high], color="0.6", lw=6, alpha=0.6, solid_capstyle="butt",
            label="paper, flowMC-EBM at 2:1 (read off)")
    ax.set(xscale="log", xlabel="ratio of the top-right mode's weight to the other's, w / (1 − w)",
           ylabel="|learned weight − w|")
    ax.set_xticks([float(w / (1 - w)) for w in TOP_WEIGHTS], [f"{float(w / (1 - w)):g}:1" for w in TOP_WEIGHTS])
    ax.minorticks_off()
    ax.set_ylim(bottom=0)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=3)
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    """``make ratio-sweep``: print and run ``commands(profile)`` one after another (extra arguments, e.g.
    ``--address HOST:6379`` or ``--inline``, go to every ``ebmflow sweep``); stops at the first failure."""
    parser = argparse.ArgumentParser(prog="python -m ebmflow.experiments.ratio_sweep", description=__doc__)
    parser.add_argument("--profile", default="cpu", choices=sorted(PROFILES))
    args, extra = parser.parse_known_args(argv)
    for command in commands(args.profile):
        shown = command + (extra if command[1] == "sweep" else [])
        print("$", shlex.join(shown), flush=True)
        code = subprocess.call([sys.executable, "-m", "ebmflow", *shown[1:]])
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
