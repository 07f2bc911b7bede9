"""Seconds per training iteration of flowMC-EBM and ULA-EBM, motivating example (chapter 01) settings.

Batch 64, bank of 1024 persistent chains, flowMC schedule LLLLGGLLLL with 32 i-SIR particles, ULA 10 steps, the
flow RealNVP(4 couplings, 3 x 16 units); everything else from chapter 01's cpu profile. One thread. Times
are the process's CPU time (``time.process_time``: robust to other jobs on a shared machine; with one thread it
equals the wall time of an idle machine); wall times are kept too. Each
measurement trains a fresh run of ``--iterations`` iterations in a fresh process and times the iterations only
(the training loop, not the set-up).

    python benchmarks/bench_iteration.py                      # this tree
    python benchmarks/bench_iteration.py --before 157ff95     # also a git revision, alternated in one run

With ``--before REV`` the revision is exported (``git archive``) to a temporary folder and both trees are measured
in alternation (``--repeats`` rounds), so their ratio comes from the same machine conditions. Each worker also
reports a digest of the trained run (final bank and EBM parameters): equal digests mean identical numbers.
Results: benchmarks/results/iteration.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from machine import describe_machine, one_thread_env  # noqa: E402

METHODS = ("flowmc", "ula")


def worker(iterations: int) -> dict:
    """Train each method for ``iterations`` iterations of chapter 01's cpu profile; seconds per iteration."""
    import torch

    torch.set_num_threads(1)
    from ebmflow.experiments import motivating
    from ebmflow.models import DiagonalGaussian, ToyEnergy
    from ebmflow.seeding import make_generator
    from ebmflow.training import fit_ebm

    config = motivating.Config(**{**motivating.PROFILES["cpu"], "n_data": 64 * iterations, "epochs": 1})
    data = motivating.make_data(config)
    out = {}
    # a warm-up: the first optimiser step imports modules lazily (about a second), which is no iteration's cost
    for method in motivating.methods(config).values():
        energy = ToyEnergy(2, generator=make_generator(1, stream="energy"))
        method.prepare(energy, DiagonalGaussian(2), data, make_generator(1, stream="warm-up"))
        fit_ebm(data[:64 * 3], energy, method, epochs=1, batch_size=config.batch_size,
                n_persistent=config.n_persistent, generator=make_generator(1, stream="warm-up"), desc="warm-up")
    for name, method in motivating.methods(config).items():
        energy = ToyEnergy(2, generator=make_generator(config.seed, stream="energy"))
        base = DiagonalGaussian(2)
        method.prepare(energy, base, data, make_generator(config.seed, stream=f"{name}/prepare"))
        generator = make_generator(config.seed, stream=f"{name}/training")
        start, cpu_start = time.perf_counter(), time.process_time()
        history = fit_ebm(data, energy, method, epochs=1, batch_size=config.batch_size,
                          n_persistent=config.n_persistent, generator=generator, desc=name)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        digest = float(history.final_chains.double().sum()) + sum(float(p.detach().double().sum())
                                                                  for p in energy.parameters())
        out[name] = {"seconds_per_iteration": cpu_seconds / history.iterations,
                     "wall_seconds_per_iteration": seconds / history.iterations, "iterations": history.iterations,
                     "digest": repr(digest), "diverged": history.divergence is not None}
    return out


def run_worker(tree: Path, iterations: int) -> dict:
    env = {**os.environ, **one_thread_env(), "PYTHONPATH": str(tree), "TQDM_DISABLE": "1"}
    result = subprocess.run([sys.executable, str(HERE / "bench_iteration.py"), "--worker", str(iterations)],
                            env=env, capture_output=True, text=True, check=True, cwd=tree)
    return json.loads(result.stdout.strip().splitlines()[-1])


def export(rev: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "ebmflow"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="a git revision to measure against, alternated in the same run")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "results" / "iteration.json"))
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        trees = {"after": ROOT}
        if args.before:
            trees = {"before": export(args.before, Path(tmp)), **trees}
        samples: dict[str, dict[str, list[float]]] = {t: {m: [] for m in METHODS} for t in trees}
        wall: dict[str, dict[str, list[float]]] = {t: {m: [] for m in METHODS} for t in trees}
        digests: dict[str, dict[str, str]] = {t: {} for t in trees}
        for r in range(args.repeats):
            for label, tree in trees.items():
                result = run_worker(tree, args.iterations)
                for m in METHODS:
                    samples[label][m].append(result[m]["seconds_per_iteration"])
                    wall[label][m].append(result[m]["wall_seconds_per_iteration"])
                    digests[label][m] = result[m]["digest"]
                print(f"round {r + 1}/{args.repeats} {label}: " + ", ".join(
                    f"{m} {1e3 * result[m]['seconds_per_iteration']:.1f} ms/it" for m in METHODS), flush=True)

    medians = {t: {m: statistics.median(v) for m, v in s.items()} for t, s in samples.items()}
    report = {"machine": describe_machine(), "settings": {
        "chapter": "01_motivating_example (cpu profile)", "batch_size": 64, "n_persistent": 1024,
        "flowmc_schedule": "LLLLGGLLLL", "n_particles": 32, "ula_steps": 10, "iterations": args.iterations,
        "repeats": args.repeats, "threads": 1},
        "before_revision": _revision(args.before) if args.before else None, "after_revision": _revision(),
        "seconds_per_iteration": medians, "cpu_samples": samples,
        "wall_seconds_per_iteration": {t: {m: statistics.median(v) for m, v in s.items()} for t, s in wall.items()},
        "wall_samples": wall, "digests": digests}
    if args.before:
        report["speedup_after_over_before"] = {m: medians["before"][m] / medians["after"][m] for m in METHODS}
        report["same_numbers"] = {m: digests["before"][m] == digests["after"][m] for m in METHODS}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nper-iteration CPU time, median of {args.repeats} runs of {args.iterations} iterations (one thread):")
    for m in METHODS:
        line = f"  {m:7s}" + "".join(f"  {t} {1e3 * medians[t][m]:6.1f} ms" for t in trees)
        if args.before:
            line += (f"  speed-up {report['speedup_after_over_before'][m]:.2f}x"
                     f"  same numbers: {report['same_numbers'][m]}")
        print(line)
    print(f"written {args.out}")
    return 0


def _revision(rev: str | None = None) -> str:
    """The commit of ``rev`` (this tree's HEAD, marked +dirty when ebmflow/ has uncommitted changes)."""
    result = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev or "HEAD"], capture_output=True,
                            text=True)
    if rev:
        return f"{rev} ({result.stdout.strip()})"
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "ebmflow"], capture_output=True,
                           text=True).stdout.strip()
    return result.stdout.strip() + ("+dirty" if dirty else "")


if __name__ == "__main__":
    sys.exit(main())
