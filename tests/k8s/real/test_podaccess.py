"""What a pod gets to reach the API server from inside (no cluster): the ``kubernetes``
Service's variables, its ClusterIP in the pod's network namespace, and the projected
service-account volume mounted in the pod's own ``/run``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from flyray.sandbox.pods.apiservice import ApiService
from flyray.sandbox.pods.launch import LAUNCH, MOUNT, SH, UNSHARE
from flyray.sandbox.pods.projected import ProjectedVolumes
from flyray.sandbox.pods.spec import PodSpecError

SERVICE = ApiService("10.0.0.1", 443, "https", ("127.0.0.1", 6443))
ACCESS = "kube-api-access-x1"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
as_root = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"),
    reason="needs root, unshare and ip",
)


def _pod(sources: list[dict], mounts: list[dict]) -> dict:
    return {
        "metadata": {"name": "p", "namespace": "kuberay-pods", "uid": "u-1"},
        "spec": {
            "volumes": [
                {"name": ACCESS, "projected": {"sources": sources, "defaultMode": 0o644}},
                {"name": "logs", "emptyDir": {}},
            ],
            "containers": [{"name": "c", "volumeMounts": mounts}],
        },
    }


CA = {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
NAMESPACE = {
    "downwardAPI": {
        "items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]
    }
}
ACCESS_MOUNT = {"name": ACCESS, "mountPath": MOUNT_PATH, "readOnly": True}


def _lookup(kind: str, name: str) -> dict[str, str] | None:
    return {"kube-root-ca.crt": {"ca.crt": "-----BEGIN CERTIFICATE-----\n"}}.get(name)


def test_the_kubernetes_service_variables_are_those_a_kubelet_sets():
    assert SERVICE.env() == {
        "KUBERNETES_SERVICE_HOST": "10.0.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "443",
        "KUBERNETES_PORT": "tcp://10.0.0.1:443",
        "KUBERNETES_PORT_443_TCP": "tcp://10.0.0.1:443",
        "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        "KUBERNETES_PORT_443_TCP_PORT": "443",
        "KUBERNETES_PORT_443_TCP_ADDR": "10.0.0.1",
    }


def test_a_projected_volume_is_written_and_mounted_in_the_pods_own_run(tmp_path):
    pod = _pod([CA, NAMESPACE], [ACCESS_MOUNT, {"name": "logs", "mountPath": "/tmp/ray"}])
    volumes = ProjectedVolumes(pod, tmp_path, core=None, lookup=_lookup).write()
    folder = tmp_path / "volumes" / ACCESS
    assert (folder / "namespace").read_text() == "kuberay-pods"
    assert (folder / "ca.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert (folder / "ca.crt").stat().st_mode & 0o777 == 0o644
    run = tmp_path / "run"
    # the pod's own /run first, then the volume on the mount point made in it; emptyDir: not
    assert volumes.binds(pod["spec"]["containers"][0]) == [
        str(run),
        "/run",
        str(folder),
        "/run/secrets/kubernetes.io/serviceaccount",
    ]
    assert (run / "secrets" / "kubernetes.io" / "serviceaccount").is_dir()
    assert volumes.binds({"name": "other"}) == []
    volumes.remove()
    assert not (tmp_path / "volumes").exists()


def test_what_cannot_be_mounted_or_read_is_a_pod_spec_error(tmp_path):
    nowhere = _pod([NAMESPACE], [{"name": ACCESS, "mountPath": "/no/such/folder"}])
    volumes = ProjectedVolumes(nowhere, tmp_path, core=None, lookup=_lookup).write()
    with pytest.raises(PodSpecError, match="mounts volumes under /run or on folders that exist"):
        volumes.binds(nowhere["spec"]["containers"][0])
    missing = {"configMap": {"name": "absent", "items": [{"key": "k", "path": "k"}]}}
    with pytest.raises(PodSpecError, match='configmap "absent" not found'):
        ProjectedVolumes(_pod([missing], []), tmp_path, core=None, lookup=_lookup).write()
    missing["configMap"]["optional"] = True
    ProjectedVolumes(_pod([missing], []), tmp_path, core=None, lookup=_lookup).write()


@as_root
def test_the_service_account_folder_is_seen_inside_the_pod_only(tmp_path):
    if Path("/run/secrets/kubernetes.io").exists():
        pytest.skip("this machine has /run/secrets/kubernetes.io of its own")
    pod = _pod([NAMESPACE], [ACCESS_MOUNT])
    volumes = ProjectedVolumes(pod, tmp_path, core=None, lookup=_lookup).write()
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    script = f"read ns < {MOUNT_PATH}/namespace; echo $ns"  # shell builtins only
    done = subprocess.run(
        [
            *(UNSHARE, "--mount", "--uts", SH, "-c", LAUNCH, "sh", "pod-a", MOUNT),
            str(private_tmp),
            *volumes.binds(pod["spec"]["containers"][0]),
            *("--", "/bin/sh", "-c", script),
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/nonexistent"},
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "kuberay-pods"
    assert not Path("/run/secrets/kubernetes.io").exists()  # nothing of it on the host


@as_root
def test_the_clusterip_reaches_the_api_server_from_the_pods_namespace_only():
    """A listener made inside the namespace on the ClusterIP forwards to a server on the
    host's loopback (here a one-line echo server standing in for the API server)."""
    server = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=_echo_once, args=(server,), daemon=True).start()
    service = ApiService("10.0.0.1", 443, "https", server.getsockname())
    netns = f"flyrk{os.getpid()}-access"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    proxy = None
    try:
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        proxy = service.open(netns)
        client = (
            "import socket; s = socket.create_connection(('10.0.0.1', 443), timeout=10); "
            "s.sendall(b'ping'); print(s.recv(4).decode())"
        )
        done = subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, "-c", client],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "ping"
        with pytest.raises(OSError, match="Cannot assign requested address"):
            socket.create_server(("10.0.0.1", 443)).close()  # the address is the pod's only
    finally:
        if proxy is not None:
            proxy.close()
        subprocess.run(["ip", "netns", "del", netns], check=True)
        server.close()


def _echo_once(server: socket.socket) -> None:
    connection, _ = server.accept()
    with connection:
        connection.sendall(connection.recv(4))
