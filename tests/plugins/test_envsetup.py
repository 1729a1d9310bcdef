"""Ray's runtime env failures said in a line: pip's own error lines, the node, the tool."""

from __future__ import annotations

from flyray.errors import RuntimeEnvSetupError
from flyray.executors.kuberay.status import Snapshot, failure_error
from flyray.plugins.ray.envsetup import building, setup_failure

# What Ray 2.60 says (RuntimeEnvSetupError, and the Jobs API's JobInfo.message) when pip fails.
RAY_SAYS = """Failed to set up runtime environment.
[Node 192.0.2.2] Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/ray/_private/runtime_env/agent/runtime_env_agent.py", line 561, in _create_runtime_env_with_retry
    runtime_env_context = await asyncio.wait_for(
  File "/venv/lib/python3.11/site-packages/ray/_private/runtime_env/utils.py", line 105, in check_output_cmd
    raise SubprocessCalledProcessError(
ray._private.runtime_env.utils.SubprocessCalledProcessError: Run cmd[9] failed with the following details.
Command '['/tmp/ray/session_x/runtime_resources/pip/c3bf/virtualenv/bin/python', '-m', 'pip', 'install', '-r', '/tmp/ray/session_x/runtime_resources/pip/c3bf/ray_runtime_env_internal_pip_requirements.txt', '--disable-pip-version-check', '--no-cache-dir']' returned non-zero exit status 1.
Last 50 lines of stdout:
    Looking in links: /opt/wheels
    ERROR: Could not find a version that satisfies the requirement flyray-no-such-package-4d1f (from versions: none)
    ERROR: No matching distribution found for flyray-no-such-package-4d1f
"""  # noqa: E501


def test_pips_error_lines_are_quoted_with_the_node_and_tool():
    said = setup_failure(RAY_SAYS)
    assert said == (
        "Ray could not build the task's runtime env on node 192.0.2.2 (pip install failed): "
        "ERROR: Could not find a version that satisfies the requirement "
        "flyray-no-such-package-4d1f (from versions: none) | "
        "ERROR: No matching distribution found for flyray-no-such-package-4d1f"
    )


def test_other_failures_are_not_runtime_env_failures():
    assert setup_failure("Job entrypoint command failed with exit code 1") is None
    assert setup_failure(None) is None
    timeout = "Failed to set up runtime environment.\nTimeout after 600 seconds.\n"
    assert setup_failure(timeout) == (
        "Ray could not build the task's runtime env (setup failed): Timeout after 600 seconds."
    )


def test_building_names_the_installer_and_packages():
    assert building({"pip": ["a", "b"]}) == "pip: a, b"
    assert building({"pip": {"packages": ["a"], "pip_check": True}}) == "pip: a"
    assert building({"uv": [f"p{i}" for i in range(6)]}) == "uv: p0, p1, p2, p3 and 2 more"
    assert building({"conda": "myenv"}) == "conda: myenv"
    assert building({"env_vars": {"A": "1"}, "pip": []}) is None
    assert building(None) is None


def test_a_rayjob_that_failed_in_its_runtime_env_is_a_runtime_env_setup_error():
    snapshot = Snapshot(
        name="r1", namespace="ml", deployment="Failed", job_status="FAILED", message=RAY_SAYS
    )
    error = failure_error(snapshot, run_id="r1", task_name="env.t", spec={}, logs="mem://log")
    assert isinstance(error, RuntimeEnvSetupError) and error.run_id == "r1"
    assert "No matching distribution found for flyray-no-such-package-4d1f" in str(error)
    assert str(error).startswith("run r1 of task env.t failed: ")
