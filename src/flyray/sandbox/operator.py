"""The REAL KubeRay operator, as a plain process against the real control plane (level 2).

``kuberay-operator`` is built by ``k8s/build.sh`` from KubeRay's own Go module, at the
version ``kuberay-operator.version`` pins. It runs outside the cluster, as a component of
``RealKube`` (own process group, stopped by group, log in the session's temp dir): straight to
the API server as ``kuberay-operator`` (in ``system:masters``), leader election off, metrics
and health probes on free loopback ports, no webhooks (they are off unless
``ENABLE_WEBHOOKS=true``), and reaching Ray dashboards through the API server's service proxy
(``--use-kubernetes-proxy``), so it never resolves in-cluster DNS names. It watches two
namespaces, ``kuberay-real`` (level 2: pods that only report Running) and ``kuberay-pods``
(level 3: pods that run); the level-1 tests' stand-in plays the operator in ``default``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from flyray.executors.localcluster.raystart import free_port
from flyray.sandbox.controlplane import KubeStartError, RealKube
from flyray.sandbox.process import ManagedProcess

__all__ = ["NAMESPACE", "OPERATOR_VERSION", "PODS_NAMESPACE", "KubeRayOperator", "start_operator"]

OPERATOR_VERSION = (
    Path(__file__).with_name("k8s").joinpath("kuberay-operator.version").read_text().strip()
)
NAMESPACE = "kuberay-real"  # level 2: the status kubelet's pods, nothing runs
PODS_NAMESPACE = "kuberay-pods"  # level 3: the process kubelet's pods, which run
# each logs "Starting workers" once its caches are synced
CONTROLLERS = ("controllers.RayCluster", "controllers.RayJob", "controllers.RayService")
LOG_TAIL_LINES = 25
LINE_CHARS = 400  # its JSON lines can hold a whole RayJob status


class KubeRayOperator:
    """One ``kuberay-operator`` process on ``kube``; ``start()`` returns once it reconciles."""

    def __init__(
        self, kube: RealKube, *, namespaces: tuple[str, ...] = (NAMESPACE, PODS_NAMESPACE)
    ) -> None:
        self.kube, self.namespaces = kube, namespaces
        self.process: ManagedProcess | None = None
        self.probe_port = 0
        self.starts = 0  # started again after stop() (a test's restart): a log file of its own

    def start(self) -> KubeRayOperator:
        """Create the namespaces, start the operator, wait until its controllers run."""
        assert self.kube.credentials is not None
        self._ensure_namespace()
        kubeconfig = self.kube.direct_kubeconfig(
            "kuberay-operator", self.kube.credentials.operator_token
        )
        self.probe_port = metrics_port = free_port()
        while metrics_port == self.probe_port:  # two free ports, not one twice
            metrics_port = free_port()
        self.starts += 1
        self.process = self.kube.spawn(
            "kuberay-operator" + (f"-{self.starts}" if self.starts > 1 else ""),
            [
                str(self.kube.bin_dir / "kuberay-operator"),
                # on the command line, so the session's check for leftover processes sees it
                f"--kubeconfig={kubeconfig}",
                "--enable-leader-election=false",
                f"--metrics-addr=127.0.0.1:{metrics_port}",
                f"--health-probe-bind-address=127.0.0.1:{self.probe_port}",
                f"--watch-namespace={','.join(self.namespaces)}",
                "--use-kubernetes-proxy",
                "--log-stdout-encoder=json",
            ],
            env={"ENABLE_WEBHOOKS": "false"},
        )
        self.kube.wait_ready(self.process, self._reconciling)
        return self

    def _ensure_namespace(self) -> None:
        from kubernetes import client

        with self.kube.api_client() as api:
            for namespace in self.namespaces:
                try:
                    client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
                except client.ApiException as exc:
                    if exc.status != 409:
                        raise

    def _reconciling(self) -> bool:
        """Healthy on its probe port, and every controller has started its workers."""
        url = f"http://127.0.0.1:{self.probe_port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status != 200:
                    return False
        except (urllib.error.URLError, ConnectionError):
            return False
        started = {
            str(record.get("logger"))
            for record in self.records()
            if record.get("msg") == "Starting workers"
        }
        return set(CONTROLLERS) <= started

    def records(self) -> list[dict[str, Any]]:
        """The operator's JSON log lines so far, parsed (other lines skipped)."""
        if self.process is None or not self.process.log.exists():
            return []
        found = []
        for line in self.process.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The end of the operator's log, for a failure message (long lines cut short)."""
        if self.process is None:
            return "(the operator never started)"
        text = "\n".join(
            line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + " ..."
            for line in self.process.tail(lines).splitlines()
        )
        return f"--- {self.process.log}, last {lines} lines ---\n{text}"

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def stop(self) -> None:
        """Stop its process group (``RealKube.close`` would too: stopping twice is a no-op)."""
        if self.process is not None:
            self.process.stop()


def start_operator(kube: RealKube) -> KubeRayOperator:
    """A started operator, or ``KubeStartError`` quoting the end of its log."""
    operator = KubeRayOperator(kube)
    try:
        return operator.start()
    except Exception as exc:
        operator.stop()
        raise KubeStartError(f"kuberay-operator did not start: {exc}\n{operator.tail()}") from exc
