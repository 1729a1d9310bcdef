"""TEST CODE: the Job controller and a kubelet, played for FakeKube's batch Jobs.

For the Jobs flyray creates itself (a task on an existing Ray cluster): each Job gets a thread
that makes one pod at a time (labels ``job-name``, ``batch.kubernetes.io/job-name``,
``controller-uid``; owned by the Job) and runs the pod's container ``command`` + ``args`` as a
local process in a session of its own, with the container's ``env`` (``value``, ``secretKeyRef``
read from ``FakeKube.secrets``, ``fieldRef`` to the pod's name and namespace) over this test
process's ``HOME`` and a ``PATH`` that starts with this interpreter's folder (the "image" is this
virtualenv, with flyray and Ray). The process's output is the pod's log. Exit 0: the pod
Succeeded and the Job is ``Complete``; otherwise the pod Failed and a new one starts until
``backoffLimit`` failures have been seen (then ``Failed``/``BackoffLimitExceeded``);
``activeDeadlineSeconds`` from the Job's ``startTime`` kills the pod (``Failed``/
``DeadlineExceeded``). Deleting the Job kills its pod's process group at once.

A missing Secret (or key) leaves the pod Pending with ``CreateContainerConfigError``, as a
kubelet does. Not played: ``parallelism``, ``completions``, ``podFailurePolicy``, suspend,
``ttlSecondsAfterFinished``, images (the command runs with this machine's Python).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.k8s.fake_operator import container_status, running_status, terminated_status
from tests.k8s.store import JOBS, PODS, Store, random_suffix, timestamp

__all__ = ["FakeJobController"]

_POLL_S = 0.2  # how often a Job's thread checks its process, deadline and deletion


class FakeJobController:
    """Runs the pods of FakeKube's Jobs as local processes; ``close()`` kills what is left."""

    def __init__(self, kube: Any) -> None:
        self.kube = kube
        self.store: Store = kube.store
        self.errors: list[str] = []
        self.log_dir = Path(tempfile.mkdtemp(prefix="fake-pods-"))
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def job_created(self, job: dict[str, Any]) -> None:
        thread = threading.Thread(
            target=self._guarded, args=(job,), name=f"fake-job:{job['metadata']['name']}"
        )
        self._threads.append(thread)
        thread.start()

    def close(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                self.errors.append(f"the thread of {thread.name} did not stop")
        shutil.rmtree(self.log_dir, ignore_errors=True)

    def _guarded(self, job: dict[str, Any]) -> None:
        try:
            _JobRun(self, job).run()
        except Exception as exc:  # a bug of the fake: the fixture reports it
            self.errors.append(f"{type(exc).__name__}: {exc}")


class _JobRun:
    """One Job: its pods one after another, its status."""

    def __init__(self, controller: FakeJobController, job: dict[str, Any]) -> None:
        self.controller, self.store = controller, controller.store
        meta = job["metadata"]
        self.name, self.namespace, self.uid = meta["name"], meta["namespace"], meta["uid"]
        self.spec = job["spec"]
        self.started = time.monotonic()
        self.failed = 0

    def run(self) -> None:
        self._status(active=0, startTime=timestamp())
        limit = int(self.spec.get("backoffLimit", 6))
        deadline = self.spec.get("activeDeadlineSeconds")
        while self._exists():
            outcome = self._pod(None if deadline is None else self.started + float(deadline))
            if outcome in ("gone", "stopping"):
                return
            if outcome == 0:
                self._end("Complete", succeeded=1)
                return
            self.failed += 1
            if outcome == "deadline":
                message = "Job was active longer than specified deadline"
                self._end("Failed", "DeadlineExceeded", message)
                return
            if self.failed > limit:
                message = "Job has reached the specified backoff limit"
                self._end("Failed", "BackoffLimitExceeded", message)
                return
            self._status(active=0, ready=0, failed=self.failed)

    def _pod(self, deadline: float | None) -> int | str:
        """Run one pod to its end: its exit code, or "deadline", "gone" or "stopping"."""
        pod_name = f"{self.name}-{random_suffix()}"
        template = self.spec["template"]
        container = template["spec"]["containers"][0]
        labels = {
            **(template.get("metadata") or {}).get("labels", {}),
            "batch.kubernetes.io/controller-uid": self.uid,
            "batch.kubernetes.io/job-name": self.name,
            "controller-uid": self.uid,
            "job-name": self.name,
        }
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "labels": labels,
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": self.name,
                        "uid": self.uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": template["spec"],
            "status": {"phase": "Pending"},
        }
        self.store.create(PODS, self.namespace, pod)
        self._status(active=1, ready=0, failed=self.failed or None)
        env = self._env(container, pod_name)
        if env is None:
            missing = [ref for ref in _secret_refs(container) if ref not in self._secret_keys()]
            message = f'secret "{missing[0][0]}" not found' if missing else ""
            waiting = {"waiting": {"reason": "CreateContainerConfigError", "message": message}}
            status = {
                "phase": "Pending",
                "containerStatuses": [container_status(container, ready=False, state=waiting)],
            }
            self._pod_status(pod_name, status)
            return self._wait(None, deadline, pod)
        log = self.controller.log_dir / f"{pod_name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*container.get("command", []), *container.get("args", [])],
                env=env,
                cwd=tempfile.gettempdir(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.store.set_log(self.namespace, pod_name, source=lambda: log.read_text(errors="replace"))
        self._pod_status(pod_name, running_status(pod))
        self._status(active=1, ready=1, failed=self.failed or None)
        try:
            return self._wait(process, deadline, pod)
        finally:
            _kill_group(process)
            self.store.set_log(self.namespace, pod_name, done=True)

    def _wait(self, process: Any, deadline: float | None, pod: dict[str, Any]) -> int | str:
        while True:
            if self.controller._stopping.is_set():
                return "stopping"
            if not self._exists():
                return "gone"
            code = None if process is None else process.poll()
            if code is not None:
                self._pod_status(pod["metadata"]["name"], terminated_status(pod, code))
                return code
            if deadline is not None and time.monotonic() >= deadline:
                status = terminated_status(pod, 137)
                status["reason"] = "DeadlineExceeded"
                self._pod_status(pod["metadata"]["name"], status)
                return "deadline"
            with self.store.changed:
                self.store.changed.wait(_POLL_S)

    def _env(self, container: dict[str, Any], pod: str) -> dict[str, str] | None:
        """The process environment; None when a referenced Secret or key is missing."""
        env = {key: os.environ[key] for key in ("HOME", "LANG") if key in os.environ}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        env["PYTHONUNBUFFERED"] = "1"
        for entry in container.get("env") or []:
            source = entry.get("valueFrom") or {}
            if "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                data = self.controller.kube.secrets.get((self.namespace, ref["name"])) or {}
                if ref["key"] not in data:
                    return None
                env[entry["name"]] = data[ref["key"]]
            elif "fieldRef" in source:
                fields = {"metadata.name": pod, "metadata.namespace": self.namespace}
                env[entry["name"]] = fields[source["fieldRef"]["fieldPath"]]
            else:
                env[entry["name"]] = entry.get("value", "")
        return env

    def _secret_keys(self) -> set[tuple[str, str]]:
        secrets = self.controller.kube.secrets
        return {
            (name, key)
            for (ns, name), data in secrets.items()
            if ns == self.namespace
            for key in data
        }

    def _exists(self) -> bool:
        job = self.store.get(JOBS, self.namespace, self.name)
        return job is not None and job["metadata"]["uid"] == self.uid

    def _end(self, condition: str, reason: str = "", message: str = "", **counts: int) -> None:
        now = timestamp()
        entry = {"type": condition, "status": "True", "lastTransitionTime": now}
        entry.update({k: v for k, v in (("reason", reason), ("message", message)) if v})
        status = {
            "active": 0,
            "ready": 0,
            "failed": self.failed or None,
            "conditions": [entry],
            **counts,
        }
        if condition == "Complete":
            status["completionTime"] = now
        self._status(**status)

    def _status(self, **changes: Any) -> None:
        def change(job: dict[str, Any]) -> None:
            status = {**(job.get("status") or {}), **changes}
            job["status"] = {k: v for k, v in status.items() if v is not None}

        self.store.mutate(JOBS, self.namespace, self.name, change, uid=self.uid)

    def _pod_status(self, pod: str, status: dict[str, Any]) -> None:
        def change(obj: dict[str, Any]) -> None:
            obj["status"] = status

        self.store.mutate(PODS, self.namespace, pod, change)


def _secret_refs(container: dict[str, Any]) -> list[tuple[str, str]]:
    """(Secret, key) of every ``secretKeyRef`` in the container's env."""
    refs = [(e.get("valueFrom") or {}).get("secretKeyRef") for e in container.get("env") or []]
    return [(ref["name"], ref["key"]) for ref in refs if ref]


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Stop the pod's process and everything it started (its session), then reap it."""
    if process.poll() is not None:  # ended: anything it left behind in its session goes too
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
