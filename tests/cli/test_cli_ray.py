"""`flyray run` as a user types it, in a subprocess, with a real Ray."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flyray.executors.localcluster.raystart import free_port
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


@pytest.mark.slow
def test_ray_address_is_honoured_without_a_configured_address(ray_cluster):
    env = {**os.environ, **ray_cluster.auth_env(), "RAY_ADDRESS": ray_cluster.client_address}
    result = flyray_run("tests/executors/lc_tasks.py", "alive_nodes", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "2\n", "the task should have run on the two-node session cluster"


@pytest.mark.slow
def test_unreachable_ray_client_address_says_what_was_tried():
    address = f"ray://127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "RAY_CLIENT_ADDRESS": address,
        # Ray's own bounds on a client connection (30 s by default): keep the test short.
        "RAY_CLIENT_INITIAL_CONNECTION_TIMEOUT_S": "1",
        "RAY_CLIENT_MAX_CONNECTION_TIMEOUT_S": "1",
    }
    result = flyray_run("examples/existing_cluster.py", "cluster_info", env=env, timeout=120)
    assert result.returncode == 1
    assert (
        f"no Ray cluster answered at {address} (timed out), so flyray could not connect (waited"
        in result.stderr
    )
    assert "Traceback" not in result.stderr and "failed:" not in result.stderr
