"""KubeRay's autoscaler for real (level 3): the sidecar the operator adds to the head pod.

With ``enableInTreeAutoscaling`` the operator adds an ``autoscaler`` container (``ray
kuberay-autoscaler``) to the head pod and makes a ServiceAccount, Role and RoleBinding for it.
The process kubelet runs that container as a kubelet would: with a token of that account from
the TokenRequest API, ``ca.crt`` and ``namespace`` at ``/var/run/secrets/kubernetes.io/
serviceaccount`` (inside the pod only), and the ``kubernetes`` Service's ClusterIP reachable
from the pod's network namespace. So the autoscaler reads the RayCluster and its pods, and
PATCHes the worker group's replicas through the real API server, under RBAC, as itself; the
operator then makes and deletes the worker pods.
"""

from __future__ import annotations

import os
import subprocess
from datetime import datetime
from typing import Any

import pytest

from flyray.sandbox.operator import PODS_NAMESPACE
from tests.k8s.real.leftovers import GONE_TIMEOUT_S, nothing_left, pod_pids
from tests.k8s.real.objects import wait_until
from tests.k8s.real.runs import FLYRAY, Recorder, only_record, run

pytestmark = [pytest.mark.realkube, pytest.mark.slow, pytest.mark.timeout(600)]

GROUP = "burst"
SCALE_DOWN_TIMEOUT_S = 90.0  # the task saw its workers drained: their pods go next
REPLICAS = "/spec/workerGroupSpecs/0/replicas"


def _at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["stageTimestamp"].replace("Z", "+00:00"))


def _replicas(event: dict[str, Any]) -> int | None:
    """The replicas an autoscaler's JSON patch sets for the (first) worker group, if any."""
    patch = event.get("requestObject")
    if not isinstance(patch, list):
        return None
    return next((op["value"] for op in patch if op.get("path") == REPLICAS), None)


def test_the_kuberay_autoscaler_scales_a_group_out_and_back_through_the_api_server(
    pods_env, process_kubelet, objects, real_kube, kube_api
):
    from kubernetes import client

    recorder = Recorder()
    handle = run("scale_out_and_back", recorder=recorder, namespace=PODS_NAMESPACE)
    # the task saw no worker at first, two while its tasks ran, none once they were idle
    assert handle.result() == [0, 2, 0], recorder.lines
    run_id = only_record(pods_env).run_id

    # the head pod: the operator's autoscaler sidecar, run under its own service account
    (head,) = [p for p in process_kubelet.history if run_id in p.name and "-head-" in p.name]
    cluster = head.pod["metadata"]["labels"]["ray.io/cluster"]
    account = head.pod["spec"]["serviceAccountName"]
    assert [c["name"] for c in head.pod["spec"]["containers"]] == ["ray-head", "autoscaler"]
    (mount,) = [
        m
        for m in head.pod["spec"]["containers"][1]["volumeMounts"]
        if m["name"].startswith("kube-api-access-")
    ]
    assert mount["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"
    autoscaler = head.container("autoscaler")
    assert autoscaler is not None and autoscaler.restarts == 0, autoscaler
    log = autoscaler.log.read_text()
    assert "The Ray head is ready. Starting the autoscaler." in log, log

    # its own PATCHes of the RayCluster took the group 0 -> 2 -> 0, as system:serviceaccount
    user = f"system:serviceaccount:{PODS_NAMESPACE}:{account}"

    def scaled_back() -> list[tuple[dict[str, Any], int]]:
        patches = [e for e in real_kube.audit_events(name=cluster) if e["verb"] == "patch"]
        scaling = [(e, value) for e in patches if (value := _replicas(e)) is not None]
        return scaling if scaling and scaling[-1][1] == 0 else []

    scaling = wait_until(scaled_back, SCALE_DOWN_TIMEOUT_S, "the autoscaler's patch to 0")
    assert {e["user"]["username"] for e, _ in scaling} == {user}, scaling
    assert all(e["responseStatus"]["code"] == 200 for e, _ in scaling), scaling
    values = [value for _, value in scaling]
    peak = values.index(2)
    assert values[: peak + 1] == sorted(values[: peak + 1]), values  # up to 2, then down to 0
    assert values[peak:] == sorted(values[peak:], reverse=True), values
    up = next(e for e, value in scaling if value == 2)
    down = scaling[-1][0]

    # the operator made the two worker pods, and deleted both on the autoscaler's word
    def operator_pods(verb: str) -> list[dict[str, Any]]:
        return [
            e
            for e in real_kube.audit_events()
            if e["user"]["username"] == "kuberay-operator"
            and e["objectRef"]["resource"] == "pods"
            and e["verb"] == verb
            and e["responseStatus"]["code"] < 300
        ]

    created = [
        e["responseObject"]["metadata"]["name"]
        for e in operator_pods("create")
        if e["responseObject"]["metadata"]["labels"].get("ray.io/group") == GROUP
        and e["responseObject"]["metadata"]["labels"].get("ray.io/cluster") == cluster
    ]
    assert len(created) == 2, operator_pods("create")
    assert set(created) <= {p.name for p in process_kubelet.history}  # they really ran

    def deleted() -> dict[str, dict[str, Any]]:
        found = {e["objectRef"]["name"]: e for e in operator_pods("delete")}
        return found if set(created) <= set(found) else {}

    deletes = wait_until(deleted, SCALE_DOWN_TIMEOUT_S, "the operator to delete both workers")
    assert all(_at(deletes[name]) >= _at(down) for name in created)
    wait_until(
        lambda: not objects.pods(f"ray.io/cluster={cluster},ray.io/group={GROUP}"),
        GONE_TIMEOUT_S,
        "the worker pods to go",
    )
    last_delete = max(_at(deletes[name]) for name in created)
    print(
        f"\nreplicas set by the autoscaler: {values}; "
        f"2 -> 0 patched {(_at(down) - _at(up)).total_seconds():.1f} s after 0 -> 2; "
        f"worker pods deleted {(last_delete - _at(down)).total_seconds():.1f} s after that"
    )

    # the finished cluster is kept (TTL): cancel removes it, its account, Role and RoleBinding
    cancelled = subprocess.run(
        [FLYRAY, "cancel", run_id], capture_output=True, text=True, timeout=120, env=os.environ
    )
    assert cancelled.returncode == 0, cancelled.stderr
    nothing_left(objects, process_kubelet, pod_pids(process_kubelet))
    selector = f"ray.io/cluster={cluster}"
    rbac = client.RbacAuthorizationV1Api(kube_api)
    listings = (
        objects.core.list_namespaced_service_account,
        rbac.list_namespaced_role,
        rbac.list_namespaced_role_binding,
    )
    wait_until(
        lambda: (
            not any(listing(PODS_NAMESPACE, label_selector=selector).items for listing in listings)
        ),
        GONE_TIMEOUT_S,
        "the autoscaler's ServiceAccount, Role and RoleBinding to go (garbage collector)",
    )
