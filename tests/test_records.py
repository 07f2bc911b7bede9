"""Results records: one JSON file per run, readable without the library; mean ± sd only over one kind of run."""
import json
import math
import re

import pytest

from ebmflow import __version__
from ebmflow.book import records
from ebmflow.book.records import MixedRecordsError, RecordError


def make(seed, value, profile="smoke", parameters=None, version=None, **glued):
    record = records.make_record(
        chapter="01_motivating_example", profile=profile, seed=seed, device="cpu", overrides=parameters or {},
        config={"seed": seed}, glued={"weight": value, **glued}, timings={"seconds_ula": 1.5}, seconds=12.345,
        commit="abc", machine={"cpu": "test"})
    if version:
        record["ebmflow_version"] = version
    return record


def test_run_key_is_readable_and_depends_on_the_overrides_only():
    assert records.run_key(3, {}) == "seed3-default"
    assert records.run_key(3, {"seed": 3}) == "seed3-default"
    key = records.run_key(3, {"epochs": 5})
    assert key.startswith("seed3-") and len(key) == len("seed3-") + 8
    assert key == records.run_key(3, {"epochs": 5}) != records.run_key(3, {"epochs": 6})
    assert records.run_key(3, {"epochs": 5, "lr": 0.1}) == records.run_key(3, {"lr": 0.1, "epochs": 5})


def test_record_stores_nan_as_null_with_a_diverged_marker_and_is_plain_json(tmp_path):
    record = make(0, float("nan"), fig1_diverged_at_ula=120, label="text")
    path = records.write_record(record, tmp_path)
    assert path == tmp_path / "smoke" / "01_motivating_example" / "seed0-default.json"
    plain = json.loads(path.read_text())  # no NaN literal: strict JSON readers accept it
    assert plain["numbers"]["weight"] is None and plain["non_finite"] == {"weight": "nan"}
    assert plain["diverged"] is True and plain["numbers"]["fig1_diverged_at_ula"] == 120
    assert plain["values"] == {"label": "text"} and plain["timings"] == {"seconds_ula": 1.5}
    for field in ("profile", "seed", "parameters", "device", "machine", "ebmflow_version", "commit", "seconds"):
        assert field in plain
    assert plain["ebmflow_version"] == __version__
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "no temporary left"


def test_a_finite_run_is_not_marked_diverged():
    assert make(0, 0.5, fig1_diverged_at_ula=0)["diverged"] is False


def test_summary_gives_mean_and_sample_sd_over_seeds(tmp_path):
    for seed, value in enumerate([0.6, 0.7, 0.8]):
        records.write_record(make(seed, value), tmp_path)
    loaded = records.load_records("01_motivating_example", "smoke", root=tmp_path)
    assert [r["seed"] for r in loaded] == [0, 1, 2]
    summary = records.summarize(loaded)["weight"]
    assert summary.mean == pytest.approx(0.7) and summary.sd == pytest.approx(0.1) and summary.n == 3
    assert summary.values == (0.6, 0.7, 0.8) and "0.7 ± 0.1" in str(summary)


def test_summary_counts_diverged_seeds_apart():
    summary = records.summarize([make(0, 0.5), make(1, float("nan")), make(2, 0.7)])["weight"]
    assert summary.mean == pytest.approx(0.6) and summary.n == 2 and summary.n_not_finite == 1
    assert summary.values[1] is None and "not finite in 1" in str(summary)
    alone = records.summarize([make(0, float("nan"))])["weight"]
    assert math.isnan(alone.mean) and "not finite in 1 of 1" in str(alone)


@pytest.mark.parametrize("other, message", [
    (make(1, 0.5, profile="cpu"), "different profiles (cpu, smoke)"),
    (make(1, 0.5, version="0.0.1"), "different library versions"),
    (make(1, 0.5, parameters={"epochs": 5}), "different parameters"),
    (make(0, 0.5), "two records of the same seed"),
])
def test_records_of_different_runs_are_never_combined(other, message):
    with pytest.raises(MixedRecordsError, match=re.escape(message)):
        records.summarize([make(0, 0.5), other])


def test_load_records_filters_by_profile(tmp_path):
    records.write_record(make(0, 0.5), tmp_path)
    records.write_record(make(0, 0.5, profile="cpu"), tmp_path)
    assert [r["profile"] for r in records.load_records(profile="cpu", root=tmp_path)] == ["cpu"]
    assert len(records.load_records(root=tmp_path)) == 2


@pytest.mark.parametrize("content, message", [
    ("{not json", "cannot be read"),
    ('{"format": "other"}', "is not an ebmflow results record"),
])
def test_a_damaged_record_names_its_file(tmp_path, content, message):
    path = tmp_path / "smoke" / "01_motivating_example" / "seed0-default.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(RecordError, match=message) as error:
        records.load_records(root=tmp_path)
    assert str(path) in str(error.value)


def test_no_records_is_a_clear_error():
    with pytest.raises(MixedRecordsError, match="no records"):
        records.summarize([])


def test_machine_names_cpu_torch_and_blas():
    machine = records.machine_info("cpu")
    assert machine["cpu"] and machine["torch"] and machine["cores"] >= 1 and "torch_blas" in machine
