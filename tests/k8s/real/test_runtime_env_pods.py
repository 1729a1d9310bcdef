"""A RayJob's runtime env pip list installs for real in pods of the process kubelet (level 3).

The pods have no route out; pip reaches the package index through the kubelet's egress proxy
(``PIP_PROXY``), as on nodes behind a proxy. A package that does not exist fails the run with
pip's own lines, from the RayJob's status, soon after the cluster is up.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import flyray
from flyray.errors import RuntimeEnvSetupError
from flyray.sandbox.operator import PODS_NAMESPACE
from flyray.task.loader import load_task

pytestmark = [pytest.mark.realkube, pytest.mark.slow, pytest.mark.timeout(900)]

TASKS = str(Path(__file__).parents[2] / "executors" / "localcluster" / "rtenv_tasks.py")
MISSING = "flyray-no-such-package-4d1f"


def run(name: str, progress: list[str]) -> Any:
    context = flyray.with_runcontext(
        mode="kuberay", namespace=PODS_NAMESPACE, on_progress=progress.append
    )
    return context.run(load_task(TASKS, name))


def test_pip_packages_install_through_the_egress_proxy(pods_env, process_kubelet, objects):
    progress: list[str] = []
    started = time.monotonic()
    result = run("joke", progress).result()
    print(f"kuberay pip run: {time.monotonic() - started:.0f} s; {progress}")
    assert result == {"pyjokes": "0.8.3", "joke": True, "env": "pip"}
    assert any("Ray is building its runtime env (pip: pyjokes==0.8.3)" in p for p in progress)
    head = next(pod for pod in process_kubelet.history if "head" in pod.name)
    assert head.node_env == {"PIP_PROXY": process_kubelet.egress.url}


def test_a_missing_package_fails_with_pips_words(pods_env, process_kubelet, objects):
    progress: list[str] = []
    started = time.monotonic()
    with pytest.raises(RuntimeEnvSetupError) as info:
        run("never_runs", progress).result()
    print(f"kuberay pip failure after {time.monotonic() - started:.0f} s: {info.value}")
    assert MISSING in str(info.value) and "No matching distribution" in str(info.value)
