"""Which warm cluster a run gets (without Ray): the same cluster part, the environment's first."""

import time

from flyray.executors.localcluster.warm.clusters import acquire, release
from flyray.executors.localcluster.warm.match import cluster_key
from flyray.executors.localcluster.warm.registry import Process, Registry, WarmCluster
from tests.executors.localcluster.test_warm_match import manifest, seed_task


def put(registry, name, key, state="running") -> WarmCluster:
    entry = WarmCluster(
        name=name,
        key=key,
        source="s",
        idle_timeout=60.0,
        owner=Process.current(),  # alive, with no nodes to lose: clean-up keeps it
        state=state,
        last_used=time.time() - 30,
    )
    with registry.locked():
        registry.put(entry)
    return entry


def test_a_matching_cluster_is_leased_then_released(tmp_path):
    registry, run = Registry(tmp_path), manifest(seed_task(2))
    put(registry, "other", cluster_key(run))
    put(registry, "ray-env", cluster_key(run))
    lease = acquire(registry, run, preferred="ray-env")
    assert lease.cluster.name == "ray-env"  # the environment's own cluster first
    held = registry.get("ray-env")
    assert list(held.leases.values()) == [Process.current()]
    assert time.time() - held.last_used < 5
    release(registry, lease)
    assert registry.get("ray-env").leases == {}


def test_a_different_cluster_is_not_used_and_the_reason_is_said(tmp_path):
    registry, progress = Registry(tmp_path), []
    put(registry, "ray-env", cluster_key(manifest(seed_task(2))))
    assert (
        acquire(registry, manifest(seed_task(3)), preferred="ray-env", report=progress.append)
        is None
    )
    assert progress == [
        "not using warm cluster 'ray-env', it differs: "
        "workerGroupSpecs[0].maxReplicas: 2 (warm cluster 'ray-env') != 3 (this run); "
        "workerGroupSpecs[0].minReplicas: 2 (warm cluster 'ray-env') != 3 (this run); "
        "workerGroupSpecs[0].replicas: 2 (warm cluster 'ray-env') != 3 (this run); "
        "starting a new cluster"
    ]


def test_a_cluster_that_is_not_running_is_not_used(tmp_path):
    registry, run = Registry(tmp_path), manifest(seed_task(2))
    put(registry, "ray-env", cluster_key(run), state="stopping")
    assert acquire(registry, run, preferred="ray-env") is None
    assert acquire(Registry(tmp_path / "none"), run, preferred="ray-env") is None
