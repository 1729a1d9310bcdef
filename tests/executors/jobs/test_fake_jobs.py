"""The Jobs-API executors driven through a fake Jobs client: no cluster, every path in seconds.

The same executor code that talks to real clusters (``test_cluster_mode.py``) is followed
here through ``FakeJobsClient``: attempts, retries, failures, a detached run followed up by a
new executor (status, logs, cancel), and the refusals of modes whose runs cannot outlive
their process.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ray.job_submission import JobStatus

import flyray
from flyray.config.settings import Settings
from flyray.errors import ConfigError, SubmissionError
from flyray.executors.jobs import executor as jobs_executor
from flyray.executors.jobs.client import RayJobsClient
from flyray.executors.jobs.cluster import ClusterExecutor
from flyray.executors.localcluster.executor import LocalClusterExecutor
from flyray.executors.registry import executor_type
from flyray.store.record import RunRecord, RunStatus
from flyray.store.runstore import ErrorInfo, RunStore
from flyray.task.loader import load_task
from tests.executors.jobs.fake_jobs import (
    ADDRESS,
    FakeJobsClient,
    Step,
    executor,
    fake_settings,
)

TASKS = str(Path(__file__).parent.parent / "lc_tasks.py")


@pytest.fixture
def settings(tmp_path) -> Settings:
    return fake_settings(tmp_path)


@pytest.fixture
def store(settings) -> RunStore:
    return RunStore(settings.run_store_path())


def start(settings, fake, task_name, *args, run_id="rfake000001", **options):
    """Submit and wait a run of a task of lc_tasks.py; (executor, status)."""
    job = executor(settings, fake, **options)
    job.submit(load_task(TASKS, task_name), args, {}, run_id=run_id)
    return job, job.wait(run_id)


def run_id_of(submission_id: str) -> str:
    return submission_id.rsplit("-", 1)[0]


def test_a_job_that_succeeds_gives_its_outputs_logs_and_one_attempt(settings, store):
    def plan(submission_id):
        done = lambda: store.write_outputs(run_id_of(submission_id), 285)  # noqa: E731
        return [
            Step(JobStatus.RUNNING, "summing 10 squares\n"),
            Step(JobStatus.SUCCEEDED, "done\n", effect=done),
        ]

    fake, seen = FakeJobsClient(plan), []
    job, status = start(settings, fake, "sum_of_squares", 10, on_log=seen.append)
    assert status is RunStatus.SUCCEEDED
    assert job.result("rfake000001") == 285
    record = store.load_record("rfake000001")
    assert [a.submission_id for a in record.attempts] == ["rfake000001-1"]
    assert store.read_log("rfake000001") == "".join(seen) == "summing 10 squares\ndone\n"
    (submitted,) = fake.jobs.values()
    assert submitted.entrypoint.startswith("python -m flyray.entrypoint")
    assert fake.connected == [(ADDRESS, {})]


def test_a_failing_task_is_submitted_again_under_fresh_ids_until_retries_run_out(settings, store):
    def plan(submission_id):
        error = ErrorInfo("RuntimeError", "this task always fails", "Traceback ...\n")
        fail = lambda: store.write_error(run_id_of(submission_id), error)  # noqa: E731
        return [Step(JobStatus.FAILED, "boom\n", effect=fail)]

    fake = FakeJobsClient(plan)
    job, status = start(settings, fake, "always_fails")
    assert status is RunStatus.FAILED
    assert list(fake.jobs) == ["rfake000001-1", "rfake000001-2", "rfake000001-3"]
    with pytest.raises(flyray.TaskError, match="this task always fails"):
        job.result("rfake000001")
    record = store.load_record("rfake000001")
    assert [a.error_kind for a in record.attempts] == ["user"] * 3


def test_a_job_that_ray_fails_says_what_ray_said(settings, store):
    fake = FakeJobsClient(
        lambda _: [Step(JobStatus.FAILED, message="runtime env setup failed: no such package")]
    )
    job, status = start(settings, fake, "sum_of_squares", 3)
    assert status is RunStatus.FAILED
    with pytest.raises(flyray.TaskError, match="runtime env setup failed: no such package"):
        job.result("rfake000001")
    record = store.load_record("rfake000001")
    assert record.attempts[-1].error_kind == "infrastructure"


def test_a_detached_run_is_followed_up_by_a_new_executor(settings, store):
    fake = FakeJobsClient(lambda _: [Step(JobStatus.RUNNING, "sleeping\n")])
    _, status = start(settings, fake, "sleep_long", detach=True)
    assert status is RunStatus.RUNNING

    later = executor_type("cluster")(settings, jobs_client=fake.factory)
    assert later.status("rfake000001") is RunStatus.RUNNING
    assert "".join(later.logs("rfake000001")) == "sleeping\n"
    assert later.result("rfake000001") is None  # still going: no outputs yet

    line = later.cancel("rfake000001")
    assert line == "run rfake000001: Ray job stopped; status STOPPED"
    assert fake.jobs["rfake000001-1"].stopped
    assert store.load_record("rfake000001").status is RunStatus.STOPPED
    assert later.cancel("rfake000001") == "run rfake000001 had already ended: STOPPED"
    with pytest.raises(flyray.TaskError, match="was stopped"):
        later.result("rfake000001")


def test_following_logs_goes_on_until_the_run_ends(settings, store, monkeypatch):
    monkeypatch.setattr(jobs_executor, "LOG_POLL_SECONDS", 0.01)

    def plan(submission_id):
        done = lambda: store.write_outputs(run_id_of(submission_id), 1)  # noqa: E731
        return [
            Step(JobStatus.RUNNING, "one\n"),
            Step(JobStatus.RUNNING, "two\n"),
            Step(JobStatus.SUCCEEDED, "three\n", effect=done),
        ]

    fake = FakeJobsClient(plan)
    start(settings, fake, "sleep_long", detach=True)
    later = ClusterExecutor(settings, jobs_client=fake.factory)
    assert "".join(later.logs("rfake000001", follow=True)) == "one\ntwo\nthree\n"
    assert later.status("rfake000001") is RunStatus.SUCCEEDED
    assert later.result("rfake000001") == 1


def test_a_run_of_another_mode_is_refused_by_name(settings, store):
    store.save_record(RunRecord(run_id="rother00001", task="t.f", mode="kuberay"))
    with pytest.raises(ConfigError, match="is a kuberay run, not a cluster run"):
        ClusterExecutor(settings).status("rother00001")


def test_a_local_cluster_run_cannot_be_cancelled_from_another_process(settings, store):
    record = RunRecord(run_id="rlocal00001", task="t.f", mode="local-cluster")
    record.status = RunStatus.RUNNING
    store.save_record(record)
    with pytest.raises(ConfigError, match="ends with the process that started it"):
        LocalClusterExecutor(settings).cancel("rlocal00001")


def test_a_cluster_that_stops_answering_fails_the_run_and_keeps_the_record(settings, store):
    fake = FakeJobsClient(lambda _: [Step(JobStatus.RUNNING, "working\n")])

    def gone(submission_id):
        raise SubmissionError(f"the Ray Jobs API at {ADDRESS} could not get the status")

    fake.get_job_status = gone
    job = executor(settings, fake)
    job.submit(load_task(TASKS, "sum_of_squares"), (3,), {}, run_id="rfake000001")
    with pytest.raises(SubmissionError, match="could not get the status"):
        job.wait("rfake000001")
    record = store.load_record("rfake000001")
    assert record.status is RunStatus.FAILED
    assert "could not get the status" in record.message


def test_ray_client_errors_become_one_line_naming_the_call_and_address():
    class Refusing:
        def get_job_status(self, submission_id):
            raise RuntimeError(f"Request failed with status code 404: Job {submission_id}\nmore")

    client = RayJobsClient(Refusing(), "http://10.0.0.1:8265")
    with pytest.raises(SubmissionError) as info:
        client.get_job_status("r1-1")
    assert str(info.value) == (
        "the Ray cluster at http://10.0.0.1:8265 does not know Ray job r1-1 (it was restarted, "
        "or the job was deleted), so flyray could not get the status of job r1-1 "
        "(Ray said: Request failed with status code 404: Job r1-1 more)"
    )
