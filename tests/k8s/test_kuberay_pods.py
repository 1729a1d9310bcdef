"""kuberay mode: a RayCluster container that cannot run fails the run at once, with its log.

First the pure reading of a pod's status (``pod_failure``) and the error of each kind
(``pod_error``), then whole runs against the test API server, whose pods are given the status
a kubelet would write: the run fails within seconds with that error, quoting the container's
log, its record is FAILED and nothing is left.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import flyray
from flyray.errors import ImagePullBackOffError, OOMError
from flyray.executors.kuberay.pods import LOG_LINES, PodFailure, pod_error, pod_failure
from flyray.store.record import RunStatus
from tests.k8s.recording import only_record
from tests.k8s.test_kuberay_executor import assert_nothing_left, run

HEAD_LOG = "starting Ray\n/bin/bash: line 1: ray: command not found\n"


def _pod(*statuses: dict[str, Any], init: tuple[dict[str, Any], ...] = (), **meta: Any) -> dict:
    return {
        "metadata": {"name": "c-head-x1", "namespace": "ml", **meta},
        "spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.60.0"}]},
        "status": {"containerStatuses": list(statuses), "initContainerStatuses": list(init)},
    }


def _status(state: dict[str, Any], *, last: dict[str, Any] | None = None, restarts: int = 0):
    status = {"name": "ray-head", "state": state, "restartCount": restarts}
    if last is not None:
        status["lastState"] = {"terminated": last}
    return status


def _terminated(code: int, reason: str = "Error") -> dict[str, Any]:
    return {"exitCode": code, "reason": reason, "finishedAt": "2026-12-07T03:00:00Z"}


CRASH_LOOP = _status(
    {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting"}},
    last=_terminated(127),
    restarts=2,
)
OOM_LOOP = _status(
    {"waiting": {"reason": "CrashLoopBackOff"}}, last=_terminated(137, "OOMKilled"), restarts=1
)
IMAGE_PULL = _status(
    {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "nope:1"'}}
)


def test_a_crash_looping_container_is_a_failure_with_its_last_exit():
    failure = pod_failure(_pod(CRASH_LOOP))
    assert failure == PodFailure(
        namespace="ml",
        pod="c-head-x1",
        container="ray-head",
        reason="CrashLoopBackOff",
        exit_code=127,
        exit_reason="Error",
        message="back-off 10s restarting",
        restarts=2,
        image="rayproject/ray:2.60.0",
    )
    assert failure.what() == (
        "exited with code 127 (Error), was restarted 2 times and keeps failing (CrashLoopBackOff)"
    )


def test_a_container_that_exited_non_zero_is_a_failure():
    failure = pod_failure(_pod(_status({"terminated": _terminated(1)})))
    assert failure is not None
    assert (failure.reason, failure.exit_code) == ("Error", 1)
    assert failure.what() == "exited with code 1 (Error)"
    killed = pod_failure(_pod(_status({"terminated": _terminated(137, "OOMKilled")})))
    assert killed is not None and killed.oom


def test_an_init_container_and_an_image_pull_are_failures_too():
    init = _status({"waiting": {"reason": "CrashLoopBackOff"}}, last=_terminated(3), restarts=1)
    init["name"] = "wait-gcs-ready"
    failure = pod_failure(_pod(_status({"waiting": {"reason": "PodInitializing"}}), init=(init,)))
    assert failure is not None and (failure.container, failure.exit_code) == ("wait-gcs-ready", 3)
    pull = pod_failure(_pod(IMAGE_PULL))
    assert pull is not None
    assert pull.what().startswith(
        "cannot pull its image 'rayproject/ray:2.60.0' (ImagePullBackOff: Back-off pulling"
    )


@pytest.mark.parametrize(
    "state",
    [
        {"running": {"startedAt": "2026-12-07T03:00:00Z"}},
        {"waiting": {"reason": "ContainerCreating"}},
        {"waiting": {"reason": "CreateContainerConfigError", "message": "no secret"}},
        {"terminated": _terminated(0, "Completed")},
    ],
)
def test_a_container_that_runs_starts_or_completed_is_no_failure(state):
    # restarted once, then running: not (yet) a failure
    assert pod_failure(_pod(_status(state, last=_terminated(1), restarts=1))) is None


def test_a_pod_being_deleted_is_not_judged():
    assert pod_failure(_pod(CRASH_LOOP, deletionTimestamp="2026-12-07T03:00:00Z")) is None
    assert pod_failure({"metadata": {"name": "p"}}) is None  # no status yet


def test_each_failure_becomes_its_error_and_quotes_the_log():
    log = "".join(f"line {i}\n" for i in range(30))
    failure = pod_failure(_pod(CRASH_LOOP))
    assert failure is not None
    error = pod_error(failure, log, run_id="r1", task_name="env.t", logs="file:///runs/r1")
    assert type(error) is flyray.TaskError
    assert (error.code, error.run_id, error.logs) == ("CrashLoopBackOff", "r1", "file:///runs/r1")
    assert str(error).startswith(
        "run r1 of task env.t failed: container ray-head of pod ml/c-head-x1 exited with code 127 "
        f"(Error), was restarted 2 times and keeps failing (CrashLoopBackOff); the last "
        f"{LOG_LINES} lines of its log:\n    line 10\n"
    )
    assert str(error).endswith("\n    line 29")
    assert "line 9\n" not in str(error)

    oom = pod_error(pod_failure(_pod(OOM_LOOP)), "", run_id="r1", task_name="env.t")
    assert isinstance(oom, OOMError) and oom.code == "OOMKilled"
    assert "was killed for using more memory than its limit (OOMKilled, exit code 137)" in str(oom)
    assert str(oom).endswith("; its log is empty")

    pull = pod_error(pod_failure(_pod(IMAGE_PULL)), None, run_id="r1", task_name="env.t")
    assert isinstance(pull, ImagePullBackOffError) and pull.code == "ImagePullBackOff"
    assert "log" not in str(pull)  # it never ran

    unread = pod_error(pod_failure(_pod(CRASH_LOOP)), None, run_id="r1", task_name="env.t")
    assert str(unread).endswith("; its log could not be read")


# --- whole runs: the test API server's head pod gets a kubelet's status ---------------------


def _break_the_head(fake_kube: Any, status: dict[str, Any], log: str | None) -> dict[str, Any]:
    """In a thread: once the head pod is there (unschedulable, no Ray: ``stuck_initializing``),
    give it ``status`` and ``log``; what it saw (``at``: when, the pod's name) is returned."""
    from tests.k8s.store import PODS

    seen: dict[str, Any] = {}

    def heads() -> list[dict[str, Any]]:
        return [
            pod
            for pod in fake_kube.objects("pods")
            if pod["metadata"]["labels"].get("ray.io/node-type") == "head"
            and (pod.get("status") or {}).get("phase") == "Pending"
            and "containerStatuses" not in pod["status"]  # unschedulable(): the fake is done
        ]

    def act() -> None:
        (head,) = fake_kube.wait_for(heads, timeout=30)
        name = head["metadata"]["name"]
        if log is not None:
            fake_kube.store.set_log("default", name, log)

        def change(pod: dict[str, Any]) -> None:
            pod["status"] = status

        fake_kube.store.mutate(PODS, "default", name, change)
        seen.update(at=time.monotonic(), pod=name)

    thread = threading.Thread(target=act, daemon=True)
    thread.start()
    seen["thread"] = thread
    return seen


def _running(container: dict[str, Any], phase: str = "Running") -> dict[str, Any]:
    return {"phase": phase, "podIP": "127.0.0.1", "containerStatuses": [container]}


@pytest.mark.parametrize(
    ("status", "error_type", "words"),
    [
        (
            _running(CRASH_LOOP),
            flyray.TaskError,
            "exited with code 127 (Error), was restarted 2 times and keeps failing "
            "(CrashLoopBackOff); the last 2 lines of its log:\n    starting Ray\n"
            "    /bin/bash: line 1: ray: command not found",
        ),
        (_running(OOM_LOOP), OOMError, "(OOMKilled, exit code 137)"),
        (
            _running(IMAGE_PULL, phase="Pending"),
            ImagePullBackOffError,
            '(ImagePullBackOff: Back-off pulling image "nope:1"); check the image\'s name',
        ),
        (
            _running(_status({"terminated": _terminated(2)})),
            flyray.TaskError,
            "exited with code 2 (Error); the last 2 lines of its log:",
        ),
    ],
    ids=["crash-loop", "oom-killed", "image-pull", "exited"],
)
def test_a_head_that_cannot_run_fails_the_run_within_seconds(
    kube_env, fake_kube, status, error_type, words
):
    fake_kube.stuck_initializing = True  # no Ray: the head's status is the test's to write
    broken = _break_the_head(fake_kube, status, HEAD_LOG)
    with pytest.raises(error_type) as info:
        run("sum_of_squares", 3)
    failed_after = time.monotonic() - broken["at"]
    broken["thread"].join()
    message = str(info.value)
    assert words in message, message
    assert f"container ray-head of pod default/{broken['pod']} " in message, message
    # without the pods' check it would wait for ever (no deadline, the RayJob stays Initializing)
    print(f"failed {failed_after:.1f} s after the head's status was written")
    record = only_record(kube_env)
    assert record.status is RunStatus.FAILED
    assert record.message == message
    if error_type is not ImagePullBackOffError:  # the log is kept with the run's
        assert "ray: command not found" in kube_env.read_log(record.run_id)
    assert_nothing_left(fake_kube)
