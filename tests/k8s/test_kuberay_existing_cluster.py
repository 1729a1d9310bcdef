"""kuberay mode with ``RayJobConfig(address=...)``: a plain batch Job, no RayJob.

The Job's pod (a local process, played by ``tests/k8s/fake_jobs.py``) runs flyray's
entrypoint, which fetches the code bundle and connects through the Ray Client to the
session's real two-node cluster; its token comes from a Kubernetes Secret.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

import flyray
from flyray import TaskError
from flyray.cli.main import cli
from flyray.executors.kuberay.jobstatus import JobSnapshot, progress
from flyray.store.record import RunStatus
from flyray.store.runstore import RunStore
from flyray.task.loader import load_task
from tests.k8s.recording import Recorder, only_record

SECRET = ("default", "ray-auth")
TASK_FILE = """
import ray

import flyray
from flyray import Secret
from flyray.plugins.ray import RayJobConfig

env = flyray.TaskEnvironment(
    name="on_existing",
    env_vars={{"RAY_AUTH_MODE": "token"}},
    secrets=[Secret(key="token", group="ray-auth", as_env_var="RAY_AUTH_TOKEN")],
    plugin_config=RayJobConfig(worker_node_config=[], address={address!r}),
)


@ray.remote
def square(x: int) -> int:
    return x * x


@env.task
def sum_of_squares(n: int) -> int:
    print(f"connected to {{len(ray.nodes())}} nodes", flush=True)
    return sum(ray.get([square.remote(i) for i in range(n)]))


@env.task(timeout=5)
def quick() -> int:
    return 1


@env.task(retries=1)
def always_fails(code: int) -> int:
    print("about to fail", flush=True)
    raise RuntimeError(f"failed on purpose with code {{code}}")
"""


@pytest.fixture
def project(tmp_path: Path, ray_cluster: Any) -> Path:
    """A project whose task names the session cluster's Ray Client address."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n')
    (root / "tasks.py").write_text(TASK_FILE.format(address=ray_cluster.client_address))
    return root


@pytest.fixture
def job_env(fake_kube, monkeypatch, tmp_path, ray_cluster) -> RunStore:
    """Kubeconfig and a shared run store; the cluster's token in the Secret the task names."""
    monkeypatch.setenv("KUBECONFIG", str(fake_kube.kubeconfig_path))
    store = str(tmp_path / "runs")
    monkeypatch.setenv("FLYRAY_RUN_STORE", store)
    monkeypatch.setenv("FLYRAY_SHARED_RUN_STORE", "1")
    fake_kube.secrets[SECRET] = {"token": ray_cluster.token_path.read_text().strip()}
    return RunStore(store)


def test_a_missing_secret_is_told_and_the_timeout_ends_the_wait(job_env, fake_kube, project):
    del fake_kube.secrets[SECRET]
    recorder = Recorder()
    with pytest.raises(flyray.TaskTimeoutError, match=r"DeadlineExceeded"):
        run(project, "quick", recorder=recorder)
    waits = 'waits: CreateContainerConfigError: secret "ray-auth" not found'
    assert any(line.endswith(waits) for line in recorder.lines), recorder.lines
    assert_nothing_left(fake_kube)


def run(project: Path, task: str, *args: Any, recorder: Recorder, **options: Any) -> Any:
    context = flyray.with_runcontext(
        mode="kuberay", on_progress=recorder.progress, on_log=recorder.log, **options
    )
    return context.run(load_task(str(project / "tasks.py"), task), *args)


def assert_nothing_left(fake_kube) -> None:
    for kind in ("jobs", "pods", "rayjobs", "rayclusters"):
        assert fake_kube.objects(kind) == [], kind


@pytest.mark.slow
def test_runs_as_one_pod_that_connects_to_the_address(job_env, fake_kube, project, ray_cluster):
    recorder = Recorder()
    assert run(project, "sum_of_squares", 10, recorder=recorder).result() == 285
    record = only_record(job_env)
    assert (record.status, record.cluster["job"]) == (RunStatus.SUCCEEDED, record.manifest_name)
    assert "rayjob" not in record.cluster
    assert [a.status for a in record.attempts] == [RunStatus.SUCCEEDED]
    assert "connected to 2 nodes" in job_env.read_log(record.run_id)
    assert "connected to 2 nodes" in recorder.log_text
    creates = [r for r in fake_kube.requests if r.method == "POST" and "/jobs" in r.path]
    assert [r.query.get("dryRun") for r in creates] == ["All", None]
    assert not [r for r in fake_kube.requests if "rayjobs" in r.path and r.method == "POST"]
    manifest = yaml.safe_load(job_env.read_manifest(record.run_id))
    assert manifest["kind"] == "Job"
    assert manifest["metadata"]["annotations"]["flyray.io/ray-address"] == (
        ray_cluster.client_address
    )
    assert any("Job default/" in line and "Complete" in line for line in recorder.lines)
    assert any(line.endswith("deleted: its pod is stopped") for line in recorder.lines)
    token = fake_kube.secrets[SECRET]["token"]
    stored = [
        job_env.read_manifest(record.run_id),
        job_env.read_log(record.run_id),
        str(record.to_dict()),
        *recorder.lines,
        recorder.log_text,
    ]
    assert not [text for text in stored if token in text], "the secret's value leaked"
    assert_nothing_left(fake_kube)


@pytest.mark.slow
def test_a_failing_task_is_retried_then_raises(job_env, fake_kube, project):
    recorder = Recorder()
    with pytest.raises(TaskError) as info:
        run(project, "always_fails", 7, recorder=recorder)
    error = info.value
    assert "RuntimeError: failed on purpose with code 7" in str(error)
    assert "BackoffLimitExceeded" in str(error) and "failed 2 time(s)" in str(error)
    assert 'raise RuntimeError(f"failed on purpose with code {code}")' in error.remote_traceback
    record = only_record(job_env)
    assert [a.status for a in record.attempts] == [RunStatus.FAILED, RunStatus.FAILED]
    assert record.attempts[-1].error_kind == "user"
    assert job_env.read_log(record.run_id).count("about to fail") == 2
    assert any("attempt 1 failed" in line for line in recorder.lines), recorder.lines
    assert_nothing_left(fake_kube)


@pytest.mark.slow
def test_detach_then_cancel_deletes_the_job(job_env, fake_kube, project):
    handle = run(project, "sum_of_squares", 3, recorder=Recorder(), detach=True)
    assert handle.status is RunStatus.RUNNING
    (job,) = fake_kube.objects("jobs")
    listed = CliRunner().invoke(cli, ["runs", "list", "--kuberay"])
    assert re.search(rf"Job +{job['metadata']['name']} +{handle.run_id}", listed.output), (
        listed.output
    )
    cancelled = CliRunner().invoke(cli, ["cancel", handle.run_id])
    assert cancelled.exit_code == 0, cancelled.output
    assert f"Job default/{job['metadata']['name']}" in cancelled.output
    fake_kube.wait_for(lambda: not fake_kube.objects("jobs"), timeout=30)
    assert_nothing_left(fake_kube)


def test_preflight_asks_for_jobs_not_rayjobs(job_env, fake_kube, project):
    fake_kube.forbid = {("create", "jobs")}
    with pytest.raises(flyray.SubmissionError, match=r"not allowed .*: create jobs\.batch;"):
        run(project, "sum_of_squares", 3, recorder=Recorder())
    assert_nothing_left(fake_kube)


def test_no_kuberay_needed(job_env, fake_kube, project):
    fake_kube.no_crd = True
    fake_kube.forbid = {("create", "jobs")}  # stop right after the CRD would have been asked
    with pytest.raises(flyray.SubmissionError, match=r"create jobs\.batch"):
        run(project, "sum_of_squares", 3, recorder=Recorder())


def test_job_progress_lines():
    def job(**status: Any) -> JobSnapshot:
        return JobSnapshot.of({"metadata": {"name": "j", "namespace": "ns"}, "status": status})

    failed = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}
    states = [
        job(),
        job(active=1),
        job(active=1, ready=1),
        job(active=0, failed=1),
        job(active=1, ready=1, failed=1),
        job(failed=2, conditions=[failed]),
    ]
    lines, previous = [], None
    for state in states:
        lines += progress(previous, state, elapsed=1.0)
        previous = state
    assert lines == [
        "Job ns/j Pending: waiting for the task's pod (1 s)",
        "Job ns/j Running: the task's pod runs and connects to the Ray cluster (1 s)",
        "Job ns/j: attempt 1 failed, Kubernetes starts a new pod (1 s)",
        "Job ns/j Pending: waiting for the task's pod (1 s)",
        "Job ns/j Running: the task's pod runs and connects to the Ray cluster (1 s)",
        "Job ns/j Failed: job failed (BackoffLimitExceeded) (1 s)",
    ]
    assert [s.attempt_number() for s in states] == [1, 1, 1, 2, 2, 2]
    assert states[-1].run_status() is RunStatus.FAILED


def test_render_prints_the_job(project, tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "render",
            "--run-store",
            str(tmp_path / "runs"),
            str(project / "tasks.py"),
            "sum_of_squares",
            "--n",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = yaml.safe_load(result.output)
    assert (manifest["apiVersion"], manifest["kind"]) == ("batch/v1", "Job")
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    assert container["command"][:3] == ["python", "-m", "flyray.entrypoint"]
    assert "--bundle" in container["command"]


def test_the_job_manifest_is_what_the_pod_needs():
    from flyray.manifest.job import render_job
    from flyray.plugins.ray import RayJobConfig
    from flyray.plugins.ray.request import ray_request

    env = flyray.TaskEnvironment(
        name="ray_env",
        image="registry.example.com/app:1",
        resources=flyray.Resources(cpu="500m", memory="1Gi"),
        env_vars={"B": "2", "A": "1"},
        secrets=[flyray.Secret(key="token", group="ray-auth", as_env_var="RAY_AUTH_TOKEN")],
        plugin_config=RayJobConfig(worker_node_config=[], address="ray://head:10001"),
    )
    request = ray_request(env.task(retries=2, timeout=90.5)(_nothing))
    manifest = render_job(request, run_id="r01", command=["python", "-V"], image="ignored:1")
    assert manifest == render_job(
        request, run_id="r01", command=["python", "-V"], image="ignored:1"
    )
    spec = manifest["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"]) == (2, 91)
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["image"] == "registry.example.com/app:1"
    assert container["resources"] == {
        "limits": {"cpu": "500m", "memory": "1Gi"},
        "requests": {"cpu": "500m", "memory": "1Gi"},
    }
    assert container["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "2"},
        {
            "name": "RAY_AUTH_TOKEN",
            "valueFrom": {"secretKeyRef": {"key": "token", "name": "ray-auth"}},
        },
    ]
    labels = manifest["metadata"]["labels"]
    assert spec["template"]["metadata"]["labels"] == labels
    assert labels["flyray.io/run-id"] == "r01"
    assert manifest["metadata"]["name"] == "ray-env-nothing-r01"


def test_a_task_without_address_has_no_job():
    from flyray.manifest.job import render_job
    from flyray.plugins.ray import RayJobConfig
    from flyray.plugins.ray.request import ray_request

    task = flyray.TaskEnvironment(name="e", plugin_config=RayJobConfig()).task(_nothing)
    with pytest.raises(flyray.ManifestError, match=r"no RayJobConfig\.address"):
        render_job(ray_request(task), run_id="r01", command=["python"], image="i:1")


def _nothing() -> None:
    pass


def test_unpack_bundle_checks_its_sha(tmp_path):
    from flyray.store.bundle import create_bundle, unpack_bundle

    project = tmp_path / "p"
    (project / "pkg").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    (project / "pkg" / "task.py").write_text("X = 1\n")
    store = RunStore(str(tmp_path / "runs"))
    bundle = create_bundle(project / "pkg" / "task.py", store)
    out = unpack_bundle(bundle.uri, tmp_path / "out")
    assert (out / "pkg" / "task.py").read_text() == "X = 1\n"
    assert (out / "pyproject.toml").exists()
    path = store.local_path("bundles", f"{bundle.sha256}.zip")
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(flyray.RunStoreError, match="does not match its sha256"):
        unpack_bundle(bundle.uri, tmp_path / "again")
