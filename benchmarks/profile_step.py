"""Where a MALA step at 64 chains spends its time: Python against torch's C++ (operators and autograd engine).

    python benchmarks/profile_step.py      # writes benchmarks/results/profile_mala.json and profile_mala.txt

Method: the step's CPU time T is measured without a profiler; cProfile (CPU-time clock) then attributes self time
to every function. The C++ share C is the self time of torch's compiled entry points (tensor methods, ``torch.*``
built-ins, the autograd engine's ``run_backward``), less the profiler's own cost per call (its clock readings fall
partly inside each call; calibrated on a trivial tensor method); the Python overhead is T - C: the interpreter
running our kernels, the target's Python code and torch's Python wrappers (``torch.autograd.grad``,
``nn.Module.__call__``), with builtins such as ``isinstance``. T and C are each the least disturbed of several
runs (the machine is shared). The counts of aten operators per step come from ``torch.profiler``.
"""
from __future__ import annotations

import cProfile
import io
import json
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from machine import describe_machine, pin_one_thread  # noqa: E402

pin_one_thread()

import torch  # noqa: E402

from ours import make_target  # noqa: E402
from protocol import TARGETS  # noqa: E402
from ebmflow.samplers import mala  # noqa: E402

torch.set_num_threads(1)
CHAINS = 64


def _is_torch_cpp(key: tuple) -> bool:
    filename, _, name = key
    if filename != "~":  # a Python function
        return False
    return any(word in name for word in ("torch", "TensorBase", "_EngineBase", "_VariableFunctions"))


def _profiler_cost_per_call(n: int = 200_000) -> float:
    """The self time cProfile adds to one call of a C function (its clock readings fall partly inside the
    call): a trivial tensor method timed with and without the profiler."""
    x = torch.zeros(1)
    start = time.process_time()
    for _ in range(n):
        x.dim()
    plain = (time.process_time() - start) / n
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for _ in range(n):
        x.dim()
    profiler.disable()
    inside = next(v[2] for k, v in pstats.Stats(profiler).stats.items() if "'dim' of" in k[2])
    return max(0.0, inside / n - plain)


def profile(target_name: str, steps: int = 2000, repeats: int = 5) -> tuple[dict, str]:
    target = make_target(target_name)
    generator = torch.Generator().manual_seed(0)
    kernel = mala(target.log_prob, TARGETS[target_name]["mala_step"])
    box = [kernel.init(target.sample(CHAINS, generator))]

    def run(n):
        state = box[0]
        for _ in range(n):
            state, _ = kernel.step(state, generator)
        box[0] = state

    run(200)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.process_time()
        run(steps)
        times.append((time.process_time() - start) / steps)
    step_seconds = min(times)  # the least disturbed repeat

    runs = []
    for _ in range(3):
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        run(steps)
        profiler.disable()
        stats = pstats.Stats(profiler)
        cpp_entries = [v for k, v in stats.stats.items() if _is_torch_cpp(k)]
        runs.append((sum(v[2] for v in cpp_entries) / steps, profiler, sum(v[1] for v in cpp_entries) / steps))
    cpp, profiler, cpp_calls = min(runs, key=lambda r: r[0])
    cpp -= cpp_calls * _profiler_cost_per_call()
    profiled = sum(v[2] for v in pstats.Stats(profiler).stats.values()) / steps
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(30)

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        run(100)
    events = prof.key_averages()
    aten = sum(e.count for e in events if e.key.startswith("aten::")) / 100
    nodes = sum(e.count for e in events if e.key.startswith("autograd::engine::evaluate_function")) / 100

    python = max(0.0, step_seconds - cpp)
    result = {"target": target_name, "chains": CHAINS, "step_us": 1e6 * step_seconds,
              "torch_cpp_us": 1e6 * cpp, "torch_cpp_calls_per_step": cpp_calls,
              "python_overhead_us": 1e6 * python,
              "python_overhead_share": python / step_seconds, "profiled_step_us": 1e6 * profiled,
              "aten_ops_per_step": aten, "autograd_nodes_per_step": nodes}
    return result, text.getvalue()


def main() -> int:
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    results, texts = [], []
    for name in TARGETS:
        result, text = profile(name)
        results.append(result)
        texts.append(f"=== MALA step, {TARGETS[name]['dim']}-D target, {CHAINS} chains: cProfile (CPU clock), "
                     f"self time of 2000 steps ===\n{text}")
        print(f"MALA {TARGETS[name]['dim']:2d}-D, {CHAINS} chains: {result['step_us']:.0f} us/step, torch C++ "
              f"{result['torch_cpp_us']:.0f} us, Python {result['python_overhead_us']:.0f} us "
              f"({100 * result['python_overhead_share']:.0f}%), {result['aten_ops_per_step']:.0f} aten ops and "
              f"{result['autograd_nodes_per_step']:.0f} autograd nodes per step")
    report = {"machine": describe_machine(), "method": __doc__, "results": results,
              "target": "Python overhead under 30% of a MALA step at 64 chains",
              "met": all(r["python_overhead_share"] < 0.3 for r in results)}
    (out / "profile_mala.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "profile_mala.txt").write_text("\n".join(texts))
    print(f"written {out / 'profile_mala.json'} and profile_mala.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
