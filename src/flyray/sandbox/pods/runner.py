"""One pod of the process kubelet, its containers run as local processes.

The pod gets a network namespace (``net.py``) and a folder on the host (outside ``/tmp``): a
home, a private ``/tmp`` and a log file a container. Each container is ``ip netns exec <netns>
unshare --uts sh -c '<set the hostname, mount the private /tmp>' ...`` running the container's
own command and args with the environment ``spec.py`` resolves, in a process group of its own;
``ray`` and ``python`` are those of this virtualenv (first on ``PATH``), except for a stock
``rayproject/ray:X`` image: its containers get a cached virtualenv with ``ray[default]==X`` and
what that image adds, and no flyray (``sandbox/rayvenv.py``), as a real cluster on the stock
image has. A virtualenv (or its base interpreter, or a source folder on ``sys.path``) under
``/tmp`` is bound into the private ``/tmp`` at the same path, so the pod finds it wherever it
lives. Init containers run first, one after the other. Readiness probes (``httpGet``,
``tcpSocket`` from the host to the pod's address, ``exec`` inside the pod) run with the pod's
own delays, periods and thresholds; a container without one is ready once started. The pod's
status is written through the API (``pods/status``) whenever it changes. Stopping a pod sends
SIGTERM to each container's process group, waits at most the grace period, then SIGKILLs every
process left in the pod's network namespace and removes it.

A container that exits is restarted as a kubelet does under ``restartPolicy: Always`` (the
API server's default, which KubeRay keeps for RayCluster pods in K8sJobMode) or, after a
failure, ``OnFailure``: the first time at once, then after a back-off of 10 s, doubled each
time up to 5 min (reset once it ran 10 min), waiting meanwhile with reason
``CrashLoopBackOff``; its ``restartCount`` and ``lastState`` say what happened. Under
``Never`` (KubeRay's submitter pods) it stays terminated and the pod ends ``Succeeded`` or
``Failed``.

Not done: liveness and startup probes, volumes (they are the host's paths), resource limits
(so never ``OOMKilled``), image pulls.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flyray.sandbox.pods.container import Container, Probe, now
from flyray.sandbox.pods.launch import IP, LAUNCH, MOUNT, PRIVATE_ROOT, SH, SYSTEM_PATH, UNSHARE
from flyray.sandbox.pods.net import PodNet, PodNetwork, write_hosts
from flyray.sandbox.pods.spec import PodSpecError, container_argv, container_env
from flyray.sandbox.rayvenv import image_bin_dir

__all__ = ["CLUSTER_DOMAIN", "HOST_IP", "RunningPod", "pod_fqdn"]

CLUSTER_DOMAIN = "cluster.local"
HOST_IP = "127.0.0.1"  # the node's address: the kubelet's log server listens there
TICK_S = 0.25
MAX_GRACE_S = 10.0
# probes go straight to the pod, whatever http_proxy says
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class RunningPod:
    """A pod bound to this node: ``start()`` runs it in a thread, ``stop()`` ends it."""

    pod: dict[str, Any]
    network: PodNetwork
    folder: Path
    core: Any  # kubernetes.client.CoreV1Api
    node_capacity: dict[str, str]
    errors: list[str]
    service_hosts: Callable[[], dict[str, list[str]]]  # the Services' names, by address
    binds: list[Path] = field(default_factory=list)  # host folders under /tmp the pod sees
    net: PodNet | None = None
    seen_pids: set[int] = field(default_factory=set)  # every process seen in the pod
    init: list[Container] = field(default_factory=list)
    containers: list[Container] = field(default_factory=list)
    started_at: str = ""
    finished: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _grace: float = MAX_GRACE_S
    _failure: tuple[str, str] | None = None
    _sent: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    @property
    def hostname(self) -> str:
        return str(self.pod["spec"].get("hostname") or self.name)

    @property
    def restart_policy(self) -> str:
        return str(self.pod["spec"].get("restartPolicy") or "Always")

    def _restarts(self, container: Container) -> bool:
        """Whether the exited ``container`` is to run again under the pod's restart policy."""
        policy = self.restart_policy
        return policy == "Always" or (policy == "OnFailure" and container.exit_code() != 0)

    def _restart_if_due(self, container: Container) -> None:
        """An exited container that is to run again: restart it now, or back off."""
        if self._stop.is_set() or not self._restarts(container):
            return
        pod = f"{self.name}_{self.namespace}({self.pod['metadata'].get('uid', '')})"
        if container.back_off(pod):
            container.retire()
            self._launch(container)

    def start(self) -> None:
        logs = self.folder / "logs"
        logs.mkdir(parents=True)
        for kind, into in (("initContainers", self.init), ("containers", self.containers)):
            into += [
                Container(spec, logs / f"{spec['name']}.log")
                for spec in self.pod["spec"].get(kind) or []
            ]
        threading.Thread(target=self._run, name=f"pod-{self.name}", daemon=True).start()

    def stop(self, grace: float) -> None:
        """Ask the pod to end (its thread stops it): SIGTERM, ``grace`` s, then SIGKILL."""
        self._grace = min(max(grace, 0.0), MAX_GRACE_S)
        self._stop.set()

    def write_hosts(self, services: dict[str, list[str]]) -> None:
        """The pod's ``/etc/hosts``: its own names, then the Services' (by address)."""
        if self.net is None:
            return
        own = [self.hostname, *pod_fqdn(self.pod)]
        names = {**services, self.net.address: own + services.get(self.net.address, [])}
        write_hosts(self.net, names)

    def container(self, name: str) -> Container | None:
        return next((c for c in self.init + self.containers if c.name == name), None)

    def ready(self) -> bool:
        return bool(self.containers) and all(c.ready for c in self.containers)

    # -- the pod's life ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self.started_at = now()
            self.net = self.network.add_pod(self.hostname)
            self.write_hosts(self.service_hosts())  # before anything runs: names resolve
            self._report()
            if self._run_init() and not self._stop.is_set():
                for container in self.containers:
                    self._launch(container)
                self._report()
                self._supervise()
        except PodSpecError as exc:
            for container in self.init + self.containers:
                if container.popen is None:
                    container.waiting = ("CreateContainerConfigError", str(exc))
            self._report()
            self._stop.wait()
        except Exception:
            self.errors.append(f"pod {self.namespace}/{self.name}: {traceback.format_exc()}")
        finally:
            self._kill()
            self.finished.set()

    def _run_init(self) -> bool:
        """Run the init containers in order, a failed one again (with back-off) unless the
        policy is ``Never``; False if one failed for good (the pod has then failed) or the pod
        is stopped."""
        for container in self.init:
            self._launch(container)
            self._report()
            while container.exit_code() != 0:
                self._note_pids()
                if container.exit_code() is not None:
                    if self.restart_policy == "Never":
                        self._failure = ("Failed", f"init container {container.name} failed")
                        self._report()
                        self._stop.wait()
                        return False
                    self._restart_if_due(container)
                    self._report()
                if self._stop.wait(TICK_S):
                    return False
        return True

    def _launch(self, container: Container) -> None:
        assert self.net is not None
        home, private_tmp = self.folder / "home", self.folder / "tmp"
        home.mkdir(exist_ok=True)
        private_tmp.mkdir(exist_ok=True)
        binds: list[str] = []
        for path in self.binds:  # each to the same path in the pod's /tmp
            place = private_tmp / path.relative_to(PRIVATE_ROOT)
            place.mkdir(parents=True, exist_ok=True)
            binds += [str(path), str(place)]
        bin_dir = image_bin_dir(container.spec.get("image")) or Path(sys.executable).parent
        base = {
            "PATH": f"{bin_dir}:{SYSTEM_PATH}",
            "HOME": str(home),
            "HOSTNAME": self.hostname,
            "LANG": "C.UTF-8",
        }
        pod = {**self.pod, "status": self._status()["status"]}  # fieldRefs read podIP
        env = container_env(
            pod, container.spec, base=base, lookup=self._lookup, node_capacity=self.node_capacity
        )
        argv = container_argv(container.spec, env)
        workdir = container.spec.get("workingDir")
        with container.log.open("ab") as out:
            container.popen = subprocess.Popen(
                [
                    *(IP, "netns", "exec", self.net.netns, UNSHARE, "--uts"),
                    *(SH, "-c", LAUNCH, "sh", self.hostname, MOUNT, str(private_tmp)),
                    *binds,
                    "--",
                    *argv,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
                cwd=workdir if workdir and Path(workdir).is_dir() else home,
            )
        container.started_at, container.started_mono = now(), time.monotonic()
        probe = container.spec.get("readinessProbe")
        if probe:
            container.probe = Probe(probe, time.monotonic() + probe.get("initialDelaySeconds", 0))
        else:
            container.ready = True

    def _supervise(self) -> None:
        """Probe, watch and restart the containers until the pod is stopped or has ended."""
        while not self._stop.wait(TICK_S):
            self._note_pids()
            for container in self.containers:
                if container.exit_code() is None:
                    if container.probe is not None:
                        self._check(container)
                else:
                    self._restart_if_due(container)
            self._report()
            if self._ended():
                self._stop.wait()  # the pod has ended; it waits for its deletion

    def _ended(self) -> bool:
        """Every container exited and none will run again (``Succeeded`` or ``Failed``)."""
        codes = [c.exit_code() for c in self.containers]
        if not self.containers or None in codes:
            return False
        return self.restart_policy == "Never" or (
            self.restart_policy == "OnFailure" and not any(codes)
        )

    def _note_pids(self) -> None:
        if self.net is not None:
            self.seen_pids.update(self.net.pids())

    def _check(self, container: Container) -> None:
        probe = container.probe
        assert probe is not None
        if time.monotonic() < probe.due:
            return
        probe.due = time.monotonic() + probe.period
        if self._probe_once(container, probe.spec):
            probe.successes, probe.failures = probe.successes + 1, 0
            if probe.successes >= probe.spec.get("successThreshold", 1):
                container.ready = True
        else:
            probe.successes, probe.failures = 0, probe.failures + 1
            if probe.failures >= probe.spec.get("failureThreshold", 3):
                container.ready = False

    def _probe_once(self, container: Container, spec: dict[str, Any]) -> bool:
        assert self.net is not None
        timeout = float(spec.get("timeoutSeconds", 1))
        if "httpGet" in spec:
            get = spec["httpGet"]
            port = _port(container.spec, get["port"])
            scheme = get.get("scheme", "HTTP").lower()
            url = f"{scheme}://{get.get('host') or self.net.address}:{port}{get.get('path', '/')}"
            try:
                with _OPENER.open(url, timeout=timeout) as answer:
                    return 200 <= answer.status < 400
            except Exception:  # refused, reset, timed out, an error status, a broken answer
                return False
        if "tcpSocket" in spec:
            port = _port(container.spec, spec["tcpSocket"]["port"])
            try:
                socket.create_connection((self.net.address, port), timeout=timeout).close()
                return True
            except OSError:
                return False
        if "exec" in spec:
            argv = [IP, "netns", "exec", self.net.netns, *spec["exec"]["command"]]
            try:
                return subprocess.run(argv, capture_output=True, timeout=timeout).returncode == 0
            except subprocess.TimeoutExpired:
                return False
        return True

    def _kill(self) -> None:
        """SIGTERM each container's group; after the grace period SIGKILL the namespace."""
        self._note_pids()
        running = [c for c in self.init + self.containers if c.exit_code() is None]
        for container in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(container.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._grace
        while any(c.exit_code() is None for c in running) and time.monotonic() < deadline:
            time.sleep(0.1)
        for container in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(container.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                assert container.popen is not None
                container.popen.wait(5)
        if self.net is not None:
            self.network.remove_pod(self.net)  # SIGKILLs whatever left its group
        private_tmp = self.folder / "tmp"
        if any(line.split()[4].startswith(f"{private_tmp}/") for line in _mounts()):
            # a bound folder seen here: removing the private /tmp would remove the original
            self.errors.append(f"pod {self.name}: a folder is still bound into {private_tmp}")
            return
        shutil.rmtree(private_tmp, ignore_errors=True)

    # -- status ------------------------------------------------------------------------------

    def _status(self) -> dict[str, Any]:
        init_done = all(c.exit_code() == 0 for c in self.init)
        started = bool(self.containers) and all(
            c.popen is not None or c.restarts for c in self.containers
        )
        phase = "Pending"
        if self._failure is not None:
            phase = "Failed"
        elif started and self._ended():
            phase = "Succeeded" if not any(c.exit_code() for c in self.containers) else "Failed"
        elif started:
            phase = "Running"
        ready = "True" if self.ready() and phase == "Running" else "False"
        conditions = {
            "PodScheduled": "True",
            "PodReadyToStartContainers": "True" if self.net is not None else "False",
            "Initialized": "True" if init_done else "False",
            "ContainersReady": ready,
            "Ready": ready,
        }
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": [
                {"type": kind, "status": value, "lastTransitionTime": self.started_at}
                for kind, value in conditions.items()
            ],
            "hostIP": HOST_IP,
            "hostIPs": [{"ip": HOST_IP}],
            "startTime": self.started_at,
            "containerStatuses": [c.status() for c in self.containers],
        }
        if self.init:
            status["initContainerStatuses"] = [c.status() for c in self.init]
        if self.net is not None:
            status["podIP"], status["podIPs"] = self.net.address, [{"ip": self.net.address}]
        if self._failure is not None:
            status["reason"], status["message"] = self._failure
        return {"status": status}

    def _report(self) -> None:
        """Write the status through the API when it changed."""
        from kubernetes import client

        status = self._status()
        if status == self._sent:
            return
        try:
            self.core.patch_namespaced_pod_status(self.name, self.namespace, status)
            self._sent = status
        except client.ApiException as exc:
            if exc.status != 404:  # a pod already gone has nothing to report to
                self.errors.append(f"status of {self.name}: {exc.status} {exc.reason}")
        except Exception:  # the connection: unsent, so the next tick tries again
            return

    def _lookup(self, kind: str, name: str) -> dict[str, str] | None:
        from kubernetes import client

        read = (
            self.core.read_namespaced_secret
            if kind == "secret"
            else self.core.read_namespaced_config_map
        )
        try:
            answer = read(name, self.namespace, _preload_content=False)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return json.loads(answer.data).get("data") or {}


def _mounts() -> list[str]:
    """This process's mount table (``/proc/self/mountinfo``: field 5 is the mount point)."""
    return Path("/proc/self/mountinfo").read_text().splitlines()


def pod_fqdn(pod: dict[str, Any]) -> list[str]:
    """``<hostname>.<subdomain>.<ns>.svc.cluster.local`` for a pod with a subdomain."""
    spec, namespace = pod["spec"], pod["metadata"]["namespace"]
    if not spec.get("subdomain"):
        return []
    hostname = spec.get("hostname") or pod["metadata"]["name"]
    return [f"{hostname}.{spec['subdomain']}.{namespace}.svc.{CLUSTER_DOMAIN}"]


def _port(container: dict[str, Any], port: int | str) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise PodSpecError(f"container {container['name']!r} has no port named {port!r}")
