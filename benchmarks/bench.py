"""Our kernels on the side-by-side workloads, alone: `make bench`.

The workloads of ``protocol.py`` (2-D two-mode and 16-D four-mode targets, 64 and 1024 chains; MALA, IMH, i-SIR;
the flow's maximum-likelihood step at batches 64, 1024 and 10,000), one thread, medians of ``--repeats`` units
of CPU time; our time to the first sample (fresh processes); the profile of a MALA step at 64 chains
(``profile_step.py``). Ratios against flowMC come only from `make bench-peer`, which runs both sides in one
alternating run. Writes benchmarks/results/ours.json (and the profile files).
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
sys.path.insert(0, str(HERE))

from machine import describe_machine, one_thread_env, pin_one_thread  # noqa: E402

pin_one_thread()

from ours import Ours, write_data  # noqa: E402
from protocol import N_PARTICLES, TARGETS, WORKLOADS  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--out", default=str(HERE / "results" / "ours.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "data.npz")
        write_data(data)
        side = Ours(data)
        info = side.info({})
        print(f"ebmflow {info['versions']}, one thread; median CPU time per step over {args.repeats} units:")
        for w in WORKLOADS:
            side.prepare({"id": w.id})
            units = [side.time({"id": w.id}) for _ in range(args.repeats)]
            cpu = statistics.median(u["cpu"] for u in units)
            stats = side.stats({"id": w.id})
            results[w.id] = {**w.describe(), "seconds_per_unit": cpu, "seconds_per_step": cpu / w.steps,
                             "wall_seconds_per_unit": statistics.median(u["wall"] for u in units),
                             "throughput_per_second": (w.size * w.steps if w.kind != "ml" else w.size) / cpu,
                             "stats": stats}
            acceptance = f"   acceptance {stats['acceptance']:.3f}" if "acceptance" in stats else ""
            print(f"  {w.id:16s} {1e6 * cpu / w.steps:9.0f} us/step{acceptance}", flush=True)
        first = {}
        for kind in ("mala", "imh"):
            runs = [json.loads(subprocess.run([sys.executable, str(HERE / "ours.py"), "--first-sample", kind],
                                              env={**os.environ, **one_thread_env()}, capture_output=True,
                                              text=True, check=True).stdout.strip().splitlines()[-1])
                    for _ in range(3)]
            first[kind] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(f"  time to the first sample ({kind}, 2-D, 64 chains, after imports): "
                  f"{first[kind]['cpu']:.3f} s CPU (imports {first[kind]['import_cpu']:.2f} s)")
    isir = {f"{t}/{n}": results[f"isir/{t}/{n}"]["seconds_per_step"] / results[f"imh/{t}/{n}"]["seconds_per_step"]
            for t in TARGETS for n in (1024, 64)}
    print(f"  i-SIR ({N_PARTICLES} particles) step / IMH step: "
          + ", ".join(f"{k} {v:.1f}" for k, v in isir.items()) + f" (target <= {N_PARTICLES})")
    report = {"machine": describe_machine(), "side": info, "repeats": args.repeats, "results": results,
              "first_sample": first, "isir_over_imh": isir, "benchmark_seconds": time.perf_counter() - started}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"written {args.out}")
    if not args.no_profile:
        subprocess.run([sys.executable, str(HERE / "profile_step.py")], check=True,
                       env={**os.environ, **one_thread_env()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
