"""kuberay mode: the executor's pure parts, then whole runs against the test API server.

The API server (``fake_kube``, tests/k8s/conftest.py) speaks the Kubernetes REST API the
executor uses, validates every RayJob against KubeRay's schema and plays the operator with
real Ray processes, so these runs are real Ray jobs driven through the official client.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

import flyray
from flyray import TaskError
from flyray.cli.main import cli
from flyray.executors.kuberay.errors import is_transient, translate
from flyray.executors.kuberay.models import track_attempts
from flyray.executors.kuberay.session import RAYJOBS
from flyray.executors.kuberay.status import Snapshot, explain, failure_error, progress
from flyray.store.record import RunStatus
from flyray.store.runstore import RunStore
from flyray.task.loader import load_task
from tests.k8s.recording import Recorder, only_record, read_stderr_until
from tests.manifest.kuberay import schema_errors
from tests.procs import wait_until_gone

# --- units: the pure parts, no API server -------------------------------------------------


def _api_error(status: int, reason: str, message: str | None = None, **headers: str) -> Any:
    from kubernetes.client.exceptions import ApiException

    exc = ApiException(status=status, reason=reason)
    if message is not None:
        exc.body = json.dumps({"kind": "Status", "message": message, "code": status})
    exc.headers = headers
    return exc


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (400, "Bad Request", r"could not create RayJob ns/x: the API server rejected it: bad"),
        (401, "Unauthorized", r"refused the credentials.*--context \(401 Unauthorized: bad\)"),
        (403, "Forbidden", r"forbidden: ask a cluster admin .*\(403 Forbidden: bad\)"),
        (404, "Not Found", r"not found \(404 Not Found: bad\)"),
        (409, "Conflict", r"already exists, or it changed meanwhile \(409 Conflict: bad\)"),
        (410, "Gone", r"too old \(410 Gone: bad\)"),
        (422, "Unprocessable Entity", r"the API server rejected it: bad"),
        (429, "Too Many Requests", r"kept answering 429 Too Many Requests after 5 attempts"),
        (500, "Internal Server Error", r"kept answering 500 Internal Server Error after 5"),
        (503, "Service Unavailable", r"kept answering 503 Service Unavailable after 5"),
        (405, "Method Not Allowed", r"could not create RayJob ns/x: 405 Method Not Allowed: bad"),
    ],
)
def test_translate_api_errors(status, reason, expected):
    error = translate(_api_error(status, reason, "bad"), what="create RayJob ns/x", attempts=5)
    assert isinstance(error, flyray.SubmissionError)
    assert re.search(expected, str(error)), str(error)
    assert is_transient(_api_error(status, reason)) is (status in (429, 500, 503))


def test_translate_connection_errors_and_others():
    import urllib3

    reset = urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104))
    refused = urllib3.exceptions.NewConnectionError(None, "Connection refused")
    for exc in (reset, refused, ConnectionResetError(104, "reset"), TimeoutError("slow")):
        assert is_transient(exc)
        error = translate(exc, what="list pods", server="https://k8s:6443", attempts=3)
        assert re.match(
            r"could not list pods: no answer from the Kubernetes API server at "
            r"https://k8s:6443 after 3 attempts \(.+\); is the cluster up",
            str(error),
        ), str(error)
    tls = _api_error(0, "SSLError\ncertificate verify failed")
    assert "SSLError (check the kubeconfig's server address" in str(translate(tls, what="x"))
    assert not is_transient(tls)
    assert translate(ValueError("a bug"), what="x") is None
    assert not is_transient(ValueError("a bug"))


def test_an_unknown_field_of_a_newer_kuberay_says_how_to_write_for_an_older_one():
    message = '.spec.rayClusterSpec: unknown field "spec.rayClusterSpec.authOptions"'
    error = translate(_api_error(400, "Bad Request", message), what="create RayJob ns/x")
    assert str(error).startswith("could not create RayJob ns/x: the API server rejected it: ")
    assert "KubeRay added spec.rayClusterSpec.authOptions in 1.6.0" in str(error)
    assert "FLYRAY_KUBERAY_VERSION, --kuberay-version" in str(error)
    other = translate(_api_error(400, "Bad Request", 'unknown field "spec.nodeSelektor"'), what="x")
    assert "kuberay_version" not in str(other)


def test_the_dashboard_line_says_where_the_token_of_the_cluster_is():
    running = {
        **_rayjob("Running", rayClusterName="env-task-r01-abcde", dashboardURL="h:8265"),
        "spec": {"rayClusterSpec": {"authOptions": {"mode": "token"}}},
    }
    line = progress(None, Snapshot.of(running), elapsed=1.0)[-1]
    assert line.endswith(
        "; it asks for the cluster's token: `kubectl get secret -n ml env-task-r01-abcde -o "
        "jsonpath='{.data.auth_token}' | base64 -d`"
    ), line
    assert "token" not in progress(None, Snapshot.of({**running, "spec": {}}), elapsed=1.0)[-1]


def test_the_auth_secret_is_named_as_kuberay_shortens_the_cluster_name():
    from flyray.executors.kuberay.status import auth_secret

    assert auth_secret("short-abcde") == "short-abcde"
    long = "abc-" + "d" * 43 + "-abcde"  # a RayJob name of 47 characters, KubeRay's 6 more
    assert auth_secret(long) == "r" + long[4:]  # the last 50, the leading "-" made "r"
    assert auth_secret("d" * 44 + "-abcde") == "d" * 44 + "-abcde"


def test_server_message_and_retry_delay():
    from flyray.executors.kuberay.errors import MAX_DELAY_S, retry_delay, server_message

    assert server_message(_api_error(403, "Forbidden", "rayjobs is forbidden")) == (
        "rayjobs is forbidden"
    )
    plain = _api_error(502, "Bad Gateway")
    plain.body = "<html>proxy error</html>\nmore"
    assert server_message(plain) == "<html>proxy error</html>"
    assert server_message(_api_error(500, "Internal Server Error")) == "Internal Server Error"
    assert [retry_delay(n) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]
    assert retry_delay(10) == MAX_DELAY_S
    assert retry_delay(1, _api_error(429, "Too Many Requests", **{"Retry-After": "2"})) == 2.0


def _rayjob(deployment: str = "", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "env-task-r01", "namespace": "ml"},
        "status": {"jobDeploymentStatus": deployment, **status} if deployment else status,
    }


def _cluster_status(head: bool, ready: int, desired: int) -> dict[str, Any]:
    condition = {"type": "HeadPodReady", "status": "True" if head else "False"}
    return {
        "readyWorkerReplicas": ready,
        "desiredWorkerReplicas": desired,
        "conditions": [condition],
    }


def test_progress_follows_the_lifecycle():
    states = [
        _rayjob(),
        _rayjob(
            "Initializing",
            rayClusterName="env-task-r01-abcde",
            rayClusterStatus=_cluster_status(False, 0, 1),
        ),
        _rayjob(
            "Initializing",
            rayClusterName="env-task-r01-abcde",
            rayClusterStatus=_cluster_status(True, 1, 1),
        ),
        _rayjob(
            "Running",
            rayClusterName="env-task-r01-abcde",
            jobId="env-task-r01-xyz",
            jobStatus="RUNNING",
            dashboardURL="env-task-r01-abcde-head-svc.ml.svc.cluster.local:8265",
        ),
        _rayjob("Complete", jobStatus="SUCCEEDED", jobId="env-task-r01-xyz", succeeded=1),
    ]
    lines, previous = [], None
    for rayjob in states:
        current = Snapshot.of(rayjob)
        lines += progress(previous, current, elapsed=3.0)
        previous = current
    assert lines == [
        "RayJob ml/env-task-r01 Initializing: creating the Ray cluster (3 s)",
        "RayCluster env-task-r01-abcde: head starting, workers 0/1 ready",
        "RayCluster env-task-r01-abcde: head ready, workers 1/1 ready",
        "RayJob ml/env-task-r01 Running: cluster ready, job submitted (3 s)",
        "Ray job env-task-r01-xyz RUNNING (3 s)",
        "Ray dashboard: http://env-task-r01-abcde-head-svc.ml.svc.cluster.local:8265 (inside the "
        "cluster); from here run `kubectl port-forward -n ml svc/env-task-r01-abcde-head-svc "
        "8265:8265` and open http://localhost:8265",
        "RayJob ml/env-task-r01 Complete: job finished (3 s)",
        "Ray job env-task-r01-xyz SUCCEEDED (3 s)",
    ]
    assert Snapshot.of(states[-1]).run_status() is RunStatus.SUCCEEDED
    assert Snapshot.of(states[1]).run_status() is RunStatus.PENDING
    assert Snapshot.of(states[3]).run_status() is RunStatus.RUNNING


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        (
            "DeadlineExceeded",
            "passed the task's timeout (DeadlineExceeded: activeDeadlineSeconds=30",
        ),
        ("PreRunningDeadlineExceeded", "never became ready (PreRunningDeadlineExceeded): the"),
        ("AppFailed", "the task's Ray job failed (AppFailed)"),
        ("SubmissionFailed", "could not submit the job to the Ray cluster (SubmissionFailed)"),
        ("ValidationFailed", "must be deleted and created again: fix the configuration"),
        ("JobStatusCheckTimeoutExceeded", "the operator gave up on it"),
    ],
)
def test_failures_are_explained(reason, words):
    snapshot = Snapshot.of(_rayjob("Failed", reason=reason, message="the detail"))
    spec = {"activeDeadlineSeconds": 30, "preRunningDeadlineSeconds": 5}
    text = explain(snapshot, spec=spec)
    assert words in text and "(the operator says: the detail)" in text
    error = failure_error(snapshot, run_id="r01", task_name="env.task", spec=spec, logs="L")
    assert type(error) is (flyray.TaskTimeoutError if reason == "DeadlineExceeded" else TaskError)
    assert error.run_id == "r01" and error.logs == "L"
    assert str(error).endswith("see `flyray logs r01`")


def test_a_task_error_comes_first_with_its_traceback():
    from flyray.store.runstore import ErrorInfo

    snapshot = Snapshot.of(_rayjob("Failed", reason="AppFailed", message="exit 1"))
    stored = ErrorInfo("ValueError", "bad input", "Traceback ...\nValueError: bad input\n")
    error = failure_error(snapshot, run_id="r01", task_name="env.task", spec={}, error=stored)
    assert str(error).startswith("task env.task failed in run r01: ValueError: bad input (")
    assert error.remote_traceback == stored.traceback
    bare = failure_error(snapshot, run_id="r01", task_name="env.task", spec={})
    assert "stored no error, so the driver failed before the task ran" in str(bare)


def test_attempts_follow_retries():
    from flyray.store.record import RunRecord

    record = RunRecord(run_id="r01", task="env.task", mode="kuberay")
    sequence = [
        _rayjob("Initializing"),
        _rayjob("Running", jobId="j1"),
        _rayjob("Retrying", jobId="j1", failed=1, reason="AppFailed", message="exit 1"),
        _rayjob("Initializing", failed=1),
        _rayjob("Running", jobId="j2", failed=1),
        _rayjob("Complete", jobId="j2", failed=1, succeeded=1),
    ]
    for rayjob in sequence:
        track_attempts(record, Snapshot.of(rayjob))
    first, second = record.attempts
    assert (first.number, first.submission_id, first.status) == (1, "j1", RunStatus.FAILED)
    assert (first.message, first.error_kind) == ("AppFailed: exit 1", "user")
    assert (second.number, second.submission_id, second.status) == (2, "j2", RunStatus.SUCCEEDED)
    assert first.ended_at and second.ended_at
    assert not track_attempts(record, Snapshot.of(sequence[-1]))


def test_run_store_must_reach_the_cluster(tmp_path):
    from types import SimpleNamespace

    from flyray.executors.kuberay.preflight import check_run_store

    local = RunStore(tmp_path / "runs")
    with pytest.raises(flyray.ConfigError, match=r"run_store is a folder on this machine") as info:
        check_run_store(local, shared=False)
    assert "s3://BUCKET/flyray" in str(info.value) and "--shared-run-store" in str(info.value)
    check_run_store(local, shared=True)
    with pytest.raises(flyray.ConfigError, match="in this process's memory"):
        check_run_store(RunStore("memory://runs"), shared=False)
    check_run_store(SimpleNamespace(is_local=False, uri=lambda: "s3://b/flyray"), shared=False)


def _kubeconfig(path: Path, *, server: str, namespace: str | None = None) -> Path:
    context = {"cluster": "c", "user": "u", **({"namespace": namespace} if namespace else {})}
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "main", "context": context},
                    {"name": "other", "context": {"cluster": "c", "user": "u"}},
                ],
                "current-context": "main",
            }
        )
    )
    return path


def test_kubeconfig_context_and_namespace(tmp_path, monkeypatch):
    from flyray.executors.kuberay.session import KubeSession

    monkeypatch.setenv(
        "KUBECONFIG", str(_kubeconfig(tmp_path / "kc", server="http://h:1", namespace="ml"))
    )
    with KubeSession() as session:
        assert (session.context, session.namespace, session.server) == ("main", "ml", "http://h:1")
    with KubeSession(context="other") as session:
        assert (session.context, session.namespace) == ("other", "default")
    with KubeSession(context="other", namespace="team") as session:
        assert session.namespace == "team"
    assert session.closed
    with pytest.raises(flyray.ConfigError, match=r"context is not a context in .* main, other"):
        KubeSession(context="prod")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(
        flyray.ConfigError, match="does not exist and flyray is not running in a pod"
    ):
        KubeSession()


def test_unreachable_server_is_retried_then_reported(tmp_path, monkeypatch):
    from flyray.executors.kuberay import session as session_module
    from flyray.executors.localcluster.raystart import free_port

    server = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path / "kc", server=server)))
    delays = []
    monkeypatch.setattr(session_module.time, "sleep", delays.append)
    with (
        session_module.KubeSession() as session,
        pytest.raises(
            flyray.SubmissionError,
            match=rf"could not read RayJob default/x: no answer from the Kubernetes API server at "
            rf"{server} after 8 attempts",
        ),
    ):
        session.get(RAYJOBS, "x")
    assert delays == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


# --- whole runs through the test API server -----------------------------------------------

TASKS = str(Path(__file__).with_name("kr_tasks.py"))
ROOT = Path(__file__).parents[2]
FLYRAY = str(Path(sys.executable).parent / "flyray")


def run(task_name: str, *args: Any, recorder: Recorder | None = None, **options: Any) -> Any:
    recorder = recorder or Recorder()
    context = flyray.with_runcontext(
        mode="kuberay", on_progress=recorder.progress, on_log=recorder.log, **options
    )
    return context.run(load_task(TASKS, task_name), *args)


def assert_nothing_left(fake_kube) -> None:
    """No RayJob, RayCluster or pod remains, and no process of a cluster the fake started."""
    for kind in ("rayjobs", "rayclusters", "pods"):
        assert fake_kube.objects(kind) == [], kind
    for folder in fake_kube.started_cluster_dirs:
        assert wait_until_gone(str(folder)) == [], folder


@pytest.mark.slow
def test_seed_like_task_returns_its_result(kube_env, fake_kube):
    recorder = Recorder()
    handle = run("seed_like", 10, recorder=recorder)
    assert handle.result() == 285
    record = only_record(kube_env)
    assert (record.mode, record.status) == ("kuberay", RunStatus.SUCCEEDED)
    assert record.cluster["namespace"] == fake_kube.namespace
    assert record.cluster["rayjob"] == record.manifest_name
    assert [a.status for a in record.attempts] == [RunStatus.SUCCEEDED]
    assert "seed-like task on 2 nodes" in kube_env.read_log(record.run_id)
    assert "seed-like task on 2 nodes" in recorder.log_text
    manifest = yaml.safe_load(kube_env.read_manifest(record.run_id))
    assert schema_errors(manifest) == []
    assert manifest["metadata"]["namespace"] == fake_kube.namespace
    creates = [r for r in fake_kube.requests if r.method == "POST" and "rayjobs" in r.path]
    assert [r.query.get("dryRun") for r in creates] == ["All", None]
    assert all(r.status == 201 for r in creates)
    assert any("kubectl port-forward -n default svc/" in line for line in recorder.lines)
    assert any("workers 1/1 ready" in line for line in recorder.lines), recorder.lines
    repeated = [a for a, b in itertools.pairwise(recorder.lines) if a == b]
    assert not repeated, recorder.lines  # the RayJob and its RayCluster both tell readiness
    # ttlSecondsAfterFinished=3 with shutdown: the RayJob is left to KubeRay, which deletes
    # the cluster 3 s after the job's end; the RayJob stays until `flyray cancel`.
    kept = f"keeping RayJob default/{record.manifest_name}: KubeRay deletes its RayCluster 3 s"
    assert any(line.startswith(kept) for line in recorder.lines), recorder.lines
    assert record.cluster["kept_until"]
    (rayjob,) = fake_kube.objects("rayjobs")
    assert rayjob["status"]["jobDeploymentStatus"] == "Complete"
    fake_kube.wait_for(lambda: not fake_kube.objects("rayclusters"), timeout=60)
    cancelled = CliRunner().invoke(cli, ["cancel", record.run_id])
    assert "had already ended (SUCCEEDED); RayJob default/" in cancelled.output, cancelled.output
    assert only_record(kube_env).status is RunStatus.SUCCEEDED
    fake_kube.wait_for(lambda: not fake_kube.objects("rayjobs"), timeout=60)
    assert_nothing_left(fake_kube)


@pytest.mark.slow
def test_failing_task_raises_with_the_remote_traceback(kube_env, fake_kube):
    with pytest.raises(TaskError) as info:
        run("fail_remotely", 7)
    error = info.value
    assert "RuntimeError: failed on purpose with code 7" in str(error)
    assert "AppFailed" in str(error)
    assert 'raise RuntimeError(f"failed on purpose with code {code}")' in error.remote_traceback
    record = only_record(kube_env)
    assert record.status is RunStatus.FAILED and error.run_id == record.run_id
    assert record.attempts[-1].error_kind == "user"
    assert "failed on purpose with code 7" in kube_env.read_log(record.run_id)
    assert_nothing_left(fake_kube)


@pytest.mark.slow
def test_deadline_is_a_timeout(kube_env, fake_kube):
    with pytest.raises(flyray.TaskTimeoutError, match=r"activeDeadlineSeconds=10"):
        run("sleep_too_long")
    assert only_record(kube_env).status is RunStatus.FAILED
    assert_nothing_left(fake_kube)


def test_a_cluster_that_never_becomes_ready_fails_clearly(kube_env, fake_kube):
    fake_kube.stuck_initializing = True
    with pytest.raises(TaskError, match=r"the cluster never became ready") as info:
        run("never_runs")
    assert "preRunningDeadlineSeconds=3" in str(info.value)
    assert "PreRunningDeadlineExceeded" in str(info.value)
    assert not isinstance(info.value, flyray.TaskTimeoutError)
    assert_nothing_left(fake_kube)


@pytest.mark.slow
def test_retries_run_on_a_new_cluster(kube_env, fake_kube, tmp_path):
    recorder = Recorder()
    handle = run("fail_once", str(tmp_path / "marker"), recorder=recorder)
    assert handle.result() == "second attempt"
    record = only_record(kube_env)
    assert [a.status for a in record.attempts] == [RunStatus.FAILED, RunStatus.SUCCEEDED]
    assert record.attempts[0].submission_id != record.attempts[1].submission_id
    assert any("Retrying" in line for line in recorder.lines)
    assert "first attempt fails" in kube_env.read_log(record.run_id)
    assert_nothing_left(fake_kube)


# -- preflight ---------------------------------------------------------------------------------


def test_no_crd(kube_env, fake_kube):
    fake_kube.no_crd = True
    with pytest.raises(flyray.SubmissionError, match="KubeRay is not installed") as info:
        run("sum_of_squares", 1)
    assert "helm install kuberay-operator kuberay/kuberay-operator" in str(info.value)
    assert only_record(kube_env).status is RunStatus.FAILED


def test_forbidden(kube_env, fake_kube):
    fake_kube.forbid = {("create", "rayjobs"), ("get", "pods/log")}
    with pytest.raises(flyray.SubmissionError) as info:
        run("sum_of_squares", 1)
    message = str(info.value)
    assert message.startswith("not allowed in context 'fake'")
    assert "create rayjobs.ray.io, get pods/log;" in message
    assert "kubectl auth can-i create rayjobs.ray.io -n default" in message
    assert not [r for r in fake_kube.requests if r.method == "POST" and "rayjobs" in r.path]


def test_local_run_store_is_refused_unless_shared(kube_env, fake_kube, monkeypatch):
    monkeypatch.delenv("FLYRAY_SHARED_RUN_STORE")
    with pytest.raises(flyray.ConfigError, match="run_store is a folder on this machine"):
        run("sum_of_squares", 1)
    assert kube_env.list_records() == []  # refused before anything was written
    assert fake_kube.requests == []


def test_dry_run_rejection_creates_nothing(kube_env, fake_kube):
    with pytest.raises(flyray.SubmissionError) as info:
        run("rejected")
    message = str(info.value)
    expected = (
        r"could not create RayJob default/kr-misspelled-rejected-r\w+ \(server-side dry run\): "
        r"the API server rejected it: .*nodeSelektor"
    )
    assert re.match(expected, message), message
    creates = [r for r in fake_kube.requests if r.method == "POST" and "rayjobs" in r.path]
    assert [r.query.get("dryRun") for r in creates] == ["All"]
    assert fake_kube.objects("rayjobs") == []


def test_unknown_namespace_and_context(kube_env, fake_kube):
    with pytest.raises(flyray.SubmissionError, match="not found"):
        run("sum_of_squares", 1, namespace="nowhere")
    with pytest.raises(flyray.ConfigError, match=r"context is not a context in .*contexts: fake"):
        run("sum_of_squares", 1, context="prod")


# -- faults, interruptions, detached runs ------------------------------------------------------


@pytest.mark.slow
def test_the_run_survives_dropped_watches_410_and_500s(kube_env, fake_kube, kube_api):
    from kubernetes import client

    recorder = Recorder()

    def expire_watches(*, http: bool) -> None:
        """Make the server forget the RayJob watch's resourceVersion, then end the watch."""
        (rayjob,) = fake_kube.objects("rayjobs")
        client.CustomObjectsApi(kube_api).patch_namespaced_custom_object(
            "ray.io", "v1", fake_kube.namespace, "rayclusters",
            rayjob["status"]["rayClusterName"],
            {"metadata": {"annotations": {"test/bump": str(fake_kube.resource_version)}}},
        )  # fmt: skip
        fake_kube.gone_below(fake_kube.resource_version, http=http)
        fake_kube.drop_watches()

    def while_initializing() -> None:
        fake_kube.fail_next(3, 500, path="rayjobs")
        fake_kube.drop_watches(abrupt=True)

    def once_running() -> None:
        expire_watches(http=False)  # an ERROR event with code 410
        fake_kube.drop_log_streams()

    def once_the_job_runs() -> None:
        fake_kube.fail_next(1, 429, retry_after=1, path="rayjobs")
        expire_watches(http=True)  # an HTTP 410

    recorder.at(r"Initializing: creating", while_initializing)
    recorder.at(r"Running: cluster ready", once_running)
    recorder.at(r"^Ray job \S+ RUNNING", once_the_job_runs)
    assert run("sum_of_squares", 10, recorder=recorder).result() == 285
    assert not recorder.hooks  # every fault was injected
    rayjobs = [r for r in fake_kube.requests if r.path.endswith("/rayjobs")]
    assert [r.status for r in rayjobs].count(500) == 3
    assert [r.status for r in rayjobs].count(429) == 1
    assert [r.status for r in rayjobs].count(410) == 1
    lists = [r for r in rayjobs if r.method == "GET" and r.query.get("watch") != "true"]
    assert len(lists) >= 4  # the first, one after each 410, one waiting for the deletion
    record = only_record(kube_env)
    assert kube_env.read_log(record.run_id).count("summing 10 squares") == 1
    assert recorder.log_text.count("summing 10 squares") == 1
    assert_nothing_left(fake_kube)


@pytest.mark.slow
def test_ctrl_c_deletes_the_rayjob(kube_env, fake_kube, monkeypatch):
    monkeypatch.delenv("FLYRAY_SHARED_RUN_STORE")
    options = ["--shared-run-store", "--context", "fake", "--namespace", fake_kube.namespace]
    proc = subprocess.Popen(
        [FLYRAY, "run", "--mode", "kuberay", *options, TASKS, "sleep_long"],
        cwd=ROOT,
        env=dict(os.environ),
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    seen = read_stderr_until(proc, "sleeping until stopped")
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 130, seen + rest
    assert re.search(r"RayJob default/kr-head-sleep-long-r\w+ deleted", rest), rest
    record = only_record(kube_env)
    assert record.status is RunStatus.STOPPED
    assert "sleeping until stopped" in kube_env.read_log(record.run_id)
    assert_nothing_left(fake_kube)


@pytest.mark.slow
def test_detach_then_logs_show_and_cancel(kube_env, fake_kube):
    handle = run("sleep_long", detach=True)
    assert handle.status is RunStatus.RUNNING and handle.result() is None
    (rayjob,) = fake_kube.objects("rayjobs")
    assert rayjob["metadata"]["labels"]["flyray.io/run-id"] == handle.run_id
    runner = CliRunner()
    deadline = time.monotonic() + 120
    while (
        "sleeping until stopped" not in (logs := runner.invoke(cli, ["logs", handle.run_id])).output
    ):
        assert time.monotonic() < deadline, logs.output
        fake_kube.wait_for(lambda: False, timeout=0.5)
    shown = runner.invoke(cli, ["runs", "show", handle.run_id])
    assert re.search(r"status +RUNNING", shown.output), shown.output
    assert re.search(rf"rayjob +{rayjob['metadata']['name']}", shown.output), shown.output
    cancelled = runner.invoke(cli, ["cancel", handle.run_id])
    assert cancelled.exit_code == 0, cancelled.output
    assert "deleted; status STOPPED" in cancelled.output
    assert kube_env.load_record(handle.run_id).status is RunStatus.STOPPED
    fake_kube.wait_for(lambda: not fake_kube.objects("rayjobs"), timeout=60)
    again = runner.invoke(cli, ["cancel", handle.run_id])
    assert "was already gone" in again.output
    assert_nothing_left(fake_kube)


def test_creating_again_after_a_lost_answer_gets_the_same_rayjob(kube_env, fake_kube):
    """A create retried after its first try reached the server meets a 409: ours is kept."""
    import copy

    from flyray.config.settings import Settings
    from flyray.executors.kuberay.session import KubeSession
    from flyray.executors.render import render_for_run

    fake_kube.stuck_initializing = True  # no Ray for this one
    task = load_task(TASKS, "sum_of_squares")
    manifest = render_for_run(
        task, run_id="r0000000001", store=kube_env, settings=Settings(), namespace="default"
    )
    with KubeSession() as session:
        first = session.create(RAYJOBS, manifest)
        again = session.create(RAYJOBS, manifest)
        assert again["metadata"]["uid"] == first["metadata"]["uid"]
        other = copy.deepcopy(manifest)
        other["metadata"]["labels"]["flyray.io/run-id"] = "r0000000002"
        with pytest.raises(flyray.SubmissionError, match=r"already exists.*409"):
            session.create(RAYJOBS, other)
        assert session.delete(RAYJOBS, manifest["metadata"]["name"])
        assert not session.delete(RAYJOBS, "no-such-rayjob")
    fake_kube.wait_for(lambda: not fake_kube.objects("rayjobs"), timeout=30)


def test_long_operator_messages_are_cut_to_their_first_line():
    message = "Job entrypoint command failed with exit code 1, last available logs (truncated):\n"
    snapshot = Snapshot.of(_rayjob("Failed", reason="AppFailed", message=message + "x\n" * 500))
    assert snapshot.outcome() == "AppFailed: Job entrypoint command failed with exit code 1"
    assert explain(snapshot, spec={}).endswith(
        "(the operator says: Job entrypoint command failed with exit code 1)"
    )
    assert len(Snapshot.of(_rayjob("Failed", message="y" * 1000)).outcome()) == 300


@pytest.mark.slow
def test_run_options_reach_the_rayjob_and_wait_follows_it_detached(kube_env, fake_kube):
    handle = run(
        "sum_of_squares",
        10,
        detach=True,
        name="opts-run",
        labels={"team": "ml"},
        annotations={"note": "from with_runcontext"},
        service_account="ray-runner",
        env_vars={"RUN_VAR": "x"},
    )
    (rayjob,) = fake_kube.objects("rayjobs")
    metadata, spec = rayjob["metadata"], rayjob["spec"]
    assert (
        metadata["labels"]["team"] == "ml" and metadata["labels"]["flyray.io/run-id"] == "opts-run"
    )
    assert metadata["annotations"]["note"] == "from with_runcontext"
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert head["serviceAccountName"] == "ray-runner"
    assert yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]["RUN_VAR"] == "x"
    assert handle.wait() is None
    assert handle.phase is RunStatus.SUCCEEDED and handle.outputs() == (285,)
    assert handle.url == kube_env.uri("runs", "opts-run")
    assert kube_env.load_record("opts-run").status is RunStatus.SUCCEEDED
