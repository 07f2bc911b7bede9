"""The workloads both sides measure, and the line protocol between the driver and a side's worker process.

Pure standard library: imported by our worker (the project's environment), by flowMC's worker (its own virtual
environment, benchmarks/.venv-peer) and by the drivers. A worker reads one JSON request per line on stdin and
answers one JSON line on stdout:

    {"op": "info"}                    -> library and versions, flow sizes
    {"op": "prepare", "id": W}        -> builds workload W (compiles it, warms it up); {"seconds": ...}
    {"op": "time", "id": W}           -> one timed unit of W; {"cpu": s, "wall": s, "steps": k}
    {"op": "stats", "id": W}          -> statistics gathered over the timed units (acceptance)
    {"op": "quit"}

Times are the process's CPU time (all threads) and the wall time of the unit. The driver alternates the two
workers unit by unit, so both sides see the same machine conditions.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable

__all__ = ["Workload", "WORKLOADS", "TARGETS", "FLOW", "STEPS_PER_CALL", "N_PARTICLES", "serve", "Timer"]

STEPS_PER_CALL = 10  # a timed unit of MALA or IMH is one call that advances every chain this many steps
N_PARTICLES = 32  # i-SIR candidates (the current state included): the chapters' setting
CHAINS = (1024, 64)
ML_BATCHES = (64, 1024, 10_000)
# MALA step eta of x' = x + eta grad log pi(x) + sqrt(2 eta) xi; flowMC writes dt with dt^2 / 2 = eta
TARGETS = {"2d": {"dim": 2, "mala_step": 0.01, "about": "two-mode mixture, chapter 01 (1/3, 2/3; offset 1.5)"},
           "16d": {"dim": 16, "mala_step": 0.1, "about": "four-mode mixture in 16-D, unit variances, "
                                                        "magnitude for 1e-10 mis-assignment"}}
# Same flow size on both sides: RealNVP, 4 affine couplings, one hidden layer, 32 hidden units per coupling
# (flowMC: a scale net and a shift net of 16 units each; ours: one net of 32 units that outputs both).
FLOW = {"n_couplings": 4, "n_hidden_layers": 1, "hidden_ours": 32, "hidden_theirs": 16}


@dataclass(frozen=True)
class Workload:
    kind: str  # "mala", "imh", "isir", "ml"
    target: str  # "2d" or "16d"
    size: int  # chains, or the batch of the maximum-likelihood step

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.target}/{self.size}"

    @property
    def steps(self) -> int:
        """Steps per timed unit: one i-SIR step, one maximum-likelihood step, STEPS_PER_CALL otherwise."""
        return STEPS_PER_CALL if self.kind in ("mala", "imh") else 1

    def describe(self) -> dict:
        return {**asdict(self), "id": self.id, "steps_per_unit": self.steps}


WORKLOADS = ([Workload(kind, target, n) for kind in ("mala", "imh", "isir") for target in TARGETS for n in CHAINS]
             + [Workload("ml", target, b) for target in TARGETS for b in ML_BATCHES])


class Timer:
    """CPU time of this process (all its threads) and wall time."""

    def __enter__(self) -> "Timer":
        self.cpu, self.wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.cpu, self.wall = time.process_time() - self.cpu, time.perf_counter() - self.wall


def serve(handlers: dict[str, Callable[[dict], dict]]) -> None:
    """Answer requests on stdin until "quit"; an exception is answered as {"error": ...} and ends the worker."""
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing but answers goes to the driver
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "quit":
            break
        try:
            answer = handlers[request["op"]](request)
        except Exception as error:  # the driver reports it and stops
            out.write(json.dumps({"error": f"{type(error).__name__}: {error}"}) + "\n")
            out.flush()
            raise
        out.write(json.dumps(answer) + "\n")
        out.flush()
