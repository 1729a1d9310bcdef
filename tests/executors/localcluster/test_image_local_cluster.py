"""An Image's env vars reach a Ray worker in local-cluster mode (real Ray nodes, a real job)."""

from pathlib import Path

import pytest

import flyray
from flyray.task.loader import load_task

pytestmark = pytest.mark.slow

TASKS = str(Path(__file__).with_name("image_tasks.py"))


def test_image_env_vars_reach_the_driver_and_a_worker(tmp_path, monkeypatch):
    monkeypatch.delenv("IMAGE_GREETING", raising=False)
    task = load_task(TASKS, "greetings")
    context = flyray.with_runcontext(
        mode="local-cluster", run_store=str(tmp_path / "runs"), fresh=True, on_log=lambda _: None
    )
    outputs = context.run(task).result()
    assert outputs == {"driver": "hello", "worker": "hello", "same": False}
