"""The machine a benchmark ran on, and the environment that pins every side to one thread.

Pure standard library: imported by our side, by flowMC's side (its own virtual environment) and by the drivers.
"""
from __future__ import annotations

import os
import platform

__all__ = ["one_thread_env", "describe_machine", "pin_one_thread"]

XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def one_thread_env() -> dict[str, str]:
    """Variables that keep OpenMP, MKL, OpenBLAS and XLA (JAX) to one thread; set before the library loads."""
    return {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "XLA_FLAGS": XLA_ONE_THREAD, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}


def pin_one_thread() -> None:
    """Set the one-thread variables in this process (call before importing torch or jax)."""
    for key, value in one_thread_env().items():
        os.environ.setdefault(key, value)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe_machine() -> dict[str, object]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": _cpu_model(), "logical_cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "load_average_at_start": load}
