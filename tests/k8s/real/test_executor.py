"""The kuberay executor against a REAL kube-apiserver, with a stand-in for the KubeRay operator.

The stand-in (``standin.py``) writes RayJob status through the real API and runs the RayJob's
real entrypoint on the session's local Ray cluster, so a run goes: preflight (discovery, RBAC
reviews, dry run), create, watch, outcome from the run store, foreground delete (finalizer
removed by the stand-in, ``foregroundDeletion`` by the real garbage collector).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest
from click.testing import CliRunner

import flyray
from flyray.cli.main import cli
from flyray.sandbox.controlplane import USER_CONTEXT
from flyray.store.record import RunStatus
from tests.k8s.real.runs import (
    DELETED,
    FLYRAY,
    ROOT,
    TASKS,
    Recorder,
    only_record,
    rayjobs,
    read_stderr_until,
    requests_for,
    run,
    wait_for,
)

pytestmark = pytest.mark.realkube


@pytest.mark.slow
def test_a_run_completes_and_returns_its_result(kube_env, real_kube, kube_api, operator):
    recorder = Recorder()
    handle = run("sum_of_squares", 10, recorder=recorder)
    assert handle.result() == 285
    record = only_record(kube_env)
    assert (record.mode, record.status) == ("kuberay", RunStatus.SUCCEEDED)
    assert [attempt.status for attempt in record.attempts] == [RunStatus.SUCCEEDED]
    lines = "\n".join(recorder.lines)
    for step in ("Initializing: creating the Ray cluster", "Running: cluster ready", "Complete"):
        assert step in lines, lines
    assert lines.endswith(DELETED), lines
    assert rayjobs(kube_api, record.run_id) == []
    calls = requests_for(real_kube, record.manifest_name)
    assert calls[:2] == [("create", 201), ("create", 201)], calls  # the dry run, then for real
    assert ("delete", 200) in calls and ("watch", 200) in calls, calls


@pytest.mark.slow
def test_a_failing_task_raises_its_own_error(kube_env, kube_api, operator):
    with pytest.raises(flyray.TaskError) as info:
        run("fail_remotely", 7)
    assert "RuntimeError: failed on purpose with code 7" in str(info.value)
    assert "AppFailed" in str(info.value)
    assert "failed on purpose" in info.value.remote_traceback
    record = only_record(kube_env)
    assert record.status is RunStatus.FAILED
    assert rayjobs(kube_api, record.run_id) == []


@pytest.mark.slow
def test_ctrl_c_deletes_the_rayjob(kube_env, real_kube, kube_api, operator, monkeypatch):
    monkeypatch.delenv("FLYRAY_SHARED_RUN_STORE")
    options = ["--shared-run-store", "--context", "realkube", "--namespace", "default"]
    proc = subprocess.Popen(
        [FLYRAY, "run", "--mode", "kuberay", *options, TASKS, "sleep_long"],
        cwd=ROOT,
        env=dict(os.environ),
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    seen = read_stderr_until(proc, r"Ray job \S+ RUNNING")
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 130, seen + rest
    assert re.search(r"RayJob default/rk-head-sleep-long-r\w+ deleted", rest), rest
    record = only_record(kube_env)
    assert record.status is RunStatus.STOPPED
    assert rayjobs(kube_api, record.run_id) == []
    (job,) = [j for j in operator.jobs() if j.name == record.manifest_name]
    assert job.job_status_now() == "STOPPED"  # the finalizer stopped the Ray job


@pytest.mark.slow
def test_a_detached_run_is_cancelled(kube_env, kube_api, operator):
    handle = run("sleep_long", detach=True)
    assert handle.status is RunStatus.RUNNING

    def job_status() -> str:
        (rayjob,) = rayjobs(kube_api, handle.run_id)
        return (rayjob.get("status") or {}).get("jobStatus") or ""

    wait_for(lambda: job_status() == "RUNNING", 60, "the Ray job to run")
    cancelled = CliRunner().invoke(cli, ["cancel", handle.run_id])
    assert cancelled.exit_code == 0, cancelled.output
    assert "deleted; status STOPPED" in cancelled.output, cancelled.output
    wait_for(lambda: not rayjobs(kube_api, handle.run_id), 60, "the RayJob to go")
    assert kube_env.load_record(handle.run_id).status is RunStatus.STOPPED


# -- preflight ----------------------------------------------------------------------------


def test_rbac_refusals_are_listed_and_nothing_is_created(kube_env, real_kube, kube_api):
    from kubernetes import client

    with pytest.raises(flyray.SubmissionError) as info:
        run("sum_of_squares", 1, context=USER_CONTEXT)
    message = str(info.value)
    assert message.startswith(f"not allowed in context '{USER_CONTEXT}'"), message
    assert "create rayjobs.ray.io, watch rayjobs.ray.io, delete rayjobs.ray.io" in message
    assert "get pods, list pods, get pods/log;" in message
    rbac = client.RbacAuthorizationV1Api(kube_api)
    role = {
        "metadata": {"name": "flyray-partial"},
        "rules": [
            {"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["create", "watch"]},
            {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]},
        ],
    }
    binding = {
        "metadata": {"name": "flyray-partial"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        },
        "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}],
    }
    rbac.create_namespaced_role("default", role)
    rbac.create_namespaced_role_binding("default", binding)
    try:
        with pytest.raises(flyray.SubmissionError) as info:
            run("sum_of_squares", 1, context=USER_CONTEXT)
        refused = str(info.value)
        assert re.match(
            rf"not allowed in context '{USER_CONTEXT}' .*: delete rayjobs\.ray\.io;", refused
        )
    finally:
        rbac.delete_namespaced_role_binding("flyray-partial", "default")
        rbac.delete_namespaced_role("flyray-partial", "default")
    creates = [e for e in real_kube.audit_events() if e["verb"] == "create"]
    assert not [e for e in creates if e["user"]["username"] == "alice"]


def test_a_misspelled_field_is_refused_by_the_dry_run(kube_env, real_kube):
    before = len(real_kube.audit_events())
    with pytest.raises(flyray.SubmissionError) as info:
        run("rejected")
    message = str(info.value)
    expected = (
        r"could not create RayJob default/rk-misspelled-rejected-r\w+ \(server-side dry run\): "
        r'the API server rejected it: .*unknown field "spec\.rayClusterSpec\.headGroupSpec\.'
        r'template\.spec\.nodeSelektor"'
    )
    assert re.match(expected, message), message
    asked = [
        (event["verb"], event["responseStatus"]["code"], "dryRun=All" in event["requestURI"])
        for event in real_kube.audit_events()[before:]
        if event["user"]["username"] == "admin"
    ]
    assert asked == [("create", 400, True)], asked  # the dry run, refused; nothing else


def test_an_unknown_namespace_is_reported(kube_env):
    with pytest.raises(flyray.SubmissionError, match=r"namespaces \"nowhere\" not found"):
        run("sum_of_squares", 1, namespace="nowhere")
