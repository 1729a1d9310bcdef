"""A "process kubelet" (level 3): the pods of one namespace really run, as processes.

A thread plays the scheduler and the kubelet for one namespace, through the real API: it
registers a Node (address 127.0.0.1, the port of its log server), binds every unscheduled pod
to it (``pods/binding``), runs each bound pod (``pod_runner.py``: a network namespace, its
containers as local processes, readiness probes, ``pods/status``), keeps each pod's
``/etc/hosts`` up to date with the Services of the namespace (a Service's names resolve to the
addresses of the pods it selects: what cluster DNS answers for KubeRay's headless head Service;
there is no ClusterIP routing but the ``kubernetes`` Service's, ``apiservice.py``), and when a
pod is deleted, stops it and finishes the deletion (grace period 0). The Endpoints controller
makes Endpoints from the same pod addresses, through which the API server's service proxy
reaches a pod (the operator's way to a dashboard).

Its log server answers the API server's ``/containerLogs/<ns>/<pod>/<container>``
(``pods/log``; ``follow``, ``tailLines`` and ``previous`` included) over TLS, and accepts only a
client certificate of the session's CA (the API server's). It polls (a list every ``POLL_S``),
so it needs no watch. Pods have no route out; an egress proxy on the bridge (``egress.py``,
``PIP_PROXY`` in every container) lets a runtime env's pip reach the package index.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import tempfile
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from flyray.sandbox.certs import Credentials
from flyray.sandbox.pods.apiservice import ApiService
from flyray.sandbox.pods.egress import EgressProxy
from flyray.sandbox.pods.launch import tmp_binds
from flyray.sandbox.pods.net import PodNetwork
from flyray.sandbox.pods.runner import CLUSTER_DOMAIN, HOST_IP, RunningPod

__all__ = ["NODE", "ProcessKubelet", "bind", "remove_orphan_dirs"]

NODE = "realkube-pods"
POLL_S = 0.2
HANDSHAKE_TIMEOUT_S = 10.0
DIR_PARENT, DIR_PREFIX = "/var/tmp", "flyray-kubelet-"  # + <pid>-<random>


class ProcessKubelet:
    """Runs every pod of ``namespace`` from ``open()`` to ``close()``."""

    def __init__(self, api_client: Any, namespace: str, credentials: Credentials) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.server = str(api_client.configuration.host)  # pods reach it at its ClusterIP
        self.api_service: ApiService | None = None
        self.namespace = namespace
        self.network = PodNetwork()
        self.egress: EgressProxy | None = None  # pip's way out (PIP_PROXY), from open()
        # outside /tmp, which every pod replaces by its own: a run store here is shared
        remove_orphan_dirs()
        self.dir = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-", dir=DIR_PARENT))
        self.shared = self.dir / "shared"
        self.shared.mkdir()
        self.errors: list[str] = []  # failures of the kubelet itself: a test should fail
        self.pods: dict[str, RunningPod] = {}  # by uid, until their deletion is finished
        self.history: list[RunningPod] = []  # every pod it ran, for the tests to inspect
        self.service_hosts: dict[str, list[str]] = {}  # the Services' names, by address
        self.binds = tmp_binds()  # this virtualenv's folders under /tmp: every pod sees them
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="process-kubelet", daemon=True)
        self._server = _log_server(self, credentials)
        self.capacity = {
            "cpu": str(os.cpu_count() or 1),
            "memory": str(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")),
            "pods": "110",
        }

    def open(self) -> ProcessKubelet:
        """Make the pods' network, serve logs, register the node, start the loop."""
        # first: close() waits for the server loop, which must then have been started
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        try:
            self.network.open()
            self.egress = EgressProxy(self.network.gateway).open()
            self._register_node()
            self.api_service = ApiService.read(self.core, self.server)
        except BaseException:
            self.close()
            raise
        self._thread.start()
        return self

    def close(self, *, keep_dir: bool = False) -> None:
        """Stop every pod, the loop and the log server; remove the network and the folder."""
        if self._stop.is_set():
            return
        self._stop.set()
        try:
            if self._thread.is_alive():
                self._thread.join(30)
            for pod in list(self.pods.values()):
                pod.stop(0)
            for pod in list(self.pods.values()):
                pod.finished.wait(30)
            self._server.shutdown()
            self._server.server_close()
        finally:
            if self.egress is not None:
                self.egress.close()
            self.network.close()  # kills whatever is left in the pods' namespaces
            if not keep_dir:
                shutil.rmtree(self.dir, ignore_errors=True)

    def find(self, namespace: str, name: str) -> RunningPod | None:
        """The newest pod of that name this kubelet ran."""
        with self._lock:
            return next(
                (
                    pod
                    for pod in reversed(self.history)
                    if (pod.namespace, pod.name) == (namespace, name)
                ),
                None,
            )

    # -- the node ----------------------------------------------------------------------------

    def _register_node(self) -> None:
        from kubernetes import client

        try:
            self.core.create_node({"metadata": {"name": NODE, "labels": {"realkube": "pods"}}})
        except client.ApiException as exc:
            if exc.status != 409:
                raise
        status = {
            "addresses": [
                {"type": "InternalIP", "address": HOST_IP},
                {"type": "Hostname", "address": NODE},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self._server.server_address[1]}},
            "capacity": self.capacity,
            "allocatable": self.capacity,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "lastHeartbeatTime": _now(),
                    "lastTransitionTime": _now(),
                }
            ],
        }
        self.core.patch_node_status(NODE, {"status": status})

    # -- the loop ----------------------------------------------------------------------------

    def _loop(self) -> None:
        from kubernetes import client

        while not self._stop.is_set():
            try:
                pods = self._list("pods")
                self._tend(pods)
                self._write_hosts(pods, self._list("services"))
            except client.ApiException as exc:
                if exc.status not in (404, 409):  # a pod gone or changed meanwhile: next round
                    self.errors.append(f"{exc.status} {exc.reason}: {exc.body}")
            except Exception:
                self.errors.append(traceback.format_exc())
            self._stop.wait(POLL_S)

    def _list(self, kind: str) -> list[dict[str, Any]]:
        """The namespace's pods or services as JSON (camelCase, as pod specs are read)."""
        call = (
            self.core.list_namespaced_pod if kind == "pods" else self.core.list_namespaced_service
        )
        return json.loads(call(self.namespace, _preload_content=False).data)["items"]

    def _tend(self, pods: list[dict[str, Any]]) -> None:
        seen = set()
        for pod in pods:
            metadata, spec = pod["metadata"], pod["spec"]
            uid, deleting = metadata["uid"], metadata.get("deletionTimestamp") is not None
            seen.add(uid)
            if spec.get("nodeName") is None:
                if not deleting:
                    self._bind(metadata["name"])
            elif spec["nodeName"] != NODE:
                continue
            elif deleting:
                self._delete(pod)
            elif uid not in self.pods and (pod.get("status") or {}).get("phase") in (
                None,
                "Pending",
            ):
                self._start(pod)
        for uid in set(self.pods) - seen:  # deleted by someone else at once: stop it anyway
            self.pods.pop(uid).stop(0)

    def _start(self, pod: dict[str, Any]) -> None:
        metadata = pod["metadata"]
        running = RunningPod(
            pod=pod,
            network=self.network,
            folder=self.dir / "pods" / f"{metadata['name']}_{metadata['uid'][:8]}",
            core=self.core,
            node_capacity=self.capacity,
            errors=self.errors,
            service_hosts=lambda: self.service_hosts,
            binds=self.binds,
            api_service=self.api_service,
            node_env={"PIP_PROXY": self.egress.url} if self.egress else {},
        )
        with self._lock:
            self.pods[metadata["uid"]] = running
            self.history.append(running)
        running.start()

    def _delete(self, pod: dict[str, Any]) -> None:
        """Stop the pod's processes; once they are gone, finish its deletion."""
        from kubernetes import client

        metadata = pod["metadata"]
        running = self.pods.get(metadata["uid"])
        if running is not None:
            running.stop(float(metadata.get("deletionGracePeriodSeconds") or 0))
            if not running.finished.is_set():
                return
            del self.pods[metadata["uid"]]
        try:
            self.core.delete_namespaced_pod(
                metadata["name"], self.namespace, grace_period_seconds=0, _preload_content=False
            )
        except client.ApiException as exc:
            if exc.status != 404:
                raise

    def _bind(self, name: str) -> None:
        bind(self.core, self.namespace, name, NODE)

    def _write_hosts(self, pods: list[dict[str, Any]], services: list[dict[str, Any]]) -> None:
        """Each running pod's ``/etc/hosts``: its own name, and every Service's names."""
        names: dict[str, list[str]] = {}
        for service in services:
            for address in service_addresses(service, pods):
                names.setdefault(address, []).extend(service_names(service))
        self.service_hosts = names
        for running in list(self.pods.values()):
            running.write_hosts(names)


def service_names(service: dict[str, Any]) -> list[str]:
    """What cluster DNS answers for: ``svc``, ``svc.ns``, ``svc.ns.svc``, and the full name."""
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    return [
        name,
        f"{name}.{namespace}",
        f"{name}.{namespace}.svc",
        f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}",
    ]


def service_addresses(service: dict[str, Any], pods: list[dict[str, Any]]) -> list[str]:
    """Addresses of the pods ``service`` selects: ready ones, or all with an address when it
    publishes not-ready addresses (KubeRay's head Service does)."""
    selector = service["spec"].get("selector") or {}
    if not selector:
        return []
    everyone = service["spec"].get("publishNotReadyAddresses", False)
    found = []
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        status = pod.get("status") or {}
        if any(labels.get(key) != value for key, value in selector.items()):
            continue
        ready = any(
            c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []
        )
        if (
            status.get("podIP")
            and (ready or everyone)
            and not pod["metadata"].get("deletionTimestamp")
        ):
            found.append(status["podIP"])
    return found


def remove_orphan_dirs() -> None:
    """Remove the folders of kubelets whose process is gone (a killed test session)."""
    for folder in Path(DIR_PARENT).glob(f"{DIR_PREFIX}*-*"):
        pid = folder.name[len(DIR_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# -- the log server -----------------------------------------------------------------------


def _log_server(kubelet: ProcessKubelet, credentials: Credentials) -> ThreadingHTTPServer:
    """HTTPS on 127.0.0.1 (a free port): the kubelet API's ``containerLogs``, nothing else."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(credentials.server_cert, credentials.server_key)
    context.load_verify_locations(credentials.ca_cert)
    context.verify_mode = ssl.CERT_REQUIRED  # the API server's client certificate

    class Handler(BaseHTTPRequestHandler):
        def setup(self) -> None:
            self.request.settimeout(HANDSHAKE_TIMEOUT_S)
            self.request.do_handshake()  # here, not in accept(): a silent client blocks no one
            self.request.settimeout(None)
            super().setup()

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            parts = url.path.strip("/").split("/")
            query = dict(urllib.parse.parse_qsl(url.query))
            if len(parts) != 4 or parts[0] != "containerLogs":
                self.send_error(404, "only /containerLogs/<namespace>/<pod>/<container>")
                return
            pod = kubelet.find(parts[1], parts[2])
            container = pod.container(parts[3]) if pod is not None else None
            if container is None:
                self.send_error(404, f"container {parts[3]!r} of pod {parts[2]!r} not found")
                return
            previous = query.get("previous") == "true"
            popen = container.popen  # this instance: a restart makes another
            if previous and not container.previous_log.exists():
                self.send_error(400, f"previous terminated container {parts[3]!r} not found")
                return
            if not previous and popen is None:
                self.send_error(400, f"container {parts[3]!r} is waiting to start")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            tail = int(query["tailLines"]) if "tailLines" in query else None
            if previous:
                _stream(self.wfile, container.previous_log, None, follow=False, tail=tail)
            else:
                follow = query.get("follow") == "true"
                _stream(self.wfile, container.log, popen, follow=follow, tail=tail)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the API server asks often; nothing worth keeping

    server = ThreadingHTTPServer((HOST_IP, 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    return server


def _stream(out: Any, path: Path, popen: Any, *, follow: bool, tail: int | None) -> None:
    """Write a container instance's log; with ``follow``, until that instance (``popen``)
    has exited."""
    with path.open("rb") as log:
        if tail is not None:
            lines = log.read().splitlines(keepends=True)
            out.write(b"".join(lines[-tail:] if tail else []))
        while True:
            ended = popen is None or popen.poll() is not None  # before the read: gets it all
            chunk = log.read(65536)
            if chunk:
                try:
                    out.write(chunk)
                    out.flush()
                except OSError:  # the reader went away
                    return
                continue
            if not follow or ended:
                return
            time.sleep(0.2)


def bind(core: Any, namespace: str, pod: str, node: str) -> None:
    """Bind ``pod`` to ``node`` (``pods/binding``), as the scheduler does."""
    body = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": pod},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }
    # not parsed into models: the client's V1Binding cannot read the Status that comes back
    core.create_namespaced_pod_binding(pod, namespace, body, _preload_content=False)
