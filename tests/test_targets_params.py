"""Every chapter's target is a parameter (issue 19): the new toy targets' densities, list-valued parameters typed and
parsed from the command line, papermill and YAML, bad target values refused with a sentence naming the parameter,
`ebmflow list` showing them, the text and tables following the configured target, and the new parameters running at
the smoke profile under nbval."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest
import torch

from ebmflow.book.chapters import CHAPTERS, chapter_config
from ebmflow.book.cli import main
from ebmflow.book.config import ConfigError, format_value, parameters_cell, resolve_config
from ebmflow.book.runner import check_run, run_chapter
from ebmflow.experiments import benchmarks as bench
from ebmflow.experiments import extended, high_dim, motivating, toy_benchmarks
from ebmflow.metrics import Grid2D, log_normalizer_on_grid, normalize_on_grid, zone_weights_of_samples, \
    zone_weights_on_grid
from ebmflow.targets import Pinwheel, TwoMoons, checkerboard, pinwheel, two_moons
from ebmflow.book.report import verdict_table

matplotlib.use("Agg")

NEW_TARGETS = {"moons": (two_moons(), 4.5), "pinwheel": (pinwheel(), 5.0), "checkerboard": (checkerboard(), 4.5)}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def smoke(module, **overrides):
    return resolve_config(module.Config, module.PROFILES, "smoke", **overrides)


# --- the new toy targets ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NEW_TARGETS)
def test_new_target_is_normalised_and_its_samples_follow_its_density(name):
    """log p integrates to 1 on a grid covering the mass, and the samples agree with the density: the same zone
    weights (each mode's mass), the same second moments, the same per-coordinate variance as the tilt is sized by."""
    target, limit = NEW_TARGETS[name]
    grid = Grid2D(-limit, limit, 400)
    _, log_z = log_normalizer_on_grid(target.log_prob, grid)
    assert abs(float(log_z)) < 6e-3  # the checkerboard's edges cost a few cells' worth on a Riemann sum
    density = normalize_on_grid(target.log_prob, grid).exp() * grid.cell_area
    x = target.sample(40000, gen(1))
    zones = zone_weights_on_grid(normalize_on_grid(target.log_prob, grid), grid, target.assign_mode, target.n_modes)
    torch.testing.assert_close(zones, target.weights, atol=6e-3, rtol=0)
    torch.testing.assert_close(zone_weights_of_samples(x, target.assign_mode, target.n_modes), target.weights,
                               atol=0.012, rtol=0)  # 4.8 binomial standard errors of the largest weight
    for f in (lambda p: p[:, 0] ** 2, lambda p: p[:, 1] ** 2, lambda p: p[:, 0] * p[:, 1], lambda p: p.norm(dim=1)):
        values = f(x)  # within 5 standard errors of the sample mean, plus the grid's own error
        assert float((density * f(grid.points)).sum()) == pytest.approx(float(values.mean()), abs=float(
            5 * values.std() / len(values) ** 0.5) + 0.01)
    assert target.max_coordinate_variance() == pytest.approx(float(x.var(0).max()), rel=0.03)
    assert torch.isfinite(target.log_prob(x)).all()
    assert torch.equal(x, target.sample(40000, gen(1)))


def test_two_moons_reference_density_is_within_its_stated_accuracy():
    """The 256-node midpoint rule against 4096 nodes: within 0.01 in log-density wherever p > 1e-4, far closer
    along the arcs (the docstring's statement)."""
    fine = TwoMoons(n_nodes=4096)
    x = torch.cat([two_moons().sample(4000, gen(2)), 2 * torch.randn(2000, 2, generator=gen(3))])
    reference = fine.log_prob(x)
    error = (two_moons().log_prob(x) - reference).abs()[reference > math.log(1e-4)]
    assert error.max() < 0.01 and error.median() < 1e-3


def test_pinwheel_log_density_is_the_change_of_variables_of_its_gaussian_arms():
    """Turning a point back by the radius-driven angle gives the arm's Gaussian coordinates; the density there is
    the Gaussian's divided by scale^2 (the turn preserves area), exactly."""
    wheel = Pinwheel(n_arms=3)
    f = torch.tensor([[1.1, 0.05], [0.8, -0.1]])
    turn = wheel.rate * f.norm(dim=1).exp()  # arm 0
    x = wheel.scale * torch.stack([turn.cos() * f[:, 0] - turn.sin() * f[:, 1],
                                   turn.sin() * f[:, 0] + turn.cos() * f[:, 1]], dim=1)
    gaussian = torch.distributions.Normal(torch.tensor([1.0, 0.0]), torch.tensor([wheel.radial_std,
                                                                                  wheel.tangential_std]))
    expected = gaussian.log_prob(f).sum(1) - math.log(3) - 2 * math.log(wheel.scale)
    torch.testing.assert_close(wheel.arm_log_probs(x)[:, 0], expected)


def test_checkerboard_is_uniform_on_its_dark_squares_only():
    board = checkerboard()
    inside, outside = torch.tensor([[-3.0, -3.0], [1.0, 1.0]]), torch.tensor([[-1.0, -3.0], [4.5, 0.0]])
    torch.testing.assert_close(board.log_prob(inside), torch.full((2,), -math.log(32.0)))
    assert torch.isinf(board.log_prob(outside)).all()


# --- list-valued parameters ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("written", ["0.1,0.9", "(0.1, 0.9)", "[0.1, 0.9]", "1/10,9/10", (0.1, 0.9), [0.1, 0.9]])
def test_a_list_parameter_is_read_from_every_way_of_writing_it(written):
    """`-p weights=0.1,0.9` (the CLI's literal_eval gives a tuple), `-p "weights=(0.1, 0.9)"`, fractions, papermill's
    `-p weights 0.1,0.9` (a string in the notebook) and `-y "weights: [0.1, 0.9]"` (a list) all give the tuple."""
    assert smoke(motivating, weights=written).weights == pytest.approx((0.1, 0.9))


def test_list_parameters_are_typed_and_listed_as_they_are_written():
    config = smoke(high_dim, dims="4,8")
    assert config.dims == (4, 8) and isinstance(config.dims[0], int)
    assert smoke(toy_benchmarks, targets="moons").targets == ("moons",)
    assert format_value((0.5, 0.25)) == "0.5,0.25" and format_value(("a", "b")) == "a,b"
    cell = parameters_cell(motivating.Config, motivating.PROFILES)
    assert "weights = None  # tuple[float, ...]: weights of the bottom-left and top-right modes" in cell
    assert "dims = None  # tuple[int, ...]" in parameters_cell(high_dim.Config, high_dim.PROFILES)


def test_ebmflow_list_shows_the_target_parameters(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for line in ("weights   tuple[float, ...]", "offset", "targets   tuple[str, ...]", "dims      tuple[int, ...]",
                 "data_path"):
        assert line.split()[0] in out and (len(line.split()) == 1 or line.split()[1] in out)
    assert "8gaussians,rings" in out and "16,32,64" in out and "0.1,0.2,0.3,0.4" in out


BAD = [
    (motivating, {"weights": "0.5,0.6"}, "parameter 'weights' must be two positive numbers summing to 1 (one per mode), "
                                         "got 0.5, 0.6: they sum to 1.1"),
    (motivating, {"weights": "0.2,0.3,0.5"}, "got 0.2, 0.3, 0.5: 3 numbers"),
    (motivating, {"weights": "1.2,-0.2"}, "parameter 'weights' must list positive numbers, got 1.2,-0.2"),
    (motivating, {"weights": "a,b"}, "parameter 'weights' must be a comma-separated list of float values"),
    (motivating, {"weights": ""}, "parameter 'weights' must list at least one float"),
    (motivating, {"offset": 0}, "parameter 'offset' must be positive, got 0"),
    (motivating, {"offset": 3.0}, "parameter 'grid_limit' (3.5) must cover both modes: at least offset + 4 standard "
                                  "deviations = 4.26 with offset 3"),
    (toy_benchmarks, {"targets": "moons,swissroll"}, "parameter 'targets': unknown target(s) 'swissroll'; accepted "
                                                     "targets: 8gaussians, rings, moons, pinwheel, checkerboard"),
    (toy_benchmarks, {"targets": "rings,rings"}, "parameter 'targets' lists 'rings' more than once"),
    (toy_benchmarks, {"targets": 3}, "parameter 'targets' must be a comma-separated list of str values"),
    (extended, {"weights": "0.25,0.25,0.5"}, "parameter 'weights' must be four positive numbers summing to 1 (one per "
                                             "mode), got 0.25, 0.25, 0.5: 3 numbers"),
    (extended, {"weights": "0.1,0.2,0.3,0.3"}, "they sum to 0.9"),
    (high_dim, {"dims": "16,33"}, "parameter 'dims' must be distinct even integers >= 2 (the sign pattern splits the "
                                  "coordinates in halves) in increasing order, got 16,33"),
    (high_dim, {"dims": "32,16"}, "in increasing order, got 32,16"),
    (high_dim, {"dims": "16,16"}, "got 16,16"),
    (high_dim, {"dims": "0"}, "parameter 'dims' must list positive numbers, got 0"),
    (high_dim, {"dims": "16.5"}, "parameter 'dims' must be a comma-separated list of int values"),
    (high_dim, {"max_misassignment": 0.5}, "max_misassignment must be below 0.5"),
]


@pytest.mark.parametrize("module, overrides, message", BAD)
def test_bad_target_values_are_refused_before_any_work(module, overrides, message):
    with pytest.raises(ConfigError) as error:
        resolve_config(module.Config, module.PROFILES, "cpu", **overrides)
    assert message in str(error.value)


def test_the_command_line_refuses_a_bad_target_in_one_line(capsys):
    assert main(["run", "02_toy_benchmarks", "--profile", "smoke", "-p", "targets=moons,spiral"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown target(s) 'spiral'" in err


def test_a_notebooks_injected_string_reaches_the_config():
    """What papermill injects for `-p weights 0.1,0.9` (a string) and what the runner injects (its text)."""
    assert chapter_config("01_motivating_example", "smoke", {"weights": "0.1,0.9"}).weights == (0.1, 0.9)
    assert chapter_config("04_high_dim_mixture", "smoke", {"dims": "(4, 8)"}).dims == (4, 8)


def test_the_papers_targets_stay_the_profiles_defaults():
    for profile in ("smoke", "cpu", "paper"):
        assert resolve_config(motivating.Config, motivating.PROFILES, profile).paper_target
        assert resolve_config(toy_benchmarks.Config, toy_benchmarks.PROFILES, profile).targets == ("8gaussians", "rings")
        assert resolve_config(extended.Config, extended.PROFILES, profile).paper_target
        assert resolve_config(high_dim.Config, high_dim.PROFILES, profile).dims == high_dim.DIMS
    # the paper's weights given explicitly are no override: the same run key as the profile's
    assert check_run("01_motivating_example", "cpu", {"weights": "1/3,2/3"})[2] == {}


# --- the chapters read the configured target ---------------------------------------------------------------------

def test_chapter_01_text_and_tables_follow_the_weights():
    config = smoke(motivating, weights="0.1,0.9")
    assert config.target.weights.tolist() == pytest.approx([0.1, 0.9])
    assert "The paper did not run this target" in motivating.target_markdown(config)
    assert "the paper's" in motivating.target_markdown(smoke(motivating))
    values = {motivating.key(q, m): 0.5 for q in ("final_weight", "weight_min", "weight_max") for m in ("ula", "flowmc")}
    table = motivating.weight_table(values, config)
    assert set(table["paper (read off Figure 1)"]) == {"not run in the paper"}
    assert table.index.name == "weight of the top-right mode (truth 0.900)"
    claim = motivating.ITEMS[0].claims[0]
    assert claim.check({"fig1_weight_error_flowmc": 0.04}) and not claim.check({"fig1_weight_error_flowmc": 0.06})


def test_chapter_02_tables_and_verdicts_follow_the_targets():
    config = smoke(toy_benchmarks, targets="moons,rings")
    values = {toy_benchmarks.table1_key(m, t, quantity=q): 0.0 for m in bench.METHODS for t in config.targets
              for q in ("", "diverged_at")}
    table = toy_benchmarks.table1(values, config)
    assert list(table.columns.get_level_values(0).unique()) == ["Two moons", "Rings"]
    assert set(table[("Two moons", "paper")]) == {"not in the paper"} and table.loc["flowMC-EBM", ("Rings", "paper")] == 0.40
    verdicts = verdict_table(toy_benchmarks.ITEMS, values)
    assert verdicts["verdict"].str.startswith("not run").sum() == 2  # the two claims about 8 Gaussians
    text = toy_benchmarks.results_markdown(values, config)
    assert "**Two moons**" in text and "the paper did not run this" in text and "paper: flowMC-EBM 0.40" in text
    assert [r for r in toy_benchmarks.runs_to_train(config) if r[2] == "reverse_kl"] == [("ntebm", "rings", "reverse_kl")]
    assert "Two moons" in toy_benchmarks.targets_markdown(config) and "reference density" in toy_benchmarks.targets_markdown(config)


def test_chapter_03_and_04_tables_say_when_the_paper_did_not_run_the_target():
    config = smoke(extended, weights="0.25,0.25,0.25,0.25")
    assert not config.paper_target and config.p_star("extended").weights.tolist() == [0.25] * 4
    values = {extended.table3_key(m, c): 0.1 if c in extended.COLUMNS else 0 for m in bench.METHODS
              for c in (*extended.COLUMNS, "diverged_at")}
    values.update({"fig5_max_zones_visited": 2})
    assert set(extended.table3(values, config).xs("paper", axis=1, level=1).stack()) == {"not run in the paper"}
    assert set(verdict_table(extended.ITEMS, values, config.paper_target)["paper"]) == {
        "not run in the paper (another target)"}
    config4 = smoke(high_dim, dims="4,64")
    assert "The paper did not run this target" in high_dim.target_markdown(config4)
    table6 = high_dim.table6(config4)
    assert table6.loc[4, "paper: size"] == "—" and table6.loc[64, "paper: size"] == 51
    assert table6.loc[4, "size of hidden layers"] == round(12.8 * 4 ** (1 / 3))


# --- the new parameters at the smoke profile, under nbval ----------------------------------------------------------

RUNS = {
    "01_motivating_example": {"weights": "0.1,0.9", "offset": 1.2},
    "02_toy_benchmarks": {"targets": "moons,pinwheel,checkerboard"},
    "03_extended_example": {"weights": "0.4,0.3,0.2,0.1"},
    "04_high_dim_mixture": {"dims": "4,8", "max_misassignment": 1e-4},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNS)
def test_chapter_runs_with_a_target_the_paper_did_not_run_and_repeats_under_nbval(name, tmp_path, monkeypatch):
    monkeypatch.setenv("EBMFLOW_RESULTS_DIR", str(tmp_path / "results"))
    executed = run_chapter(name, "smoke", RUNS[name], output=tmp_path / f"{name}.ipynb", progress=False)
    assert executed.record["parameters"] and executed.record_path.exists()
    text = executed.output.read_text()
    assert "The paper did not run this target" in text or "the paper did not run this" in text
    sanitize = Path(__file__).with_name("nbval_sanitize.cfg")
    result = subprocess.run([sys.executable, "-m", "pytest", "--nbval", str(executed.output), "-q", "-p",
                             "no:cacheprovider", "--nbval-sanitize-with", str(sanitize), "--rootdir", str(tmp_path)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert name in CHAPTERS
