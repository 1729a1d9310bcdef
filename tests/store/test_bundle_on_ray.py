"""End to end on real Ray: the bundle as a job's working_dir, the entrypoint as its driver."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import pytest

from flyray.entrypoint import command
from flyray.executors.localcluster.cluster import LocalRayCluster
from flyray.store import RunStore, create_bundle

from .conftest import ProjectFactory

# The project holds one folder and no top-level file (.git is left out of the bundle): a zip
# with files at its root would lose "app/" when Ray unpacks it.
FILES = {
    ".git/HEAD": "ref: refs/heads/main\n",
    "app/__init__.py": "",
    "app/helpers.py": "def square(x):\n    return x * x\n",
    "app/tasks.py": """
        import os

        import ray

        import flyray
        from app.helpers import square

        env = flyray.TaskEnvironment(name="bundle_env")


        @env.task
        def squares(n: int) -> dict:
            ray.init()  # joins the job's cluster, whose workers get the job's working_dir

            @ray.remote(num_cpus=0)
            def remote_square(x):
                return square(x), sorted(os.listdir())

            results = ray.get([remote_square.remote(i) for i in range(n)])
            return {
                "sum": sum(value for value, _ in results),
                "driver_files": sorted(os.listdir()),
                "worker_files": results[0][1],
            }
    """,
}


@pytest.mark.slow
def test_entrypoint_runs_the_bundle_as_a_ray_job(
    make_project: ProjectFactory, tmp_path: Path, ray_cluster: LocalRayCluster
) -> None:
    """On the session's two-node cluster (tests/conftest.py): driver and workers see the bundle."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    root = make_project(FILES)
    store = RunStore(tmp_path / "store")
    bundle = create_bundle(root / "app" / "tasks.py", store)
    store.write_inputs("r1", (4,), {})
    # "python" on the nodes' PATH need not be this venv's: name the interpreter.
    argv = command(
        store=store.root,
        run_id="r1",
        task_file=bundle.task_file,
        task_name="bundle_env.squares",
        python=sys.executable,
    )
    client = JobSubmissionClient(ray_cluster.dashboard_url, headers=ray_cluster.auth_headers())
    job = client.submit_job(entrypoint=shlex.join(argv), runtime_env={"working_dir": bundle.uri})
    deadline = time.monotonic() + 120
    while not (status := client.get_job_status(job)).is_terminal():
        assert time.monotonic() < deadline, client.get_job_logs(job)
        time.sleep(0.5)
    assert status == JobStatus.SUCCEEDED, client.get_job_logs(job)
    assert store.read_error("r1") is None
    assert store.read_outputs("r1") == {
        "sum": 0 + 1 + 4 + 9,
        "driver_files": ["app"],
        "worker_files": ["app"],
    }
