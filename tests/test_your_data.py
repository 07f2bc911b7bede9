"""Chapter 08 (your own data): bad data files get one sentence naming the file and the problem, the shipped example
is what its function writes, clusters by BIC, cluster weights by importance sampling, paths made absolute by the
command, and the chapter on a 3-D file at the smoke profile."""
from __future__ import annotations

import dataclasses
import math
import os

import matplotlib
import numpy as np
import pytest
import torch

from ebmflow.book.cli import _absolute_paths, main
from ebmflow.book.config import ConfigError, resolve_config
from ebmflow.checks import InputError
from ebmflow.data.points import EXAMPLE, MIN_ROWS, load_data, write_example
from ebmflow.experiments import your_data
from ebmflow.metrics import Grid2D, normalize_on_grid, zone_weights_on_grid
from ebmflow.targets import FullCovarianceMixture, fit_gaussian_mixture

matplotlib.use("Agg")


def smoke(**overrides):
    return resolve_config(your_data.Config, your_data.PROFILES, "smoke", **overrides)


def points(n=200, d=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


def write_csv(path, rows, header="x,y"):
    path.write_text("\n".join(([header] if header else []) + [",".join(map(str, r)) for r in rows]) + "\n")
    return str(path)


# --- bad files: one sentence naming the file and the problem -----------------------------------------------------

def bad_files(tmp):
    good = points()
    np.save(tmp / "one_d.npy", good[:, 0])
    np.save(tmp / "text.npy", np.array([["a", "b"]] * 200))
    np.save(tmp / "complex.npy", good.astype(complex))
    nan_rows = good.copy()
    nan_rows[[41, 50]] = np.nan
    np.save(tmp / "nan.npy", nan_rows)
    np.save(tmp / "one_column.npy", good[:, :1])
    np.save(tmp / "constant.npy", np.column_stack([good[:, 0], np.full(200, 2.5)]))
    (tmp / "empty.csv").write_text("")
    (tmp / "folder.csv").mkdir()
    rows = [list(r) for r in good]
    return [
        (str(tmp / "missing.csv"), "missing.csv: no such file"),
        (str(tmp / "folder.csv"), "folder.csv: no such file (a folder)"),
        (str(tmp / "points.txt"), "must be a .npy or .csv file"),
        (str(tmp / "empty.csv"), "empty.csv: it holds no rows of numbers"),
        (write_csv(tmp / "word.csv", rows[:5] + [[1.0, "abc"]] + rows[5:]), "word.csv: line 7, column 2 is not a "
                                                                             "number ('abc')"),
        (write_csv(tmp / "hole.csv", rows[:2] + [[1.0, ""]] + rows[2:]), "hole.csv: line 4, column 2 is empty"),
        (write_csv(tmp / "nan.csv", rows[:9] + [[float("nan"), 1.0]] + rows[9:]), "nan.csv: line 11 has a NaN or "
                                                                                  "infinite value"),
        (write_csv(tmp / "ragged.csv", rows[:3] + [[1.0, 2.0, 3.0]] + rows[3:]), "ragged.csv: line 5 has 3 values, "
                                                                                 "the lines before it 2"),
        (write_csv(tmp / "short.csv", rows[:20]), "short.csv: has 20 rows; at least "),
        (str(tmp / "one_d.npy"), "one_d.npy: must hold a 2-D array (one point per row), got shape (200,)"),
        (str(tmp / "text.npy"), "text.npy: holds <U1 values, not real numbers"),
        (str(tmp / "complex.npy"), "complex.npy: holds complex128 values, not real numbers"),
        (str(tmp / "nan.npy"), "nan.npy: row 42 (counting from 1) has NaN or infinite values (2 such rows)"),
        (str(tmp / "one_column.npy"), "one_column.npy: has 1 column(s); at least 2 are needed"),
        (str(tmp / "constant.npy"), "constant.npy: column 2 is constant (2.5)"),
    ]


def test_bad_data_files_get_one_sentence_naming_the_file_and_the_problem(tmp_path):
    for path, message in bad_files(tmp_path):
        with pytest.raises(InputError) as error:
            load_data(path)
        assert message in str(error.value), path
        assert "\n" not in str(error.value)
        with pytest.raises(ConfigError) as error:  # before any work: the chapter's configuration refuses it
            smoke(data_path=path)
        assert message in str(error.value)


def test_the_command_refuses_a_bad_file_with_exit_status_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "word.csv", [[1.0, 2.0]] * 150 + [[1.0, "x"]])
    assert main(["run", "08_your_data", "--profile", "smoke", "-p", "data_path=word.csv"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"ebmflow: error: data file {tmp_path / 'word.csv'}: line 152, column 2 is not a number ('x'); "
                   f"every line but an optional header must hold numbers only")


def test_a_relative_data_path_is_made_absolute_from_where_the_command_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _absolute_paths("08_your_data", {"data_path": "mine.csv"}) == {"data_path": str(tmp_path / "mine.csv")}
    assert _absolute_paths("08_your_data", {"data_path": ""}) == {"data_path": ""}  # the shipped example
    assert _absolute_paths("01_motivating_example", {"weights": "0.1,0.9"}) == {"weights": "0.1,0.9"}


def test_good_files_are_read_with_or_without_a_header(tmp_path):
    data = points(150, 3)
    np.save(tmp_path / "ints.npy", (data * 100).astype(int))
    assert load_data(str(tmp_path / "ints.npy")).dtype == np.float64
    with_header = load_data(write_csv(tmp_path / "a.csv", data.tolist(), header="u,v,w"))
    without = load_data(write_csv(tmp_path / "b.csv", data.tolist(), header=None))
    np.testing.assert_allclose(with_header, data) and np.testing.assert_allclose(without, data)
    assert smoke(data_path=str(tmp_path / "ints.npy")).data_path.endswith("ints.npy")


def test_too_few_rows_counts_the_batch_size_too(tmp_path):
    with pytest.raises(InputError, match=f"has 20 rows; at least {MIN_ROWS} are needed"):
        load_data(write_csv(tmp_path / "short.csv", points(20).tolist()))
    np.save(tmp_path / "p.npy", points(150))
    with pytest.raises(ConfigError) as error:
        smoke(data_path=str(tmp_path / "p.npy"), batch_size=256, n_persistent=512)
    assert str(error.value) == ("parameter 'batch_size' (256) cannot exceed the rows used for training: 150, the "
                                "smaller of n_data (1024) and the data file's rows")


# --- the shipped example, the clusters, the weights ------------------------------------------------------------

def test_the_shipped_example_is_what_write_example_writes(tmp_path):
    written = write_example(tmp_path / "example.csv")
    assert written.read_bytes() == EXAMPLE.read_bytes()
    assert EXAMPLE.stat().st_size < 300_000 and load_data("").shape == (4000, 2)


def test_bic_finds_the_examples_four_clusters_and_their_weights():
    data = your_data.prepare(smoke(n_data=4000))
    assert data.clusters.n_modes == 4 and min(data.bics, key=data.bics.get) == 4
    torch.testing.assert_close(data.weights, torch.tensor([0.45, 0.30, 0.17, 0.08]), atol=0.02, rtol=0)
    np.testing.assert_allclose(data.points.mean(0).numpy(), 0, atol=1e-5)  # standardised per coordinate
    np.testing.assert_allclose(data.points.std(0, unbiased=False).numpy(), 1, atol=1e-4)
    assert data.box == round(1.2 * float(data.points.abs().max()) + 0.5, 1)


def test_n_data_takes_a_seeded_random_subset_of_the_rows():
    a, b = your_data.prepare(smoke(n_data=500)), your_data.prepare(smoke(n_data=500, seed=1))
    assert len(a.raw) == 500 and not np.array_equal(a.raw, b.raw)
    assert np.array_equal(a.raw, your_data.prepare(smoke(n_data=500)).raw)
    assert smoke(n_data=500).iterations == 500 // 128 and smoke(n_data=10**6).iterations == 4000 // 128


def test_cluster_weights_of_a_known_density_are_its_cluster_masses():
    """Importance sampling recovers each cluster's mass under a density whose masses are known from the grid; the
    grid and the importance-sampling estimates agree within their standard errors."""
    config = smoke(n_importance=20000)
    data = your_data.prepare(config)
    shifted = FullCovarianceMixture(data.clusters.means + 0.2, data.clusters.covariances,
                                    torch.tensor([0.1, 0.2, 0.3, 0.4]))
    weights, stderr, ess = your_data.cluster_weights(shifted.log_prob, data, your_data.importance_samples(config, data))
    grid = Grid2D(-data.box, data.box, 300)
    exact = zone_weights_on_grid(normalize_on_grid(shifted.log_prob, grid), grid, data.clusters.assign_mode, 4)
    assert (weights - exact.double()).abs().max() < 4 * stderr.max() + 2e-3
    assert 1000 < ess <= 20000 and float(weights.sum()) == pytest.approx(1)


def test_full_covariance_mixture_matches_scipy_and_its_fit_orders_clusters_by_weight():
    from scipy.stats import multivariate_normal

    covariances = torch.tensor([[[1.0, 0.5], [0.5, 2.0]], [[0.3, 0.0], [0.0, 0.2]]])
    mixture = FullCovarianceMixture(torch.tensor([[0.0, 0.0], [3.0, 1.0]]), covariances, torch.tensor([0.3, 0.7]))
    x = mixture.sample(3000, torch.Generator().manual_seed(0))
    reference = sum(w * multivariate_normal(m.numpy(), c.numpy()).pdf(x.numpy()) for w, m, c in
                    zip((0.3, 0.7), mixture.means, covariances))
    np.testing.assert_allclose(mixture.log_prob(x).numpy(), np.log(reference), atol=1e-4)
    fitted, bics = fit_gaussian_mixture(x, 4, seed=0)
    assert fitted.n_modes == 2 and min(bics, key=bics.get) == 2
    assert fitted.weights[0] > fitted.weights[1] and fitted.means[0, 0] > 2  # the heavier cluster first


# --- the chapter on another file ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_chapter_08_on_a_3d_file_gives_marginals_samples_weights_and_diagnostics(tmp_path):
    rng = np.random.default_rng(3)
    data = np.concatenate([rng.normal(0, 1, (300, 3)), rng.normal(6, 0.5, (100, 3))])
    np.save(tmp_path / "three.npy", data)
    config = smoke(data_path=str(tmp_path / "three.npy"), ula_step_size=1e3)  # ULA-EBM diverges at once
    prepared = your_data.prepare(config)
    runs = your_data.train_all(config, prepared)
    samples = your_data.importance_samples(config, prepared)
    paths = your_data.chains(runs, config)
    values = your_data.numbers(runs, prepared, samples, paths, config)
    assert values[your_data.key("dim")] == 3 and values[your_data.key("n_clusters")] == 2
    assert values[your_data.key("diverged_at", "ula")] >= 1 and math.isnan(values[your_data.key("weight_error", "ula")])
    assert all(math.isfinite(values[your_data.key("weight_error", m)]) for m in ("flowmc", "ntebm", "coopflow"))
    assert your_data.key("grid_gap", "flowmc") not in values  # the grid check is 2-D only
    table = your_data.weights_table(values, prepared)
    assert table.loc["cluster 1", "ULA-EBM"].startswith("diverged (it.")
    assert your_data.diagnostics_table(values).loc["ULA-EBM", "stopped"].startswith("diverged")
    assert len(your_data.figure_densities(runs, prepared, samples, config).axes) == 3 * 5  # 3 pairs x (data + 4)
    assert len(your_data.figure_samples(paths, prepared).axes) == 3 * 4
    assert paths["flowmc"].shape[1:] == (config.n_chains, 3)
    again = your_data.numbers(runs, prepared, samples, paths, dataclasses.replace(config))
    assert {k: v for k, v in again.items() if not (isinstance(v, float) and math.isnan(v))} == \
        {k: v for k, v in values.items() if not (isinstance(v, float) and math.isnan(v))}
    assert os.path.isabs(config.data_path)
