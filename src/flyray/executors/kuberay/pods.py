"""The pods of a run's RayCluster, watched for a container that cannot run: fail fast, with why.

KubeRay does not end a RayJob whose head or worker container keeps failing: the pods
(``restartPolicy: Always``, the API server's default, which KubeRay keeps in K8sJobMode)
crash-loop, or wait for an image that cannot be pulled, and the RayJob stays ``Initializing``
(or ``Running``) until a deadline, if there is one. A kubelet says why in each pod's
``containerStatuses``, so while a run goes on ``ClusterPods`` lists the pods labelled
``ray.io/cluster=<cluster>`` every ``POLL_S`` and, at the first container that terminated with a
non-zero exit code, waits in ``CrashLoopBackOff``, ``ImagePullBackOff`` or ``ErrImagePull``, or
was ``OOMKilled``, reads the end of its log (``pods/log``) and hands over the run's error:
``OOMError``, ``ImagePullBackOffError``, else ``TaskError``, each naming the pod, the container,
the exit code and reason, and quoting the log. Pods being deleted are not judged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flyray.errors import FlyrayError, ImagePullBackOffError, OOMError, TaskError

__all__ = ["LOG_LINES", "POLL_S", "ClusterPods", "PodFailure", "pod_error", "pod_failure"]

POLL_S = 1.0  # how often the cluster's pods are listed while a run goes on
LOG_LINES = 20  # how much of a failed container's log the error quotes
IMAGE_PULL = ("ImagePullBackOff", "ErrImagePull")
CRASH_LOOP = "CrashLoopBackOff"
OOM_KILLED = "OOMKilled"


@dataclass(frozen=True)
class PodFailure:
    """One container that cannot run: where, and what its kubelet says."""

    namespace: str
    pod: str
    container: str
    reason: str  # CrashLoopBackOff, ImagePullBackOff, ErrImagePull, Error, OOMKilled...
    exit_code: int | None = None
    exit_reason: str = ""  # the terminated instance's reason (Error, OOMKilled...)
    message: str = ""
    restarts: int = 0
    image: str = ""

    @property
    def oom(self) -> bool:
        return OOM_KILLED in (self.reason, self.exit_reason)

    def what(self) -> str:
        """What happened, in words: ``exited with code 127 (Error)``."""
        if self.reason in IMAGE_PULL:
            said = f": {self.message}" if self.message else ""
            return (
                f"cannot pull its image {self.image!r} ({self.reason}{said}); check the image's "
                "name and tag, and that the cluster may pull it (imagePullSecrets)"
            )
        exited = f"exited with code {self.exit_code} ({self.exit_reason or 'Error'})"
        if self.oom:
            exited = (
                f"was killed for using more memory than its limit ({OOM_KILLED}, exit code "
                f"{self.exit_code}); give it a larger memory limit"
            )
        if self.reason == CRASH_LOOP:
            times = "once" if self.restarts == 1 else f"{self.restarts} times"
            return f"{exited}, was restarted {times} and keeps failing ({CRASH_LOOP})"
        return exited


def pod_failure(pod: dict[str, Any]) -> PodFailure | None:
    """The first container of ``pod`` (a dict, as the API sends it) that cannot run, if any."""
    metadata, status = pod.get("metadata") or {}, pod.get("status") or {}
    if metadata.get("deletionTimestamp"):
        return None  # being stopped: its exit says nothing
    images = {
        c.get("name"): c.get("image", "")
        for kind in ("initContainers", "containers")
        for c in (pod.get("spec") or {}).get(kind) or []
    }
    for container in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        state = container.get("state") or {}
        waiting, terminated = state.get("waiting") or {}, state.get("terminated") or {}
        last = (container.get("lastState") or {}).get("terminated") or {}
        reason = waiting.get("reason") or ""
        if waiting and reason not in IMAGE_PULL and reason != CRASH_LOOP:
            continue
        if not waiting and not (terminated and terminated.get("exitCode")):
            continue
        ended = terminated or last
        name = container.get("name", "")
        return PodFailure(
            namespace=metadata.get("namespace", ""),
            pod=metadata.get("name", ""),
            container=name,
            reason=reason or terminated.get("reason") or "Error",
            exit_code=ended.get("exitCode"),
            exit_reason=ended.get("reason") or "",
            message=waiting.get("message") or "",
            restarts=int(container.get("restartCount") or 0),
            image=container.get("image") or images.get(name, ""),
        )
    return None


def pod_error(
    failure: PodFailure, log: str | None, *, run_id: str, task_name: str, logs: str | None = None
) -> FlyrayError:
    """The run's error for ``failure``; ``log``: the end of the container's log (None: unread)."""
    message = (
        f"run {run_id} of task {task_name} failed: container {failure.container} of pod "
        f"{failure.namespace}/{failure.pod} {failure.what()}"
    )
    if failure.reason not in IMAGE_PULL:
        message += f"; {quote(log)}"
    if failure.oom:
        return OOMError(OOM_KILLED, message)
    if failure.reason in IMAGE_PULL:
        return ImagePullBackOffError(failure.reason, message)
    return TaskError(message, failure.reason, run_id=run_id, logs=logs)


def quote(log: str | None) -> str:
    """The end of a container's log, indented, for an error message."""
    if log is None:
        return "its log could not be read"
    lines = log.rstrip("\n").splitlines()[-LOG_LINES:]
    if not lines:
        return "its log is empty"
    what = "line" if len(lines) == 1 else f"{len(lines)} lines"
    return f"the last {what} of its log:\n" + "\n".join(f"    {x}" for x in lines)


class ClusterPods:
    """Lists a RayCluster's pods in a daemon thread until one cannot run, or ``stop()``.

    ``on_failure(failure, log)`` is called once, from that thread, with the container's log
    (None when it could not be read). Listing is best effort: an API error only waits for the
    next look.
    """

    def __init__(self, session: Any, on_failure: Callable[[PodFailure, str | None], None]) -> None:
        self.session, self.on_failure = session, on_failure
        self.cluster: str | None = None
        self._stop: threading.Event | None = None

    def follow(self, cluster: str) -> None:
        """Watch the pods of ``cluster`` (a no-op if it is the one watched already)."""
        if cluster == self.cluster:
            return
        self.stop()
        self.cluster, self._stop = cluster, threading.Event()
        threading.Thread(
            target=self._run, args=(cluster, self._stop), name=f"flyray-pods-{cluster}", daemon=True
        ).start()

    def stop(self) -> None:
        """Stop looking (the thread ends within one look)."""
        if self._stop is not None:
            self._stop.set()

    def _run(self, cluster: str, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                pods = self.session.cluster_pods(cluster)
            except Exception:  # an API error, or the session closed as the run ended
                pods = []
            failure = next((f for f in map(pod_failure, pods) if f is not None), None)
            if failure is not None and not stop.is_set():
                log = self._log(failure)
                if not stop.is_set():
                    self.on_failure(failure, log)
                return
            stop.wait(POLL_S)

    def _log(self, failure: PodFailure) -> str | None:
        """The end of the failed container's log: this instance's, else the previous one's."""
        if failure.reason in IMAGE_PULL:
            return None  # it never ran
        text = None
        for previous in (False, True):
            try:
                text = self.session.container_log(
                    failure.pod, failure.container, tail_lines=LOG_LINES, previous=previous
                )
            except FlyrayError:
                continue
            if text.strip():
                return text
        return text
