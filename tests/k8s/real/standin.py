"""TEST CODE: a stand-in for the KubeRay operator, talking to a REAL API server.

Level 1 runs no operator, so this thread plays its RayJob part through the Kubernetes API, the
way KubeRay does it (``../shared/kuberay/README.md``): it adds the ``ray.io/rayjob-finalizer``,
writes ``/status`` (``Initializing`` -> ``Running`` -> ``Complete`` | ``Failed``/``AppFailed``),
runs the RayJob's real entrypoint with its ``runtimeEnvYAML`` on an existing local Ray cluster
through the Jobs API (as the submitter pod would), and on deletion stops the Ray job and drops
its finalizer. No RayCluster, pods or submitter Job are made. It polls the RayJobs (a list
every ``POLL_S``), so etcd compactions that a test provokes cannot break it.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from datetime import datetime, timezone
from typing import Any

import yaml

__all__ = ["FINALIZER", "StandInOperator"]

FINALIZER = "ray.io/rayjob-finalizer"
POLL_S = 0.2
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
GROUP, VERSION, PLURAL = "ray.io", "v1", "rayjobs"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class StandInOperator:
    """Plays KubeRay for every RayJob in ``namespace``; a context manager that stops it."""

    def __init__(self, api_client: Any, namespace: str, ray: Any) -> None:
        from kubernetes import client

        self.custom = client.CustomObjectsApi(api_client)
        self.namespace, self.ray = namespace, ray
        self.errors: list[str] = []  # failures of the stand-in itself: a test should fail
        self.hold: set[str] = set()  # RayJob names to leave Initializing (a test's choice)
        self._jobs: dict[str, _Job] = {}  # by uid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="standin-operator", daemon=True)

    def __enter__(self) -> StandInOperator:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Delete the RayJobs a test left (playing their finalizer), then stop."""
        try:
            self._delete_all(timeout=60)
        finally:
            self._stop.set()
            self._thread.join(30)
            for job in self._jobs.values():
                job.stop_ray_job()

    def _delete_all(self, *, timeout: float) -> None:
        def names() -> list[str]:
            found = self.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL
            )
            return [item["metadata"]["name"] for item in found["items"]]

        for name in names():
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, propagation_policy="Foreground"
            )
        deadline = time.monotonic() + timeout
        while left := names():
            if time.monotonic() > deadline:
                self.errors.append(f"RayJobs still there {timeout:.0f} s after deletion: {left}")
                return
            time.sleep(POLL_S)

    def jobs(self) -> list[_Job]:
        """Every RayJob seen so far (deleted ones too)."""
        return list(self._jobs.values())

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                items = self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL
                )["items"]
                for obj in items:
                    uid = obj["metadata"]["uid"]
                    if uid not in self._jobs:
                        self._jobs[uid] = _Job(self, obj)
                    self._jobs[uid].reconcile(obj)
            except Exception as exc:  # keep playing; the test reads ``errors``
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(POLL_S)


class _Job:
    """One RayJob's state machine, advanced one step per ``reconcile``."""

    def __init__(self, operator: StandInOperator, obj: dict[str, Any]) -> None:
        self.operator = operator
        self.name = obj["metadata"]["name"]
        self.job_id = f"{self.name}-{secrets.token_hex(3)}"
        self.client: Any = None
        self.job_status = ""
        self.done = False
        # a RayJob some earlier stand-in started: only its deletion is played
        self.ours = not (obj.get("status") or {}).get("jobDeploymentStatus")

    def reconcile(self, obj: dict[str, Any]) -> None:
        metadata = obj["metadata"]
        finalizers = metadata.get("finalizers") or []
        if metadata.get("deletionTimestamp"):
            if FINALIZER in finalizers:
                self.stop_ray_job()
                self._set_finalizers(obj, [f for f in finalizers if f != FINALIZER])
            return
        if not self.ours:
            return
        if FINALIZER not in finalizers:
            self._set_finalizers(obj, [*finalizers, FINALIZER])
            return
        deployment = (obj.get("status") or {}).get("jobDeploymentStatus") or ""
        if deployment == "":
            self._status(
                jobDeploymentStatus="Initializing",
                jobId=self.job_id,
                rayClusterName=f"{self.name}-raycluster-{secrets.token_hex(3)[:5]}",
                startTime=_now(),
            )
        elif deployment == "Initializing" and self.name not in self.operator.hold:
            self._submit(obj["spec"])
            self._status(jobDeploymentStatus="Running", dashboardURL=self._dashboard())
        elif deployment == "Running" and not self.done:
            self._follow()

    def _submit(self, spec: dict[str, Any]) -> None:
        """What the submitter pod does: ``ray job submit`` of the entrypoint and runtime env."""
        from ray.job_submission import JobSubmissionClient

        ray = self.operator.ray
        self.client = JobSubmissionClient(ray.dashboard_url, headers=ray.auth_headers())
        self.client.submit_job(
            entrypoint=spec["entrypoint"],
            submission_id=self.job_id,
            runtime_env=yaml.safe_load(spec.get("runtimeEnvYAML") or "") or None,
        )

    def _follow(self) -> None:
        """Copy the Ray job's status; at its end, Complete or Failed/AppFailed."""
        info = self.client.get_job_info(self.job_id)
        status = str(getattr(info.status, "value", info.status))
        if status == self.job_status:
            return
        self.job_status = status
        if status not in TERMINAL:
            self._status(jobStatus=status)
            return
        self.done = True
        if status == "SUCCEEDED":
            self._status(
                jobStatus=status, jobDeploymentStatus="Complete", endTime=_now(), succeeded=1
            )
        else:
            self._status(
                jobStatus=status,
                jobDeploymentStatus="Failed",
                reason="AppFailed",
                message=info.message or "",
                endTime=_now(),
                failed=1,
            )

    def job_status_now(self) -> str:
        """The Ray job's status as Ray has it now ("" before it was submitted)."""
        if self.client is None:
            return ""
        return str(self.client.get_job_status(self.job_id).value)

    def stop_ray_job(self) -> None:
        if self.client is not None and not self.done:
            self.done = True
            with contextlib.suppress(Exception):
                self.client.stop_job(self.job_id)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    if str(self.client.get_job_status(self.job_id).value) in TERMINAL:
                        return
                    time.sleep(0.2)

    def _dashboard(self) -> str:
        return self.operator.ray.dashboard_url.split("://", 1)[-1]

    def _set_finalizers(self, obj: dict[str, Any], finalizers: list[str]) -> None:
        """Patch the finalizers, if ``obj`` is still the current version (else: next round)."""
        from kubernetes.client.exceptions import ApiException

        op = self.operator
        version = obj["metadata"]["resourceVersion"]
        body = {"metadata": {"finalizers": finalizers, "resourceVersion": version}}
        try:
            op.custom.patch_namespaced_custom_object(
                GROUP, VERSION, op.namespace, PLURAL, self.name, body
            )
        except ApiException as exc:
            if exc.status not in (404, 409):  # changed or gone meanwhile
                raise

    def _status(self, **fields: Any) -> None:
        op = self.operator
        op.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, op.namespace, PLURAL, self.name, {"status": fields}
        )
