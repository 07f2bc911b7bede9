"""flowMC's side of the benchmark (JAX on CPU), run in its own virtual environment (benchmarks/.venv-peer).

    benchmarks/.venv-peer/bin/python benchmarks/peer.py DATA.npz                 # a worker for the driver
    benchmarks/.venv-peer/bin/python benchmarks/peer.py --first-sample mala|imh  # time to the first sample

flowMC is driven the way its own ``TakeSteps`` strategies drive it: the per-chain ``sample`` of
``TakeSerialSteps`` (MALA kernel) or ``TakeGroupSteps`` (``NFProposal``, its flow global step), vmapped over chains
with ``eqx.filter_vmap`` and compiled with ``eqx.filter_jit``; the compiled function is built once per workload
(``TakeSteps.__call__`` rebuilds it on every call; we spare it that) and its per-chain keys are split
outside the timed region. The flow is flowMC's ``RealNVP``; the maximum-likelihood step is ``NFModel.train_step``
with flowMC's own ``Optimizer`` (Adam-W with gradient clipping), as ``TrainModel`` uses them.

flowMC has no i-SIR: the "isir" workload runs its flow global step with as many proposals per chain as an i-SIR
step with N particles draws (N - 1), i.e. one ``TakeGroupSteps`` call of N - 1 independent Metropolis-Hastings
moves: the same number of flow samples, flow densities and target evaluations.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import pin_one_thread  # noqa: E402

pin_one_thread()
_import_start = time.process_time(), time.perf_counter()

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flowMC.resource.kernel.MALA import MALA  # noqa: E402
from flowMC.resource.kernel.NF_proposal import NFProposal  # noqa: E402
from flowMC.resource.logPDF import LogPDF  # noqa: E402
from flowMC.resource.model.nf_model.realNVP import RealNVP  # noqa: E402
from flowMC.resource.optimizer import Optimizer  # noqa: E402
from flowMC.strategy.take_steps import TakeGroupSteps, TakeSerialSteps  # noqa: E402
from jax.scipy.special import logsumexp  # noqa: E402

from protocol import FLOW, N_PARTICLES, TARGETS, WORKLOADS, Timer, Workload, serve  # noqa: E402

IMPORT_SECONDS = (time.process_time() - _import_start[0], time.perf_counter() - _import_start[1])
SEED = 0
# flowMC's TakeSteps names its resources; only ``sample`` is used here, so the names are placeholders
_NAMES = ("logpdf", "kernel", "state", ["positions", "log_prob", "acceptance"])


def mixture_logpdf(means, stds, weights) -> LogPDF:
    """log sum_k w_k N(x; mu_k, s_k^2 I) of one point (flowMC's log-densities take one point and data)."""
    means, var, log_w = jnp.asarray(means), jnp.asarray(stds) ** 2, jnp.log(jnp.asarray(weights))
    dim = means.shape[1]

    def log_pdf(x, data):
        sq_dist = ((x - means) ** 2).sum(-1)
        return logsumexp(log_w - 0.5 * dim * jnp.log(2 * jnp.pi * var) - sq_dist / (2 * var))

    return LogPDF(log_pdf, n_dims=dim)


def make_flow(dim: int, key) -> RealNVP:
    return RealNVP(dim, FLOW["n_couplings"], FLOW["hidden_theirs"], key)


def _n_parameters(model) -> int:
    return sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array)))


class Theirs:
    def __init__(self, data_path: str) -> None:
        self.data = np.load(data_path)
        self.units: dict[str, object] = {}
        self.accepted: dict[str, list] = {}

    def info(self, _: dict) -> dict:
        import flowMC  # noqa: F401
        from importlib.metadata import version
        flows = {name: _n_parameters(make_flow(TARGETS[name]["dim"], jax.random.PRNGKey(0))) for name in TARGETS}
        return {"library": "flowMC", "versions": {p: version(p) for p in ("flowMC", "jax", "jaxlib", "equinox",
                                                                          "optax")},
                "flow": f"RealNVP, {FLOW['n_couplings']} affine couplings, a scale net and a shift net of "
                        f"{FLOW['hidden_theirs']} hidden units each", "flow_parameters": flows,
                "import_seconds": {"cpu": IMPORT_SECONDS[0], "wall": IMPORT_SECONDS[1]}}

    def prepare(self, request: dict) -> dict:
        w = next(w for w in WORKLOADS if w.id == request["id"])
        with Timer() as t:
            self.units[w.id] = self._build(w)
            for _ in range(2):  # compile and warm up
                self.units[w.id]()
            self.accepted[w.id].clear()
        return {"seconds": t.cpu, "wall": t.wall}

    def _target(self, name: str) -> LogPDF:
        return mixture_logpdf(self.data[f"{name}/means"], self.data[f"{name}/stds"], self.data[f"{name}/weights"])

    def _build(self, w: Workload):
        return build_unit(w, self._target(w.target), jnp.asarray(self.data[f"{w.id}/start"]),
                          self.accepted.setdefault(w.id, []))

    def time(self, request: dict) -> dict:
        unit = self.units[request["id"]]
        with Timer() as t:
            unit()
        return {"cpu": t.cpu, "wall": t.wall}

    def stats(self, request: dict) -> dict:
        accepted = self.accepted[request["id"]]
        if not accepted:
            return {}
        flags = np.concatenate([np.asarray(a).ravel() for a in accepted])
        return {"acceptance": float(flags.mean()), "acceptance_trials": int(flags.size)}


def build_unit(w: Workload, logpdf: LogPDF, start, accepted: list, n_keys: int = 64):
    """One timed unit of workload ``w``: a compiled call and its inputs; chains carry over between units."""
    key = jax.random.PRNGKey(SEED + 1)
    dim = start.shape[1]
    if w.kind == "ml":
        model = make_flow(dim, jax.random.PRNGKey(SEED + 2))
        optimizer = Optimizer(model, learning_rate=1e-3)
        box = {"model": model, "state": optimizer.optim_state}

        def unit():
            loss, box["model"], box["state"] = box["model"].train_step(start, optimizer.optim, box["state"])
            jax.block_until_ready(loss)

        return unit
    if w.kind == "mala":
        kernel = MALA(jnp.full(dim, math.sqrt(2 * TARGETS[w.target]["mala_step"])))  # dt^2 / 2 = eta
        strategy = TakeSerialSteps(*_NAMES, n_steps=w.steps)
    else:
        kernel = NFProposal(make_flow(dim, jax.random.PRNGKey(SEED + 2)))
        strategy = TakeGroupSteps(*_NAMES, n_steps=w.steps if w.kind == "imh" else N_PARTICLES - 1)
    # as TakeSteps.__call__ builds it, once
    sample = eqx.filter_jit(eqx.filter_vmap(jax.tree_util.Partial(strategy.sample, kernel),
                                            in_axes=(0, 0, None, None)))
    keys = iter(jax.random.split(key, (n_keys, start.shape[0])))  # per-chain keys, split before any timing
    box = {"position": start}

    def unit():
        nonlocal keys
        chain_keys = next(keys, None)
        if chain_keys is None:  # more units than prepared keys: split more (this unit's time then includes it)
            keys = iter(jax.random.split(jax.random.fold_in(key, len(accepted)), (n_keys, start.shape[0])))
            chain_keys = next(keys)
        positions, _, do_accept = sample(chain_keys, box["position"], logpdf, {})
        box["position"] = positions[:, -1]
        jax.block_until_ready(box["position"])
        accepted.append(do_accept)

    return unit


def first_sample(kind: str) -> dict:
    """Build the 2-D target, the flow and the compiled kernel, and advance 64 chains by one call (as timed);
    the time after imports until the positions are in hand (JAX's compilation included)."""
    start = time.process_time(), time.perf_counter()
    data = np.load(sys.argv[3])
    logpdf = mixture_logpdf(data["2d/means"], data["2d/stds"], data["2d/weights"])
    w = Workload(kind, "2d", 64)
    build_unit(w, logpdf, jnp.asarray(data[f"{w.id}/start"]), [], n_keys=1)()
    return {"cpu": time.process_time() - start[0], "wall": time.perf_counter() - start[1],
            "import_cpu": IMPORT_SECONDS[0], "import_wall": IMPORT_SECONDS[1]}


def main() -> None:
    if sys.argv[1] == "--first-sample":
        import json
        print(json.dumps(first_sample(sys.argv[2])))
        return
    side = Theirs(sys.argv[1])
    serve({"info": side.info, "prepare": side.prepare, "time": side.time, "stats": side.stats})


if __name__ == "__main__":
    main()
