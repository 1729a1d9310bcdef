"""The API server as a pod sees it: the ``kubernetes`` Service's variables and ClusterIP.

A kubelet gives every container ``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT`` (and
the rest of the Service's variables: ``..._PORT_HTTPS``, ``KUBERNETES_PORT_443_TCP...``) with
the ``kubernetes`` Service's ClusterIP and port, and kube-proxy routes that address to the API
server. There is no kube-proxy here (and no iptables), so the process kubelet does it for this
one Service, in each pod's network namespace: the ClusterIP goes on the pod's loopback, and a
listener there (a socket made inside the namespace, ``listen_in_netns``) forwards every
connection to the API server on the host (``proxy.TcpProxy``). TLS passes through: the API
server's certificate names the ClusterIP (``certs.py``), so in-cluster clients (KubeRay's
autoscaler) verify it with the ``ca.crt`` of their service-account volume.
"""

from __future__ import annotations

import ctypes
import json
import socket
import subprocess
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any

from flyray.sandbox.pods.launch import IP
from flyray.sandbox.proxy import TcpProxy

__all__ = ["ApiService", "listen_in_netns"]

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/run/netns"  # where ``ip netns`` keeps its namespaces


@dataclass(frozen=True)
class ApiService:
    """The ``kubernetes`` Service (``default`` namespace) and where the API server listens."""

    cluster_ip: str
    port: int
    port_name: str
    target: tuple[str, int]  # the API server on the host

    @classmethod
    def read(cls, core: Any, server: str) -> ApiService | None:
        """The Service as the API server has it, or None without one (then pods get no
        variables, as from a kubelet); ``server`` is the API server's URL on the host."""
        from kubernetes import client

        try:
            answer = core.read_namespaced_service("kubernetes", "default", _preload_content=False)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        spec = json.loads(answer.data)["spec"]
        (port,) = spec["ports"]
        url = urllib.parse.urlsplit(server)
        assert url.hostname is not None and url.port is not None, server
        return cls(spec["clusterIP"], int(port["port"]), port["name"], (url.hostname, url.port))

    def env(self) -> dict[str, str]:
        """The variables a kubelet sets for this Service (before the container's own)."""
        host, port = self.cluster_ip, str(self.port)
        address = f"tcp://{host}:{port}"
        prefix = f"KUBERNETES_PORT_{port}_TCP"
        return {
            "KUBERNETES_SERVICE_HOST": host,
            "KUBERNETES_SERVICE_PORT": port,
            f"KUBERNETES_SERVICE_PORT_{self.port_name.upper().replace('-', '_')}": port,
            "KUBERNETES_PORT": address,
            prefix: address,
            f"{prefix}_PROTO": "tcp",
            f"{prefix}_PORT": port,
            f"{prefix}_ADDR": host,
        }

    def open(self, netns: str) -> TcpProxy:
        """Make ``cluster_ip:port`` reach the API server from inside ``netns``; ``close()``
        the proxy when the pod ends (its namespace goes with the address)."""
        done = subprocess.run(
            [IP, "-n", netns, "addr", "add", f"{self.cluster_ip}/32", "dev", "lo"],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise OSError(f"cannot add {self.cluster_ip} to pod namespace {netns}: {done.stderr}")
        return TcpProxy(
            self.target, listen=lambda _: listen_in_netns(netns, (self.cluster_ip, self.port))
        )


def listen_in_netns(netns: str, address: tuple[str, int]) -> socket.socket:
    """A TCP socket listening on ``address`` inside network namespace ``netns``.

    A socket belongs to the namespace of the thread that made it, for its whole life: a
    short-lived thread enters the namespace (``setns``), makes it and ends, and this process's
    other threads stay where they are.
    """
    made: dict[str, Any] = {}

    def make() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            with open(f"{NETNS_RUN_DIR}/{netns}") as handle:
                if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {netns} failed")
            made["socket"] = socket.create_server(address)
        except OSError as exc:
            made["error"] = exc

    thread = threading.Thread(target=make, name=f"listen-in-{netns}")
    thread.start()
    thread.join()
    if "error" in made:
        raise made["error"]
    return made["socket"]
