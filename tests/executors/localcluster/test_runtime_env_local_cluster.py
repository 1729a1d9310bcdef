"""local-cluster runs install the runtime env's packages for real, transient and warm.

Ray builds the pip/uv environment on the node before the job's driver starts; the progress
says so while the job is PENDING, and a package that does not exist fails the run with pip's
own lines, not after a timeout. Times are printed (``-s``) for docs/runtime-env.md, never
asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import flyray
from flyray.errors import RuntimeEnvSetupError
from flyray.executors.localcluster.warm.registry import Registry
from flyray.task.loader import load_task
from tests.procs import wait_until_gone

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[3]
TASKS = str(Path(__file__).with_name("rtenv_tasks.py"))
FLYRAY = str(Path(sys.executable).parent / "flyray")
MISSING = "flyray-no-such-package-4d1f"


def run(tmp_path, name, **options):
    """Run a task of rtenv_tasks.py in local-cluster mode; (result, progress, seconds)."""
    progress: list[str] = []
    context = flyray.with_runcontext(
        mode="local-cluster",
        run_store=str(tmp_path / "runs"),
        on_log=lambda _: None,
        on_progress=progress.append,
        **options,
    )
    started = time.monotonic()
    try:
        return context.run(load_task(TASKS, name)).result(), progress, time.monotonic() - started
    finally:
        print(f"{name}: {time.monotonic() - started:.1f} s; progress: {progress}")


def test_pip_packages_reach_a_worker_of_a_transient_cluster(tmp_path):
    result, progress, _ = run(tmp_path, "joke", fresh=True)
    assert result == {"pyjokes": "0.8.3", "joke": True, "env": "pip"}
    assert any("building its runtime env (pip: pyjokes==0.8.3)" in line for line in progress)


def test_uv_packages_reach_a_worker_of_a_transient_cluster(tmp_path):
    result, _, _ = run(tmp_path, "natural_size", fresh=True)
    assert result == "3.0 MB"


def test_a_missing_package_fails_the_run_with_pips_words(tmp_path):
    with pytest.raises(RuntimeEnvSetupError) as info:
        run(tmp_path, "never_runs", fresh=True)
    message = str(info.value)
    assert MISSING in message and "pip install failed" in message, message
    assert "No matching distribution found" in message


def _cli(home, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYRAY_")}
    env.update(FLYRAY_CLUSTERS_DIR=str(home / "clusters"), FLYRAY_RUN_STORE=str(home / "runs"))
    return subprocess.run(
        [FLYRAY, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_a_warm_cluster_builds_the_env_once(tmp_path):
    """The second run on a warm cluster finds Ray's pip env of the first on the node."""
    up = _cli(tmp_path, "cluster", "up", TASKS, "joke")
    assert up.returncode == 0, up.stderr
    entry = Registry(tmp_path / "clusters").get(up.stdout.strip())
    assert entry is not None and entry.state == "running"
    try:
        options = {"clusters_dir": str(tmp_path / "clusters")}
        first, _, first_s = run(tmp_path, "joke", **options)
        second, progress, second_s = run(tmp_path, "joke", **options)
        assert first == second == {"pyjokes": "0.8.3", "joke": True, "env": "pip"}
        assert any("on warm cluster" in line for line in progress), progress
        print(f"warm cluster: first run {first_s:.1f} s, second run {second_s:.1f} s")
    finally:
        down = _cli(tmp_path, "cluster", "down", "--all")
        assert down.returncode == 0, down.stderr
    assert wait_until_gone(entry.temp_dir) == []
