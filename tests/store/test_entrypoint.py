"""``python -m flyray.entrypoint`` in a subprocess, in a temp project, as a job's driver runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import flyray
from flyray.entrypoint import command
from flyray.store import RunStore, create_bundle

from .conftest import ProjectFactory

FILES = {
    "pyproject.toml": "",
    "helpers/__init__.py": "def double(x):\n    return 2 * x\n",
    "jobs/tasks.py": """
        import os

        import flyray
        from helpers import double  # the project root is the cwd, so on sys.path

        env = flyray.TaskEnvironment(name="plain_env")


        @env.task
        def add(a: int, b: int = 1) -> dict:
            return {"sum": double(a + b) // 2, "in_cluster": os.environ.get("FLYRAY_IN_CLUSTER")}


        @env.task(short_name="explode")
        def boom(x: int) -> None:
            raise ValueError(f"bad x: {x}")


        @env.task
        async def slow_add(a: int, b: int) -> int:
            return a + b
    """,
}


def _run(
    root: Path, store: RunStore, run_id: str, task: str, file: str = "jobs/tasks.py"
) -> subprocess.CompletedProcess[str]:
    argv = command(store=store.root, run_id=run_id, task_file=file, task_name=task)
    assert argv[0] == "python"
    return subprocess.run(
        [sys.executable, *argv[1:]], cwd=root, capture_output=True, text=True, timeout=60
    )


def test_command_line() -> None:
    argv = command(store="s3://b/runs", run_id="r1", task_file="jobs/t.py", task_name="e.f")
    assert argv == [
        "python", "-m", "flyray.entrypoint", "--store", "s3://b/runs", "--run-id", "r1",
        "--file", "jobs/t.py", "--task", "e.f",
    ]  # fmt: skip
    assert command(store="s", run_id="r", task_file="f", task_name="t", python="/x/python")[0] == (
        "/x/python"
    )


def test_a_task_succeeds_and_its_outputs_are_readable(
    make_project: ProjectFactory, store: RunStore
) -> None:
    root = make_project(FILES)
    store.write_inputs("r1", (2,), {"b": 3})
    done = _run(root, store, "r1", "plain_env.add")
    assert done.returncode == 0, done.stderr
    assert store.read_outputs("r1") == {"sum": 5, "in_cluster": "1"}
    assert store.read_error("r1") is None


def test_an_async_task(make_project: ProjectFactory, store: RunStore) -> None:
    root = make_project(FILES)
    store.write_inputs("r2", (20, 22), {})
    done = _run(root, store, "r2", "plain_env.slow_add")
    assert done.returncode == 0, done.stderr
    assert store.read_outputs("r2") == 42


def test_a_failing_task_stores_its_error(make_project: ProjectFactory, store: RunStore) -> None:
    root = make_project(FILES)
    store.write_inputs("r3", (7,), {})
    done = _run(root, store, "r3", "plain_env.boom")
    assert done.returncode == 1
    assert "ValueError: bad x: 7" in done.stderr and "Traceback" in done.stderr
    error = store.read_error("r3")
    assert error is not None
    assert (error.type, error.message) == ("ValueError", "bad x: 7")
    assert "tasks.py" in error.traceback and "in boom" in error.traceback
    on_disk = json.loads(store.local_path("runs", "r3", "error.json").read_text())
    assert set(on_disk) == {"type", "message", "traceback"}
    with pytest.raises(Exception, match="has no outputs"):
        store.read_outputs("r3")


def test_a_missing_task_is_a_clear_error(make_project: ProjectFactory, store: RunStore) -> None:
    root = make_project(FILES)
    store.write_inputs("r4", (), {})
    done = _run(root, store, "r4", "plain_env.nope")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "--task is not a task in jobs/tasks.py" in done.stderr
    assert "plain_env.add, plain_env.boom, plain_env.slow_add" in done.stderr
    error = store.read_error("r4")
    assert error is not None and error.type == "TaskLoadError"


def test_a_missing_file_and_missing_inputs(make_project: ProjectFactory, store: RunStore) -> None:
    root = make_project(FILES)
    done = _run(root, store, "r5", "plain_env.add", file="jobs/missing.py")
    assert done.returncode == 1
    assert f"--file does not exist in {root}, the job's working directory" in done.stderr
    done = _run(root, store, "r6", "plain_env.add")
    assert done.returncode == 1 and "run 'r6' has no inputs" in done.stderr
    assert store.read_error("r6").type == "RunStoreError"


def test_runs_from_an_unpacked_bundle(
    make_project: ProjectFactory, store: RunStore, tmp_path: Path
) -> None:
    """Unpack the bundle the way Ray does (one top-level folder stripped) and run there."""
    bundle = create_bundle(make_project(FILES) / "jobs" / "tasks.py", store)
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(store.local_path("bundles", f"{bundle.sha256}.zip")).extractall(unpacked)
    store.write_inputs("r7", (1,), {})
    done = _run(unpacked / "bundle", store, "r7", "plain_env.add", file=bundle.task_file)
    assert done.returncode == 0, done.stderr
    assert store.read_outputs("r7")["sum"] == 2


def test_a_caller_with_another_flyray_is_reported(
    make_project: ProjectFactory, store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLYRAY_CALLER_VERSION", "0.0.1")
    monkeypatch.setenv("FLYRAY_SHIPPED", "0")
    root = make_project(FILES)
    store.write_inputs("r9", (7,), {})
    done = _run(root, store, "r9", "plain_env.boom")
    assert done.returncode == 1
    skew = f"this cluster's flyray is {flyray.__version__}"
    assert f"warning: {skew}" in done.stderr and "the caller's is 0.0.1" in done.stderr
    assert "install flyray==0.0.1 on the cluster" in done.stderr
    error = store.read_error("r9")
    assert error is not None and error.message == "bad x: 7"  # the task's own message stays
    assert skew in error.traceback


def test_the_same_flyray_says_nothing(make_project: ProjectFactory, store: RunStore, monkeypatch):
    monkeypatch.setenv("FLYRAY_CALLER_VERSION", flyray.__version__)
    root = make_project(FILES)
    store.write_inputs("r10", (2,), {"b": 3})
    done = _run(root, store, "r10", "plain_env.add")
    assert done.returncode == 0 and "flyray is" not in done.stderr
