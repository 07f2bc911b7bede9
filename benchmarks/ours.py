"""Our side of the benchmark: ebmflow's kernels and flow on the workloads of ``protocol.py``.

    python benchmarks/ours.py DATA.npz                  # a worker for the driver (line protocol on stdin/stdout)
    python benchmarks/ours.py --first-sample mala|imh   # time to the first sample, in this fresh process

The targets are ``ebmflow.targets`` mixtures with their own ``log_prob`` and gradients by autograd (flowMC
differentiates its log-density with jax.grad); the flow is ``ebmflow.models.RealNVP``; the maximum-likelihood
step is flowMC-EBM's own (``FlowMCEBM.update``: ``maximum_likelihood_step`` with the method's optimiser).
"""
from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import pin_one_thread  # noqa: E402

pin_one_thread()
_import_start = time.process_time(), time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402

import ebmflow  # noqa: E402,F401
from ebmflow.methods import FlowMCEBM  # noqa: E402
from ebmflow.models import DiagonalGaussian, RealNVP, ToyEnergy  # noqa: E402
from ebmflow.samplers import imh, isir, mala, run_chains  # noqa: E402
from ebmflow.targets import GaussianMixture, coordinate_magnitude, four_mode_mixture, two_mode_mixture  # noqa: E402
from protocol import FLOW, N_PARTICLES, TARGETS, WORKLOADS, Timer, Workload, serve  # noqa: E402

IMPORT_SECONDS = (time.process_time() - _import_start[0], time.perf_counter() - _import_start[1])
torch.set_num_threads(1)
SEED = 0


def make_target(name: str) -> GaussianMixture:
    if name == "2d":
        return two_mode_mixture()
    dim = TARGETS[name]["dim"]
    return four_mode_mixture(dim, coordinate_magnitude(dim, 1e-10))


def make_flow(dim: int, generator: torch.Generator):
    return RealNVP(DiagonalGaussian(dim), FLOW["n_couplings"], FLOW["hidden_ours"], FLOW["n_hidden_layers"],
                   generator=generator)


def write_data(path: str) -> None:
    """The targets' parameters and the exact samples both sides start from (chains) or fit (flow)."""
    generator = torch.Generator().manual_seed(SEED)
    arrays = {}
    for name in TARGETS:
        target = make_target(name)
        arrays[f"{name}/means"], arrays[f"{name}/stds"] = target.means.numpy(), target.stds.numpy()
        arrays[f"{name}/weights"] = target.weights.numpy()
        for w in WORKLOADS:
            if w.target == name:
                arrays[f"{w.id}/start"] = target.sample(w.size, generator).numpy()
    np.savez(path, **arrays)


class Ours:
    def __init__(self, data_path: str) -> None:
        self.data = np.load(data_path)
        self.units: dict[str, object] = {}
        self.accepted: dict[str, list[torch.Tensor]] = {}

    def info(self, _: dict) -> dict:
        flows = {name: make_flow(TARGETS[name]["dim"], torch.Generator().manual_seed(0)).n_parameters()
                 for name in TARGETS}
        return {"library": "ebmflow", "versions": {"ebmflow": ebmflow.__version__ if hasattr(ebmflow, "__version__")
                                                   else "0.1.0", "torch": torch.__version__},
                "flow": f"RealNVP, {FLOW['n_couplings']} affine couplings, one net of {FLOW['hidden_ours']} "
                        f"hidden units each (shift and scale)", "flow_parameters": flows,
                "import_seconds": {"cpu": IMPORT_SECONDS[0], "wall": IMPORT_SECONDS[1]}}

    def prepare(self, request: dict) -> dict:
        w = next(w for w in WORKLOADS if w.id == request["id"])
        with Timer() as t:
            self.units[w.id] = self._build(w)
            self.accepted[w.id] = []
            for _ in range(2):  # warm-up
                self.units[w.id]()
            self.accepted[w.id] = []
        return {"seconds": t.cpu, "wall": t.wall}

    def _build(self, w: Workload):
        target = make_target(w.target)
        generator = torch.Generator().manual_seed(SEED + 1)
        start = torch.from_numpy(self.data[f"{w.id}/start"])
        if w.kind == "ml":
            method = FlowMCEBM(lr=1e-3, schedule="LLGG", step_size=0.01, make_flow=partial(
                RealNVP, n_couplings=FLOW["n_couplings"], hidden=FLOW["hidden_ours"],
                n_hidden_layers=FLOW["n_hidden_layers"]))
            energy = ToyEnergy(target.dim, generator=torch.Generator().manual_seed(SEED + 3))  # unused by the step
            method.prepare(energy, DiagonalGaussian(target.dim), start, generator)
            return lambda: method.update(start)
        flow = make_flow(target.dim, torch.Generator().manual_seed(SEED + 2))
        kernel = {"mala": lambda: mala(target.log_prob, TARGETS[w.target]["mala_step"]),
                  "imh": lambda: imh(target.log_prob, flow),
                  "isir": lambda: isir(target.log_prob, flow, N_PARTICLES)}[w.kind]()
        box = {"state": kernel.init(start)}

        def unit():
            box["state"], _, infos = run_chains(kernel, box["state"], w.steps, generator)
            self.accepted[w.id].extend(info.is_accepted for info in infos)

        return unit

    def time(self, request: dict) -> dict:
        unit = self.units[request["id"]]
        with Timer() as t:
            unit()
        return {"cpu": t.cpu, "wall": t.wall}

    def stats(self, request: dict) -> dict:
        accepted = self.accepted[request["id"]]
        if not accepted:
            return {}
        flags = torch.stack(accepted)
        return {"acceptance": float(flags.float().mean()), "acceptance_trials": flags.numel()}


def first_sample(kind: str) -> dict:
    """Build the 2-D target, the flow and the kernel, and advance 64 chains by one call (as timed above);
    the time after imports until the positions are in hand."""
    start = time.process_time(), time.perf_counter()
    target = two_mode_mixture()
    generator = torch.Generator().manual_seed(SEED)
    chains = target.sample(64, generator)
    if kind == "mala":
        kernel = mala(target.log_prob, TARGETS["2d"]["mala_step"])
    else:
        kernel = imh(target.log_prob, make_flow(2, generator))
    state, _, _ = run_chains(kernel, chains, Workload(kind, "2d", 64).steps, generator)
    state.position.numpy().tolist()
    return {"cpu": time.process_time() - start[0], "wall": time.perf_counter() - start[1],
            "import_cpu": IMPORT_SECONDS[0], "import_wall": IMPORT_SECONDS[1]}


def main() -> None:
    if sys.argv[1] == "--first-sample":
        import json
        print(json.dumps(first_sample(sys.argv[2])))
        return
    if sys.argv[1] == "--write-data":
        write_data(sys.argv[2])
        return
    side = Ours(sys.argv[1])
    serve({"info": side.info, "prepare": side.prepare, "time": side.time, "stats": side.stats})


if __name__ == "__main__":
    main()
