"""Cost of one training iteration, flowMC-EBM relative to ULA-EBM (motivating example, cpu profile).

Both take 10 sampler steps per iteration; flowMC adds i-SIR proposals (2 × 31 flow samples per chain) and a
flow update. Target: flowMC-EBM costs at most 4× ULA-EBM per iteration (measured as a ratio, medians of
repeats, one thread, so the number is stable on a noisy machine). Run: `python benchmarks/bench_iteration.py`.
"""
from __future__ import annotations

import statistics
import sys
import time

import torch

from ebmflow.config import resolve_config
from ebmflow.experiments import motivating

TARGET_RATIO = 4.0


def seconds_per_iteration(method: str, repeats: int = 5) -> float:
    config = resolve_config(motivating.MotivatingConfig, motivating.PROFILES, "cpu", n_data=64 * 40, epochs=1,
                            evals_per_epoch=1, grid_size=8)
    data = motivating.make_data(config)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        motivating.run_method(config, method, data)
        times.append((time.perf_counter() - start) / 40)
    return statistics.median(times)


def main() -> int:
    torch.set_num_threads(1)
    ula, flowmc = seconds_per_iteration("ula"), seconds_per_iteration("flowmc")
    ratio = flowmc / ula
    print(f"ULA-EBM {1e3 * ula:.1f} ms/it, flowMC-EBM {1e3 * flowmc:.1f} ms/it, ratio {ratio:.2f} "
          f"(target <= {TARGET_RATIO})")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
