"""flyray's RayJob under the REAL KubeRay operator, on a real control plane (level 2).

One RayJob, rendered by flyray exactly as kuberay mode renders it (a head and one worker group,
ray start parameters, resources, a secret), is created in the operator's namespace. The tests
read what the operator and the Job controller really make of it, in order: the RayCluster and
its pods and Service while the pods are Pending; then, with the status kubelet reporting the
pods Running and Ready, the submitter Job; then flyray's Ctrl-C path (a foreground delete)
removes all of it. No pod really runs (level 3), so the Ray job never starts.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flyray.executors.kuberay.session import RAYJOBS, KubeSession
from flyray.sandbox.operator import NAMESPACE, OPERATOR_VERSION
from tests.k8s.real.objects import Namespace, ray_start_flags, wait_until
from tests.k8s.real.runs import TASKS
from tests.k8s.real.test_manifests import differences

pytestmark = pytest.mark.realkube

SECRET = (
    "rk-credentials",
    "api-key",
    "RK_CREDENTIALS_API_KEY",
)  # Secret name, key, env var (realkube_tasks)
TIMEOUT_S = 60.0


@dataclass
class Launched:
    """The RayJob flyray created, and where to read what became of it."""

    manifest: dict[str, Any]
    name: str
    session: KubeSession  # flyray's, in the operator's namespace
    objects: Namespace
    cluster: str  # the RayCluster the operator made for it

    def rayjob(self) -> dict[str, Any] | None:
        return self.session.get(RAYJOBS, self.name)

    def raycluster(self) -> dict[str, Any]:
        (found,) = self.objects.ray("rayclusters", f"ray.io/originated-from-cr-name={self.name}")
        return found

    def pod(self, node_type: str) -> dict[str, Any]:
        (found,) = self.objects.pods(f"ray.io/cluster={self.cluster},ray.io/node-type={node_type}")
        return found

    def ray_container(self, node_type: str) -> dict[str, Any]:
        return self.pod(node_type)["spec"]["containers"][0]

    def sent_group(self, node_type: str) -> dict[str, Any]:
        spec = self.manifest["spec"]["rayClusterSpec"]
        return spec["headGroupSpec"] if node_type == "head" else spec["workerGroupSpecs"][0]

    def sent_container(self, node_type: str) -> dict[str, Any]:
        return self.sent_group(node_type)["template"]["spec"]["containers"][0]


def _render(store_dir: Path) -> dict[str, Any]:
    """The RayJob kuberay mode would create for ``cluster_sum`` (code bundle in a run store)."""
    from flyray.config.settings import Settings
    from flyray.executors.render import render_kube_manifest
    from flyray.store.runstore import RunStore
    from flyray.task.loader import load_task

    return render_kube_manifest(
        load_task(TASKS, "cluster_sum"),
        run_id=f"r{secrets.token_hex(5)}",
        store=RunStore(str(store_dir)),
        settings=Settings(namespace=NAMESPACE),
        namespace=NAMESPACE,
    )


def _create_secret(api: Any) -> None:
    from kubernetes import client

    name, key, _ = SECRET
    body = {"metadata": {"name": name}, "stringData": {key: "not-a-real-key"}}
    try:
        client.CoreV1Api(api).create_namespaced_secret(NAMESPACE, body)
    except client.ApiException as exc:
        if exc.status != 409:
            raise


@pytest.fixture(scope="module")
def launched(
    real_kube: Any, kuberay_operator: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Launched]:
    """flyray's RayJob, created as kuberay mode creates it; its cluster's pods exist (Pending)."""
    api = real_kube.api_client()
    _create_secret(api)
    manifest = _render(tmp_path_factory.mktemp("operator-runs"))
    name = manifest["metadata"]["name"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(real_kube.kubeconfig_path))
        session = KubeSession(namespace=NAMESPACE)
    objects = Namespace(api, NAMESPACE)
    try:
        session.create(RAYJOBS, manifest)
        selector = f"ray.io/originated-from-cr-name={name}"
        (cluster,) = wait_until(
            lambda: objects.ray("rayclusters", selector), TIMEOUT_S, "the operator's RayCluster"
        )
        cluster_name = cluster["metadata"]["name"]
        wait_until(
            lambda: len(objects.pods(f"ray.io/cluster={cluster_name}")) == 2,
            TIMEOUT_S,
            "the head and worker pods",
        )
        yield Launched(manifest, name, session, objects, cluster_name)
    finally:
        if session.delete(RAYJOBS, name):  # a test failed before deleting it
            wait_until(lambda: session.get(RAYJOBS, name) is None, TIMEOUT_S, "cleanup")
        session.close()
        api.close()


# --- while the pods are Pending ---------------------------------------------------------


def test_the_raycluster_is_flyrays_rayclusterspec(launched: Launched) -> None:
    from flyray.executors.kuberay.status import Snapshot
    from flyray.executors.kuberay.warm import list_clusters
    from tests.manifest.kuberay import SHARED

    rayjob = launched.rayjob()
    assert rayjob is not None
    cluster = launched.raycluster()
    schema = json.loads((SHARED / "raycluster-v1.schema.json").read_text())
    spec_schema = schema["properties"]["spec"]
    # the RayCluster's spec is the RayJob's rayClusterSpec as stored ...
    stored = rayjob["spec"]["rayClusterSpec"]
    assert differences(stored, cluster["spec"], spec_schema) == []
    # ... which is what flyray wrote, but for one empty field: the operator writes the whole
    # RayJob back through its Go types when it adds its finalizer (no field is lost or changed)
    sent = launched.manifest["spec"]["rayClusterSpec"]
    assert differences(sent, stored, spec_schema) == [
        "added workerGroupSpecs[0].scaleStrategy = {}"
    ]
    (owner,) = cluster["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("RayJob", launched.name, _uid(rayjob))
    assert owner["controller"] is True and owner["blockOwnerDeletion"] is True
    # the RayJob's labels are copied onto its RayCluster: flyray's too
    labels = cluster["metadata"]["labels"]
    assert labels.items() >= launched.manifest["metadata"]["labels"].items()
    assert labels["ray.io/originated-from-crd"] == "RayJob"
    assert labels["ray.io/job-submission-mode"] == "K8sJobMode"
    # ... but flyray's reusable-cluster listing does not take it for one of its own
    assert list_clusters(launched.session) == []
    # the status flyray reads while the cluster starts
    snapshot = Snapshot.of(rayjob)
    assert snapshot.deployment == "Initializing"
    assert snapshot.cluster == launched.cluster
    assert snapshot.job_id and not snapshot.dashboard
    assert rayjob["metadata"]["finalizers"] == ["ray.io/rayjob-finalizer"]
    # no pod is Ready: no submitter yet
    assert launched.objects.jobs() == []
    # flyray asked for Ray token authentication: the operator made the cluster's token
    assert cluster["spec"]["authOptions"] == {"mode": "token"}
    (secret,) = launched.objects.secrets(f"ray.io/cluster={launched.cluster}")
    assert secret["metadata"]["name"] == snapshot.cluster
    assert len(base64.b64decode(secret["data"]["auth_token"])) >= 32
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("RayCluster", _uid(cluster), True)


def test_the_head_pod_runs_flyrays_ray_container(launched: Launched) -> None:
    pod = launched.pod("head")
    sent = launched.sent_container("head")
    ray = pod["spec"]["containers"][0]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["ray-head"]
    assert ray["image"] == sent["image"]
    assert ray["resources"] == sent["resources"]
    assert ray["command"] == ["/bin/bash", "-c", "--"]
    (line,) = ray["args"]  # KubeRay >= 1.7 makes the limit ${RAY_START_ULIMIT_OPEN_FILES:-65536}
    assert line.startswith("ulimit -n ") and "; ray start --head " in line
    assert ray_start_flags(ray) == {
        "--head",
        # flyray's rayStartParams: values as given, "true" as a bare flag
        "--num-cpus=1",
        "--disable-usage-stats",
        # the operator's: memory from the memory limit in bytes, and its defaults
        "--memory=2147483648",
        "--block",
        "--dashboard-host=0.0.0.0",
        "--dashboard-agent-listen-port=52365",
        "--metrics-export-port=8080",
    }
    env = {entry["name"]: entry for entry in ray["env"]}
    name, key, variable = SECRET
    assert env[variable]["valueFrom"] == {"secretKeyRef": {"name": name, "key": key}}
    assert env["RAY_ADDRESS"]["value"] == "127.0.0.1:6379"
    _assert_token_env(env, launched.cluster)
    assert env["RAY_CLUSTER_NAME"]["valueFrom"]["fieldRef"]["fieldPath"].endswith(
        "['ray.io/cluster']"
    )
    assert {"readinessProbe", "livenessProbe"} <= ray.keys()
    assert _mounts(ray)["/dev/shm"]  # flyray asked for no shm on the head: the operator's
    labels = pod["metadata"]["labels"]
    assert (labels["ray.io/cluster"], labels["ray.io/node-type"]) == (launched.cluster, "head")
    assert pod["metadata"]["annotations"]["ray.io/kuberay-version"] == OPERATOR_VERSION
    assert pod["status"]["phase"] == "Pending"


def test_the_worker_pod_runs_flyrays_ray_container(launched: Launched) -> None:
    pod = launched.pod("worker")
    sent = launched.sent_container("worker")
    ray = pod["spec"]["containers"][0]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["ray-worker"]
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["wait-gcs-ready"]
    assert ray["image"] == sent["image"]
    # flyray writes limits equal to requests when only requests are declared
    assert ray["resources"] == sent["resources"]
    assert ray["resources"]["limits"] == {"cpu": "500m", "memory": "1Gi"}
    assert ray_start_flags(ray) == {
        f"--address={launched.cluster}-head-svc.{NAMESPACE}.svc.cluster.local:6379",
        # flyray's: its metrics port wins over the operator's default; "false" is dropped
        "--object-store-memory=100000000",
        "--metrics-export-port=9090",
        # the operator's: num-cpus from the CPU limit ROUNDED UP (500m -> 1), memory in bytes
        "--num-cpus=1",
        "--memory=1073741824",
        "--block",
        "--dashboard-agent-listen-port=52365",
    }
    name, key, variable = SECRET
    env = {entry["name"]: entry for entry in ray["env"]}
    assert env[variable]["valueFrom"] == {"secretKeyRef": {"name": name, "key": key}}
    _assert_token_env(env, launched.cluster)
    (wait,) = pod["spec"]["initContainers"]  # it asks the GCS, which wants the token too
    _assert_token_env({entry["name"]: entry for entry in wait["env"]}, launched.cluster)
    # flyray's /dev/shm (shm="256Mi") is kept; the operator adds none of its own
    assert [m["mountPath"] for m in ray["volumeMounts"]].count("/dev/shm") == 1
    mounts = _mounts(ray)
    (shm,) = [v for v in pod["spec"]["volumes"] if v["name"] == mounts["/dev/shm"]]
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "256Mi"}
    assert pod["metadata"]["labels"]["ray.io/group"] == "workers"


def test_the_head_service_is_where_flyray_points(launched: Launched) -> None:
    from flyray.executors.kuberay.status import Snapshot, dashboard_line

    (service,) = launched.objects.services(f"ray.io/cluster={launched.cluster}")
    assert service["metadata"]["name"] == f"{launched.cluster}-head-svc"
    selector = service["spec"]["selector"]
    wanted = {"ray.io/cluster": launched.cluster, "ray.io/node-type": "head"}
    assert selector.items() >= wanted.items()
    head = launched.pod("head")["metadata"]["labels"]
    assert head.items() >= selector.items()  # it selects the head pod
    ports = {port["name"]: port["port"] for port in service["spec"]["ports"]}
    assert ports.items() >= {"dashboard": 8265, "gcs-server": 6379, "client": 10001}.items()
    # the port-forward flyray prints names this Service
    snapshot = Snapshot(name=launched.name, namespace=NAMESPACE, cluster=launched.cluster)
    assert f"svc/{service['metadata']['name']} 8265:8265" in dashboard_line(snapshot)


# --- once the pods are Running and Ready ------------------------------------------------


def test_ready_pods_get_the_submitter_job(launched: Launched, status_kubelet: Any) -> None:
    from flyray.executors.kuberay.status import Snapshot, progress, readiness

    before = Snapshot.of(launched.rayjob() or {})
    (job,) = wait_until(launched.objects.jobs, TIMEOUT_S, "the submitter Job")
    rayjob = wait_until(
        lambda: _in_state(launched.rayjob(), "Running"), TIMEOUT_S, "the RayJob Running"
    )
    cluster = launched.raycluster()["status"]
    assert cluster["state"] == "ready"
    assert readiness(cluster) == (True, 1, 1)
    # The RayJob's copy (status.rayClusterStatus, what flyray's readiness lines read) is the
    # last one taken before the cluster was ready: once Running, the operator refreshes it only
    # along with the Ray job's info from the dashboard, which is never reached here.
    now = Snapshot.of(rayjob)
    assert now.dashboard == f"{launched.cluster}-head-svc.{NAMESPACE}.svc.cluster.local:8265"
    lines = progress(before, now, elapsed=1)
    assert any("Running: cluster ready, job submitted" in line for line in lines), lines

    # the Job: named after the RayJob, owned by it, running flyray's submitter pod template
    assert job["metadata"]["name"] == launched.name
    (owner,) = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("RayJob", _uid(rayjob), True)
    assert job["spec"]["backoffLimit"] == 2
    sent = launched.manifest["spec"]["submitterPodTemplate"]["spec"]["containers"][0]
    (submitter,) = job["spec"]["template"]["spec"]["containers"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert submitter["name"] == sent["name"] == "ray-job-submitter"
    assert submitter["image"] == launched.sent_container("head")["image"]
    assert submitter["resources"] == sent["resources"]
    env = {entry["name"]: entry for entry in submitter["env"]}
    name, key, variable = SECRET
    assert env[variable]["valueFrom"] == {"secretKeyRef": {"name": name, "key": key}}
    assert env["RAY_JOB_SUBMISSION_ID"]["value"] == now.job_id
    assert env["RAY_DASHBOARD_ADDRESS"]["value"] == now.dashboard
    assert env["PYTHONUNBUFFERED"]["value"] == "1"
    _assert_token_env(env, launched.cluster)  # `ray job submit` sends it

    # the command: flyray's entrypoint, pasted after "--" into a bash line
    assert submitter["command"] == ["/bin/bash", "-ce", "--"]
    (line,) = submitter["args"]
    address = f"http://{now.dashboard}"
    entrypoint = launched.manifest["spec"]["entrypoint"]
    # (KubeRay >= 1.7 waits for the GCS before this)
    assert f"if ! ray job status --address {address} {now.job_id} >/dev/null 2>&1 ; then" in line
    assert f"ray job submit --address {address} --no-wait --runtime-env-json " in line
    assert f" --submission-id {now.job_id} -- {entrypoint} ; fi ; " in line
    assert line.endswith(f"ray job logs --address {address} --follow {now.job_id}")
    runtime_env = json.loads(json.loads(line.split("--runtime-env-json ", 1)[1].split(" --")[0]))
    assert runtime_env["working_dir"].startswith("file://"), runtime_env

    # once Running, the RayJob gets a head Service of its own too, named after it
    wait_until(
        lambda: f"{launched.name}-head-svc" in _names(launched.objects.services()),
        TIMEOUT_S,
        "the RayJob's head Service",
    )

    # flyray finds the submitter pod the Job controller made, as it does to follow its log
    (pod,) = wait_until(lambda: launched.session.job_pods(launched.name), TIMEOUT_S, "its pod")
    assert pod.spec.containers[0].name == "ray-job-submitter"
    wait_until(
        lambda: launched.session.pod_phase(pod.metadata.name) == "Running",
        TIMEOUT_S,
        "the submitter pod Running",
    )


def test_a_foreground_delete_removes_everything(
    launched: Launched, status_kubelet: Any, kuberay_operator: Any
) -> None:
    assert launched.session.delete(RAYJOBS, launched.name)  # flyray's Ctrl-C path
    wait_until(lambda: not launched.objects.everything(), TIMEOUT_S, "nothing left")
    said = [record.get("msg", "") for record in kuberay_operator.records()]
    assert "Remove the finalizer no matter StopJob() succeeds or not." in said


# --- helpers ----------------------------------------------------------------------------


def _assert_token_env(env: dict[str, Any], cluster: str) -> None:
    """flyray's ``authOptions: {mode: token}`` became Ray's token variables, from the Secret
    the operator made (named as flyray's dashboard hint names it)."""
    from flyray.executors.kuberay.status import auth_secret

    assert env["RAY_AUTH_MODE"]["value"] == "token"
    secret_ref = {"name": auth_secret(cluster), "key": "auth_token"}
    assert env["RAY_AUTH_TOKEN"]["valueFrom"] == {"secretKeyRef": secret_ref}


def _uid(obj: dict[str, Any]) -> str:
    return obj["metadata"]["uid"]


def _names(items: list[dict[str, Any]]) -> list[str]:
    return [item["metadata"]["name"] for item in items]


def _mounts(container: dict[str, Any]) -> dict[str, str]:
    """mountPath -> volume name."""
    return {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}


def _in_state(rayjob: dict[str, Any] | None, state: str) -> dict[str, Any] | None:
    status = (rayjob or {}).get("status") or {}
    return rayjob if status.get("jobDeploymentStatus") == state else None
