"""Does torch.compile pay off for a chapter's MALA steps? Compile time against time saved per step.

The workload is chapter 01's: MALA on the tilted EBM p ∝ exp(-E) rho (``ToyEnergy`` 2-32-64-64-64-1, rho = N(0, I)),
64 chains, step 0.01. The compiled step is MALA's arithmetic with the gradient by ``torch.func.grad`` (what dynamo
traces) and the random numbers drawn eagerly from the chains' generator (a compiled graph cannot take a
``torch.Generator``), compiled once for these shapes, with inductor's caches empty (a first compile). Reported: compile time (wall, and CPU including the C++
compiler's processes), CPU time per step eager and compiled, the break-even number of steps, and chapter 01's
number of MALA steps at its cpu and paper profiles. Writes benchmarks/results/compile_payoff.json.

    python benchmarks/compile_payoff.py
"""
from __future__ import annotations

import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from machine import describe_machine, pin_one_thread  # noqa: E402

pin_one_thread()
_CACHE = tempfile.TemporaryDirectory()  # a cold compile: inductor's on-disk caches start empty
os.environ["TORCHINDUCTOR_CACHE_DIR"] = _CACHE.name

import torch  # noqa: E402

from ebmflow.experiments import motivating  # noqa: E402
from ebmflow.models import DiagonalGaussian, ToyEnergy  # noqa: E402
from ebmflow.samplers import mala  # noqa: E402

torch.set_num_threads(1)
ETA, CHAINS, STEPS = 0.01, 64, 10


def cpu_with_children() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> int:
    energy = ToyEnergy(2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # a non-trivial energy (its last layer starts at zero)
        energy.net[-1].weight.normal_(generator=torch.Generator().manual_seed(1))
    base = DiagonalGaussian(2)

    def log_target(x):
        return -energy(x) + base.log_prob(x)

    generator = torch.Generator().manual_seed(2)
    kernel = mala(log_target, ETA)
    state = kernel.init(torch.randn(CHAINS, 2, generator=generator))

    def compiled_core(x, log_p, grad, noise, log_u):
        proposal = x + ETA * grad + math.sqrt(2 * ETA) * noise

        def total(y):
            value = log_target(y)
            return value.sum(), value

        grad_p, log_p_p = torch.func.grad(total, has_aux=True)(proposal)
        back = x - proposal - ETA * grad_p
        log_ratio = log_p_p - log_p + 0.5 * (noise * noise).sum(-1) - (back * back).sum(-1) / (4 * ETA)
        accepted = log_u < log_ratio
        rows = accepted[:, None]
        return torch.where(rows, proposal, x), torch.where(accepted, log_p_p, log_p), torch.where(rows, grad_p, grad)

    def eager_unit():
        nonlocal state
        for _ in range(STEPS):
            state, _ = kernel.step(state, generator)

    x, log_p, grad = state.position, state.log_density, state.grad

    def compiled_unit():
        nonlocal x, log_p, grad
        for _ in range(STEPS):
            noise = torch.randn(x.shape, generator=generator)
            log_u = torch.rand(CHAINS, generator=generator).log_()
            x, log_p, grad = step(x, log_p, grad, noise, log_u)

    step = torch.compile(compiled_core, dynamic=False, fullgraph=True)
    wall, cpu = time.perf_counter(), cpu_with_children()
    compiled_unit()
    compile_wall, compile_cpu = time.perf_counter() - wall, cpu_with_children() - cpu

    samples = {"eager": [], "compiled": []}
    for r in range(15):
        for name, unit in (("eager", eager_unit), ("compiled", compiled_unit)):
            start = time.process_time()
            unit()
            samples[name].append((time.process_time() - start) / STEPS)
    per_step = {k: statistics.median(v) for k, v in samples.items()}
    saved = per_step["eager"] - per_step["compiled"]
    cpu_profile = motivating.PROFILES["cpu"]
    paper = motivating.PROFILES["paper"]

    def chapter_steps(profile):
        return profile["epochs"] * (profile["n_data"] // profile["batch_size"]) * profile["flowmc_schedule"].count("L")

    break_even = compile_cpu / saved if saved > 0 else math.inf
    report = {"machine": describe_machine(), "workload": f"MALA, chapter 01 EBM target, {CHAINS} chains",
              "compile_seconds": {"wall": compile_wall, "cpu_including_compiler_processes": compile_cpu},
              "cpu_seconds_per_step": per_step, "samples": samples, "saved_per_step": saved,
              "break_even_steps": break_even,
              "chapter_01_mala_steps": {"cpu": chapter_steps(cpu_profile), "paper": chapter_steps(paper)},
              "note": "chapter 01 also runs i-SIR, the EBM and flow updates, which this compiled step does not "
                      "touch; each new batch shape (the chapters' continue_chains, other chapters' batch sizes) "
                      "compiles again."}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "compile_payoff.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"compile: {compile_wall:.1f} s wall, {compile_cpu:.1f} s CPU (with the C++ compiler); per step: eager "
          f"{1e6 * per_step['eager']:.0f} us, compiled {1e6 * per_step['compiled']:.0f} us; break-even after "
          f"{break_even:,.0f} steps; chapter 01 runs {chapter_steps(cpu_profile):,} MALA steps at its cpu profile, "
          f"{chapter_steps(paper):,} at the paper's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
