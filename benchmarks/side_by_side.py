"""ebmflow against flowMC (JAX, CPU), side by side: `make bench-peer`.

Both sides run as worker processes pinned to one thread (OMP/MKL/OpenBLAS/XLA flags), fed the same targets and
the same starting chains and batches (exact samples written by our side), and driven unit by unit in alternation
(ours, theirs, theirs, ours, ...) so both see the same machine conditions. A unit is one call: 10 MALA or IMH
steps of every chain, one i-SIR step (theirs: one flow global step with as many proposals), or one flow
maximum-likelihood step. Reported: medians over ``--repeats`` units of the process CPU time (robust on a shared
machine; with one thread it is the wall time of an idle one) and of the wall time, and every ratio as the
speed-up of ours over theirs (theirs / ours: above 1 means ours is faster). Time to the first sample is measured
in fresh processes (after imports; JAX's compilation included).

    python benchmarks/side_by_side.py --peer-python benchmarks/.venv-peer/bin/python [--repeats 15]

Writes benchmarks/results/side_by_side.json and prints the table.
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

from machine import describe_machine, one_thread_env  # noqa: E402
from protocol import CHAINS, FLOW, ML_BATCHES, N_PARTICLES, STEPS_PER_CALL, TARGETS, WORKLOADS  # noqa: E402

SIDES = ("ours", "theirs")
COLUMNS = [(t, n) for t in TARGETS for n in CHAINS]  # 2d/1024, 2d/64, 16d/1024, 16d/64 (the order)


class Worker:
    def __init__(self, python: str, script: str, data: str) -> None:
        env = {**os.environ, **one_thread_env()}
        self.process = subprocess.Popen([python, str(HERE / script), data], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env, cwd=HERE.parent)

    def ask(self, op: str, **fields) -> dict:
        self.process.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.process.args[1]} ended without answering {op!r}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"worker {self.process.args[1]}: {answer['error']}")
        return answer

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.process.stdin.flush()
            self.process.wait(timeout=60)


def first_sample(python: dict[str, str], data: str, repeats: int) -> dict:
    scripts = {"ours": "ours.py", "theirs": "peer.py"}
    out: dict = {}
    for kind in ("mala", "imh"):
        samples = {side: [] for side in SIDES}
        for r in range(repeats):
            for side in (SIDES if r % 2 == 0 else SIDES[::-1]):
                result = subprocess.run([python[side], str(HERE / scripts[side]), "--first-sample", kind, data],
                                        env={**os.environ, **one_thread_env()}, capture_output=True, text=True,
                                        check=True, cwd=HERE.parent)
                samples[side].append(json.loads(result.stdout.strip().splitlines()[-1]))
        med = {side: {k: statistics.median(s[k] for s in samples[side]) for k in samples[side][0]} for side in SIDES}
        out[kind] = {"median": med, "samples": samples,
                     "ours_over_theirs": med["ours"]["cpu"] / med["theirs"]["cpu"],
                     "ours_over_theirs_wall": med["ours"]["wall"] / med["theirs"]["wall"]}
    return out


def measure(workers: dict[str, Worker], repeats: int, only: set[str] | None) -> dict:
    results = {}
    for w in WORKLOADS:
        if only and w.id not in only and w.kind not in only:
            continue
        prepare = {side: workers[side].ask("prepare", id=w.id) for side in SIDES}
        units = {side: [] for side in SIDES}
        for r in range(repeats):
            for side in (SIDES if r % 2 == 0 else SIDES[::-1]):
                units[side].append(workers[side].ask("time", id=w.id))
        stats = {side: workers[side].ask("stats", id=w.id) for side in SIDES}
        med = {side: {k: statistics.median(u[k] for u in units[side]) for k in ("cpu", "wall")} for side in SIDES}
        chain_steps = w.size * w.steps if w.kind != "ml" else w.size
        entry = {**w.describe(), "prepare_seconds": prepare, "stats": stats, "samples": units,
                 "seconds_per_unit": med,
                 "seconds_per_step": {s: {k: v / w.steps for k, v in med[s].items()} for s in SIDES},
                 "throughput_per_second": {s: chain_steps / med[s]["cpu"] for s in SIDES},
                 "speedup": med["theirs"]["cpu"] / med["ours"]["cpu"],
                 "speedup_wall": med["theirs"]["wall"] / med["ours"]["wall"]}
        results[w.id] = entry
        print(f"  {w.id:16s} ours {1e6 * med['ours']['cpu'] / w.steps:9.0f} us/step   theirs "
              f"{1e6 * med['theirs']['cpu'] / w.steps:9.0f} us/step   speed-up {entry['speedup']:5.2f}"
              + "".join(f"   acc {side} {stats[side]['acceptance']:.3f}" for side in SIDES
                        if "acceptance" in stats[side]), flush=True)
    return results


def targets(results: dict, first: dict | None) -> list[dict]:
    """Issue 16's targets, each with the numbers it was judged on."""
    out = []

    def add(name, values, rule, met):
        out.append({"target": name, "values": values, "rule": rule, "met": bool(met)})

    for kind in ("mala", "imh"):
        values = {f"{t}/{n}": results[f"{kind}/{t}/{n}"]["speedup"] for t, n in COLUMNS if f"{kind}/{t}/{n}" in results}
        if values:
            add(f"{kind.upper()} throughput, ours/theirs", values, ">= 1.0 in all four columns",
                len(values) == 4 and min(values.values()) >= 1.0)
    values = {t: results[f"ml/{t}/64"]["speedup"] for t in TARGETS if f"ml/{t}/64" in results}
    if values:
        add("flow maximum-likelihood step at batch 64, ours/theirs", values, ">= 1.0 (no slower)",
            min(values.values()) >= 1.0)
    values = {}
    for t, n in COLUMNS:
        if f"isir/{t}/{n}" in results and f"imh/{t}/{n}" in results:
            isir = results[f"isir/{t}/{n}"]["seconds_per_step"]["ours"]["cpu"]
            imh = results[f"imh/{t}/{n}"]["seconds_per_step"]["ours"]["cpu"]
            values[f"{t}/{n}"] = isir / imh
    if values:
        add(f"our i-SIR step ({N_PARTICLES} particles) / our IMH step", values, f"<= {N_PARTICLES}",
            max(values.values()) <= N_PARTICLES)
    if first:
        values = {k: v["ours_over_theirs"] for k, v in first.items()}
        add("time to the first sample, ours/theirs (after imports, JAX compilation included)", values, "< 0.2",
            max(values.values()) < 0.2)
    return out


def table(results: dict, first: dict | None) -> str:
    lines = ["speed-up of ours over theirs (theirs' time / ours; > 1: ours faster), CPU time, one thread each", ""]
    head = "| step | " + " | ".join(f"{TARGETS[t]['dim']}-D, {n} chains" for t, n in COLUMNS) + " |"
    lines += [head, "|" + "---|" * (len(COLUMNS) + 1)]
    names = {"mala": f"MALA ({STEPS_PER_CALL} steps per call)", "imh": f"IMH flow step ({STEPS_PER_CALL} per call)",
             "isir": f"i-SIR, N = {N_PARTICLES} (theirs: {N_PARTICLES - 1} IMH proposals)"}
    for kind, name in names.items():
        cells = [f"{results[k]['speedup']:.2f}" if (k := f"{kind}/{t}/{n}") in results else "" for t, n in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| flow maximum-likelihood step | " + " | ".join(f"batch {b}" for b in ML_BATCHES) + " |",
              "|---|" + "---|" * len(ML_BATCHES)]
    for t in TARGETS:
        cells = [f"{results[k]['speedup']:.2f}" if (k := f"ml/{t}/{b}") in results else "" for b in ML_BATCHES]
        lines.append(f"| {TARGETS[t]['dim']}-D | " + " | ".join(cells) + " |")
    if first:
        lines += ["", "time to the first sample (2-D, 64 chains, one call; after imports), CPU seconds:"]
        for kind, v in first.items():
            m = v["median"]
            lines.append(f"  {kind}: ours {m['ours']['cpu']:.3f} s, theirs {m['theirs']['cpu']:.3f} s "
                         f"(compile included), ours/theirs {v['ours_over_theirs']:.3f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-python", default=str(HERE / ".venv-peer" / "bin" / "python"))
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--first-sample-repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="workload ids or kinds (mala, imh, isir, ml) to measure")
    parser.add_argument("--out", default=str(HERE / "results" / "side_by_side.json"))
    args = parser.parse_args()
    if not Path(args.peer_python).exists():
        print(f"no flowMC environment at {args.peer_python}: run `make bench-peer`", file=sys.stderr)
        return 2
    python = {"ours": sys.executable, "theirs": args.peer_python}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "data.npz")
        subprocess.run([sys.executable, str(HERE / "ours.py"), "--write-data", data], check=True,
                       env={**os.environ, **one_thread_env()}, cwd=HERE.parent)
        workers = {"ours": Worker(python["ours"], "ours.py", data), "theirs": Worker(python["theirs"], "peer.py", data)}
        try:
            info = {side: workers[side].ask("info") for side in SIDES}
            print(f"ours: {info['ours']['versions']}; theirs: {info['theirs']['versions']}")
            print(f"repeats {args.repeats}, median CPU time per step:", flush=True)
            results = measure(workers, args.repeats, set(args.only) if args.only else None)
        finally:
            for worker in workers.values():
                worker.close()
        first = first_sample(python, data, args.first_sample_repeats) if args.first_sample_repeats else None
    report = {"machine": describe_machine(), "sides": info,
              "settings": {"threads": 1, "repeats": args.repeats, "steps_per_call": STEPS_PER_CALL,
                           "n_particles": N_PARTICLES, "targets": TARGETS, "flow": FLOW,
                           "time": "process CPU time, median over repeats; wall times kept alongside",
                           "speedup": "theirs' time / ours (> 1: ours faster)"},
              "results": results, "first_sample": first, "targets": targets(results, first),
              "benchmark_seconds": time.perf_counter() - started}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    sides = ", ".join(f"{side}: " + ", ".join(f"{k} {v}" for k, v in info[side]["versions"].items()) for side in SIDES)
    lines = [f"machine: {report['machine']['cpu']} ({report['machine']['logical_cpus']} logical CPUs), {sides}", "",
             table(results, first), ""]
    for t in report["targets"]:
        values = ", ".join(f"{k} {v:.2f}" for k, v in t["values"].items())
        lines.append(f"- [{'met' if t['met'] else 'NOT met'}] {t['target']} {t['rule']}: {values}")
    text = "\n".join(lines)
    Path(args.out).with_suffix(".md").write_text(text + "\n")
    print("\n" + text)
    print(f"\nwritten {args.out} and its .md table ({report['benchmark_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
