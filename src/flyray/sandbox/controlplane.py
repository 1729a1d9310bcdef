"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

Plain processes, each in its own process group (stopped by group: SIGTERM, then SIGKILL), on
free ports of 127.0.0.1, with a private temp dir for data, credentials and logs. The API server
authenticates bearer tokens (an admin, and ``alice`` who has only what RBAC grants her) and
authorizes with RBAC; the controller-manager runs the garbage collector (it finishes foreground
deletions), the Job controller (it makes a batch Job's pod), the service account controller
(it makes each namespace's ``default`` account, without which no pod is admitted), the
Endpoints controller and the root CA publisher (``kube-root-ca.crt`` in each namespace).
KubeRay's CRDs are installed; no scheduler runs, and the operator and a kubelet only when a
test asks (``operator.py``, ``kubelet.py``, ``process_kubelet.py``).

Clients reach the API server through a TCP proxy (``proxy``) that a test can cut or point at
a second API server on the same etcd (``add_apiserver``): a replica whose watch cache starts
later, as behind a load balancer, which answers a watch resumed from an older resourceVersion
with a real 410 Gone. Every ``ray.io`` request goes to an audit log (``audit_events``), with
the body of RayCluster patches (the autoscaler's), and so do the operator's pod creations and
deletions.

Nothing outlives the session that started it: each component dies with its parent thread
(``process.py``), a watchdog process removes what the folder's records name once the owner is
gone however it ended (``watchdog.py``, ``owner.py``), and a new session first cleans the
folders of dead ones (``sweep``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from flyray.executors.localcluster.raystart import free_port
from flyray.sandbox.certs import SERVICE_IP_RANGE, Credentials, make_credentials
from flyray.sandbox.crds import install_crds
from flyray.sandbox.owner import Owner, sweep
from flyray.sandbox.process import ManagedProcess
from flyray.sandbox.proxy import TcpProxy
from flyray.sandbox.watchdog import Watchdog

__all__ = ["KubeStartError", "RealKube"]

START_TIMEOUT_S = 90.0
DIR_PREFIX = "flyray-realkube-"
LOG_TAIL_LINES = 30
ADMIN_CONTEXT, USER_CONTEXT = "realkube", "realkube-alice"
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        # a RayCluster's patches with their body: the autoscaler's replicas, in order
        {
            "level": "Request",
            "verbs": ["patch"],
            "resources": [{"group": "ray.io", "resources": ["rayclusters"]}],
        },
        {"level": "Metadata", "resources": [{"group": "ray.io"}]},
        # the operator's pods, with their names (it creates them with generateName)
        {
            "level": "RequestResponse",
            "users": ["kuberay-operator"],
            "verbs": ["create", "delete"],
            "resources": [{"group": "", "resources": ["pods"]}],
        },
        {"level": "None"},
    ],
}


class KubeStartError(RuntimeError):
    """A component did not come up; the message quotes the end of each component's log."""


class RealKube:
    """The control plane; ``start()`` brings it up, ``close()`` stops it and removes its dir."""

    def __init__(self, bin_dir: Path, schemas: Path, *, workdir: Path | None = None) -> None:
        self.bin_dir, self.schemas = bin_dir, schemas
        if workdir is None:
            sweep(Path(tempfile.gettempdir()), DIR_PREFIX)  # what killed sessions left
        self.dir = workdir or Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
        self.owner = Owner(self.dir).claim()
        self.watchdog = Watchdog(self.dir).start()
        self.processes: list[ManagedProcess] = []
        self.etcd_url = ""
        self.server = ""  # the API server itself
        self.proxy: TcpProxy | None = None  # what the kubeconfig's "realkube" context points at
        self.kubeconfig_path = self.dir / "kubeconfig"
        self.apiservers = 0
        self.credentials: Credentials | None = None
        self._gc_probe_deleted = False

    # -- start -------------------------------------------------------------------------------

    def start(self) -> RealKube:
        """Start everything and install the CRDs; on failure stop what started and raise."""
        try:
            self.credentials = make_credentials(self.dir / "pki")
            self._start_etcd()
            self._start_apiserver()
            self.proxy = TcpProxy(("127.0.0.1", int(self.server.rsplit(":", 1)[1])))
            self._write_kubeconfig()
            with self.api_client() as api:
                install_crds(api, self.schemas)
            self._start_controller_manager()
        except BaseException as exc:
            report = self.logs_report()
            self.close()
            if isinstance(exc, Exception):
                raise KubeStartError(f"{exc}\n{report}") from exc
            raise
        return self

    def spawn(
        self, name: str, argv: list[str], *, env: dict[str, str] | None = None
    ) -> ManagedProcess:
        """Start a component that logs to ``<dir>/<name>.log``; ``close()`` stops it."""
        process = ManagedProcess(name, argv, self.dir / f"{name}.log", env=env)
        self.owner.record_group(process.popen.pid, name)
        self.processes.append(process)
        return process

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        peer_url = f"http://127.0.0.1:{peer}"
        etcd = self.spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--name=realkube",
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=realkube={peer_url}",
                "--unsafe-no-fsync",  # test data: durability is not wanted, speed is
                "--log-level=warn",
            ],
        )
        self.wait_ready(etcd, lambda: json.loads(self._etcd_get("/health")).get("health") == "true")

    def _start_apiserver(self) -> None:
        self.server, _ = self.add_apiserver()

    def add_apiserver(self) -> tuple[str, ManagedProcess]:
        """One more kube-apiserver on this etcd; (its URL, its process) once it serves RayJobs.

        Each has its own audit log; ``audit_events`` reads them all.
        """
        assert self.credentials is not None
        creds, port = self.credentials, free_port()
        self.apiservers += 1
        name = "kube-apiserver" + (f"-{self.apiservers}" if self.apiservers > 1 else "")
        url = f"https://127.0.0.1:{port}"
        policy = self.dir / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(AUDIT_POLICY))
        apiserver = self.spawn(
            name,
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.dir / f'{name}-certs'}",
                f"--tls-cert-file={creds.server_cert}",
                f"--tls-private-key-file={creds.server_key}",
                f"--token-auth-file={creds.token_file}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={creds.service_account_pub}",
                f"--service-account-signing-key-file={creds.service_account_key}",
                f"--service-cluster-ip-range={SERVICE_IP_RANGE}",
                "--endpoint-reconciler-type=none",  # 127.0.0.1 is no valid Endpoints address
                # pod logs come from the process kubelet (level 3): both sides show certificates
                f"--kubelet-client-certificate={creds.kubelet_client_cert}",
                f"--kubelet-client-key={creds.kubelet_client_key}",
                f"--kubelet-certificate-authority={creds.ca_cert}",
                "--kubelet-preferred-address-types=InternalIP",
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.dir / f'{name}.audit.log'}",
                "--audit-log-format=json",
                "--profiling=false",
                "--v=1",
            ],
        )
        self.wait_ready(apiserver, lambda: self._api_get("/readyz", url) == "ok")
        self.wait_ready(apiserver, lambda: bool(self._api_get("/api/v1/namespaces/default", url)))
        if self.apiservers > 1:  # the CRDs are in etcd already: wait until they are served
            self.wait_ready(apiserver, lambda: "rayjobs" in self._api_get("/apis/ray.io/v1", url))
        return url, apiserver

    def _start_controller_manager(self) -> None:
        """The garbage collector (it removes ``foregroundDeletion`` finalizers), the Job, the
        service account and the Endpoints controllers (the API server's service proxy, which
        the operator uses to reach a dashboard, reads Endpoints), and the root CA publisher
        (each namespace's ``kube-root-ca.crt`` ConfigMap: the ``ca.crt`` of a pod's
        ``kube-api-access-*`` volume); nothing that needs a cloud."""
        assert self.credentials is not None
        kubeconfig = self.direct_kubeconfig("controller-manager", self.credentials.manager_token)
        manager = self.spawn(
            "kube-controller-manager",
            [
                str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                "--controllers=garbagecollector,job,serviceaccount,endpoint,root-ca-cert-publisher",
                f"--root-ca-file={self.credentials.ca_cert}",
                "--leader-elect=false",
                "--secure-port=0",
                "--use-service-account-credentials=false",
                "--v=1",
            ],
        )
        self.wait_ready(manager, self._gc_works)

    # -- health ------------------------------------------------------------------------------

    def wait_ready(
        self, process: ManagedProcess, ready: Any, timeout: float = START_TIMEOUT_S
    ) -> None:
        """Poll ``ready()`` until true; fail at once if ``process`` exits, or at the deadline."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while True:
            if not process.alive():
                raise KubeStartError(f"{process.name} exited with {process.popen.returncode}")
            try:
                if ready():
                    return
            except (OSError, ValueError, urllib.error.URLError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise KubeStartError(f"{process.name} not ready after {timeout:.0f} s ({last})")
            time.sleep(0.2)

    def _etcd_get(self, path: str) -> str:
        with urllib.request.urlopen(self.etcd_url + path, timeout=5) as answer:
            return answer.read().decode()

    def _api_get(self, path: str, server: str) -> str:
        """GET ``path`` from ``server`` as the admin; "" for a 404, 500 or 503."""
        assert self.credentials is not None
        context = ssl.create_default_context(cafile=str(self.credentials.ca_cert))
        request = urllib.request.Request(
            server + path, headers={"Authorization": f"Bearer {self.credentials.admin_token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5, context=context) as answer:
                return answer.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 500, 503):
                return ""
            raise

    def _gc_works(self) -> bool:
        """A ConfigMap deleted in the foreground disappears: the garbage collector is up.

        It is created and deleted once, and later calls only look: one made afresh on every
        call, and read right after its deletion, was found only when the collector happened
        to finish before that read (a start could take 90 s).
        """
        from kubernetes import client

        with self.api_client() as api:
            core = client.CoreV1Api(api)
            name = "realkube-gc-probe"
            if not self._gc_probe_deleted:
                with contextlib.suppress(client.ApiException):  # 409: made by an earlier call
                    core.create_namespaced_config_map("default", {"metadata": {"name": name}})
                try:
                    core.delete_namespaced_config_map(
                        name, "default", propagation_policy="Foreground"
                    )
                except client.ApiException:
                    return False
                self._gc_probe_deleted = True
            try:
                core.read_namespaced_config_map(name, "default")
            except client.ApiException as exc:
                return exc.status == 404
        return False

    def audit_events(self, *, name: str | None = None) -> list[dict[str, Any]]:
        """Completed ``ray.io`` requests (and the operator's pod creations and deletions) so
        far, oldest first; ``name``: those about that object.

        Each is an audit event: ``verb``, ``user.username``, ``objectRef`` (a list or watch
        with a ``metadata.name`` field selector names its object too), ``responseStatus.code``,
        and ``apiserver``: which API server answered (``kube-apiserver``, ``kube-apiserver-2``).
        """
        events = [
            {**json.loads(line), "apiserver": log.name.split(".")[0]}
            for log in self.dir.glob("*.audit.log")
            for line in log.read_text().splitlines()
        ]
        return sorted(
            (
                event
                for event in events
                if event.get("stage") == "ResponseComplete"
                and (name is None or (event.get("objectRef") or {}).get("name") == name)
            ),
            key=lambda event: event["stageTimestamp"],
        )

    # -- clients -----------------------------------------------------------------------------

    def _write_kubeconfig(self) -> None:
        """Contexts ``realkube`` (admin) and ``realkube-alice``, both through the proxy."""
        assert self.credentials is not None and self.proxy is not None
        creds = self.credentials
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "realkube",
                    "cluster": {
                        "server": f"https://127.0.0.1:{self.proxy.port}",
                        "certificate-authority": str(creds.ca_cert),
                    },
                }
            ],
            "users": [
                {"name": "admin", "user": {"token": creds.admin_token}},
                {"name": "alice", "user": {"token": creds.user_token}},
            ],
            "contexts": [
                {
                    "name": ADMIN_CONTEXT,
                    "context": {"cluster": "realkube", "user": "admin", "namespace": "default"},
                },
                {
                    "name": USER_CONTEXT,
                    "context": {"cluster": "realkube", "user": "alice", "namespace": "default"},
                },
            ],
            "current-context": ADMIN_CONTEXT,
        }
        self.kubeconfig_path.write_text(yaml.safe_dump(config))

    def direct_kubeconfig(self, name: str, token: str) -> Path:
        """``<dir>/<name>.kubeconfig``: straight to the API server (no proxy), as ``token``.

        For components (controller-manager, operator): a test that cuts the proxy cuts only
        the clients under test.
        """
        config = yaml.safe_load(self.kubeconfig_path.read_text())
        config["clusters"][0]["cluster"]["server"] = self.server
        config["users"] = [{"name": "admin", "user": {"token": token}}]
        config["contexts"] = config["contexts"][:1]
        path = self.dir / f"{name}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        return path

    def api_client(self, *, token: str | None = None, server: str | None = None) -> Any:
        """A ``kubernetes.client.ApiClient`` straight to the (first) API server, as the admin."""
        from kubernetes import client

        assert self.credentials is not None
        configuration = client.Configuration()
        configuration.host = server or self.server
        configuration.ssl_ca_cert = str(self.credentials.ca_cert)
        configuration.api_key = {"authorization": token or self.credentials.admin_token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(configuration)

    # -- stop --------------------------------------------------------------------------------

    def logs_report(self) -> str:
        """The tail of every component's log, for a failure message."""
        return "\n".join(
            f"--- {p.name} ({p.log}), last {LOG_TAIL_LINES} lines ---\n{p.tail(LOG_TAIL_LINES)}"
            for p in self.processes
        )

    def close(self, *, keep_dir: bool = False) -> None:
        """Stop every process (newest first), the proxy, the watchdog; remove the temp dir."""
        for process in reversed(self.processes):
            process.stop()
        if self.proxy is not None:
            self.proxy.close()
        if keep_dir:
            self.owner.keep_folder()
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.watchdog.release()
