"""The worked sweep (book/09_ratio_sweep): its commands are a reader's commands, checked and cheap enough, `make
ratio-sweep` runs them, and the page reads the records they write."""
from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import nbformat
import pytest

from ebmflow.book import records
from ebmflow.book.chapters import BOOK_DIR
from ebmflow.book.cli import _parameters, _parser
from ebmflow.book.runner import estimate_seconds, run_chapter
from ebmflow.book.sweep import parse_seeds, sweep_specs
from ebmflow.book.chapters import get_chapter
from ebmflow.experiments import motivating, ratio_sweep

ROOT = BOOK_DIR.parent


def sweep_commands(profile):
    return [c for c in ratio_sweep.commands(profile) if c[1] == "sweep"]


def test_the_commands_are_checked_ebmflow_sweeps_over_the_ratios():
    commands = ratio_sweep.commands("cpu")
    assert [c[1] for c in commands] == ["sweep"] * 5 + ["run"] and commands[-1][2] == "09_ratio_sweep"
    tops = []
    for command in sweep_commands("cpu"):
        specs = sweep_specs(*_spec_args(command))
        assert [s.seed for s in specs] == [0, 1, 2]
        overrides = dict(specs[0].overrides)
        assert overrides["epochs"] == ratio_sweep.EPOCHS
        weights = overrides.get("weights", motivating.PAPER_WEIGHTS)
        tops.append(weights[1])
        assert sum(weights) == pytest.approx(1)
    assert tops == pytest.approx([0.5, 2 / 3, 0.8, 0.9, 0.95])  # 1:1 to 19:1
    assert "weights" not in dict(sweep_specs(*_spec_args(sweep_commands("cpu")[1]))[0].overrides)  # 2:1: the paper's


def _spec_args(command):
    """The command line a reader types, parsed by the CLI itself, as ``sweep_specs`` arguments."""
    args = _parser().parse_args(command[1:])
    return args.chapter, parse_seeds(args.seeds), args.profile, _parameters(args)


def test_the_whole_sweep_costs_about_four_cpu_minutes_at_the_cpu_profile():
    """Projected from chapter 01's measured cpu runtime (book/runtimes.json) as the runner projects every run."""
    chapter = get_chapter(ratio_sweep.CHAPTER)
    total = 0.0
    for command in sweep_commands("cpu"):
        for spec in sweep_specs(*_spec_args(command)):
            config = motivating.Config(**{**motivating.PROFILES["cpu"], **dict(spec.overrides), "seed": spec.seed})
            seconds, _ = estimate_seconds(chapter, "cpu", config)
            total += seconds
    assert total <= 4.3 * 60, f"the sweep would take {total / 60:.1f} CPU-minutes"


def test_make_ratio_sweep_runs_the_module_that_prints_and_runs_the_commands(monkeypatch, capsys):
    makefile = (ROOT / "Makefile").read_text()
    assert "ratio-sweep: $(STAMP)\n\t$(PY) -m ebmflow.experiments.ratio_sweep --profile $(PROFILE) $(ARGS)" in makefile
    calls = []
    monkeypatch.setattr(ratio_sweep.subprocess, "call", lambda argv: calls.append(argv) or 0)
    assert ratio_sweep.main(["--profile", "smoke", "--inline"]) == 0
    expected = ratio_sweep.commands("smoke")
    assert [c[3:] for c in calls] == [c[1:] + (["--inline"] if c[1] == "sweep" else []) for c in expected]
    assert capsys.readouterr().out.count("$ ebmflow ") == 6


def fake_record(profile, top, seed, errors, epochs=ratio_sweep.EPOCHS, extra=None):
    weights = (float(1 - top), float(top))
    overrides = {"epochs": epochs, **({"weights": weights} if top != Fraction(2, 3) else {}), **(extra or {})}
    glued = {motivating.key("weight_error", m): e for m, e in zip(ratio_sweep.METHODS, errors)}
    return records.make_record(chapter=ratio_sweep.CHAPTER, profile=profile, seed=seed, device="cpu",
                               overrides=overrides, config={"epochs": epochs, "weights": list(weights)}, glued=glued,
                               timings={}, seconds=1.0)


def test_the_page_reads_only_the_sweeps_records(tmp_path, monkeypatch):
    monkeypatch.setenv("EBMFLOW_RESULTS_DIR", str(tmp_path))
    for seed in (0, 1):
        records.write_record(fake_record("smoke", Fraction(9, 10), seed, (0.3, 0.05 * (seed + 1))))
    records.write_record(fake_record("smoke", Fraction(9, 10), 2, (math.nan, 0.1)))
    records.write_record(fake_record("smoke", Fraction(9, 10), 3, (0.1, 0.1), epochs=7))  # not the sweep's epochs
    records.write_record(fake_record("smoke", Fraction(9, 10), 4, (0.1, 0.1), extra={"lr": 0.1}))  # another knob
    found = ratio_sweep.sweep_records("smoke")
    assert list(found) == [Fraction(9, 10)] and [r["seed"] for r in found[Fraction(9, 10)]] == [0, 1, 2]
    table = ratio_sweep.table(found)
    assert table.loc["9:1", "flowMC-EBM: |error|"] == "0.083 ± 0.029"  # 0.05, 0.10, 0.10
    assert table.loc["9:1", "ULA-EBM: |error|"] == "0.300 ± 0.000 (1 diverged)"
    assert table.loc["9:1", "ULA-EBM: per seed"] == "0.300, 0.300, nan"
    assert ratio_sweep.sweep_records("cpu") == {}


@pytest.mark.slow
def test_the_page_renders_from_records_and_without_them(tmp_path, monkeypatch):
    monkeypatch.setenv("EBMFLOW_RESULTS_DIR", str(tmp_path / "results"))
    empty = run_chapter("09_ratio_sweep", "smoke", output=tmp_path / "empty" / "page.ipynb", progress=False)
    assert "No sweep records at profile `smoke` yet" in Path(empty.output).read_text()
    for top in ratio_sweep.TOP_WEIGHTS:
        for seed in (0, 1, 2):
            records.write_record(fake_record("smoke", top, seed, (0.4 * float(top), 0.02 * (seed + 1))))
    page = run_chapter("09_ratio_sweep", "smoke", output=tmp_path / "page" / "page.ipynb", progress=False)
    notebook = nbformat.read(page.output, as_version=4)
    text = "".join(str(o.get("data", {}).get("text/plain", "")) for c in notebook.cells for o in c.get("outputs", []))
    assert all(f"{r}:1" in text for r in ("1", "2", "4", "9", "19"))
    assert [p.name for p in page.figures] == ["ratio_sweep.pdf", "ratio_sweep.png"]
    assert "ebmflow sweep 01_motivating_example --profile smoke --seeds 0-2 -p weights=1/20,19/20 -p epochs=2" in \
        page.output.read_text()
