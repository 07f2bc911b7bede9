"""Checkpoints at the library level: a run stopped (or killed) and resumed ends bit-identical on CPU to the run
that was never interrupted; checkpoints of another configuration, or damaged ones, are refused with a message.
"""
from __future__ import annotations

import math
import os
import time

import pytest
import torch
from test_methods import build, flat_state, train_small

import ebmflow.checkpoint
from ebmflow.checkpoint import Checkpoint, CheckpointMismatch
from ebmflow.models import RealNVP


class Killed(Exception):
    """Stands for a kill: raised from the evaluation callback in the middle of a run."""


def evaluation(kill_at=None):
    probe = torch.linspace(-2, 2, 10).view(5, 2)

    def evaluate(state):  # deterministic: no randomness of its own
        if state.iteration == kill_at:
            raise Killed
        with torch.no_grad():
            return {"mean_energy": float(state.energy(probe).mean()), "bank_mean": float(state.bank.mean())}

    return evaluate


SETTINGS = dict(epochs=3, eval_every=3, lr_decay=(0.9, 2))  # 12 iterations, 4 per epoch, evaluations at 0 3 6 9 12


def run(name, checkpoint, kill_at=None, **kwargs):
    return train_small(build(name), checkpoint=checkpoint, evaluate=evaluation(kill_at), **SETTINGS, **kwargs)


def assert_identical(a, b):
    """Every leaf equal: tensors bit for bit, floats exactly (NaN equal to NaN), everything else by ==."""
    a, b = flat_state(a), flat_state(b)
    assert sorted(a) == sorted(b)
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, torch.Tensor):
            assert isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y), key
        elif isinstance(x, float) and math.isnan(x):
            assert isinstance(y, float) and math.isnan(y), key
        else:
            assert x == y, key


def everything(run_, checkpoint):
    """The final checkpoint (EBM and method networks, every optimiser and scheduler, generator, bank, history)
    and what the Run holds."""
    return {"checkpoint": torch.load(checkpoint.path, weights_only=True),
            "energy": run_.energy.state_dict(), "method": run_.method.state_dict(),
            "steps": run_.history.steps, "evaluations": run_.history.evaluations,
            "bank": run_.history.final_chains, "iterations": run_.history.iterations}


def fingerprint(**extra):
    return {"chapter": "tests", "seed": 0, **extra}


@pytest.mark.parametrize("name", ["flowmc", "ntebm", "coopflow", "ula"])
@pytest.mark.parametrize("stop", [5, 8])
def test_a_run_stopped_and_resumed_is_bit_identical_to_the_uninterrupted_run(name, stop, tmp_path):
    """flowMC-EBM (flow and its optimiser), NT-EBM (adapted latent step), CoopFlow (freeze counter: 2 frozen
    iterations, so a stop at 5 or 8 resumes a learning flow), ULA-EBM; the stop at 8 falls on an epoch boundary
    (a new data order is drawn on resuming)."""
    whole = Checkpoint(tmp_path / "whole.pt", fingerprint(), every_seconds=None)
    uninterrupted = run(name, whole)
    assert uninterrupted.history.completed and uninterrupted.history.iterations == 12

    resumed_checkpoint = Checkpoint(tmp_path / "resumed.pt", fingerprint(), every_seconds=None)
    first = run(name, resumed_checkpoint, stop_after=stop)
    assert first.history.iterations == stop and not first.history.completed
    resumed = run(name, resumed_checkpoint)
    assert resumed.history.completed
    assert_identical(everything(resumed, resumed_checkpoint), everything(uninterrupted, whole))


@pytest.mark.parametrize("name", ["flowmc", "coopflow"])
def test_a_run_killed_mid_way_resumes_from_its_last_periodic_checkpoint_bit_identically(name, tmp_path):
    whole = Checkpoint(tmp_path / "whole.pt", fingerprint(), every_seconds=None)
    uninterrupted = run(name, whole)
    periodic = Checkpoint(tmp_path / "periodic.pt", fingerprint(), every_iterations=4, every_seconds=None)
    with pytest.raises(Killed):
        run(name, periodic, kill_at=9)  # killed during iteration 9's evaluation: the last save is at 8
    assert torch.load(periodic.path, weights_only=True)["history"]["iterations"] == 8
    resumed = run(name, periodic)
    assert_identical(everything(resumed, periodic), everything(uninterrupted, whole))


def test_a_finished_run_resumes_to_its_result_without_training(tmp_path):
    checkpoint = Checkpoint(tmp_path / "run.pt", fingerprint(), every_seconds=None)
    first = run("flowmc", checkpoint)
    again = run("flowmc", checkpoint, kill_at=0)  # an evaluation would raise: nothing runs
    assert again.history.completed and again.history.steps == first.history.steps
    assert torch.equal(again.history.final_chains, first.history.final_chains)
    assert_identical(again.energy.state_dict(), first.energy.state_dict())


# --- refused checkpoints --------------------------------------------------------------------------------------

def test_a_checkpoint_of_another_configuration_is_refused_naming_the_field(tmp_path):
    path = tmp_path / "run.pt"
    run("flowmc", Checkpoint(path, fingerprint(config={"lr": 0.001, "epochs": 3})), stop_after=2)
    with pytest.raises(CheckpointMismatch, match=r"config\.lr is 0\.001 there and 0\.002 here"):
        run("flowmc", Checkpoint(path, fingerprint(config={"lr": 0.002, "epochs": 3})))
    with pytest.raises(CheckpointMismatch, match=r"seed is 0 there and 1 here"):
        run("flowmc", Checkpoint(path, {**fingerprint(config={"lr": 0.001, "epochs": 3}), "seed": 1}))


def test_a_checkpoint_of_another_library_version_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    run("ula", Checkpoint(path, fingerprint()), stop_after=2)
    monkeypatch.setattr(ebmflow.checkpoint, "__version__", "0.0.1")
    with pytest.raises(CheckpointMismatch, match=r"ebmflow_version is '0\.1\.0' there and '0\.0\.1' here"):
        run("ula", Checkpoint(path, fingerprint()))


@pytest.mark.parametrize("change, message", [
    (dict(method="ntebm"), r"run\.method is 'flowmc' there and 'ntebm' here"),
    (dict(schedule="GGLL"), r"run\.method_settings\.schedule is 'GLLL' there and 'GGLL' here"),
    (dict(n_persistent=64), r"run\.n_persistent is 32 there and 64 here"),
    (dict(epochs=4), r"run\.epochs is 3 there and 4 here"),
    (dict(lr_decay=None), r"run\.lr_decay is \(0\.9, 2\) there and None here"),
])
def test_the_run_itself_is_part_of_the_fingerprint(change, message, tmp_path):
    """Even with the caller's fingerprint unchanged, a checkpoint of another method, method setting or loop size
    is refused, naming the field."""
    from ebmflow.experiments.common import train
    from ebmflow.models import DiagonalGaussian, ToyEnergy
    from ebmflow.seeding import make_generator
    from test_methods import gaussian_data

    path = tmp_path / "run.pt"
    run("flowmc", Checkpoint(path, fingerprint()), stop_after=2)
    name = change.pop("method", "flowmc")
    settings = {**SETTINGS, **{k: v for k, v in change.items() if k in ("epochs", "lr_decay")}}
    method = build(name, **{k: v for k, v in change.items() if k == "schedule"})
    with pytest.raises(CheckpointMismatch, match=message):
        train(method, gaussian_data(2), energy=ToyEnergy(2, generator=make_generator(0, stream="energy")),
              base=DiagonalGaussian(2), seed=0, batch_size=16, n_persistent=change.get("n_persistent", 32),
              checkpoint=Checkpoint(path, fingerprint()), **settings)


def test_a_checkpoint_whose_networks_do_not_fit_is_refused(tmp_path):
    path = tmp_path / "run.pt"
    run("flowmc", Checkpoint(path, fingerprint()), stop_after=2)
    wider = build("flowmc", make_flow=lambda base, generator: RealNVP(base, 2, 16, generator=generator))
    with pytest.raises(CheckpointMismatch, match="does not fit this run's networks"):
        train_small(wider, checkpoint=Checkpoint(path, fingerprint()), **SETTINGS)


@pytest.mark.parametrize("damage", ["truncated", "empty", "foreign"])
def test_a_damaged_checkpoint_is_refused_with_a_clear_message(damage, tmp_path):
    path = tmp_path / "run.pt"
    run("ula", Checkpoint(path, fingerprint()), stop_after=2)
    content = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(content[: len(content) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        torch.save(torch.zeros(3), path)
    message = "is not an ebmflow checkpoint" if damage == "foreign" else "cannot be read: the file is truncated"
    with pytest.raises(CheckpointMismatch, match=message) as error:
        run("ula", Checkpoint(path, fingerprint()))
    assert "delete it" in str(error.value)


def test_saving_is_atomic_and_removes_stale_temporaries(tmp_path):
    checkpoint = Checkpoint(tmp_path / "run.pt", {})
    checkpoint.save({"x": torch.ones(2)})
    stale = tmp_path / ".run.pt.tmp99999"
    stale.write_bytes(b"half a checkpoint of a killed run")
    with pytest.raises(Exception):
        checkpoint.save({"x": lambda: None})  # cannot be pickled: the save fails
    assert torch.equal(checkpoint.load()["x"], torch.ones(2))  # the previous checkpoint is intact
    checkpoint.save({"x": torch.zeros(2)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]
    assert torch.equal(checkpoint.load()["x"], torch.zeros(2))


def test_checkpoint_due_by_count_or_by_time():
    by_count = Checkpoint("unused.pt", {}, every_iterations=5, every_seconds=None)
    assert [i for i in range(1, 16) if by_count.due(i)] == [5, 10, 15]
    by_time = Checkpoint("unused.pt", {}, every_iterations=None, every_seconds=0.0)
    assert by_time.due(1)
    never = Checkpoint("unused.pt", {}, every_iterations=None, every_seconds=None)
    assert not any(never.due(i) for i in range(1, 20))


# --- cost ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["flowmc", "ntebm", "coopflow", "ula"])
def test_checkpoint_size_and_save_time_of_the_papers_toy_models(name, tmp_path, capsys):
    """The 2-D models at the paper's sizes (ToyEnergy, RealNVP with 4 couplings of 3 x 16 units, 1024
    persistent chains): the checkpoint is small and quick to write, so saving every few minutes costs nothing."""
    from ebmflow.experiments.common import train
    from ebmflow.models import DiagonalGaussian, ToyEnergy
    from test_methods import gaussian_data

    paper_flow = lambda base, generator: RealNVP(base, 4, 16, generator=generator)  # noqa: E731
    method = build(name) if name == "ula" else build(name, make_flow=paper_flow)
    checkpoint = Checkpoint(tmp_path / "run.pt", fingerprint())
    train(method, gaussian_data(2, n=1024), energy=ToyEnergy(2, generator=torch.Generator().manual_seed(0)),
          base=DiagonalGaussian(2), seed=0, epochs=1, batch_size=64, n_persistent=1024, checkpoint=checkpoint,
          stop_after=2)
    payload = torch.load(checkpoint.path, weights_only=True)
    start = time.perf_counter()
    for _ in range(5):
        checkpoint.save({k: v for k, v in payload.items() if k != "fingerprint"})
    seconds = (time.perf_counter() - start) / 5
    size = os.path.getsize(checkpoint.path)
    with capsys.disabled():
        print(f"\n[checkpoint] {name}: {size / 1024:.0f} KiB, saved in {1000 * seconds:.1f} ms")
    assert size < 1_000_000 and seconds < 0.5
