"""A Jobs API that misbehaves: Ray's real client against a tiny real HTTP server, and the fake.

``FakeDashboard`` answers over a real socket the way a Ray dashboard does (or fails on
purpose), so Ray's ``JobSubmissionClient`` raises what it raises for real; a closed port is
a cluster that is gone. ``FakeJobsClient`` drives the executors through a cluster that stops
answering or forgets the job halfway: the run ends LOST, never as the task's failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from ray.job_submission import JobStatus

from flyray.config.ray_images import ray_version
from flyray.config.settings import Settings
from flyray.errors import (
    ClusterAuthError,
    ClusterServerError,
    ClusterUnreachableError,
    RayClusterError,
    RayJobNotFoundError,
    TaskError,
    VersionSkewError,
)
from flyray.executors.jobs.client import connect
from flyray.executors.localcluster.raystart import free_port
from flyray.runner import Run
from flyray.store.record import RunStatus
from flyray.store.runstore import RunStore
from flyray.task.loader import load_task
from tests.executors.jobs.fake_dashboard import FakeDashboard
from tests.executors.jobs.fake_jobs import (
    ADDRESS,
    FakeJobsClient,
    Step,
    executor,
    fake_settings,
)

TASKS = str(Path(__file__).parent.parent / "lc_tasks.py")
NOT_FOUND = "Request failed with status code 404: Job {} does not exist."


# Ray's real client against a real socket


def test_a_closed_port_is_unreachable():
    address = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ClusterUnreachableError) as info:
        connect(address, {})
    assert str(info.value).startswith(f"no Ray cluster answered at {address} (connection refused)")
    assert "Failed to connect to Ray at address" in info.value.ray_message


def test_a_server_error_names_the_address_the_call_and_ray_s_words():
    with FakeDashboard(jobs={"r1-1": "RUNNING"}, fail={"/api/jobs/": 500}) as dashboard:
        client = connect(dashboard.url, {}, skip_version_check=True)
        with pytest.raises(ClusterServerError) as info:
            client.get_job_status("r1-1")
    assert str(info.value).startswith(
        f"the Ray cluster at {dashboard.url} failed with a server error (500) when asked to "
        "get the status of job r1-1"
    )
    assert "injected 500" in str(info.value)


def test_a_server_error_at_connect():
    with (
        FakeDashboard(fail={"/api/version": 503}) as dashboard,
        pytest.raises(ClusterServerError, match=r"server error \(503\) when asked to connect"),
    ):
        connect(dashboard.url, {}, skip_version_check=True)


def test_a_failing_call_to_another_ray_says_version_skew_with_both_versions():
    seen = []
    with FakeDashboard(ray_version="2.9.0", jobs={"r1-1": "RUNNING"}) as dashboard:
        client = connect(dashboard.url, {}, report=seen.append)
        assert client.get_job_status("r1-1") == JobStatus.RUNNING  # skew alone is a warning
        dashboard.fail["/api/jobs/"] = 500
        with pytest.raises(VersionSkewError) as info:
            client.get_job_status("r1-1")
    assert f"Ray 2.9.0 on the cluster, {ray_version()} here" in " ".join(seen)
    assert f"runs Ray 2.9.0, this process Ray {ray_version()}" in str(info.value)


def test_a_cluster_too_old_for_the_jobs_api_is_version_skew():
    with (
        FakeDashboard(ray_version="1.8.0") as dashboard,
        pytest.raises(
            VersionSkewError, match=r"runs Ray 1\.8\.0, this process Ray .*Ray 1\.9 or higher"
        ),
    ):
        connect(dashboard.url, {}, skip_version_check=True)


def test_a_server_that_is_not_a_ray_dashboard():
    with (
        FakeDashboard(fail={"/api/version": 404}) as dashboard,
        pytest.raises(
            RayClusterError, match=r"refused to connect \(HTTP 404\): is this a Ray dashboard"
        ),
    ):
        connect(dashboard.url, {}, skip_version_check=True)


@pytest.mark.parametrize(
    ("code", "headers", "said"),
    [
        (401, {}, "needs a token and flyray sent none"),
        (403, {"Authorization": "Bearer s3cret-value"}, "refused the token flyray sent"),
    ],
)
def test_a_token_missing_or_refused_says_which(code, headers, said):
    with FakeDashboard(fail={"/api/": code}) as dashboard, pytest.raises(ClusterAuthError) as info:
        connect(dashboard.url, headers, skip_version_check=True)
    assert dashboard.requests[0] == ("/api/version", bool(headers))
    assert said in str(info.value) and dashboard.url in str(info.value)
    assert info.value.token_sent is bool(headers)
    assert "s3cret" not in str(info.value)


def test_an_unknown_job_is_not_found():
    with FakeDashboard() as dashboard:
        client = connect(dashboard.url, {}, skip_version_check=True)
        with pytest.raises(RayJobNotFoundError, match="does not know Ray job r9-1"):
            client.get_job_logs("r9-1")


# The executors through the fake: a cluster that goes away mid-run


@pytest.fixture
def settings(tmp_path) -> Settings:
    return fake_settings(tmp_path)


@pytest.fixture
def store(settings) -> RunStore:
    return RunStore(settings.run_store_path())


def _fails_after(fake: FakeJobsClient, calls: int, error: Exception) -> None:
    """Make the fake's ``get_job_status`` raise ``error`` from its ``calls``-th call on, and
    its ``get_job_logs`` then fail too (as a refused connection)."""
    answer, logs, count = fake.get_job_status, fake.get_job_logs, [0]

    def get_job_status(submission_id):
        count[0] += 1
        if count[0] >= calls:
            raise error
        return answer(submission_id)

    def get_job_logs(submission_id):
        if count[0] >= calls:
            raise requests.exceptions.ConnectionError("[Errno 111] Connection refused")
        return logs(submission_id)

    fake.get_job_status, fake.get_job_logs = get_job_status, get_job_logs


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (RuntimeError(NOT_FOUND.format("rfake000001-1")), RayJobNotFoundError),
        (
            requests.exceptions.ConnectionError("[Errno 111] Connection refused"),
            ClusterUnreachableError,
        ),
    ],
)
def test_a_cluster_that_forgets_the_job_or_goes_away_mid_run_makes_it_lost(
    settings, store, error, kind
):
    fake = FakeJobsClient(lambda _: [Step(JobStatus.RUNNING, "working\n")])
    _fails_after(fake, 3, error)
    job = executor(settings, fake)
    job.submit(load_task(TASKS, "sum_of_squares"), (3,), {}, run_id="rfake000001")
    with pytest.raises(kind) as info:
        job.wait("rfake000001")
    assert not isinstance(info.value, TaskError)
    record = store.load_record("rfake000001")
    assert record.status is RunStatus.LOST and record.ended_at is None
    assert record.message.startswith("its cluster could not be asked since ")
    assert str(info.value) in record.message
    assert record.attempts[-1].status is RunStatus.LOST
    assert store.read_log("rfake000001") == ""  # that call failed, and did not mask the error


def test_a_server_error_mid_run_fails_it_as_the_cluster_s_error(settings, store):
    fake = FakeJobsClient(lambda _: [Step(JobStatus.RUNNING)])
    _fails_after(fake, 2, RuntimeError("Request failed with status code 500: boom."))
    job = executor(settings, fake)
    job.submit(load_task(TASKS, "sum_of_squares"), (3,), {}, run_id="rfake000001")
    with pytest.raises(ClusterServerError, match=f"the Ray cluster at {ADDRESS} failed"):
        job.wait("rfake000001")
    assert store.load_record("rfake000001").status is RunStatus.FAILED


def _detached(settings, fake) -> str:
    job = executor(settings, fake, detach=True)
    job.submit(load_task(TASKS, "sum_of_squares"), (3,), {}, run_id="rfake000001")
    assert job.wait("rfake000001") is RunStatus.RUNNING
    return "rfake000001"


def test_a_detached_run_is_lost_while_its_cluster_is_gone_and_found_again(settings, store):
    steps = [Step(JobStatus.RUNNING, "working\n"), Step(JobStatus.SUCCEEDED, "done\n")]
    fake = FakeJobsClient(lambda _: steps)
    run_id = _detached(settings, fake)
    answer = fake.get_job_status
    fake.get_job_status = lambda _: (_ for _ in ()).throw(
        requests.exceptions.ConnectionError("[Errno 111] Connection refused")
    )
    later = executor(settings, fake)
    assert later.status(run_id) is RunStatus.LOST
    first = store.load_record(run_id).message
    assert f"no Ray cluster answered at {ADDRESS} (connection refused)" in first
    with pytest.raises(
        RayClusterError, match=f"run {run_id} is LOST: its cluster could not"
    ) as info:
        later.result(run_id)
    assert info.value.cause == "lost" and info.value.address == ADDRESS
    assert executor(settings, fake).status(run_id) is RunStatus.LOST
    assert store.load_record(run_id).message == first  # still lost since the first time
    assert "is LOST, so there is nothing flyray can stop" in executor(settings, fake).cancel(run_id)

    fake.get_job_status = answer  # the cluster answers again
    assert later.status(run_id) is RunStatus.RUNNING
    assert later.result(run_id) is None  # going on: no error, no outputs yet
    assert store.load_record(run_id).message is None
    assert executor(settings, fake).status(run_id) is RunStatus.SUCCEEDED
    assert store.read_log(run_id) == "working\ndone\n"


def test_a_refused_token_at_refresh_leaves_the_record_as_it_was(settings, store, monkeypatch):
    from ray.exceptions import AuthenticationError

    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)
    fake = FakeJobsClient(lambda _: [Step(JobStatus.RUNNING)])
    run_id = _detached(settings, fake)
    fake.get_job_status = lambda _: (_ for _ in ()).throw(
        AuthenticationError("Authentication failed: Forbidden: Invalid authentication token")
    )
    with pytest.raises(ClusterAuthError, match="needs a token and flyray sent none"):
        executor(settings, fake).status(run_id)
    assert store.load_record(run_id).status is RunStatus.RUNNING


def test_a_lost_run_ends_a_wait_and_raises_the_cluster_s_error_from_outputs(settings, store):
    fake = FakeJobsClient(lambda _: [Step(JobStatus.RUNNING)])
    run_id = _detached(settings, fake)
    fake.get_job_status = lambda _: (_ for _ in ()).throw(
        RuntimeError(NOT_FOUND.format(f"{run_id}-1"))
    )
    handle = Run(
        run_id, "lc_tasks.sum_of_squares", "cluster", RunStatus.RUNNING, executor(settings, fake)
    )
    handle.wait()
    assert handle.phase is RunStatus.LOST
    with pytest.raises(RayClusterError, match=f"does not know Ray job {run_id}-1") as info:
        handle.outputs()
    assert not isinstance(info.value, TaskError)
