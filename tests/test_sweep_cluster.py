"""Scale-out on one machine: a two-node Ray cluster (Ray's own cluster utilities) runs a smoke sweep of chapter
01 with one seed on each node, joined by address like `ebmflow sweep --address`; the records come back here."""
import pytest

from ebmflow.book import records, sweep


@pytest.fixture(scope="module")
def cluster():
    import os

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    if ray.is_initialized():
        ray.shutdown()
    cluster.shutdown()


@pytest.mark.slow
def test_a_sweep_across_two_nodes_gathers_every_record(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("EBMFLOW_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("EBMFLOW_LOG_DIR", str(tmp_path / "logs"))
    specs = sweep.sweep_specs("01_motivating_example", [0, 1], "smoke", {})
    outcomes = sweep.run_specs(specs, address=cluster.address, progress=False, echo=print)
    assert all(o.ok for o in outcomes), [o.message for o in outcomes]
    assert len({o.node for o in outcomes}) == 2, "one run on each node (each has one CPU)"
    loaded = records.load_records("01_motivating_example", "smoke", root=tmp_path / "results")
    assert [r["seed"] for r in loaded] == [0, 1]
    assert records.summarize(loaded)["fig1_global_acceptance_flowmc"].n == 2
