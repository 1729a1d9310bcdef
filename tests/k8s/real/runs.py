"""Helpers of the realkube executor tests: run a task in kuberay mode, read what the server has."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import flyray
from flyray.task.loader import load_task
from tests.k8s.recording import Recorder, only_record, read_stderr_until

__all__ = [
    "DELETED",
    "FLYRAY",
    "GROUP",
    "PLURAL",
    "ROOT",
    "TASKS",
    "VERSION",
    "Recorder",
    "only_record",
    "rayjobs",
    "read_stderr_until",
    "requests_for",
    "run",
    "wait_for",
]

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayjobs"
DELETED = "deleted: the operator stops its Ray job and deletes its cluster"
TASKS = str(Path(__file__).with_name("realkube_tasks.py"))
ROOT = Path(__file__).parents[3]
FLYRAY = str(Path(sys.executable).parent / "flyray")


def run(task_name: str, *args: Any, recorder: Recorder | None = None, **options: Any) -> Any:
    """Run a task of ``realkube_tasks.py`` in kuberay mode; the run's handle."""
    recorder = recorder or Recorder()
    context = flyray.with_runcontext(mode="kuberay", on_progress=recorder.progress, **options)
    return context.run(load_task(TASKS, task_name), *args)


def rayjobs(api: Any, run_id: str | None = None) -> list[dict[str, Any]]:
    """flyray's RayJobs in ``default`` (of one run), as the API server has them."""
    from kubernetes import client

    selector = f"flyray.io/run-id={run_id}" if run_id else "app.kubernetes.io/managed-by=flyray"
    found = client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, label_selector=selector
    )
    return found["items"]


def requests_for(kube: Any, name: str) -> list[tuple[str, int]]:
    """(verb, status code) of flyray's completed requests about RayJob ``name``, in order."""
    return [
        (event["verb"], event["responseStatus"]["code"])
        for event in kube.audit_events(name=name)
        if event["user"]["username"] == "admin"  # flyray's, not the stand-in operator's
    ]


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
