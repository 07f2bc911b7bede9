"""Chapters 02 and 03 (2-D benchmarks): metrics, faithful baselines, divergence handling, tables and claims."""
import dataclasses
import math
import re

import matplotlib
import nbformat
import pytest
import torch

from ebmflow.book.chapters import CHAPTERS
from ebmflow.book.claims import render
from ebmflow.book.config import parameters_cell, resolve_config
from ebmflow.experiments import benchmarks as bench
from ebmflow.experiments import extended, toy_benchmarks
from ebmflow.methods import METHODS
from ebmflow.models import DiagonalGaussian
from ebmflow.seeding import make_generator
from ebmflow.book.report import verdict_table

matplotlib.use("Agg")


def smoke(module, **overrides):
    return resolve_config(module.Config, module.PROFILES, "smoke", **overrides)


@pytest.fixture(scope="module")
def runs03():
    """Chapter 03 at the smoke profile with ULA-EBM made to diverge (its chains leave the box at once)."""
    config = smoke(extended, ula_step_size=1e3)
    runs = extended.train_all(config)
    return config, runs, extended.latent_chains(runs["ntebm"], config)


@pytest.mark.parametrize("module", [toy_benchmarks, extended])
@pytest.mark.parametrize("profile", ["smoke", "cpu", "paper"])
def test_every_profile_resolves_and_builds_the_four_methods(module, profile):
    config = resolve_config(module.Config, module.PROFILES, profile)
    built = module.methods(config, "8gaussians") if module is toy_benchmarks else module.methods(config)
    assert list(built) == list(METHODS)


@pytest.mark.parametrize("target", ["8gaussians", "rings"])
def test_table1_metric_is_zero_for_the_target_and_positive_for_a_shifted_one(target):
    config = smoke(toy_benchmarks, grid_size=200, n_eval=2048)
    log_p = bench.target(target).log_prob
    assert toy_benchmarks.table1_error(log_p, config, target) < 1e-3
    assert toy_benchmarks.table1_error(lambda x: log_p(x - 0.3), config, target) > 0.1


def test_zone_weights_of_the_exact_target_equal_its_weights():
    config = smoke(extended, grid_size=200)
    p_star = bench.target("extended")
    weights = bench.model_zone_weights(p_star.log_prob, config, "extended")
    torch.testing.assert_close(weights, p_star.weights, atol=1e-3, rtol=0)
    shifted = bench.model_zone_weights(lambda x: p_star.log_prob(x - torch.tensor([2.0, 0.0])), config, "extended")
    assert (shifted - p_star.weights).abs().max() > 0.05


def test_ntebm_variants_differ_only_in_pretraining():
    config = smoke(toy_benchmarks)
    default = toy_benchmarks._method(config, "ntebm", "8gaussians", "")
    reverse = toy_benchmarks._method(config, "ntebm", "8gaussians", "reverse_kl")
    assert (default.pretrain, reverse.pretrain) == ("data", "reverse_kl")
    for field in dataclasses.fields(default):
        if field.init and field.name not in ("pretrain", "make_flow"):
            assert getattr(default, field.name) == getattr(reverse, field.name), field.name
    flows = [m.make_flow(DiagonalGaussian(2), generator=make_generator(0)) for m in (default, reverse)]
    assert flows[0].sizes == flows[1].sizes == {"n_couplings": config.flow_couplings, "hidden": config.flow_hidden,
                                                "n_hidden_layers": 3}


def test_coopflow_full_steps_variant_differs_only_in_its_step_count():
    config = smoke(toy_benchmarks)
    cut = toy_benchmarks._method(config, "coopflow", "8gaussians", "")
    full = toy_benchmarks._method(config, "coopflow", "8gaussians", "full_steps")
    assert (cut.n_steps, full.n_steps) == (config.coopflow_steps, config.coopflow_full_steps)
    assert cut.noise is False and cut.max_drift is None
    assert cut.freeze_iterations == int(config.coopflow_freeze_fraction * config.iterations)
    assert ("coopflow", "8gaussians", "full_steps") in toy_benchmarks.runs_to_train(config)
    assert ("coopflow", "8gaussians", "full_steps") not in toy_benchmarks.runs_to_train(
        dataclasses.replace(config, coopflow_full_steps=0))


def test_coopflow_starts_are_fresh_flow_samples(runs03):
    config, runs, _ = runs03
    method = runs["coopflow"].method
    bank = torch.zeros(64, 2)
    starts = method.starts(bank, make_generator(3, stream="test"))
    torch.testing.assert_close(starts, method.flow.sample(64, make_generator(3, stream="test")))
    assert not torch.equal(starts, method.starts(bank, make_generator(4, stream="test")))


def test_a_divergence_in_one_method_leaves_the_others(runs03):
    config, runs, paths = runs03
    assert runs["ula"].divergence is not None
    assert all(runs[m].divergence is None and runs[m].history.completed for m in METHODS if m != "ula")
    step = runs["ntebm"].method.step_size
    values = extended.numbers(runs, config, paths)
    assert runs["ntebm"].method.step_size == step  # Table 3's sampler call leaves the trained method as it was
    at = runs["ula"].divergence.iteration
    assert values[extended.table3_key("ula", "diverged_at")] == at >= 1
    assert all(math.isnan(values[extended.table3_key("ula", c)]) for c in extended.COLUMNS)
    assert all(math.isfinite(values[extended.table3_key(m, c)]) for m in METHODS if m != "ula"
               for c in extended.COLUMNS)
    assert (extended.table3(values, config).loc["ULA-EBM"].xs("ours", level=1) == f"diverged (it. {at})").all()
    fig = extended.figure3(runs, config)
    assert f"diverged (it. {at})" in fig.axes[-1].get_title()
    verdicts = verdict_table(extended.ITEMS, values)  # NaN counts as the worst value, never as a crash
    assert len(verdicts) == 4


def test_claims_judge_nan_as_worst():
    values = {toy_benchmarks.table1_key(m, t): 1.0 for m in METHODS for t in toy_benchmarks.TARGETS}
    table1 = {c.statement: c for c in next(i for i in toy_benchmarks.ITEMS if i.item == "Table 1").claims}
    largest = table1["CoopFlow has the largest Table 1 error on 8 Gaussians"]
    lowest = table1["flowMC-EBM has the lowest Table 1 error on 8 Gaussians"]
    values[toy_benchmarks.table1_key("flowmc", "8gaussians")] = 0.5
    values[toy_benchmarks.table1_key("coopflow", "8gaussians")] = 2.0
    assert largest.check(values) and lowest.check(values)
    values[toy_benchmarks.table1_key("ntebm", "8gaussians")] = math.nan  # a diverged NT-EBM is the worst
    assert not largest.check(values) and lowest.check(values)
    values[toy_benchmarks.table1_key("flowmc", "8gaussians")] = math.nan
    assert not lowest.check(values)
    assert render(largest.ours, values).startswith("flowMC-EBM nan")


def test_figure5_chains_follow_the_seed(runs03):
    config, runs, paths = runs03
    again = extended.latent_chains(runs["ntebm"], config)
    other = extended.latent_chains(runs["ntebm"], dataclasses.replace(config, seed=config.seed + 1))
    assert paths.shape == (config.fig5_steps + 1, 4, 2)
    torch.testing.assert_close(paths, again)
    torch.testing.assert_close(paths[0], other[0])  # the same starts (the bank) ...
    assert not torch.equal(paths[1:], other[1:])  # ... but the seed's own moves


def test_hyperparameter_tables_are_generated_from_the_methods():
    config = smoke(toy_benchmarks, ula_steps=7)
    table = toy_benchmarks.table5(config)
    assert table.loc[("ULA-EBM", "ours"), "# MCMC steps"] == "7"
    assert table.loc[("ULA-EBM", "paper"), "# MCMC steps"] == "512"
    for name, method in toy_benchmarks.methods(config, "8gaussians").items():
        row = table.loc[(METHODS[name].label, "ours")]
        assert dict(row) == {k: str(v) for k, v in method.describe().items()}
    table4 = extended.table4(smoke(extended))
    assert table4.loc[("flowMC-EBM", "ours"), "use only last step?"] == "no: subsampling by 5"


@pytest.mark.slow
def test_chapter_02_smoke_run_gives_every_number_its_text_claims_and_tables_need():
    config = smoke(toy_benchmarks)
    runs = toy_benchmarks.train_all(config)
    assert set(runs) == set(toy_benchmarks.runs_to_train(config))
    values = toy_benchmarks.numbers(runs, config)
    for item in toy_benchmarks.ITEMS:
        for claim in item.claims:
            render(claim.ours, values), render(claim.why_not, values)
            claim.check(values)
    variants = toy_benchmarks.variants_table(values, config)
    assert variants.shape == (4, 4)
    assert variants.iloc[3, 2] == "not run"  # CoopFlow's full-step run is on 8 Gaussians only
    assert values[toy_benchmarks.table1_key("ntebm", "rings", "reverse_kl", "flow")] > 0
    toy_benchmarks.figure2(runs, config)
    toy_benchmarks.figure_ntebm_variants(runs, config)
    assert glue_references("02_toy_benchmarks") <= set(values) | set(toy_benchmarks.seconds(runs))


def glue_references(chapter: str) -> set[str]:
    """Every key the chapter's Markdown cites with {glue:text} from its own numbers: not the page's run label and
    verdicts (``run_label``, ``here_<claim id>``, glued by its set-up and glue cells) nor the report's numbers over
    seeds in its box (``99_report.ipynb::...``, checked by tests/test_book.py)."""
    notebook = nbformat.read(CHAPTERS[chapter].notebook, as_version=4)
    text = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    keys = set(re.findall(r"\{glue:text\}`(?![^`]*::)([A-Za-z0-9_]+)", text))
    return {key for key in keys if key != "run_label" and not key.startswith("here_")}


def test_chapter_03_text_cites_only_numbers_the_chapter_glues(runs03):
    config, runs, paths = runs03
    glued = {**extended.numbers(runs, config, paths), **extended.seconds(runs)}
    assert glue_references("03_extended_example") <= set(glued)
    for claim in (c for item in extended.ITEMS for c in item.claims):
        render(claim.ours, glued), render(claim.why_not, glued)



@pytest.mark.parametrize("module", [toy_benchmarks, extended])
def test_parameters_cell_comments_inherited_and_own_knobs(module):
    cell = parameters_cell(module.Config, module.PROFILES)
    assert "n_data = None  # int: size of the fixed training set drawn from p*" in cell  # from BenchmarkConfig
    own = {toy_benchmarks: "coopflow_full_steps = None  # int: CoopFlow's", extended: "fig5_steps = None  # int: latent"}
    assert own[module] in cell
