"""One method's divergence never aborts a chapter (issue 18, item 1).

Each chapter runs at the smoke profile through its notebook's cells (``paper_check.PIPELINES``) with one method's
learning rate set to 1e30: its EBM overflows at its second iteration, a real divergence (non-finite energies, or
an energy gap far above the bound). The chapter must still give every number, table and figure: the diverged run
is recorded (iteration, quantity, cause), its numbers are NaN beside a ``diverged_at`` key, its table entries read
"diverged (it. N)", the other methods train to the end with finite numbers, and a claim about a method that
diverged does not hold (a diverged run counts as the worst).
"""
import math
import re
import string

import matplotlib
import pytest

from ebmflow.book.chapters import CHAPTERS
from ebmflow.book.config import resolve_config
from ebmflow.book.paper_check import PIPELINES, Steps
from ebmflow.book.plotting import label
from ebmflow.experiments import common

matplotlib.use("Agg")

BASELINE = {"01_motivating_example": "ula", "02_toy_benchmarks": "ntebm", "03_extended_example": "ntebm",
            "04_high_dim_mixture": "ula", "06_class_weights": "ula", "07_mode_weights": "coopflow",
            "08_your_data": "coopflow"}
CASES = [pytest.param(name, "flowmc", id=f"{name}-flowmc") for name in PIPELINES] + [
    pytest.param(name, method, id=f"{name}-{method}") for name, method in BASELINE.items()]
KEPT = ("fig1_weight_min_", "fig1_weight_max_")  # measured before the divergence (Figure 1 shows them)


def _names(key: str, method: str) -> bool:
    """Whether glue key ``key`` is a number of ``method``'s runs (``..._ula_...``, ``..._ula``)."""
    return re.search(rf"(^|_){method}(_|$)", key) is not None


def _claim_keys(claim) -> list[str]:
    return [key for _, key, _, _ in string.Formatter().parse(claim.ours) if key]


@pytest.fixture
def diverging(monkeypatch):
    """``diverging(name)``: every training run of method ``name`` gets an Adam learning rate of 1e30."""
    real = common.fit_ebm

    def arm(method_name: str) -> None:
        def fit_ebm(data, energy, method, **kwargs):
            if method.name == method_name:
                method.lr = 1e30  # the EBM's optimiser is built from it by fit_ebm
            return real(data, energy, method, **kwargs)
        monkeypatch.setattr(common, "fit_ebm", fit_ebm)
    return arm


@pytest.mark.slow
@pytest.mark.parametrize("name, method", CASES)
def test_one_methods_divergence_never_aborts_the_chapter(name, method, diverging):
    chapter = CHAPTERS[name]
    config = resolve_config(chapter.config_cls, chapter.profiles, "smoke")
    diverging(method)
    steps = Steps("all")
    outcome = PIPELINES[name].run(config, steps)  # every cell of the notebook: no exception

    runs, numbers, tables = outcome["runs"], outcome["numbers"], outcome["tables"]
    assert all(not s.skipped for s in steps.costs)
    stopped = {key: run for key, run in runs.items() if run.method.name == method}
    others = {key: run for key, run in runs.items() if run.method.name != method}
    assert stopped and all(run.divergence is not None and run.divergence.iteration >= 1 for run in stopped.values())
    assert all(run.divergence.cause and run.divergence.quantity for run in stopped.values())
    assert all(run.divergence is None and run.history.completed for run in others.values()), "the others run on"
    iterations = {run.divergence.iteration for run in stopped.values()}

    # numbers: the diverged method's marked and NaN, the others' finite
    diverged_keys = [k for k in numbers if "diverged_at" in k]
    assert diverged_keys, "every chapter glues the iteration of a divergence"
    alone = {run.method.name for run in runs.values()} == {method}  # chapter 05 trains one method
    for key in diverged_keys:
        assert (numbers[key] in iterations) if alone or _names(key, method) else numbers[key] == 0, key
    claim_keys = {k for item in chapter.items for claim in item.claims for k in _claim_keys(claim)}
    for key in claim_keys & set(numbers):
        value = numbers[key]
        if _names(key, method) and not key.startswith(KEPT):
            assert math.isnan(value), f"{key} = {value} for a diverged run"
        if not _names(key, method) and any(_names(key, run.method.name) for run in others.values()):
            assert math.isfinite(value), f"{key} = {value}: a method that did not diverge has finite numbers"

    # tables: the diverged method's rows say so ("diverged (it. N)"), the others' hold numbers (no "nan")
    def row_of(index, name: str) -> bool:  # a row of method ``name``: "ULA-EBM", ("NT-EBM", "flow by ..."), ...
        return any(str(part).startswith(label(name)) for part in (index if isinstance(index, tuple) else (index,)))

    found = set()
    for table in (t for t in tables if "verdict" not in t.columns):  # the verdicts' rows are claims, not methods
        for index, row in table.iterrows():
            cells = [str(v) for v in row.values]
            if row_of(index, method) or (alone and "ours" in " ".join(map(str, table.columns))):
                assert any("diverged" in cell for cell in cells), (index, cells)  # the row says so
                found.update(int(n) for cell in cells for n in re.findall(r"diverged \(it\. (\d+)\)", cell))
            elif any(row_of(index, run.method.name) for run in others.values()):
                assert not any("diverged" in cell for cell in cells), (index, cells)
                assert "nan" not in [c.strip().lower() for c in cells], (index, cells)
    if tables:
        assert found and found <= iterations, f"no 'diverged (it. N)' entry for {label(method)} in the tables"

    # claims: judged on the numbers, a claim about the method that diverged does not hold
    for item in chapter.items:
        for claim in item.claims:
            verdict = claim.check(numbers)
            assert isinstance(verdict, bool)
            if method == "flowmc" and any(_names(k, "flowmc") for k in _claim_keys(claim)):
                assert verdict is False, f"{claim.statement}: holds although flowMC-EBM diverged"


def test_every_chapter_with_training_has_a_divergence_case():
    experiments = {name for name, c in CHAPTERS.items() if not c.summary and not c.copy_of}
    assert set(PIPELINES) == experiments
    assert {p.values[0] for p in CASES} == experiments
