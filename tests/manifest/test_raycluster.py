"""Reusable RayClusters: the cluster of a RayJob, and the RayJob that selects it."""

from __future__ import annotations

import pytest

from flyray import ConfigError, ManifestError, Resources
from flyray.manifest.labels import CLUSTER_HASH_LABEL, SELECTED_CLUSTER_LABEL
from flyray.manifest.raycluster import cluster_hash, render_raycluster, select_cluster
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig
from tests.manifest.cases import make_task, render
from tests.manifest.kuberay import operator_violations, schema_errors


def seed_config(**overrides) -> RayJobConfig:
    kwargs = {
        "head_node_config": HeadNodeConfig(requests=Resources(cpu="1", memory="2Gi")),
        "worker_node_config": [
            WorkerNodeConfig(group_name="cpu-workers", replicas=2, requests=Resources(cpu="2"))
        ],
        "shutdown_after_job_finishes": True,
        "ttl_seconds_after_finished": 600,
        "reuse_cluster": True,
    }
    return RayJobConfig(**{**kwargs, **overrides})


def test_the_cluster_is_the_rayjobs_cluster_named_by_its_hash():
    rayjob = render(make_task(seed_config(), env_name="ray_env"), namespace="ml")
    cluster = render_raycluster(rayjob)
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster")
    assert cluster["spec"] == rayjob["spec"]["rayClusterSpec"]
    digest = cluster_hash(rayjob)
    assert cluster["metadata"]["name"] == f"ray-env-{digest}"
    assert cluster["metadata"]["namespace"] == "ml"
    assert cluster["metadata"]["labels"][CLUSTER_HASH_LABEL] == digest
    assert cluster["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "flyray"


def test_same_cluster_same_hash_whatever_the_run():
    task = make_task(seed_config())
    first, second = render(task, run_id="r0000000001"), render(task, run_id="r0000000002")
    assert first != second and cluster_hash(first) == cluster_hash(second)
    bigger = make_task(
        seed_config(
            worker_node_config=[
                WorkerNodeConfig(group_name="cpu-workers", replicas=3, requests=Resources(cpu="2"))
            ]
        )
    )
    assert cluster_hash(render(bigger)) != cluster_hash(first)


def test_long_environment_names_keep_the_cluster_name_short():
    task = make_task(seed_config(), env_name="a_very_long_environment_name_for_a_cluster" * 2)
    name = render_raycluster(render(task))["metadata"]["name"]
    assert len(name) <= 40 and name.endswith(cluster_hash(render(task)))


def test_the_selecting_rayjob_follows_kuberays_rules():
    rayjob = render(make_task(seed_config(), timeout=60))
    selecting = select_cluster(rayjob, "ray-env-0123456789")
    spec = selecting["spec"]
    assert spec["clusterSelector"] == {"ray.io/cluster": "ray-env-0123456789"}
    for gone in ("rayClusterSpec", "shutdownAfterJobFinishes", "ttlSecondsAfterFinished"):
        assert gone not in spec
    assert "backoffLimit" not in spec
    assert spec["activeDeadlineSeconds"] == 60
    assert spec["entrypoint"] == rayjob["spec"]["entrypoint"]
    assert selecting["metadata"]["labels"][SELECTED_CLUSTER_LABEL] == "ray-env-0123456789"
    assert schema_errors(selecting) == []
    assert operator_violations(selecting) == []


def test_retries_cannot_reuse_a_cluster():
    rayjob = render(make_task(seed_config(), retries=2))
    with pytest.raises(ManifestError, match=r"retries=2 and reuse_cluster=True"):
        select_cluster(rayjob, "c")


def test_reuse_cannot_go_with_an_address():
    with pytest.raises(ConfigError, match=r"reuse_cluster.*cannot go with address="):
        RayJobConfig(address="ray://head:10001", reuse_cluster=True)
