"""A Ray Jobs API in memory, like httpx's ``MockTransport``: jobs walk through scripted steps.

``FakeJobsClient(plan)`` stands where ``JobSubmissionClient`` would (``jobs_client=fake.factory``).
``plan(submission_id)`` gives each submitted job its steps; every ``get_job_status`` call takes
the job one step on (the last step stays). A step adds log text and may do what the job's
driver would have done, e.g. write the run's outputs or error to the run store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from ray.job_submission import JobStatus

from flyray.config.settings import Settings
from flyray.executors.jobs.cluster import ClusterExecutor


@dataclass
class Step:
    """One state of a job: its status, the log text it adds, and what its driver does then."""

    status: JobStatus
    log: str = ""
    effect: Callable[[], None] | None = None
    message: str = ""


@dataclass
class FakeJob:
    submission_id: str
    entrypoint: str
    runtime_env: dict[str, Any]
    steps: list[Step]
    reached: int = -1
    logs: str = ""
    stopped: bool = False

    def status(self) -> JobStatus:
        if self.stopped:
            return JobStatus.STOPPED
        return self.steps[self.reached].status if self.reached >= 0 else JobStatus.PENDING

    def advance(self) -> None:
        if self.stopped or self.reached == len(self.steps) - 1:
            return
        self.reached += 1
        step = self.steps[self.reached]
        self.logs += step.log
        if step.effect is not None:
            step.effect()


@dataclass
class FakeJobsClient:
    """The Jobs API calls flyray makes, answered from ``jobs``; ``connected`` logs who asked."""

    plan: Callable[[str], list[Step]]
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    connected: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def factory(self, address: str, headers: Mapping[str, str]) -> FakeJobsClient:
        self.connected.append((address, dict(headers)))
        return self

    def submit_job(
        self, *, entrypoint: str, runtime_env: dict[str, Any], submission_id: str
    ) -> str:
        assert submission_id not in self.jobs, f"{submission_id} submitted twice"
        steps = self.plan(submission_id)
        self.jobs[submission_id] = FakeJob(submission_id, entrypoint, runtime_env, steps)
        return submission_id

    def get_job_status(self, submission_id: str) -> JobStatus:
        job = self.jobs[submission_id]
        job.advance()
        return job.status()

    def get_job_logs(self, submission_id: str) -> str:
        return self.jobs[submission_id].logs

    def get_job_info(self, submission_id: str) -> SimpleNamespace:
        job = self.jobs[submission_id]
        step = job.steps[job.reached] if job.reached >= 0 else Step(JobStatus.PENDING)
        return SimpleNamespace(status=job.status(), message=step.message, error_type=None)

    def stop_job(self, submission_id: str) -> bool:
        self.jobs[submission_id].stopped = True
        return True


ADDRESS = "http://127.0.0.1:9"  # never asked: every call goes to the fake


def fake_settings(tmp_path: Any) -> Settings:
    """Settings of a ``cluster``-mode caller at ``ADDRESS``, with a run store in ``tmp_path``."""
    return Settings.load(overrides={"address": ADDRESS, "run_store": str(tmp_path / "runs")})


def executor(settings: Settings, fake: FakeJobsClient, **options: Any) -> ClusterExecutor:
    """A ``ClusterExecutor`` whose every Jobs API call goes to ``fake``."""
    return ClusterExecutor(
        settings,
        on_log=options.pop("on_log", None) or (lambda _: None),
        jobs_client=fake.factory,
        skip_version_check=True,
        **options,
    )
