"""kuberay mode with an ``s3://`` run store, on pods that really run (level 3), and moto.

moto's S3 server listens on the pods' bridge (the host's address there, which this process
reaches too). The caller has the credentials in its environment; the pods get them only from
a Kubernetes Secret (``FLYRAY_STORE_SECRET``: ``envFrom`` on every Ray container and the
submitter), never from the manifest. The process kubelet starts pods with a clean
environment, so nothing of the caller's AWS_* leaks into them: the run can only succeed
through the Secret.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from flyray.sandbox.operator import PODS_NAMESPACE
from tests.k8s.real.objects import Namespace
from tests.k8s.real.runs import FLYRAY, ROOT
from tests.s3server import REGION, S3Server

pytestmark = [pytest.mark.realkube, pytest.mark.slow, pytest.mark.timeout(600)]

SEED = str(ROOT / "examples" / "seed.py")
SECRET = "flyray-run-store"
PREFIX = "flyray"
RUN_TIMEOUT_S = 300.0
GONE_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def pods_s3(process_kubelet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto on the pods' bridge address (the host's end), which pods and this process reach."""
    log = tmp_path_factory.mktemp("s3-pods") / "moto.log"
    server = S3Server.start(process_kubelet.network.gateway, log)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_secret(pods_s3: S3Server, kube_api: Any) -> Iterator[dict[str, str]]:
    """The Secret ``flyray-run-store`` in the pods' namespace: moto's credentials, endpoint."""
    from kubernetes import client

    core = client.CoreV1Api(kube_api)
    data = pods_s3.env()
    body = client.V1Secret(metadata=client.V1ObjectMeta(name=SECRET), string_data=data)
    core.create_namespaced_secret(PODS_NAMESPACE, body)
    try:
        yield data
    finally:
        core.delete_namespaced_secret(SECRET, PODS_NAMESPACE)


@pytest.fixture
def s3_caller(pods_s3, s3_secret, real_kube, monkeypatch: pytest.MonkeyPatch) -> str:
    """The caller's environment: kubeconfig, moto's credentials, an s3:// store; its bucket."""
    for name in list(os.environ):
        if name.startswith("AWS_") and name != "AWS_CA_BUNDLE":
            monkeypatch.delenv(name)
    for name, value in pods_s3.env().items():
        monkeypatch.setenv(name, value)
    bucket = pods_s3.create_bucket(f"flyray-pods-{secrets.token_hex(4)}")
    monkeypatch.setenv("KUBECONFIG", str(real_kube.kubeconfig_path))
    monkeypatch.setenv("FLYRAY_RUN_STORE", f"s3://{bucket}/{PREFIX}")
    monkeypatch.setenv("FLYRAY_STORE_SECRET", SECRET)
    return bucket


def _flyray(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLYRAY, *args],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _gone(namespace: Namespace, run_id: str) -> list[str]:
    """What of the run is left in the namespace, once ``flyray cancel`` has run."""
    deadline = time.monotonic() + GONE_TIMEOUT_S
    while True:
        left = [f"rayjob {o['metadata']['name']}" for o in namespace.ray("rayjobs")]
        left += [f"raycluster {o['metadata']['name']}" for o in namespace.ray("rayclusters")]
        left += [f"pod {o['metadata']['name']}" for o in namespace.pods()]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def test_the_seed_task_on_pods_with_an_s3_store_and_credentials_from_a_secret(
    s3_caller, pods_s3, s3_secret, kube_api, process_kubelet
):
    bucket = s3_caller
    namespace = Namespace(kube_api, PODS_NAMESPACE)
    done = _flyray(
        *("run", "--mode", "kuberay", "--namespace", PODS_NAMESPACE),
        *(SEED, "my_ray_task", "--n", "10"),
        timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "285", done.stdout + done.stderr
    assert pods_s3.secret_key not in done.stdout + done.stderr

    stored = pods_s3.run_objects(bucket, PREFIX)
    run_id, run, bundle = stored.run_id, stored.run, stored.code_bundle
    # the outputs were written from a pod, and the bundle read there: both by moto's log
    assert [line for line in pods_s3.requests() if f"GET /{bucket}/{bundle}" in line]
    assert [line for line in pods_s3.requests() if f"PUT /{bucket}/{run}/outputs.pkl" in line]

    # the manifest names the Secret on every Ray container and the submitter, and holds no
    # value of it: not in the stored manifest, not in the RayJob the API server has
    stored = pods_s3.client().get_object(Bucket=bucket, Key=f"{run}/manifest.yaml")
    manifest_text = stored["Body"].read().decode()
    (rayjob,) = namespace.ray("rayjobs", f"flyray.io/run-id={run_id}")
    cluster = rayjob["spec"]["rayClusterSpec"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    containers = [group["template"]["spec"]["containers"][0] for group in groups]
    containers.append(rayjob["spec"]["submitterPodTemplate"]["spec"]["containers"][0])
    for container in containers:
        assert {"secretRef": {"name": SECRET}} in container["envFrom"], container
    values = {name: value for name, value in s3_secret.items() if value != REGION}
    for text in (manifest_text, json.dumps(rayjob)):
        assert [name for name, value in values.items() if value in text] == []

    cancelled = _flyray("cancel", run_id, timeout=120)
    assert cancelled.returncode == 0, cancelled.stderr
    assert _gone(namespace, run_id) == []
