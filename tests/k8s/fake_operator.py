"""TEST CODE: the KubeRay operator, played for FakeKube with real Ray processes on this machine.

Each RayJob created through FakeKube gets a thread that walks it through KubeRay's state machine
(``../shared/kuberay/README.md`` and KubeRay's ``rayjob_controller.go``), in K8sJobMode:

- operator-only rules broken (name longer than 47, ttl without shutdown, ...): status
  ``ValidationFailed`` and nothing else, until the RayJob is deleted;
- finalizer ``ray.io/rayjob-finalizer``; ``Initializing`` with ``jobId`` (``spec.jobId`` or
  ``<rayjob>-<5 chars>``), ``rayClusterName`` (``<rayjob>-raycluster-<5 chars>``, at most 53)
  and ``startTime``; a RayCluster object owned by the RayJob, a Pod per Ray node (head and every
  worker replica) labelled ``ray.io/cluster``, ``ray.io/node-type``, ``ray.io/group``; the nodes
  start as a ``LocalRayCluster`` built from ``cluster_nodes(manifest)``, and pods turn Running
  and ``readyWorkerReplicas`` grows as they come up;
- the cluster ready: ``dashboardURL`` (``127.0.0.1:<port>``), the submitter batch Job (named like
  the RayJob) and its pod ``<rayjob>-<5 chars>`` (labels ``job-name`` and
  ``batch.kubernetes.io/job-name``), then ``Running``. The entrypoint is submitted through the
  Jobs API with ``runtimeEnvYAML`` as runtime_env; a failed submission fails that pod and
  ``submitterConfig.backoffLimit`` (2) more are tried, then ``Failed``/``SubmissionFailed``;
- Ray polled every 0.3 s; on each change of ``jobStatus`` also ``message``, ``rayJobInfo`` and
  ``rayClusterStatus`` are written (KubeRay persists the RayJob status only when ``jobStatus`` or
  ``jobDeploymentStatus`` changes, so ``rayClusterStatus`` is NOT updated while Initializing:
  watch the RayCluster or its pods for node progress); the submitter pod's log is the job's log
  (as ``ray job logs --follow`` prints it there);
- Ray terminal: submitter Job Complete, then ``Complete`` (SUCCEEDED, STOPPED) or ``Failed``/
  ``AppFailed``, ``endTime``, ``succeeded``/``failed`` counts;
- ``activeDeadlineSeconds`` from ``startTime`` (also while Initializing): Ray job stopped,
  ``Failed``/``DeadlineExceeded``, never retried; ``preRunningDeadlineSeconds``: ``Failed``/
  ``PreRunningDeadlineExceeded``; Ray unreachable for ``kube.status_check_timeout`` s:
  ``Failed``/``JobStatusCheckTimeoutExceeded``;
- ``backoffLimit``: a failure (other than DeadlineExceeded) with retries left goes
  ``Retrying`` -> cluster and submitter deleted -> status reset (no jobDeploymentStatus) ->
  ``Initializing`` with a NEW cluster and a new submission;
- ``shutdownAfterJobFinishes``: the RayCluster (and its nodes) goes ``ttlSecondsAfterFinished``
  after ``endTime``; the submitter Job and pod stay, for logs. Without it the cluster stays until
  the RayJob is deleted;
- delete: the Ray job is stopped if not terminal, the cluster and submitter torn down, then the
  finalizer goes and the RayJob disappears (the real one disappears first and lets the garbage
  collector delete the rest in background).

``kube.stuck_initializing`` (or a head that lists ports without one named ``dashboard``) leaves a
job Initializing with unschedulable pods and no Ray at all, until a deadline or a delete.

A RayCluster created through the API (not by a RayJob) is reconciled as KubeRay's RayCluster
controller does, at once in the request's thread plus a thread that starts its nodes: a Pod per
Ray node (same names and labels as above, owned by the RayCluster), Pending, then Running as the
nodes of a ``LocalRayCluster`` (``cluster_nodes`` of the spec) come up; ``status`` without
``state`` and with ``readyWorkerReplicas`` growing, then ``state: ready``, ``head``
(``podIP``/``serviceIP`` 127.0.0.1), ``endpoints`` and condition ``HeadPodReady`` True. A spec
whose nodes cannot be derived leaves the head pod crash-looping; a spec that breaks an operator
rule (name not a DNS-1035 label of at most 53 characters, the rules of ``rayClusterSpec``) is
left alone, no pods, no status (KubeRay only records an event); ``kube.stuck_initializing`` set
at creation leaves its pods unschedulable. Deleting it through the API removes its pods at once
and stops its nodes in background. There is no finalizer.

A RayJob with ``clusterSelector: {"ray.io/cluster": NAME}`` and no ``rayClusterSpec`` runs on
that RayCluster (standalone, or one a RayJob made): ``Initializing`` with ``jobId``,
``startTime`` and ``rayClusterName: NAME`` (a generated name, never found, when the selector
lacks ``ray.io/cluster``) while NAME does not exist or is not ``ready`` (up to
``activeDeadlineSeconds``/``preRunningDeadlineSeconds`` or a delete, as above; forever when the
cluster's head lists ports without one named ``dashboard``); then the submitter (image from
the cluster's head), ``Running`` with that cluster's ``dashboardURL``, the Ray job submitted to
its dashboard, ``Complete``/``Failed`` as above. The RayJob owns no cluster: neither its end nor
its deletion stops the selected cluster's nodes or deletes its objects (a delete still stops a
running Ray job first, and deletes the submitter). ``backoffLimit`` and
``shutdownAfterJobFinishes``/``ttlSecondsAfterFinished`` are ignored in this mode (a failure is
final, never retried).

Not played (the RayJob is left alone and the fixture reports it): submission modes other than
K8sJobMode, ``suspend``, ``deletionStrategy``. Spec changes after creation are not seen (the
operator keeps the spec it started with, for a RayCluster too: no scaling); a RayJob-made
RayCluster deleted through the API has its nodes stopped, and its RayJob then fails its status
checks (``JobStatusCheckTimeoutExceeded``) where the real operator would create the cluster
again; a selected RayCluster deleted under a running RayJob fails it the same way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flyray.errors import ConfigError, ManifestError
from flyray.executors.localcluster.cluster import LocalRayCluster
from flyray.executors.localcluster.raystart import NodeSpec
from flyray.executors.localcluster.topology import cluster_nodes
from tests.k8s.store import (
    DNS1123_SUBDOMAIN,
    JOBS,
    PODS,
    RAYCLUSTERS,
    RAYJOBS,
    Store,
    random_suffix,
    timestamp,
)
from tests.manifest.kuberay import operator_violations

__all__ = ["FINALIZER", "FakeKubeRay", "split_violations"]

log = logging.getLogger(__name__)

FINALIZER = "ray.io/rayjob-finalizer"
POLL_S = 0.3
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
MAX_CLUSTER_NAME = 53
_CLUSTER_SUFFIX = "-raycluster-"
_SUBMITTER = "ray-job-submitter"
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def split_violations(manifest: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """``operator_violations`` split into (API server rejects, operator fails, never submits).

    The API server checks object metadata (a DNS-1123 name, label values); the operator checks
    the rest at reconcile time and marks the RayJob ``ValidationFailed``, except a head whose
    ports have none named ``dashboard``: KubeRay never finds the dashboard and never submits.
    """
    api, operator, stuck = [], [], []
    name = (manifest.get("metadata") or {}).get("name", "")
    for problem in operator_violations(dict(manifest)):
        if problem.startswith("metadata.labels["):
            api.append(problem)
        elif problem.startswith("metadata.name"):
            valid = isinstance(name, str) and len(name) <= 253 and DNS1123_SUBDOMAIN.match(name)
            (operator if valid else api).append(problem)
        elif "rayStartParams[" in problem and "must be a string" in problem:
            api.append(problem)  # the schema says so too
        elif "named 'dashboard'" in problem:
            stuck.append(problem)
        else:
            operator.append(problem)
    return api, operator, stuck


class FakeKubeRay:
    """The operator of one FakeKube: a thread per RayJob, a LocalRayCluster per RayCluster."""

    def __init__(self, kube: Any) -> None:
        self.kube = kube
        self.store: Store = kube.store
        self.started_cluster_dirs: list[Path] = []
        self.errors: list[str] = []  # unexpected exceptions in operator threads (bugs)
        self._runs: list[_RayJobRun] = []
        self._clusters: dict[tuple[str, str], _ClusterRun] = {}  # the newest of each name
        self._every_cluster: list[_ClusterRun] = []
        self._helpers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def rayjob_created(self, obj: dict[str, Any]) -> None:
        """Start reconciling a RayJob the API server just stored."""
        run = _RayJobRun(self, obj)
        with self._lock:
            self._runs.append(run)
        run.thread.start()

    def rayjob_changed(self, namespace: str, name: str) -> None:
        """Wake the RayJob's thread (after a delete, so that it tears down now)."""
        with self._lock:
            runs = [r for r in self._runs if (r.namespace, r.name) == (namespace, name)]
        for run in runs:
            run.wake.set()

    def raycluster_created(self, obj: dict[str, Any]) -> None:
        """A RayCluster created through the API: its pods now, its nodes in background."""
        try:
            self._reconcile_cluster(obj)
        except Exception:  # the object is stored: a bug of the fake, reported by the fixture
            self.errors.append(f"RayCluster {obj['metadata']['name']}: {traceback.format_exc()}")
            log.exception("fake KubeRay operator failed on RayCluster %s", obj["metadata"]["name"])

    def _reconcile_cluster(self, obj: dict[str, Any]) -> None:
        meta, spec = obj["metadata"], obj["spec"]
        namespace, name = meta["namespace"], meta["name"]
        problems, stuck = _cluster_violations(name, spec)
        if problems:  # KubeRay records an InvalidRayClusterSpec event and reconciles nothing
            log.warning("fake KubeRay leaves RayCluster %s alone: %s", name, "; ".join(problems))
            return
        cluster = _ClusterRun(self, namespace, name, spec)
        if not self._register(cluster):
            return  # the server is stopping
        cluster.uid = meta["uid"]
        cluster.no_dashboard = bool(stuck)
        cluster.create_pods()
        if self.kube.stuck_initializing:
            cluster.unschedulable()
        elif cluster.error is not None:
            cluster.crashed()
        else:
            cluster.start(on_done=cluster.settle)

    def raycluster_deleted(self, namespace: str, name: str) -> None:
        """A RayCluster deleted through the API: stop its nodes (in background, as pods go)."""
        with self._lock:
            cluster = self._clusters.get((namespace, name))
        if cluster is not None:
            helper = threading.Thread(
                target=cluster.teardown, name=f"fake-kuberay-gc:{name}", daemon=True
            )
            self._helpers.append(helper)
            helper.start()

    def ray_cluster(self, rayjob: str, namespace: str) -> LocalRayCluster | None:
        """The newest LocalRayCluster a RayJob started or selected (for tests), or None."""
        with self._lock:
            runs = [r for r in self._runs if (r.namespace, r.name) == (namespace, rayjob)]
        clusters = [c.cluster for r in runs for c in r.used_clusters() if c.cluster is not None]
        return clusters[-1] if clusters else None

    def local_cluster(self, namespace: str, raycluster: str) -> LocalRayCluster | None:
        """The LocalRayCluster started for a RayCluster of that name (for tests), or None."""
        with self._lock:
            cluster = self._clusters.get((namespace, raycluster))
        return cluster.cluster if cluster is not None else None

    def ready_cluster(self, namespace: str, name: str) -> _ClusterRun | None:
        """The stored RayCluster ``name`` if it is ``ready`` with its Ray nodes up, else None."""
        obj = self.store.get(RAYCLUSTERS, namespace, name)
        if obj is None or (obj.get("status") or {}).get("state") != "ready":
            return None
        with self._lock:
            cluster = self._clusters.get((namespace, name))
        if cluster is None or cluster.uid != obj["metadata"]["uid"] or not cluster.up():
            return None
        return cluster

    def _register(self, cluster: _ClusterRun) -> bool:
        """Track a cluster for lookups and for ``close()``; False once closing."""
        with self._lock:
            if self._closed:
                return False
            self._clusters[(cluster.namespace, cluster.name)] = cluster
            self._every_cluster.append(cluster)
            return True

    def close(self, timeout: float = 120.0) -> None:
        """Stop every thread and every Ray node this operator started."""
        with self._lock:
            self._closed = True
            runs = list(self._runs)
        for run in runs:
            run.wake.set()
        for run in runs:
            run.thread.join(timeout)
            if run.thread.is_alive():
                self.errors.append(f"operator thread for RayJob {run.name} did not stop")
        for helper in self._helpers:
            helper.join(timeout)
        with self._lock:
            clusters = list(self._every_cluster)
        for cluster in clusters:
            cluster.teardown()


@dataclass
class _Outcome:
    state: str  # Complete | Failed
    reason: str | None
    message: str | None
    retry: bool


class _Gone(Exception):
    """The RayJob is no longer stored (deleted without a finalizer)."""


class _Deleting(Exception):
    """The RayJob has a deletionTimestamp: finalize it."""


class _Stopping(Exception):
    """The fake API server is shutting down."""


class _RayJobRun:
    """One RayJob's reconcile loop, in its own thread."""

    def __init__(self, operator: FakeKubeRay, obj: dict[str, Any]) -> None:
        self.op, self.kube, self.store = operator, operator.kube, operator.store
        meta = obj["metadata"]
        self.namespace, self.name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.manifest = obj
        self.spec: dict[str, Any] = obj["spec"]
        self.wake = threading.Event()
        self.thread = threading.Thread(
            target=self._main, name=f"fake-kuberay:{self.name}", daemon=True
        )
        self.selector: dict[str, str] = dict(self.spec.get("clusterSelector") or {})
        self.clusters: list[_ClusterRun] = []  # the clusters this RayJob made (and owns)
        self.selected: _ClusterRun | None = None  # in clusterSelector mode: the one it runs on
        self.submitter: _Submitter | None = None
        self.client: Any = None
        self.job_id: str | None = None
        self.job_status: str | None = None
        self.start_time = 0

    # -- the loop ----------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            try:
                self._reconcile()
            except _Deleting:
                pass
            except (_Gone, _Stopping):
                self._teardown()
                return
            except Exception:
                self._bug()
            self._finalize()
        except Exception:
            self._bug()

    def _bug(self) -> None:
        """An unexpected exception: a bug of the fake, reported by the fixture's teardown."""
        self.op.errors.append(f"RayJob {self.name}: {traceback.format_exc()}")
        log.exception("fake KubeRay operator failed on RayJob %s", self.name)

    def _reconcile(self) -> None:
        obj = self._check()
        _, problems, stuck = split_violations(obj)
        if problems:
            self._status(
                jobDeploymentStatus="ValidationFailed",
                reason="ValidationFailed",
                message="; ".join(problems),
                observedGeneration=obj["metadata"].get("generation", 1),
            )
            self._idle()
        if (missing := _not_emulated(self.spec)) is not None:
            self.op.errors.append(f"RayJob {self.name}: FakeKube does not emulate {missing}")
            self._idle()
        self.stuck = bool(stuck)
        self._mutate(lambda o: _add_finalizer(o["metadata"]))
        failed = succeeded = 0
        while True:
            outcome = self._attempt_selected() if self.selector else self._attempt()
            failed += outcome.state == "Failed"
            succeeded += outcome.state == "Complete" and self.job_status == "SUCCEEDED"
            counts = {"failed": failed, "succeeded": succeeded}
            retries = 0 if self.selector else self.spec.get("backoffLimit") or 0
            if outcome.state == "Failed" and outcome.retry and failed < retries + 1:
                self._retry(outcome, counts)
                continue
            self._status(
                jobDeploymentStatus=outcome.state,
                reason=outcome.reason,
                message=outcome.message,
                endTime=timestamp(),
                **counts,
            )
            break
        if self.spec.get("shutdownAfterJobFinishes") and not self.selector:
            until = time.time() + (self.spec.get("ttlSecondsAfterFinished") or 0)
            while (left := until - time.time()) > 0:
                self._wait(left)
            for cluster in self.clusters:
                cluster.teardown()
        self._idle()

    def _retry(self, outcome: _Outcome, counts: dict[str, int]) -> None:
        """KubeRay's Retrying: delete the cluster and submitter, reset the status, start over."""
        self._status(
            jobDeploymentStatus="Retrying", reason=outcome.reason, message=outcome.message, **counts
        )
        self._teardown()
        self._status(
            jobDeploymentStatus=None,
            rayClusterName=None,
            rayClusterStatus=None,
            dashboardURL=None,
            jobId=None,
            jobStatus=None,
            message=None,
            reason=None,
            rayJobInfo=None,
            jobStatusCheckFailureStartTime=None,
        )

    def _attempt(self) -> _Outcome:
        """One cluster and one submission, up to Complete or Failed."""
        cluster = _ClusterRun(
            self.op, self.namespace, _cluster_name(self.name), self.spec["rayClusterSpec"]
        )
        self.op._register(cluster)  # refused while closing: then this thread tears it down
        self.clusters.append(cluster)
        self._initializing(cluster.name)
        cluster.create_objects(self)
        if self.kube.stuck_initializing or self.stuck:
            cluster.unschedulable()
            return self._wait_initializing(lambda: False)  # type: ignore[return-value]
        if cluster.error is None:
            cluster.start(on_done=self.wake.set)
            outcome = self._wait_initializing(cluster.done.is_set)
            if outcome is not None:
                return outcome
        if cluster.error is not None:  # KubeRay would see the head pod crash-looping
            cluster.crashed()
            return self._wait_initializing(lambda: False)  # type: ignore[return-value]
        return self._run_job(cluster, dashboard=cluster.mark_ready())

    def _attempt_selected(self) -> _Outcome:
        """clusterSelector mode: wait for the named RayCluster to be ready, submit to it."""
        name = self.selector.get("ray.io/cluster") or _cluster_name(self.name)
        self._initializing(name)

        def ready() -> bool:
            found = self.op.ready_cluster(self.namespace, name)
            if found is not None and not found.no_dashboard:  # else KubeRay never submits
                self.selected = found
            return self.selected is not None

        outcome = self._wait_initializing(ready)
        if outcome is not None:
            return outcome
        assert self.selected is not None
        return self._run_job(self.selected, dashboard=self.selected.dashboard())

    def _initializing(self, cluster_name: str) -> None:
        """A new job id and start time; status ``Initializing`` on cluster ``cluster_name``."""
        self.client, self.job_status = None, None
        self.job_id = self.spec.get("jobId") or f"{self.name}-{random_suffix()}"
        self.start_time = int(time.time())  # status.startTime has whole seconds
        self._status(
            jobDeploymentStatus="Initializing",
            jobId=self.job_id,
            rayClusterName=cluster_name,
            startTime=timestamp(self.start_time),
            observedGeneration=self.manifest["metadata"].get("generation", 1),
        )

    def used_clusters(self) -> list[_ClusterRun]:
        """The clusters this RayJob made, then the one it selected (if any)."""
        return [*self.clusters, *([self.selected] if self.selected is not None else [])]

    def _wait_initializing(self, ready: Any) -> _Outcome | None:
        """Wait until ``ready()``; an outcome if a deadline passed first."""
        while not ready():
            self._wait(POLL_S)
            outcome = self._deadline(running=False)
            if outcome is not None:
                return outcome
        return None

    def _run_job(self, cluster: _ClusterRun, *, dashboard: str) -> _Outcome:
        """The cluster is ready: create the submitter, go Running (one status update), follow."""
        from ray.job_submission import JobSubmissionClient

        ray = cluster.ray()
        self.client = JobSubmissionClient(ray.dashboard_url, headers=ray.auth_headers())
        self.submitter = _Submitter(self, cluster)
        self._status(
            jobDeploymentStatus="Running",
            dashboardURL=dashboard,
            rayClusterStatus=cluster.status(),
        )
        failure = self._submit(self.submitter)
        return failure if failure is not None else self._follow(cluster, self.submitter)

    def _submit(self, submitter: _Submitter) -> _Outcome | None:
        """Submit as the submitter pod would, retried ``submitterConfig.backoffLimit`` times."""
        spec = self.spec
        kwargs: dict[str, Any] = {
            "entrypoint": spec["entrypoint"],
            "submission_id": self.job_id,
            "runtime_env": yaml.safe_load(spec.get("runtimeEnvYAML") or "") or None,
            "metadata": spec.get("metadata"),
            "entrypoint_num_cpus": spec.get("entrypointNumCpus"),
            "entrypoint_num_gpus": spec.get("entrypointNumGpus"),
        }
        if spec.get("entrypointResources"):
            kwargs["entrypoint_resources"] = json.loads(spec["entrypointResources"])
        limit = (spec.get("submitterConfig") or {}).get("backoffLimit", 2)
        for attempt in range(limit + 1):
            self._check()
            try:
                self.client.submit_job(**kwargs)
            except Exception as exc:
                submitter.pod_failed(f"{type(exc).__name__}: {exc}")
                if attempt < limit:
                    submitter.new_pod()
                continue
            submitter.submitted()
            return None
        submitter.job_failed()
        return _Outcome(
            "Failed",
            "SubmissionFailed",
            "Job submission has failed. Reason: BackoffLimitExceeded. "
            "Message: Job has reached the specified backoff limit",
            retry=True,
        )

    def _follow(self, cluster: _ClusterRun, submitter: _Submitter) -> _Outcome:
        """Poll Ray until the job ends or a deadline passes."""
        failing_since: float | None = None
        while True:
            outcome = self._deadline(running=True)
            if outcome is not None:
                self._stop_ray_job()
                submitter.complete()
                return outcome
            try:
                info = self.client.get_job_info(self.job_id)
                logs = self.client.get_job_logs(self.job_id)
            except Exception as exc:
                now = time.time()
                if failing_since is None:
                    failing_since = now
                    self._status(jobStatusCheckFailureStartTime=timestamp(now))
                if now - failing_since >= self.kube.status_check_timeout:
                    message = f"could not get the status of Ray job {self.job_id}: {exc}"
                    return _Outcome("Failed", "JobStatusCheckTimeoutExceeded", message, True)
                self._wait(POLL_S)
                continue
            if failing_since is not None:
                failing_since = None
                self._status(jobStatusCheckFailureStartTime=None)
            submitter.log(logs)
            status = str(getattr(info.status, "value", info.status))
            if status != self.job_status:  # KubeRay writes its status only on such a change
                self.job_status = status
                self._status(
                    jobStatus=status,
                    message=info.message or None,
                    rayJobInfo=_ray_job_info(info),
                    rayClusterStatus=cluster.status(),
                )
            if status in TERMINAL:
                submitter.complete()
                if status == "FAILED":
                    return _Outcome("Failed", "AppFailed", info.message, retry=True)
                return _Outcome("Complete", None, info.message, retry=False)
            self._wait(POLL_S)

    def _deadline(self, *, running: bool) -> _Outcome | None:
        now, started = time.time(), timestamp(self.start_time)
        active = self.spec.get("activeDeadlineSeconds")
        if active is not None and now >= self.start_time + active:
            message = (
                f"The RayJob has passed the activeDeadlineSeconds. StartTime: {started}. "
                f"ActiveDeadlineSeconds: {active}"
            )
            return _Outcome("Failed", "DeadlineExceeded", message, retry=False)
        pre = self.spec.get("preRunningDeadlineSeconds")
        if not running and pre is not None and now >= self.start_time + pre:
            message = (
                "The RayJob has not reached the Running state within preRunningDeadlineSeconds. "
                f"StartTime: {started}. PreRunningDeadlineSeconds: {pre}"
            )
            return _Outcome("Failed", "PreRunningDeadlineExceeded", message, retry=True)
        return None

    # -- teardown ------------------------------------------------------------------------------

    def _finalize(self) -> None:
        """The delete path: stop the Ray job, tear everything down, drop the finalizer."""
        self._stop_ray_job()
        self._teardown()
        self.store.mutate(
            RAYJOBS,
            self.namespace,
            self.name,
            lambda o: _drop_finalizer(o["metadata"]),
            uid=self.uid,
        )

    def _stop_ray_job(self) -> None:
        if self.client is not None and self.job_id and self.job_status not in TERMINAL:
            with contextlib.suppress(Exception):
                self.client.stop_job(self.job_id)

    def _teardown(self) -> None:
        """Stop every Ray node started for this RayJob; delete its clusters and submitter.

        A selected cluster (clusterSelector mode) is not this RayJob's: it stays.
        """
        for cluster in self.clusters:
            cluster.teardown()
        if self.submitter is not None:
            self.submitter.remove()
            self.submitter = None

    # -- state ---------------------------------------------------------------------------------

    def _check(self) -> dict[str, Any]:
        """The stored RayJob; raises when the server stops or the RayJob is going away."""
        if self.kube.stopping:
            raise _Stopping
        obj = self.store.get(RAYJOBS, self.namespace, self.name)
        if obj is None or obj["metadata"].get("uid") != self.uid:
            raise _Gone
        if obj["metadata"].get("deletionTimestamp"):
            raise _Deleting
        return obj

    def _wait(self, seconds: float) -> None:
        """Wait ``seconds`` or until woken (a delete, the server stopping), then re-check."""
        self.wake.wait(seconds)
        self.wake.clear()
        self._check()

    def _idle(self) -> None:
        """Nothing left to do but wait for the RayJob's deletion (or the server's end)."""
        while True:
            self._wait(3600)

    def _status(self, **changes: Any) -> None:
        """Write status fields (None removes one), as KubeRay's status update does."""

        def change(obj: dict[str, Any]) -> None:
            status = obj.setdefault("status", {})
            for key, value in changes.items():
                if value is None:
                    status.pop(key, None)
                else:
                    status[key] = value

        self._mutate(change)

    def _mutate(self, change: Any) -> None:
        self._check()
        if self.store.mutate(RAYJOBS, self.namespace, self.name, change, uid=self.uid) is None:
            raise _Gone

    def owner_reference(self) -> dict[str, Any]:
        return _owner("ray.io/v1", "RayJob", self.name, self.uid)


class _ClusterRun:
    """One RayCluster (made by a RayJob, or created through the API): its pods and its Ray."""

    def __init__(self, op: FakeKubeRay, namespace: str, name: str, spec: dict[str, Any]) -> None:
        self.op, self.store, self.namespace, self.name = op, op.store, namespace, name
        self.spec = spec
        self.done = threading.Event()
        self.error: str | None = None
        self.cluster: LocalRayCluster | None = None
        self.root: Path | None = None
        self.uid = ""
        self.no_dashboard = False  # the head lists ports, none named dashboard: no RayJob submits
        self._on_done: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self.nodes: list[NodeSpec | None] = []
        try:
            head, workers = cluster_nodes({"spec": {"rayClusterSpec": spec}})
            self.nodes = [head, *workers]
        except (ManifestError, ConfigError) as exc:
            self.error = str(exc)
        self.pods = _pod_plan(name, spec)

    # -- objects -------------------------------------------------------------------------------

    def create_objects(self, job: _RayJobRun) -> None:
        """The RayCluster (owned by the RayJob) and a Pending pod per Ray node."""
        meta = job.manifest["metadata"]
        labels = {
            **(meta.get("labels") or {}),
            "ray.io/originated-from-cr-name": job.name,
            "ray.io/originated-from-crd": "RayJob",
        }
        obj = self.store.create(
            RAYCLUSTERS,
            self.namespace,
            {
                "apiVersion": "ray.io/v1",
                "kind": "RayCluster",
                "metadata": {
                    "name": self.name,
                    "labels": labels,
                    "annotations": dict(meta.get("annotations") or {}),
                    "ownerReferences": [job.owner_reference()],
                },
                "spec": self.spec,
                "status": self._cluster_status(ready=0),
            },
        )
        self.uid = obj["metadata"]["uid"]
        self._create_pods()

    def create_pods(self) -> None:
        """For a RayCluster created through the API (``uid`` set): its first status, its pods."""
        self._set_cluster_status(self._cluster_status(ready=0))
        self._create_pods()

    def _create_pods(self) -> None:
        """A Pending pod per Ray node, owned by the RayCluster."""
        owner = _owner("ray.io/v1", "RayCluster", self.name, self.uid)
        for pod in self.pods:
            pod["metadata"]["ownerReferences"] = [owner]
            pod["status"] = _pending(pod)
            self.store.create(PODS, self.namespace, pod)

    def _set_pod_status(self, index: int, status: dict[str, Any]) -> None:
        def change(pod: dict[str, Any]) -> None:
            pod["status"] = status

        self.store.mutate(PODS, self.namespace, self.pods[index]["metadata"]["name"], change)

    def _set_cluster_status(self, status: dict[str, Any]) -> None:
        def change(obj: dict[str, Any]) -> None:
            obj["status"] = status

        self.store.mutate(RAYCLUSTERS, self.namespace, self.name, change, uid=self.uid)

    def status(self) -> dict[str, Any] | None:
        """The RayCluster's status as stored (the RayJob keeps a copy)."""
        obj = self.store.get(RAYCLUSTERS, self.namespace, self.name)
        return obj.get("status") if obj is not None else None

    def _cluster_status(
        self, *, ready: int, state: str | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        workers = [p for p in self.pods if p["metadata"]["labels"]["ray.io/node-type"] == "worker"]
        ready_workers = max(0, min(ready - 1, len(workers)))
        groups = self.spec.get("workerGroupSpecs") or []
        cpus = sum(n.num_cpus or 0 for n in self.nodes if n is not None)
        status: dict[str, Any] = {
            "desiredWorkerReplicas": len(workers),
            "readyWorkerReplicas": ready_workers,
            "availableWorkerReplicas": ready_workers,
            "minWorkerReplicas": sum(g.get("minReplicas", 0) for g in groups),
            "maxWorkerReplicas": min(sum(g.get("maxReplicas", 0) for g in groups), 2**31 - 1),
            "desiredCPU": str(int(cpus)),
            "desiredMemory": str(sum(n.memory or 0 for n in self.nodes if n is not None)),
            "desiredGPU": str(int(sum(n.num_gpus or 0 for n in self.nodes if n is not None))),
            "desiredTPU": "0",
            "lastUpdateTime": timestamp(),
            "observedGeneration": 1,
            "conditions": _cluster_conditions(ready=state == "ready", head_up=ready > 0),
        }
        if state is not None:
            status["state"] = state
        if reason is not None:
            status["reason"] = reason
        return status

    # -- Ray -----------------------------------------------------------------------------------

    def start(self, *, on_done: Callable[[], None]) -> None:
        """Start the Ray nodes in background: when up (or failed) ``done``, then ``on_done()``.

        Nothing starts once ``teardown()`` began (the server closing, the RayCluster deleted).
        """
        head, *workers = self.nodes
        assert head is not None
        with self._lock:  # teardown() waits for this, then for the starting thread
            if self._stopped:
                return
            self._on_done = on_done
            self.root = Path(tempfile.mkdtemp(prefix="fk-", dir="/tmp"))  # short: unix sockets
            self.op.started_cluster_dirs.append(self.root)
            path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
            self.cluster = LocalRayCluster(
                head,
                [w for w in workers if w is not None],
                root=self.root,
                client_server=False,
                env={"PATH": path},
                start_timeout=60.0,
                on_progress=self._progress,
            )
            for pod, node in zip(self.pods, self.nodes, strict=True):
                assert node is not None
                log_file = self.root / "logs" / f"{node.name}.out"
                self.store.set_log(
                    self.namespace, pod["metadata"]["name"], source=log_file.read_text
                )
            self._thread = threading.Thread(
                target=self._start, name=f"fake-kuberay-start:{self.name}", daemon=True
            )
            self._thread.start()

    def _start(self) -> None:
        try:
            assert self.cluster is not None
            self.cluster.start()
        except Exception as exc:
            self.error = str(exc)
        finally:
            self.done.set()
            if self._on_done is not None:
                self._on_done()

    def settle(self) -> None:
        """A standalone RayCluster's nodes are up (``ready``) or failed (head crash-looping)."""
        try:
            with self._lock:
                if self._stopped:
                    return
            if self.error is not None:
                self.crashed()
            else:
                self.mark_ready()
        except Exception:
            self.op.errors.append(f"RayCluster {self.name}: {traceback.format_exc()}")
            log.exception("fake KubeRay operator failed on RayCluster %s", self.name)

    def up(self) -> bool:
        """True once every Ray node started (and none failed)."""
        return self.done.is_set() and self.error is None and self.cluster is not None

    def _progress(self, up: int, total: int) -> None:
        """Nodes coming up: their pods turn Running, the RayCluster counts ready workers."""
        for index in range(min(up, len(self.pods))):
            self._set_pod_status(index, running_status(self.pods[index]))
        self._set_cluster_status(self._cluster_status(ready=up))

    def mark_ready(self) -> str:
        """Every pod Running, the RayCluster ``ready``; returns the dashboard's host:port."""
        ray = self.ray()
        for index, pod in enumerate(self.pods):
            self._set_pod_status(index, running_status(pod))
        status = self._cluster_status(ready=len(self.pods), state="ready")
        port = ray.dashboard_url.rsplit(":", 1)[1]
        head_pod = self.pods[0]["metadata"]["name"]
        status["head"] = {
            "podIP": "127.0.0.1",
            "podName": head_pod,
            "serviceIP": "127.0.0.1",
            "serviceName": f"{self.name}-head-svc",
        }
        status["endpoints"] = {"dashboard": port, "gcs-server": ray.gcs_address.rsplit(":")[1]}
        self._set_cluster_status(status)
        return self.dashboard()

    def dashboard(self) -> str:
        """The dashboard's host:port, as ``status.dashboardURL`` has it (no scheme)."""
        return self.ray().dashboard_url.removeprefix("http://")

    def ray(self) -> LocalRayCluster:
        assert self.cluster is not None
        return self.cluster

    def unschedulable(self) -> None:
        """Pods that no node can take: Pending with PodScheduled False (no Ray starts)."""
        for index in range(len(self.pods)):
            self._set_pod_status(index, _unschedulable())

    def crashed(self) -> None:
        """The head's Ray did not start: its container crash-loops."""
        self._set_pod_status(0, _crash_looping(self.pods[0], self.error or ""))
        self._set_cluster_status(self._cluster_status(ready=0, reason=self.error))

    def teardown(self) -> None:
        """Stop the nodes (waiting for a start in progress), then delete the RayCluster."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        if self._thread is not None:
            self._thread.join()
        if self.cluster is not None:
            self.cluster.stop(timeout=5.0)
        with self.store.lock:  # not a newer RayCluster of the same name
            obj = self.store.get(RAYCLUSTERS, self.namespace, self.name)
            if obj is not None and obj["metadata"]["uid"] == self.uid:
                self.store.remove(RAYCLUSTERS, self.namespace, self.name)  # its pods go with it
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


class _Submitter:
    """The K8sJobMode submitter: a batch Job named like the RayJob and its pod(s)."""

    def __init__(self, job: _RayJobRun, cluster: _ClusterRun) -> None:
        self.job, self.store, self.namespace = job, job.store, job.namespace
        ray = cluster.ray()
        head = cluster.spec["headGroupSpec"]["template"]["spec"]["containers"][0]
        self.address = ray.dashboard_url
        self.container = {
            "name": _SUBMITTER,
            "image": head.get("image", ""),
            "command": ["/bin/bash", "-ce", "--"],
            "args": [_submit_command(job.spec, ray.dashboard_url, job.job_id or "")],
            "env": [
                {"name": "PYTHONUNBUFFERED", "value": "1"},
                {"name": "RAY_DASHBOARD_ADDRESS", "value": self.address.removeprefix("http://")},
                {"name": "RAY_JOB_SUBMISSION_ID", "value": job.job_id},
            ],
        }
        self.failed = 0
        self.finished = False
        self.pod = ""
        self.preamble = ""
        template = {
            "metadata": {"labels": {}},
            "spec": {"restartPolicy": "Never", "containers": [self.container]},
        }
        obj = self.store.create(
            JOBS,
            self.namespace,
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {
                    "name": job.name,
                    "labels": {
                        "ray.io/originated-from-cr-name": job.name,
                        "ray.io/originated-from-crd": "RayJob",
                        "app.kubernetes.io/created-by": "kuberay-operator",
                    },
                    "ownerReferences": [job.owner_reference()],
                },
                "spec": {
                    "backoffLimit": (job.spec.get("submitterConfig") or {}).get("backoffLimit", 2),
                    "template": template,
                },
                "status": {"active": 1, "ready": 1, "startTime": timestamp()},
            },
        )
        self.uid = obj["metadata"]["uid"]
        self.new_pod()

    def new_pod(self) -> None:
        """A new submitter pod (the Job's next try), Running, its log starting afresh."""
        name = self.job.name
        self.pod = f"{name}-{random_suffix()}"
        labels = {
            "batch.kubernetes.io/controller-uid": self.uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": self.uid,
            "job-name": name,
        }
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": self.pod,
                "labels": labels,
                "ownerReferences": [_owner("batch/v1", "Job", name, self.uid)],
            },
            "spec": {"restartPolicy": "Never", "containers": [self.container]},
        }
        pod["status"] = running_status(pod)
        self.store.create(PODS, self.namespace, pod)
        self.preamble = f"Job submission server address: {self.address}\n"
        self.store.set_log(self.namespace, self.pod, self.preamble)

    def submitted(self) -> None:
        rule = "-" * 55 + "\n"
        self.preamble += f"{rule}Job '{self.job.job_id}' submitted successfully\n{rule}"
        self.store.set_log(self.namespace, self.pod, self.preamble)

    def log(self, text: str) -> None:
        """The Ray job's log so far, after what ``ray job submit`` printed."""
        self.store.set_log(self.namespace, self.pod, self.preamble + text)

    def pod_failed(self, error: str) -> None:
        """This try of ``ray job submit`` failed: the pod ends Failed (exit 1)."""
        self.store.append_log(self.namespace, self.pod, f"{error}\n")
        self._end_pod(exit_code=1)
        self.failed += 1
        self._job_status({"active": 1, "failed": self.failed})

    def complete(self) -> None:
        """``ray job logs --follow`` returned (the Ray job is terminal): the Job is Complete."""
        if self.finished:
            return
        self.finished = True
        self._end_pod(exit_code=0)
        now = timestamp()
        status = {"succeeded": 1, "completionTime": now}
        if self.failed:
            status["failed"] = self.failed
        status["conditions"] = [_condition("Complete", now)]
        self._job_status(status)

    def job_failed(self) -> None:
        """Every try failed: the Job is Failed (BackoffLimitExceeded)."""
        self.finished = True
        condition = _condition("Failed", timestamp())
        condition["reason"] = "BackoffLimitExceeded"
        condition["message"] = "Job has reached the specified backoff limit"
        self._job_status({"failed": self.failed, "conditions": [condition]})

    def remove(self) -> None:
        """Delete the Job (its pods go with it)."""
        self.store.remove(JOBS, self.namespace, self.job.name)

    def _end_pod(self, *, exit_code: int) -> None:
        def change(pod: dict[str, Any]) -> None:
            pod["status"] = terminated_status(pod, exit_code)

        self.store.mutate(PODS, self.namespace, self.pod, change)
        self.store.set_log(self.namespace, self.pod, done=True)

    def _job_status(self, changes: dict[str, Any]) -> None:
        def change(obj: dict[str, Any]) -> None:
            status = {"startTime": obj["status"].get("startTime"), **changes}
            obj["status"] = {k: v for k, v in status.items() if v is not None}

        self.store.mutate(JOBS, self.namespace, self.job.name, change, uid=self.uid)


# -- names, objects and statuses ---------------------------------------------------------------


def _not_emulated(spec: Mapping[str, Any]) -> str | None:
    """The first spec feature this fake operator does not play, or None."""
    if spec.get("submissionMode", "K8sJobMode") != "K8sJobMode":
        return f"spec.submissionMode {spec['submissionMode']!r} (only K8sJobMode)"
    if spec.get("suspend"):
        return "spec.suspend"
    if spec.get("deletionStrategy"):
        return "spec.deletionStrategy"
    return None


def _cluster_violations(name: str, spec: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """A standalone RayCluster's operator-rule problems: (not reconciled, RayJobs never submit)."""
    problems = []
    if len(name) > MAX_CLUSTER_NAME or not _DNS1035.match(name):
        problems.append(f"metadata.name {name!r} must be a DNS-1035 label of at most 53 chars")
    as_rayjob = {"metadata": {"name": "x"}, "spec": {"entrypoint": "x", "rayClusterSpec": spec}}
    stuck = []
    for problem in operator_violations(as_rayjob):
        (stuck if "named 'dashboard'" in problem else problems).append(problem)
    return problems, stuck


def _cluster_name(rayjob: str) -> str:
    """``<rayjob>-raycluster-<5 chars>``, the RayJob's part cut so that it fits 53 characters."""
    room = MAX_CLUSTER_NAME - len(_CLUSTER_SUFFIX) - 5
    return f"{rayjob[:room]}{_CLUSTER_SUFFIX}{random_suffix()}"


def _pod_plan(cluster: str, spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A pod per Ray node, in ``cluster_nodes`` order: the head, then each group's replicas."""
    plans = [(spec["headGroupSpec"], "head", "headgroup", f"{cluster}-head-")]
    for group in spec.get("workerGroupSpecs") or []:
        name = group["groupName"]
        replicas = max(group.get("replicas") or 0, group.get("minReplicas") or 0)
        for _ in range(replicas * (group.get("numOfHosts") or 1)):
            plans.append((group, "worker", name, f"{cluster}-{name}-worker-"))
    pods = []
    for group, node_type, group_name, prefix in plans:
        template = group.get("template") or {}
        meta = template.get("metadata") or {}
        labels = {
            **(meta.get("labels") or {}),
            "ray.io/cluster": cluster,
            "ray.io/node-type": node_type,
            "ray.io/group": group_name,
            "ray.io/identifier": f"{cluster}-{node_type}",
            "ray.io/is-ray-node": "yes",
            "app.kubernetes.io/name": "kuberay",
            "app.kubernetes.io/created-by": "kuberay-operator",
        }
        pod_spec = json.loads(json.dumps(template.get("spec") or {}))
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": prefix + random_suffix(),
                    "labels": labels,
                    "annotations": dict(meta.get("annotations") or {}),
                },
                "spec": pod_spec,
            }
        )
    return pods


def _owner(api_version: str, kind: str, name: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _add_finalizer(meta: dict[str, Any]) -> None:
    finalizers = meta.setdefault("finalizers", [])
    if FINALIZER not in finalizers:
        finalizers.append(FINALIZER)


def _drop_finalizer(meta: dict[str, Any]) -> None:
    meta["finalizers"] = [f for f in meta.get("finalizers", []) if f != FINALIZER]
    if not meta["finalizers"]:
        del meta["finalizers"]


def _ray_job_info(info: Any) -> dict[str, str] | None:
    times = {"startTime": info.start_time, "endTime": info.end_time}
    found = {key: timestamp(ms / 1000) for key, ms in times.items() if ms}
    return found or None


def _submit_command(spec: Mapping[str, Any], address: str, job_id: str) -> str:
    """What KubeRay's submitter runs (shown in the pod spec; the fake submits by itself)."""
    env = yaml.safe_load(spec.get("runtimeEnvYAML") or "") or {}
    submit = f"ray job submit --address {address} --no-wait"
    if env:
        submit += f" --runtime-env-json '{json.dumps(env)}'"
    submit += f" --submission-id {job_id} -- {spec['entrypoint']}"
    return (
        f"if ! ray job status --address {address} {job_id} >/dev/null 2>&1 ; then {submit} ; fi"
        f" ; ray job logs --address {address} --follow {job_id}"
    )


def _containers(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    return pod["spec"].get("containers") or []


def container_status(
    container: Mapping[str, Any], *, ready: bool, state: dict[str, Any], restarts: int = 0
) -> dict[str, Any]:
    image = container.get("image", "")
    return {
        "name": container.get("name", ""),
        "image": image,
        "imageID": f"fake://{image}",
        "ready": ready,
        "started": "running" in state,
        "restartCount": restarts,
        "state": state,
    }


def _condition(type_: str, now: str, status: str = "True") -> dict[str, Any]:
    return {"type": type_, "status": status, "lastProbeTime": now, "lastTransitionTime": now}


def _pod_conditions(now: str, *, ready: bool) -> list[dict[str, Any]]:
    flag = "True" if ready else "False"
    return [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
        {"type": "Ready", "status": flag, "lastTransitionTime": now},
    ]


def _pending(pod: Mapping[str, Any]) -> dict[str, Any]:
    now = timestamp()
    waiting = {"waiting": {"reason": "ContainerCreating"}}
    return {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now}],
        "hostIP": "127.0.0.1",
        "containerStatuses": [
            container_status(c, ready=False, state=waiting) for c in _containers(pod)
        ],
    }


def running_status(pod: Mapping[str, Any]) -> dict[str, Any]:
    now = timestamp()
    state = {"running": {"startedAt": now}}
    return {
        "phase": "Running",
        "conditions": _pod_conditions(now, ready=True),
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": now,
        "containerStatuses": [
            container_status(c, ready=True, state=state) for c in _containers(pod)
        ],
    }


def _unschedulable() -> dict[str, Any]:
    message = "0/1 nodes are available: 1 Insufficient cpu. (FakeKube: stuck_initializing)"
    return {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastTransitionTime": timestamp(),
            }
        ],
    }


def _crash_looping(pod: Mapping[str, Any], error: str) -> dict[str, Any]:
    status = running_status(pod)
    status["conditions"] = _pod_conditions(timestamp(), ready=False)
    waiting = {"waiting": {"reason": "CrashLoopBackOff", "message": error[:1000]}}
    status["containerStatuses"] = [
        container_status(c, ready=False, state=waiting, restarts=1) for c in _containers(pod)
    ]
    return status


def terminated_status(pod: Mapping[str, Any], exit_code: int) -> dict[str, Any]:
    now = timestamp()
    reason = "Completed" if exit_code == 0 else "Error"
    state = {"terminated": {"exitCode": exit_code, "reason": reason, "finishedAt": now}}
    status = running_status(pod)
    status["phase"] = "Succeeded" if exit_code == 0 else "Failed"
    status["conditions"] = _pod_conditions(now, ready=False)
    status["containerStatuses"] = [
        container_status(c, ready=False, state=state) for c in _containers(pod)
    ]
    return status


def _cluster_conditions(*, ready: bool, head_up: bool) -> list[dict[str, Any]]:
    now = timestamp()
    head = ("True", "HeadPodRunningAndReady") if head_up else ("False", "HeadPodNotFound")
    provisioned = ("True", "AllPodRunningAndReadyFirstTime")
    if not ready:
        provisioned = ("False", "RayClusterPodsProvisioning")
    return [
        {
            "type": "HeadPodReady",
            "status": head[0],
            "reason": head[1],
            "message": "",
            "lastTransitionTime": now,
        },
        {
            "type": "RayClusterProvisioned",
            "status": provisioned[0],
            "reason": provisioned[1],
            "message": "",
            "lastTransitionTime": now,
        },
    ]
