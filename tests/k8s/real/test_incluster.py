"""A pod of the process kubelet reaches the API server as in a cluster (level 3).

The container reads its service-account token, ``ca.crt`` and ``namespace`` from
``/var/run/secrets/kubernetes.io/serviceaccount`` and calls the API server at
``KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT`` (the ``kubernetes`` Service's ClusterIP),
verifying its certificate: the server knows it as the pod's service account, and RBAC, not the
network, says no. The token is renewed by the kubelet and stops working with the pod.
"""

from __future__ import annotations

import secrets
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from flyray.sandbox.operator import PODS_NAMESPACE
from tests.k8s.real.leftovers import GONE_TIMEOUT_S
from tests.k8s.real.objects import wait_until

pytestmark = [pytest.mark.realkube, pytest.mark.timeout(180)]

# runs in the pod with this virtualenv's python (shell builtins and python only)
CALL_THE_API = r"""
import json, os, ssl, urllib.error, urllib.request
folder = "/var/run/secrets/kubernetes.io/serviceaccount"
namespace = open(f"{folder}/namespace").read()
token = open(f"{folder}/token").read()
host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
url = f"https://{host}:{port}/api/v1/namespaces/{namespace}/pods"
context = ssl.create_default_context(cafile=f"{folder}/ca.crt")
opener = urllib.request.build_opener(
    urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
)
request = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
try:
    opener.open(request, timeout=10)
    print("answer 200", flush=True)
except urllib.error.HTTPError as exc:
    print("answer", exc.code, json.load(exc)["message"], flush=True)
"""


def _status(real_kube: Any, token: str) -> int:
    """GET /api (any authenticated user may) with ``token``: 200, or 401 for a dead token."""
    context = ssl.create_default_context(cafile=str(real_kube.credentials.ca_cert))
    request = urllib.request.Request(
        real_kube.server + "/api", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_pod_calls_the_api_server_as_its_service_account(
    kube_api, real_kube, process_kubelet, objects
):
    from kubernetes import client

    core = client.CoreV1Api(kube_api)
    name = f"incluster-{secrets.token_hex(3)}"
    # this virtualenv's python is first on the pod's PATH; it stays up for the renewal below
    command = ["/bin/sh", "-c", 'python -c "$0" && exec sleep 300', CALL_THE_API]
    core.create_namespaced_pod(
        PODS_NAMESPACE,
        {
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "none", "command": command}]},
        },
    )

    def answered() -> str:
        try:
            log = core.read_namespaced_pod_log(name, PODS_NAMESPACE, container="main")
        except client.ApiException:
            return ""
        return log if log and "answer" in log else ""

    log = wait_until(answered, 60, "the pod's call to the API server")
    account = f"system:serviceaccount:{PODS_NAMESPACE}:default"
    assert f'answer 403 pods is forbidden: User "{account}" cannot list resource "pods"' in log

    # the token is the kubelet's, in the pod's folder; renewed, the new one works too
    pod = process_kubelet.find(PODS_NAMESPACE, name)
    (token,) = pod.volumes.tokens
    token_file = pod.volumes.root / token.volume / "token"
    first = token_file.read_text()
    status = _status(real_kube, first)  # (never the token itself in an assertion's message)
    assert status == 200
    token.renew_at = 0.0  # due now: the pod's next tick renews it

    def renewed_token() -> str:
        text = token_file.read_text()
        return text if text != first else ""

    renewed = wait_until(renewed_token, 30, "the token's renewal")
    status = _status(real_kube, renewed)
    assert status == 200

    # bound to the pod: gone with it, and so are its files; nothing of it was on the host
    core.delete_namespaced_pod(name, PODS_NAMESPACE)
    wait_until(lambda: not objects.pods(), GONE_TIMEOUT_S, "the pod's deletion")
    # the API server caches an accepted token for a few seconds
    wait_until(lambda: _status(real_kube, renewed) == 401, 60, "the token to be refused")
    assert not token_file.exists()
    assert not Path("/run/secrets/kubernetes.io").exists()
