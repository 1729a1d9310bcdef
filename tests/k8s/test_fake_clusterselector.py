"""FakeKube's operator on a standalone RayCluster and on RayJobs that select it (clusterSelector).

KubeRay reconciles a RayCluster created on its own (head and worker pods, ``status.state:
ready``) and runs a RayJob whose ``spec.clusterSelector`` names it on that cluster, without
owning it: the cluster outlives the RayJobs. These tests drive that through the official
Kubernetes client only, so that what the fake plays is pinned down the way a caller sees it.
One Ray cluster is started in this module (the machine is small); the rest needs no Ray.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from kubernetes import client, watch

from flyray import Resources, TaskEnvironment
from flyray.manifest.rayjob import render_rayjob
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig
from flyray.plugins.ray.request import ray_request
from tests.procs import wait_until_gone

GROUP, VERSION, NS = "ray.io", "v1", "default"
RAYJOBS, RAYCLUSTERS = "rayjobs", "rayclusters"
IMAGE, RAY_VERSION = "rayproject/ray:2.60.0-py311", "2.60.0"
CLUSTER = "shared"
PRINT_ADDRESS = "python -c \"import os; print('driver at', os.environ['RAY_ADDRESS'])\""
SLEEP = 'python -c "import time; time.sleep(300)"'
RAY_S = 120  # generous: the machine is shared and has 2 cores


def cluster_spec() -> dict[str, Any]:
    """A RayCluster spec as flyray renders it: a 1-CPU head, no workers."""
    env = TaskEnvironment(
        "selected",
        plugin_config=RayJobConfig(head_node_config=HeadNodeConfig(requests=Resources(cpu=1))),
    )

    def tiny() -> None:
        pass

    task = env.task(tiny)
    rendered = render_rayjob(
        ray_request(task), run_id="r1", entrypoint=["true"], image=IMAGE, ray_version=RAY_VERSION
    )
    return rendered["spec"]["rayClusterSpec"]


def raycluster(name: str = CLUSTER) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RayCluster",
        "metadata": {"name": name},
        "spec": cluster_spec(),
    }


def selecting_rayjob(
    name: str, entrypoint: str, *, cluster: str = CLUSTER, **spec: Any
) -> dict[str, Any]:
    """A RayJob that runs ``entrypoint`` on the RayCluster named ``cluster``."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RayJob",
        "metadata": {"name": name},
        "spec": {"clusterSelector": {"ray.io/cluster": cluster}, "entrypoint": entrypoint, **spec},
    }


def status(fake_kube: Any, kind: str, name: str) -> dict[str, Any]:
    """The stored object's status ({} when it has none or is gone)."""
    obj = fake_kube.get_object(kind, name)
    return (obj or {}).get("status") or {}


def wait_deployment(
    fake_kube: Any, name: str, state: str, timeout: float = RAY_S
) -> dict[str, Any]:
    """Wait for a RayJob's ``jobDeploymentStatus``; its status then."""
    reached = fake_kube.wait_for(
        lambda: status(fake_kube, "RayJob", name).get("jobDeploymentStatus") == state, timeout
    )
    found = status(fake_kube, "RayJob", name)
    assert reached, f"RayJob {name} never reached {state}: {found}"
    return found


def delete_rayjob(fake_kube: Any, crds: client.CustomObjectsApi, name: str) -> None:
    """Delete through the API and wait until the operator let it go (its finalizer)."""
    crds.delete_namespaced_custom_object(GROUP, VERSION, NS, RAYJOBS, name)
    assert fake_kube.wait_for(lambda: fake_kube.get_object("RayJob", name) is None, 60)


def cluster_pods(core: client.CoreV1Api) -> list[Any]:
    return core.list_namespaced_pod(NS, label_selector=f"ray.io/cluster={CLUSTER}").items


def submitter_log(core: client.CoreV1Api, rayjob: str) -> str:
    (pod,) = core.list_namespaced_pod(NS, label_selector=f"job-name={rayjob}").items
    return core.read_namespaced_pod_log(pod.metadata.name, NS)


@pytest.mark.slow
def test_rayjobs_run_on_a_standalone_raycluster_they_do_not_own(fake_kube, crds, core):
    """Two RayJobs in turn on one standalone RayCluster; deletes touch only what they own.

    The first RayJob is created before the cluster: it waits Initializing. A long one, deleted
    while running, has its Ray job stopped but leaves the cluster up. Deleting the RayCluster
    removes its pods and stops its Ray processes.
    """
    from ray.job_submission import JobStatus, JobSubmissionClient

    crds.create_namespaced_custom_object(
        GROUP, VERSION, NS, RAYJOBS, selecting_rayjob("first", PRINT_ADDRESS)
    )
    waiting = wait_deployment(fake_kube, "first", "Initializing", timeout=10)
    assert waiting["rayClusterName"] == CLUSTER
    assert waiting["jobId"].startswith("first-") and waiting["startTime"]
    assert "dashboardURL" not in waiting
    assert not fake_kube.objects("RayCluster") and not fake_kube.objects("jobs")

    created = crds.create_namespaced_custom_object(GROUP, VERSION, NS, RAYCLUSTERS, raycluster())
    (head,) = cluster_pods(core)  # at once, Pending
    assert head.status.phase == "Pending"
    assert fake_kube.wait_for(
        lambda: status(fake_kube, "RayCluster", CLUSTER).get("state") == "ready", RAY_S
    ), status(fake_kube, "RayCluster", CLUSTER)
    ready = crds.get_namespaced_custom_object(GROUP, VERSION, NS, RAYCLUSTERS, CLUSTER)["status"]
    assert (ready["desiredWorkerReplicas"], ready["readyWorkerReplicas"]) == (0, 0)
    assert (ready["head"]["serviceIP"], ready["head"]["podIP"]) == ("127.0.0.1", "127.0.0.1")
    assert ready["head"]["podName"] == head.metadata.name
    head_ready = next(c for c in ready["conditions"] if c["type"] == "HeadPodReady")
    assert head_ready["status"] == "True"
    (head,) = cluster_pods(core)
    labels = head.metadata.labels
    assert (labels["ray.io/node-type"], labels["ray.io/group"]) == ("head", "headgroup")
    assert head.status.phase == "Running"
    (owner,) = head.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid) == (
        "RayCluster",
        CLUSTER,
        created["metadata"]["uid"],
    )

    first = wait_deployment(fake_kube, "first", "Complete")
    crds.create_namespaced_custom_object(
        GROUP, VERSION, NS, RAYJOBS, selecting_rayjob("second", PRINT_ADDRESS)
    )
    second = wait_deployment(fake_kube, "second", "Complete")
    dashboard = f"127.0.0.1:{ready['endpoints']['dashboard']}"
    for name, done in (("first", first), ("second", second)):
        assert (done["rayClusterName"], done["dashboardURL"]) == (CLUSTER, dashboard), name
        assert (done["jobStatus"], done["succeeded"], done["failed"]) == ("SUCCEEDED", 1, 0)
        assert done["startTime"] and done["endTime"]
        printed = submitter_log(core, name)  # the driver ran against this cluster's GCS
        gcs_port = ready["endpoints"]["gcs-server"]
        assert re.search(rf"^driver at \S+:{gcs_port}$", printed, re.MULTILINE), printed
    listed = crds.list_namespaced_custom_object(GROUP, VERSION, NS, RAYCLUSTERS)["items"]
    assert [c["metadata"]["name"] for c in listed] == [CLUSTER]
    assert [p.metadata.name for p in cluster_pods(core)] == [head.metadata.name]
    ray = fake_kube.operator.local_cluster(NS, CLUSTER)
    assert fake_kube.ray_cluster("second") is ray
    jobs = JobSubmissionClient(ray.dashboard_url, headers=ray.auth_headers())
    for done in (first, second):
        assert jobs.get_job_status(done["jobId"]) == JobStatus.SUCCEEDED

    crds.create_namespaced_custom_object(
        GROUP, VERSION, NS, RAYJOBS, selecting_rayjob("long", SLEEP)
    )
    assert fake_kube.wait_for(
        lambda: status(fake_kube, "RayJob", "long").get("jobStatus") == "RUNNING", RAY_S
    ), status(fake_kube, "RayJob", "long")
    long_id = status(fake_kube, "RayJob", "long")["jobId"]
    delete_rayjob(fake_kube, crds, "long")
    assert fake_kube.wait_for(lambda: jobs.get_job_status(long_id) == JobStatus.STOPPED, 30)
    assert fake_kube.get_object("jobs", "long") is None  # the submitter was the RayJob's
    delete_rayjob(fake_kube, crds, "first")
    assert status(fake_kube, "RayCluster", CLUSTER)["state"] == "ready"
    assert [p.metadata.name for p in cluster_pods(core)] == [head.metadata.name]
    assert jobs.get_job_status(second["jobId"]) == JobStatus.SUCCEEDED  # Ray is still up

    (root,) = fake_kube.started_cluster_dirs  # the one Ray cluster of this test
    crds.delete_namespaced_custom_object(GROUP, VERSION, NS, RAYCLUSTERS, CLUSTER)
    assert not cluster_pods(core) and not fake_kube.objects("RayCluster")
    assert wait_until_gone(str(root), timeout=30) == []
    assert status(fake_kube, "RayJob", "second")["jobDeploymentStatus"] == "Complete"


def test_a_rayjob_on_a_missing_cluster_fails_at_its_deadline_without_retries(fake_kube, crds):
    """No RayCluster of that name: Initializing until preRunningDeadlineSeconds, then Failed.

    ``backoffLimit`` would retry in rayClusterSpec mode; with a selector the failure is final.
    Nothing is created on the RayJob's behalf, and a delete lets it go.
    """
    manifest = selecting_rayjob(
        "orphan", PRINT_ADDRESS, cluster="nowhere", preRunningDeadlineSeconds=1, backoffLimit=2
    )
    since = crds.list_namespaced_custom_object(GROUP, VERSION, NS, RAYJOBS)["metadata"][
        "resourceVersion"
    ]
    crds.create_namespaced_custom_object(GROUP, VERSION, NS, RAYJOBS, manifest)
    steps = []
    stream = watch.Watch()
    for event in stream.stream(
        crds.list_namespaced_custom_object,
        GROUP,
        VERSION,
        NS,
        RAYJOBS,
        resource_version=since,
        timeout_seconds=60,
    ):
        steps.append((event["object"].get("status") or {}).get("jobDeploymentStatus"))
        if steps[-1] == "Failed":
            stream.stop()
    assert steps == [None, None, "Initializing", "Failed"]  # ADDED, the finalizer, ...
    failed = status(fake_kube, "RayJob", "orphan")
    assert failed["rayClusterName"] == "nowhere"
    assert (failed["reason"], failed["failed"], failed["succeeded"]) == (
        "PreRunningDeadlineExceeded",
        1,
        0,
    )
    for kind in ("RayCluster", "pods", "jobs"):
        assert not fake_kube.objects(kind), kind
    delete_rayjob(fake_kube, crds, "orphan")
    assert not fake_kube.started_cluster_dirs


def test_a_raycluster_that_breaks_an_operator_rule_is_left_alone(fake_kube, crds, core):
    """A 54-character name passes the API server but not KubeRay (53): no pods, no status."""
    name = "c" * 54
    crds.create_namespaced_custom_object(GROUP, VERSION, NS, RAYCLUSTERS, raycluster(name))
    stored = crds.get_namespaced_custom_object(GROUP, VERSION, NS, RAYCLUSTERS, name)
    assert "status" not in stored and not core.list_namespaced_pod(NS).items
    crds.delete_namespaced_custom_object(GROUP, VERSION, NS, RAYCLUSTERS, name)
    assert not fake_kube.objects("RayCluster") and not fake_kube.started_cluster_dirs
