"""`flyray run` as a user types it, in a subprocess, with a real Ray."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.procs import wait_until_gone

ROOT = Path(__file__).parents[2]
FLYRAY = str(Path(sys.executable).parent / "flyray")


def flyray_run(*args, env, timeout=180):
    return subprocess.run(
        [FLYRAY, "run", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )


@pytest.mark.slow
def test_seed_example_on_a_local_ray(ray_tmpdir):
    env = {**os.environ, "RAY_TMPDIR": ray_tmpdir}
    result = flyray_run("examples/seed.py", "my_ray_task", "--n", "10", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "285\n"
    assert "ray_env.my_ray_task finished" in result.stderr
    assert wait_until_gone(ray_tmpdir) == [], "the local Ray outlived the run"


@pytest.mark.slow
def test_existing_cluster_through_the_ray_client(ray_cluster):
    env = {**os.environ, **ray_cluster.auth_env(), "RAY_CLIENT_ADDRESS": ray_cluster.client_address}
    result = flyray_run("examples/existing_cluster.py", "cluster_info", env=env)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info == {"alive_nodes": 2, "cpus": 3.0, "sum_of_squares": 285}
