"""The warm-cluster registry: concurrent writers lose nothing, crashes are safe."""

import multiprocessing
import os
import signal

import pytest

from flyray import ConfigError
from flyray.executors.localcluster.warm.registry import Process, Registry, WarmCluster

FORK = multiprocessing.get_context("fork")


def entry(name="ray-env", **changes) -> WarmCluster:
    values = {
        "name": name,
        "key": {"headGroupSpec": {"rayStartParams": {}}},
        "source": "examples/seed.py my_ray_task",
        "idle_timeout": 1800.0,
        "owner": Process.current(),
    }
    return WarmCluster(**{**values, **changes})


def test_an_entry_round_trips_through_json(tmp_path):
    registry = Registry(tmp_path)
    written = entry(
        state="running",
        leaders={123: 456},
        leases={"a1": Process(7, 8)},
        temp_dir="/tmp/flyray-x",
        token_path="/tmp/flyray-x/auth_token",
    )
    with registry.locked():
        registry.put(written)
    assert registry.get("ray-env") == written
    assert WarmCluster.from_dict(written.to_dict()) == written
    assert [e.name for e in registry.all()] == ["ray-env"]
    assert oct(registry.path("ray-env").stat().st_mode & 0o777) == "0o600"


def test_names_must_be_dns_labels(tmp_path):
    with pytest.raises(ConfigError, match="cluster name must be a DNS-1123 label"):
        Registry(tmp_path).get("../etc")
    with pytest.raises(ConfigError, match="cluster name must be a DNS-1123 label"):
        entry(name="Ray_Env")


def test_a_missing_registry_is_empty(tmp_path):
    registry = Registry(tmp_path / "nothing")
    assert registry.all() == [] and registry.get("ray-env") is None
    assert not registry.root.exists()


def test_update_and_remove(tmp_path):
    registry = Registry(tmp_path)
    with registry.locked():
        registry.put(entry())
    registry.update("ray-env", lambda e: setattr(e, "state", "running"))
    assert registry.get("ray-env").state == "running"
    assert registry.update("ray-env", lambda e: False).state == "running"
    assert registry.update("other", lambda e: None) is None
    with registry.locked():
        registry.remove("ray-env")
    assert registry.all() == []


def test_an_unreadable_entry_names_its_file(tmp_path):
    (tmp_path / "ray-env.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"ray-env\.json must be a warm-cluster entry"):
        Registry(tmp_path).all()


def _add_leases(root, writer, count):
    registry = Registry(root)
    for index in range(count):

        def add(e, index=index):
            e.leases[f"{writer}-{index}"] = Process(writer, index)

        registry.update("ray-env", add)


def _read_until(root, done):
    registry = Registry(root)
    while not done.is_set():
        assert registry.get("ray-env") is not None  # never a half-written file


def test_concurrent_writers_lose_no_update(tmp_path):
    registry = Registry(tmp_path)
    with registry.locked():
        registry.put(entry())
    done = FORK.Event()
    writers = [FORK.Process(target=_add_leases, args=(tmp_path, w, 10)) for w in range(5)]
    reader = FORK.Process(target=_read_until, args=(tmp_path, done))
    for process in [reader, *writers]:
        process.start()
    for process in writers:
        process.join(timeout=60)
        assert process.exitcode == 0
    done.set()
    reader.join(timeout=60)
    assert reader.exitcode == 0
    assert len(registry.get("ray-env").leases) == 5 * 10


def _crash_while_writing(root):
    registry = Registry(root)
    os.replace = lambda *_: os.kill(os.getpid(), signal.SIGKILL)  # dies before the rename
    with registry.locked():
        registry.put(entry(state="stopping", source="never written"))


def test_a_crash_during_a_write_keeps_the_old_entry(tmp_path):
    registry = Registry(tmp_path)
    with registry.locked():
        registry.put(entry(state="running"))
    child = FORK.Process(target=_crash_while_writing, args=(tmp_path,))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL
    survivor = registry.get("ray-env")
    assert survivor.state == "running" and survivor.source == "examples/seed.py my_ray_task"
    assert [p.name for p in tmp_path.glob(".ray-env.json.*.tmp")], "the crash left its temp file"
    with registry.locked():  # the dead writer's lock was released by the kernel
        registry.sweep()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "ray-env.json"]
