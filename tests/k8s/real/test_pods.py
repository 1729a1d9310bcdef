"""flyray's kuberay mode end to end: the REAL operator, and pods that REALLY run (level 3).

The process kubelet (``process_kubelet.py``) runs every pod of ``kuberay-pods`` as local
processes in a network namespace of its own, so the operator's head and worker pods start
Ray with the ``ray start`` command it generated, the workers join the head through its
Service name, and its submitter Job runs ``ray job submit`` against the head's dashboard, all
with the Ray auth token the operator made for the cluster. The run store is on a path the pods
see (in a real cluster: object storage).
"""

from __future__ import annotations

import base64
import itertools
import os
import re
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import flyray
from flyray.sandbox.operator import PODS_NAMESPACE
from flyray.store.record import RunStatus
from tests.k8s.real.objects import Namespace, wait_until
from tests.k8s.real.runs import (
    FLYRAY,
    ROOT,
    TASKS,
    Recorder,
    only_record,
    read_stderr_until,
    run,
)

pytestmark = [pytest.mark.realkube, pytest.mark.slow, pytest.mark.timeout(600)]

SEED = str(ROOT / "examples" / "seed.py")
RUN_TIMEOUT_S = 300.0
GONE_TIMEOUT_S = 60.0


@pytest.fixture
def pods_env(process_kubelet: Any, real_kube: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The caller's environment: the kubeconfig, and a run store the pods see."""
    from flyray.store.runstore import RunStore

    store = str(process_kubelet.shared / f"runs-{secrets.token_hex(4)}")
    monkeypatch.setenv("KUBECONFIG", str(real_kube.kubeconfig_path))
    monkeypatch.setenv("FLYRAY_RUN_STORE", store)
    monkeypatch.setenv("FLYRAY_SHARED_RUN_STORE", "1")
    return RunStore(store)


@pytest.fixture
def objects(kube_api: Any, real_kube: Any, process_kubelet: Any) -> Iterator[Namespace]:
    """The namespace; afterwards the kubelet has met no error, and a failed test's RayJobs go."""
    from flyray.executors.kuberay.session import RAYJOBS, KubeSession

    errors = len(process_kubelet.errors)
    namespace = Namespace(kube_api, PODS_NAMESPACE)
    yield namespace
    for rayjob in namespace.ray("rayjobs"):  # nothing, unless the test failed half-way
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("KUBECONFIG", str(real_kube.kubeconfig_path))
            KubeSession(namespace=PODS_NAMESPACE).delete(RAYJOBS, rayjob["metadata"]["name"])
    assert process_kubelet.errors[errors:] == [], "the process kubelet failed"


@pytest.fixture
def flyray_cli() -> Iterator[Any]:
    """Starts ``flyray ARGS`` with pipes; whatever still runs at the end is killed."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [FLYRAY, *args],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _nothing_left(objects: Namespace, kubelet: Any, pids: set[int]) -> None:
    """No RayJob, RayCluster, Job, pod, Service or cluster Secret in the namespace; no pod
    network namespace or process."""

    def left() -> list[str]:
        found = [f"rayjob {o['metadata']['name']}" for o in objects.ray("rayjobs")]
        found += [f"raycluster {o['metadata']['name']}" for o in objects.ray("rayclusters")]
        found += [f"pod {o['metadata']['name']}" for o in objects.pods()]
        found += [f"job {o['metadata']['name']}" for o in objects.jobs()]
        found += [f"service {o['metadata']['name']}" for o in objects.services()]
        found += [f"secret {o['metadata']['name']}" for o in objects.secrets("ray.io/cluster")]
        found += [f"network namespace {name}" for name in kubelet.network.namespaces()]
        found += [f"process {pid}" for pid in pids if _alive(pid)]
        return found

    deadline = time.monotonic() + GONE_TIMEOUT_S
    while (remaining := left()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not remaining, f"left behind: {remaining}"


def _get(url: str, *, token: str | None = None) -> int:
    """The HTTP status of GET ``url`` (straight, whatever http_proxy says)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _pod_pids(kubelet: Any) -> set[int]:
    """Every process the kubelet saw in any pod so far."""
    return {pid for pod in kubelet.history for pid in pod.seen_pids}


def test_the_seed_task_returns_285_from_pods_that_really_ran(
    pods_env, process_kubelet, objects, flyray_cli
):
    proc = flyray_cli(
        *("run", "--mode", "kuberay", "--namespace", PODS_NAMESPACE),
        *(SEED, "my_ray_task", "--n", "10"),
    )
    out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, err
    assert out.strip().splitlines()[-1] == "285", out + err
    for step in (
        "Initializing: creating the Ray cluster",
        "Running: cluster ready, job submitted",
        "SUCCEEDED",
        "Complete: job finished",
    ):
        assert step in err, err
    # readiness is told while Initializing: the last count may come with Running, unprinted
    assert re.search(r"RayCluster \S+: head (starting|ready), workers [012]/2 ready", err), err
    lines = err.splitlines()
    assert not [a for a, b in itertools.pairwise(lines) if a == b], err  # each state told once
    record = only_record(pods_env)
    assert (record.mode, record.status) == ("kuberay", RunStatus.SUCCEEDED)
    log = pods_env.read_log(record.run_id)  # the submitter's: `ray job submit`, then its logs
    submitted = re.search(r"Job '(\S+)' submitted successfully", log)
    assert submitted, log
    assert f"Job '{submitted.group(1)}' succeeded" in log, log

    # what ran: a head, two workers of group cpu-workers, the submitter; each really started
    ran = {pod.name: pod for pod in process_kubelet.history}
    (rayjob,) = objects.ray("rayjobs", f"flyray.io/run-id={record.run_id}")
    cluster = rayjob["status"]["rayClusterName"]
    heads = [n for n in ran if n.startswith(f"{cluster}-head")]
    workers = [n for n in ran if n.startswith(f"{cluster}-cpu-workers-worker")]
    assert len(heads) == 1 and len(workers) == 2, sorted(ran)
    for name in heads + workers:
        assert "Ray runtime started" in ran[name].containers[0].log.read_text(), name
    (submitter,) = objects.jobs()
    assert submitter["status"].get("succeeded") == 1, submitter["status"]

    # the kept cluster asks for its token (flyray's authOptions): without it Ray says no
    (head,) = [ran[name] for name in heads]
    (secret,) = objects.secrets(f"ray.io/cluster={cluster}")
    token = base64.b64decode(secret["data"]["auth_token"]).decode()
    jobs_url = f"http://{head.net.address}:8265/api/jobs/"
    assert _get(jobs_url) == 401
    assert _get(jobs_url, token=token) == 200
    assert _get(jobs_url, token="not-" + token) in (401, 403)

    # the TTL keeps the finished cluster 600 s (the spec's config): cancel removes it all
    pids = _pod_pids(process_kubelet)
    assert pids
    cancelled = flyray_cli("cancel", record.run_id)
    _, cancel_err = cancelled.communicate(timeout=120)
    assert cancelled.returncode == 0, cancel_err
    _nothing_left(objects, process_kubelet, pids)


def test_a_failing_task_ends_failed_with_its_traceback(pods_env, process_kubelet, objects):
    recorder = Recorder()
    with pytest.raises(flyray.TaskError) as info:
        run("fail_remotely", 7, recorder=recorder, namespace=PODS_NAMESPACE)
    assert "RuntimeError: failed on purpose with code 7" in str(info.value)
    assert "AppFailed" in str(info.value)
    assert (
        'in fail_remotely\n    raise RuntimeError(f"failed on purpose'
        in info.value.remote_traceback
    )
    record = only_record(pods_env)
    assert record.status is RunStatus.FAILED
    assert "Failed" in "\n".join(recorder.lines)
    assert "failed on purpose with code 7" in pods_env.read_log(record.run_id)
    _nothing_left(objects, process_kubelet, _pod_pids(process_kubelet))


def test_ctrl_c_leaves_nothing_behind(pods_env, process_kubelet, objects, flyray_cli):
    proc = flyray_cli(
        *("run", "--mode", "kuberay", "--namespace", PODS_NAMESPACE, TASKS, "sleep_long"),
    )
    seen = read_stderr_until(proc, r"Ray job \S+ RUNNING", RUN_TIMEOUT_S)
    pids = _pod_pids(process_kubelet)
    assert len(pids) > 5, pids  # a head's Ray: GCS, raylet, dashboard, agents, the driver
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 130, seen + rest
    assert only_record(pods_env).status is RunStatus.STOPPED
    _nothing_left(objects, process_kubelet, pids)


# -- failures: a container that cannot run, an operator that goes away ----------------------


def test_a_container_restarts_with_back_off_and_says_why(kube_api, process_kubelet, objects):
    """As a kubelet does under ``restartPolicy: Always`` (the default): restarted at once, then
    ``CrashLoopBackOff``; ``restartCount``, ``lastState`` and both instances' logs tell."""
    from kubernetes import client

    core = client.CoreV1Api(kube_api)
    name = f"crasher-{secrets.token_hex(3)}"
    command = ["/bin/sh", "-c", 'echo "boom at $(date +%s%N)"; exit 3']
    core.create_namespaced_pod(
        PODS_NAMESPACE,
        {
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "none", "command": command}]},
        },
    )

    def backing_off() -> Any:
        statuses = core.read_namespaced_pod(name, PODS_NAMESPACE).status.container_statuses
        for status in statuses or []:
            waiting = status.state.waiting
            if waiting is not None and waiting.reason == "CrashLoopBackOff":
                return status
        return None

    status = wait_until(backing_off, 30, "CrashLoopBackOff")
    assert status.restart_count == 1  # restarted at once; now 10 s of back-off
    assert "back-off 10s restarting failed container=main" in status.state.waiting.message
    assert status.last_state.terminated.exit_code == 3
    assert status.last_state.terminated.reason == "Error"
    pod = core.read_namespaced_pod(name, PODS_NAMESPACE)
    assert pod.spec.restart_policy == "Always" and pod.status.phase == "Running"
    current = core.read_namespaced_pod_log(name, PODS_NAMESPACE, container="main")
    previous = core.read_namespaced_pod_log(name, PODS_NAMESPACE, container="main", previous=True)
    assert current.startswith("boom at ") and previous.startswith("boom at ")
    assert current != previous  # two instances, two logs
    (container,) = process_kubelet.find(PODS_NAMESPACE, name).containers
    assert len(container.exits) >= 2
    core.delete_namespaced_pod(name, PODS_NAMESPACE)
    wait_until(lambda: not objects.pods(), GONE_TIMEOUT_S, "the pod's deletion")


def test_a_head_that_cannot_start_ray_fails_the_run_within_seconds(
    pods_env, process_kubelet, objects
):
    """The head's PATH has no ``ray``: its container exits at once with 127, and crash-loops
    (KubeRay keeps the API server's ``restartPolicy: Always`` for its pods); flyray fails the
    run with the pod, the container, the exit code and its log, and deletes the RayJob."""
    recorder = Recorder()
    with pytest.raises(flyray.TaskError) as info:
        run("ray_not_found", recorder=recorder, namespace=PODS_NAMESPACE)
    failed = time.monotonic()
    message = str(info.value)
    assert "exited with code 127 (Error)" in message, message
    assert "keeps failing (CrashLoopBackOff)" in message, message
    assert "ray: command not found" in message, message
    assert re.search(r"container ray-head of pod kuberay-pods/\S+-head-\S+ exited", message)
    record = only_record(pods_env)
    assert record.status is RunStatus.FAILED and record.message == message
    assert "ray: command not found" in pods_env.read_log(record.run_id)
    (head,) = [p for p in process_kubelet.history if record.run_id in p.name and "-head-" in p.name]
    assert head.pod["spec"]["restartPolicy"] == "Always"
    (ray_head,) = head.containers
    first_exit = ray_head.exits[0]
    print(f"\n{message}")
    print(
        f"head container: {len(ray_head.exits)} exits; the run failed (error raised, RayJob "
        f"deleted) {failed - first_exit:.1f} s after its first exit, "
        f"{failed - ray_head.exits[-1]:.1f} s after its last"
    )
    _nothing_left(objects, process_kubelet, _pod_pids(process_kubelet))


@pytest.fixture
def restartable_operator(kuberay_operator: Any) -> Iterator[Any]:
    """The session's operator, for a test that restarts it; running again afterwards."""
    yield kuberay_operator
    if not kuberay_operator.alive():
        kuberay_operator.start()


def test_a_run_outlives_an_operator_restart(
    pods_env, process_kubelet, objects, kube_api, restartable_operator, flyray_cli
):
    """The operator stops while the Ray job runs and starts again after the job finished: the
    new one finds the RayJob, reads the job's end, and the run completes; nothing is left.

    The operator is restarted from this thread: a component dies with the thread that started
    it (``PR_SET_PDEATHSIG``), so flyray runs in a process of its own.
    """
    from kubernetes import client

    core = client.CoreV1Api(kube_api)
    before = restartable_operator.process.popen.pid
    proc = flyray_cli(
        *("run", "--mode", "kuberay", "--namespace", PODS_NAMESPACE),
        *(TASKS, "sum_of_squares", "--n", "10"),
    )
    seen = read_stderr_until(proc, r"Running: cluster ready", RUN_TIMEOUT_S)
    restartable_operator.stop()
    (rayjob,) = objects.ray("rayjobs")
    name = rayjob["metadata"]["name"]

    def submitter_done() -> bool:
        pods = core.list_namespaced_pod(PODS_NAMESPACE, label_selector=f"job-name={name}")
        return any(pod.status.phase == "Succeeded" for pod in pods.items)

    wait_until(submitter_done, RUN_TIMEOUT_S, "the Ray job's end")
    (rayjob,) = objects.ray("rayjobs")
    assert rayjob["status"]["jobDeploymentStatus"] == "Running"  # no operator read the end
    restartable_operator.start()
    assert restartable_operator.process.popen.pid != before
    out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, seen + err
    assert out.strip().splitlines()[-1] == "285", out + err
    assert "Complete: job finished" in err, seen + err
    assert only_record(pods_env).status is RunStatus.SUCCEEDED
    _nothing_left(objects, process_kubelet, _pod_pids(process_kubelet))


def test_the_stock_image_runs_in_a_ray_only_venv_with_flyray_shipped(pods_env, objects):
    """The default image rayproject/ray:X maps to a virtualenv with Ray alone; flyray comes
    with the job (the site bundle in py_modules), not from the pods' Python."""
    from flyray.config.ray_images import ray_version
    from flyray.sandbox.rayvenv import ray_venv

    venv = ray_venv(ray_version(), image=True)
    seen = run("where_it_runs", namespace=PODS_NAMESPACE).result()
    assert Path(seen["python"]).parent == venv / "bin", seen
    assert "/runtime_resources/py_modules_files/" in seen["flyray"], seen
    assert seen["venv_has_flyray"] is False, seen
