"""FakeKube, the test API server, driven through the official Kubernetes client only.

These tests pin down what the kuberay executor's tests rely on: discovery, validation (422 for
schema errors, ValidationFailed for operator rules), the RayJob lifecycle played with real Ray,
pods and logs, watches (resume, 410), and the faults a test can inject.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from flyray import Resources, TaskEnvironment
from flyray.manifest.rayjob import render_rayjob
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig
from flyray.plugins.ray.request import ray_request
from tests.manifest.kuberay import schema_errors
from tests.procs import wait_until_gone

GROUP, VERSION, RAYJOBS, NS = "ray.io", "v1", "rayjobs", "default"
IMAGE, RAY_VERSION = "rayproject/ray:2.60.0-py311", "2.60.0"
HELLO = ["python", "-c", "print('hello from the job')"]
WATCH_S = 120  # a watch's own timeout: a broken server fails a test instead of hanging it


def rayjob(
    run_id: str = "r1",
    *,
    entrypoint: list[str] = HELLO,
    retries: int = 0,
    timeout: float | None = None,
    **config: Any,
) -> dict[str, Any]:
    """A rendered RayJob: a 1-CPU head, no workers, one tiny task."""
    env = TaskEnvironment(
        "k8s_api",
        plugin_config=RayJobConfig(
            head_node_config=HeadNodeConfig(requests=Resources(cpu=1)), **config
        ),
    )

    def tiny() -> None:
        pass

    task = env.task(retries=retries, timeout=timeout)(tiny)
    return render_rayjob(
        ray_request(task),
        run_id=run_id,
        entrypoint=entrypoint,
        image=IMAGE,
        ray_version=RAY_VERSION,
    )


def create(crds: client.CustomObjectsApi, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return crds.create_namespaced_custom_object(GROUP, VERSION, NS, RAYJOBS, body, **kwargs)


def list_rv(crds: client.CustomObjectsApi) -> str:
    return crds.list_namespaced_custom_object(GROUP, VERSION, NS, RAYJOBS)["metadata"][
        "resourceVersion"
    ]


def status(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("status") or {}


def watch_rayjob(
    crds: client.CustomObjectsApi, name: str, since: str, until: Any
) -> list[dict[str, Any]]:
    """The RayJob's watch events from resourceVersion ``since`` up to the first ``until(event)``."""
    seen = []
    stream = watch.Watch()
    for event in stream.stream(
        crds.list_namespaced_custom_object,
        GROUP,
        VERSION,
        NS,
        RAYJOBS,
        field_selector=f"metadata.name={name}",
        resource_version=since,
        timeout_seconds=WATCH_S,
    ):
        seen.append(event)
        if until(event):
            stream.stop()
    assert seen and until(seen[-1]), f"the watch ended early: {[deployment(e) for e in seen]}"
    return seen


def deployment(event: dict[str, Any]) -> str | None:
    return status(event["object"]).get("jobDeploymentStatus")


def api_error(info: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    return json.loads(info.value.body)


# -- discovery, auth, access -------------------------------------------------------------------


def test_discovery_crd_and_access_review(fake_kube, kube_api, crds):
    assert client.VersionApi(kube_api).get_code().major == "1"
    groups = [g.name for g in client.ApisApi(kube_api).get_api_versions().groups]
    assert "ray.io" in groups and "batch" in groups
    names = [r.name for r in crds.get_api_resources(GROUP, VERSION).resources]
    assert {"rayjobs", "rayjobs/status", "rayclusters"} <= set(names)
    extensions = client.ApiextensionsV1Api(kube_api)
    crd = extensions.read_custom_resource_definition("rayjobs.ray.io")
    assert [(v.name, v.served) for v in crd.spec.versions] == [("v1", True)]
    assert (
        "runtimeEnvYAML"
        in crd.spec.versions[0].schema.open_apiv3_schema.properties["spec"].properties
    )

    def allowed(verb: str, resource: str) -> bool:
        attrs = client.V1ResourceAttributes(verb=verb, resource=resource, group=GROUP, namespace=NS)
        review = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attrs)
        )
        return (
            client.AuthorizationV1Api(kube_api)
            .create_self_subject_access_review(review)
            .status.allowed
        )

    assert allowed("create", "rayjobs")
    fake_kube.forbid = {("create", "rayjobs")}
    assert not allowed("create", "rayjobs") and allowed("delete", "rayjobs")
    with pytest.raises(ApiException) as info:
        create(crds, rayjob())
    assert (
        info.value.status == 403
        and 'cannot create resource "rayjobs"' in api_error(info)["message"]
    )

    fake_kube.no_crd = True
    with pytest.raises(ApiException) as info:
        extensions.read_custom_resource_definition("rayjobs.ray.io")
    assert info.value.status == 404
    with pytest.raises(ApiException) as info:
        crds.list_namespaced_custom_object(GROUP, VERSION, NS, RAYJOBS)
    assert info.value.status == 404
    assert "ray.io" not in [g.name for g in client.ApisApi(kube_api).get_api_versions().groups]


def test_a_wrong_token_is_401(fake_kube, tmp_path):
    from kubernetes import config

    wrong = tmp_path / "wrong-kubeconfig"
    wrong.write_text(fake_kube.kubeconfig_path.read_text().replace(fake_kube.token, "nope"))
    api = config.new_client_from_config(config_file=str(wrong))
    try:
        with pytest.raises(ApiException) as info:
            client.CoreV1Api(api).list_namespaced_pod(NS)
        assert info.value.status == 401 and api_error(info)["reason"] == "Unauthorized"
    finally:
        api.close()


# -- create: validation, dry run, conflicts ----------------------------------------------------


def test_dry_run_validates_and_stores_nothing(fake_kube, crds):
    fake_kube.stuck_initializing = True  # the real create below starts no Ray
    manifest = rayjob()
    echoed = create(crds, manifest, dry_run="All")
    assert echoed["metadata"]["name"] == manifest["metadata"]["name"]
    assert echoed["metadata"]["uid"] and "status" not in echoed
    assert echoed["spec"]["submissionMode"] == "K8sJobMode"  # schema defaults are filled
    assert fake_kube.objects("RayJob") == []
    bad = rayjob()
    bad["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"] = {"num-cpus": 1}
    with pytest.raises(ApiException) as info:
        create(crds, bad, dry_run="All")
    assert info.value.status == 422
    create(crds, manifest)
    posts = [r for r in fake_kube.requests if r.method == "POST" and r.path.endswith("/rayjobs")]
    assert [(r.query.get("dryRun"), r.status) for r in posts] == [
        ("All", 201),
        ("All", 422),
        (None, 201),
    ]
    assert [o["metadata"]["name"] for o in fake_kube.objects("rayjobs")] == [
        manifest["metadata"]["name"]
    ]


def test_schema_errors_are_422_invalid(fake_kube, crds):
    manifest = rayjob()
    manifest["spec"]["entrypont"] = manifest["spec"].pop("entrypoint")  # a misspelled field
    manifest["spec"]["rayClusterSpec"]["enableInTreeAutoscaling"] = "no"
    with pytest.raises(ApiException) as info:
        create(crds, manifest)
    error = api_error(info)
    assert (info.value.status, error["reason"]) == (422, "Invalid")
    assert error["message"].startswith(f'RayJob.ray.io "{manifest["metadata"]["name"]}" is invalid')
    assert 'unknown field "spec.entrypont"' in error["message"]
    fields = {cause["field"] for cause in error["details"]["causes"]}
    assert fields == {"spec.entrypont", "spec.rayClusterSpec.enableInTreeAutoscaling"}
    bad_label = rayjob()
    bad_label["metadata"]["labels"]["flyray.io/task"] = "not a label value!"
    with pytest.raises(ApiException) as info:
        create(crds, bad_label)
    assert info.value.status == 422 and "metadata.labels" in api_error(info)["message"]
    assert fake_kube.objects("RayJob") == []


def test_operator_rules_pass_the_api_and_end_validation_failed(fake_kube, crds, core):
    manifest = rayjob()
    manifest["metadata"]["name"] = "n" * 48  # a RayJob name may have at most 47 characters
    manifest["spec"]["ttlSecondsAfterFinished"] = 60  # without shutdownAfterJobFinishes
    created = create(crds, manifest)
    assert created["metadata"]["resourceVersion"]
    since = created["metadata"]["resourceVersion"]
    events = watch_rayjob(crds, "n" * 48, since, lambda e: deployment(e) == "ValidationFailed")
    final = status(events[-1]["object"])
    assert final["reason"] == "ValidationFailed"
    assert "at most 47" in final["message"] and "ttlSecondsAfterFinished" in final["message"]
    assert not fake_kube.objects("RayCluster") and not core.list_namespaced_pod(NS).items
    crds.delete_namespaced_custom_object(GROUP, VERSION, NS, RAYJOBS, "n" * 48)
    assert fake_kube.wait_for(lambda: not fake_kube.objects("RayJob"), timeout=10)


def test_a_taken_name_is_409_and_an_unknown_one_404(fake_kube, crds):
    fake_kube.stuck_initializing = True
    manifest = rayjob()
    create(crds, manifest)
    with pytest.raises(ApiException) as info:
        create(crds, manifest)
    assert (info.value.status, api_error(info)["reason"]) == (409, "AlreadyExists")
    with pytest.raises(ApiException) as info:
        crds.get_namespaced_custom_object(GROUP, VERSION, NS, RAYJOBS, "missing")
    assert info.value.status == 404
    assert api_error(info)["message"] == 'rayjobs.ray.io "missing" not found'


# -- updates -----------------------------------------------------------------------------------


def test_patch_update_and_status_subresource(fake_kube, crds):
    fake_kube.stuck_initializing = True
    name = rayjob()["metadata"]["name"]
    create(crds, rayjob())
    patched = crds.patch_namespaced_custom_object(
        GROUP, VERSION, NS, RAYJOBS, name, {"metadata": {"labels": {"extra": "yes"}}}
    )
    assert patched["metadata"]["labels"]["extra"] == "yes"
    assert patched["metadata"]["generation"] == 1
    patched = crds.patch_namespaced_custom_object(
        GROUP, VERSION, NS, RAYJOBS, name, {"spec": {"suspend": False}, "status": {"x": 1}}
    )
    assert patched["metadata"]["generation"] == 2  # a spec change; status is ignored here
    assert "x" not in status(patched)
    patched = crds.patch_namespaced_custom_object_status(
        GROUP, VERSION, NS, RAYJOBS, name, {"status": {"message": "from a test"}}
    )
    assert status(patched)["message"] == "from a test"
    patched = crds.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        NS,
        RAYJOBS,
        name,
        [{"op": "replace", "path": "/metadata/labels/extra", "value": "no"}],
        _content_type="application/json-patch+json",
    )
    assert patched["metadata"]["labels"]["extra"] == "no"
    with pytest.raises(ApiException) as info:
        crds.patch_namespaced_custom_object(
            GROUP, VERSION, NS, RAYJOBS, name, {"spec": {"backoffLimit": "two"}}
        )
    assert info.value.status == 422
    stale = dict(patched, metadata={**patched["metadata"], "resourceVersion": "1"})
    with pytest.raises(ApiException) as info:
        crds.replace_namespaced_custom_object(GROUP, VERSION, NS, RAYJOBS, name, stale)
    assert (info.value.status, api_error(info)["reason"]) == (409, "Conflict")


# -- stuck clusters, deadlines, retries (no Ray) -------------------------------------------------


def test_pre_running_deadline_retries_on_a_new_cluster(fake_kube, crds, core):
    fake_kube.stuck_initializing = True
    manifest = rayjob(retries=1)
    manifest["spec"]["preRunningDeadlineSeconds"] = 1
    name = manifest["metadata"]["name"]
    since = list_rv(crds)
    create(crds, manifest)
    events = watch_rayjob(crds, name, since, lambda e: deployment(e) == "Failed")
    steps = [deployment(e) for e in events]
    assert steps == [
        None,  # ADDED
        None,  # the finalizer
        "Initializing",
        "Retrying",
        None,  # KubeRay resets the status before the next try
        "Initializing",
        "Failed",
    ]
    final = status(events[-1]["object"])
    assert (final["reason"], final["failed"], final["succeeded"]) == (
        "PreRunningDeadlineExceeded",
        2,
        0,
    )
    first, second = (
        status(e["object"])["rayClusterName"] for e in events if deployment(e) == "Initializing"
    )
    assert first != second and second.startswith(f"{name}-raycluster-")
    assert [c["metadata"]["name"] for c in fake_kube.objects("RayCluster")] == [second]
    (head,) = core.list_namespaced_pod(
        NS, label_selector=f"ray.io/cluster={second},ray.io/node-type in (head)"
    ).items
    scheduled = next(c for c in head.status.conditions if c.type == "PodScheduled")
    assert (head.status.phase, scheduled.status, scheduled.reason) == (
        "Pending",
        "False",
        "Unschedulable",
    )
    with pytest.raises(ApiException) as info:  # no log from a pod that never started
        core.read_namespaced_pod_log(head.metadata.name, NS)
    assert info.value.status == 400 and "waiting to start" in api_error(info)["message"]
    assert fake_kube.started_cluster_dirs == []


def test_active_deadline_fails_without_retry(fake_kube, crds):
    fake_kube.stuck_initializing = True
    manifest = rayjob(retries=2, timeout=1)
    assert manifest["spec"]["activeDeadlineSeconds"] == 1
    since = list_rv(crds)
    create(crds, manifest)
    events = watch_rayjob(
        crds, manifest["metadata"]["name"], since, lambda e: deployment(e) == "Failed"
    )
    final = status(events[-1]["object"])
    assert (final["reason"], final["failed"]) == ("DeadlineExceeded", 1)
    assert "activeDeadlineSeconds" in final["message"]
    assert "Retrying" not in [deployment(e) for e in events]


# -- watches -------------------------------------------------------------------------------------


def test_a_dropped_watch_resumes_from_its_resource_version(fake_kube, crds):
    fake_kube.stuck_initializing = True
    manifest = rayjob()
    name = manifest["metadata"]["name"]
    since = list_rv(crds)
    create(crds, manifest)
    seen = []
    stream = watch.Watch()  # no timeout_seconds: the client retries a watch that ends
    for event in stream.stream(
        crds.list_namespaced_custom_object, GROUP, VERSION, NS, RAYJOBS, resource_version=since
    ):
        seen.append((event["type"], int(event["object"]["metadata"]["resourceVersion"])))
        if deployment(event) == "Initializing" and len(seen) == 3:
            fake_kube.drop_watches()
            crds.delete_namespaced_custom_object(GROUP, VERSION, NS, RAYJOBS, name)
        if event["type"] == "DELETED":
            stream.stop()
    assert [kind for kind, _ in seen] == ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]
    versions = [rv for _, rv in seen]
    assert versions == sorted(set(versions)), "events were lost, repeated or reordered"
    watches = [r.query for r in fake_kube.requests if r.query.get("watch") == "true"]
    assert [w.get("resourceVersion") for w in watches] == [since, str(versions[2])]


def test_an_abruptly_dropped_watch_is_a_protocol_error(fake_kube, crds):
    import urllib3

    fake_kube.stuck_initializing = True
    since = list_rv(crds)
    create(crds, rayjob())
    stream = watch.Watch()
    events = stream.stream(
        crds.list_namespaced_custom_object, GROUP, VERSION, NS, RAYJOBS, resource_version=since
    )
    next(events)
    fake_kube.drop_watches(abrupt=True)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        for _ in events:
            pass


def test_a_watch_from_too_old_a_version_is_410(fake_kube, crds):
    fake_kube.stuck_initializing = True
    create(crds, rayjob())
    fake_kube.gone_below(fake_kube.resource_version)
    with pytest.raises(ApiException) as info:  # an ERROR event; the client retries once
        watch_rayjob(crds, "any", "1", lambda e: True)
    assert info.value.status == 410
    fake_kube.gone_below(fake_kube.resource_version, http=True)
    with pytest.raises(ApiException) as info:
        watch_rayjob(crds, "any", "1", lambda e: True)
    assert info.value.status == 410
    fake_kube.gone_below(0)
    fake_kube.max_events = 2  # the history keeps only the last two events
    with pytest.raises(ApiException) as info:
        watch_rayjob(crds, "any", "1", lambda e: True)
    assert info.value.status == 410


# -- faults and selectors ------------------------------------------------------------------------


def test_fail_next_answers_errors_then_recovers(fake_kube, kube_api, crds, core):
    fake_kube.fail_next(1, 500)
    with pytest.raises(ApiException) as info:
        core.list_namespaced_pod(NS)
    assert info.value.status == 500
    core.list_namespaced_pod(NS)
    fake_kube.fail_next(1, 429, retry_after=0)
    core.list_namespaced_pod(NS)  # urllib3, inside the client, retries a 429 with Retry-After
    fake_kube.fail_next(4, 429, retry_after=0)  # ... up to 3 times
    with pytest.raises(ApiException) as info:
        core.list_namespaced_pod(NS)
    assert info.value.status == 429 and info.value.headers["Retry-After"] == "0"
    fake_kube.fail_next(2, 503, method="GET", path="/rayjobs")
    client.VersionApi(kube_api).get_code()  # not matched: answered
    for _ in range(2):
        with pytest.raises(ApiException) as info:
            crds.list_namespaced_custom_object(GROUP, VERSION, NS, RAYJOBS)
        assert info.value.status == 503
    crds.list_namespaced_custom_object(GROUP, VERSION, NS, RAYJOBS)
    answered = [r.status for r in fake_kube.requests]
    assert answered == [500, 200, 429, 200, 429, 429, 429, 429, 200, 503, 503, 200]


def test_selectors_find_the_operators_objects(fake_kube, crds, core, kube_api):
    fake_kube.stuck_initializing = True
    manifest = rayjob()
    name = manifest["metadata"]["name"]
    create(crds, manifest)
    cluster = fake_kube.wait_for(
        lambda: status(fake_kube.get_object("RayJob", name)).get("rayClusterName")
    )
    pods = core.list_namespaced_pod(NS, label_selector=f"ray.io/cluster={cluster}").items
    assert [p.metadata.labels["ray.io/node-type"] for p in pods] == ["head"]
    assert pods[0].metadata.labels["ray.io/group"] == "headgroup"
    assert not core.list_namespaced_pod(NS, label_selector="ray.io/node-type!=head").items
    assert not core.list_namespaced_pod(NS, label_selector="!ray.io/cluster").items
    by_name = crds.list_namespaced_custom_object(
        GROUP, VERSION, NS, RAYJOBS, field_selector=f"metadata.name={name}"
    )["items"]
    assert [o["metadata"]["name"] for o in by_name] == [name]
    by_label = crds.list_namespaced_custom_object(
        GROUP, VERSION, NS, "rayclusters", label_selector=f"ray.io/originated-from-cr-name={name}"
    )["items"]
    assert [o["metadata"]["name"] for o in by_label] == [cluster]
    assert by_label[0]["metadata"]["ownerReferences"][0]["kind"] == "RayJob"
    # a watch without a resourceVersion starts with the current objects, as ADDED
    events = list(
        watch.Watch().stream(
            core.list_namespaced_pod, NS, label_selector="ray.io/node-type=head", timeout_seconds=1
        )
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", pods[0].metadata.name)
    ]


# -- with Ray ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_rayjob_runs_to_complete(fake_kube, crds, core, kube_api):
    manifest = rayjob(shutdown_after_job_finishes=True)
    name = manifest["metadata"]["name"]
    since = list_rv(crds)
    create(crds, manifest)
    events = watch_rayjob(crds, name, since, lambda e: deployment(e) == "Running")
    running = status(events[-1]["object"])
    host, port = running["dashboardURL"].split(":")
    assert host == "127.0.0.1" and port.isdigit()
    assert fake_kube.ray_cluster(name).dashboard_url == f"http://127.0.0.1:{port}"
    assert running["rayClusterStatus"]["state"] == "ready"
    (head,) = core.list_namespaced_pod(
        NS, label_selector=f"ray.io/cluster={running['rayClusterName']},ray.io/node-type=head"
    ).items
    assert head.status.phase == "Running"
    assert "Ray runtime started" in core.read_namespaced_pod_log(head.metadata.name, NS)
    (submitter,) = core.list_namespaced_pod(NS, label_selector=f"job-name={name}").items
    stream = core.read_namespaced_pod_log(
        submitter.metadata.name, NS, follow=True, _preload_content=False
    )
    followed = stream.read().decode()  # until the job ends
    assert "hello from the job" in followed
    events += watch_rayjob(
        crds,
        name,
        events[-1]["object"]["metadata"]["resourceVersion"],
        lambda e: deployment(e) in ("Complete", "Failed"),
    )
    steps = [deployment(e) for e in events]
    assert [s for i, s in enumerate(steps) if s and s != steps[i - 1]] == [
        "Initializing",
        "Running",
        "Complete",
    ]
    final = events[-1]["object"]
    assert (status(final)["jobStatus"], status(final)["succeeded"]) == ("SUCCEEDED", 1)
    assert status(final)["jobId"].startswith(f"{name}-") and status(final)["endTime"]
    assert schema_errors(final) == [], "the operator wrote a status KubeRay's schema refuses"
    job = client.BatchV1Api(kube_api).read_namespaced_job(name, NS)
    assert job.status.succeeded == 1
    log = core.read_namespaced_pod_log(submitter.metadata.name, NS)
    assert "hello from the job" in log and log.startswith("Job submission server address")
    last = core.read_namespaced_pod_log(submitter.metadata.name, NS, tail_lines=1)
    assert last == log.splitlines(keepends=True)[-1]
    assert core.read_namespaced_pod_log(submitter.metadata.name, NS, limit_bytes=3) == log[:3]
    # shutdownAfterJobFinishes (ttl 0): the RayCluster and its nodes go, the submitter stays
    assert fake_kube.wait_for(lambda: not fake_kube.objects("RayCluster"), timeout=30)
    (root,) = fake_kube.started_cluster_dirs
    assert wait_until_gone(str(root)) == []
    assert [p.metadata.name for p in core.list_namespaced_pod(NS).items] == [
        submitter.metadata.name
    ]


@pytest.mark.slow
def test_deleting_a_running_rayjob_stops_its_job_and_cluster(fake_kube, crds, core):
    sleeper = ["python", "-c", "import time; print('started', flush=True); time.sleep(600)"]
    manifest = rayjob(
        entrypoint=sleeper,
        worker_node_config=[
            WorkerNodeConfig(group_name="small", replicas=1, requests=Resources(cpu=1))
        ],
    )
    name = manifest["metadata"]["name"]
    create(crds, manifest)

    def running() -> Any:
        return status(fake_kube.get_object("RayJob", name) or {}).get("jobStatus") == "RUNNING"

    assert fake_kube.wait_for(running, timeout=90)
    (cluster,) = fake_kube.objects("RayCluster")
    assert (status(cluster)["desiredWorkerReplicas"], status(cluster)["readyWorkerReplicas"]) == (
        1,
        1,
    )
    (worker,) = core.list_namespaced_pod(NS, label_selector="ray.io/node-type=worker").items
    assert worker.metadata.labels["ray.io/group"] == "small"
    assert worker.status.phase == "Running"
    (submitter,) = core.list_namespaced_pod(NS, label_selector=f"job-name={name}").items
    assert fake_kube.wait_for(
        lambda: "started" in core.read_namespaced_pod_log(submitter.metadata.name, NS), timeout=30
    )
    following = core.read_namespaced_pod_log(
        submitter.metadata.name, NS, follow=True, _preload_content=False
    )
    fake_kube.drop_log_streams()
    assert "started" in following.read().decode()  # ends although the job still runs
    since = list_rv(crds)
    deleted = crds.delete_namespaced_custom_object(GROUP, VERSION, NS, RAYJOBS, name)
    assert deleted["metadata"]["deletionTimestamp"]  # held by the operator's finalizer
    events = watch_rayjob(crds, name, since, lambda e: e["type"] == "DELETED")
    assert [e["type"] for e in events][-1] == "DELETED"
    (root,) = fake_kube.started_cluster_dirs
    assert wait_until_gone(str(root), timeout=1) == [], "the RayJob went before its Ray nodes"
    assert not fake_kube.objects("RayCluster") and not fake_kube.objects("Pod")
    assert not fake_kube.objects("Job")


@pytest.mark.slow
def test_a_failing_job_is_retried_on_a_new_cluster(fake_kube, crds):
    failing = ["python", "-c", "import sys; print('failing now'); sys.exit(3)"]
    manifest = rayjob(entrypoint=failing, retries=1)
    name = manifest["metadata"]["name"]
    since = list_rv(crds)
    create(crds, manifest)
    events = watch_rayjob(crds, name, since, lambda e: deployment(e) == "Failed")
    final = status(events[-1]["object"])
    assert (final["reason"], final["jobStatus"], final["failed"]) == ("AppFailed", "FAILED", 2)
    assert "Retrying" in [deployment(e) for e in events]
    job_ids = {status(e["object"]).get("jobId") for e in events} - {None}
    assert len(job_ids) == 2, "each try is a new submission"
    first, second = fake_kube.started_cluster_dirs
    assert wait_until_gone(str(first)) == [] and not first.exists()
    # without shutdownAfterJobFinishes the second cluster stays, until the fixture's teardown
    (kept,) = fake_kube.objects("RayCluster")
    assert kept["metadata"]["name"] == final["rayClusterName"] and second.exists()
