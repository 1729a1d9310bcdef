"""`flyray cluster list/down/up` without Ray: registry entries written by hand, errors named."""

import re

import pytest
from click.testing import CliRunner

from flyray.cli.main import cli
from flyray.executors.localcluster.warm.registry import Process, Registry, WarmCluster

DEAD = Process(pid=2**22 + 1, start=1)  # above Linux's default pid_max: never running


@pytest.fixture
def registry(tmp_path, monkeypatch):
    root = tmp_path / "clusters"
    monkeypatch.setenv("FLYRAY_CLUSTERS_DIR", str(root))
    return Registry(root)


def add(registry, name, owner=None, **changes):
    values = {
        "source": f"file.py {name}",
        "state": "running",
        "nodes": 3,
        "dashboard_url": "http://127.0.0.1:1",
        **changes,
    }
    owner = owner or Process.current()  # a live owner: kept by clean-up
    entry = WarmCluster(name=name, key={}, idle_timeout=60.0, owner=owner, **values)
    with registry.locked():
        registry.put(entry)
    return entry


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def test_list_shows_the_warm_clusters(registry):
    assert "no warm clusters in" in invoke("cluster", "list").output
    add(registry, "ray-env")
    add(registry, "busy", leases={"run": Process.current()})
    output = invoke("cluster", "list").output
    assert "file.py ray-env" in output and re.search(r"ray-env .* in 5\d s", output)
    assert "after its runs" in output


def test_list_shows_a_cluster_kept_for_its_ttl(registry):
    add(registry, "r1a2b3c", state="kept", source="run r1a2b3c (env.task)")
    output = invoke("cluster", "list").output
    assert re.search(r"r1a2b3c +kept +3 +- +run r1a2b3c \(env.task\) .* in 5\d s", output), output


def test_down_of_an_unknown_name_says_which_clusters_exist(registry):
    add(registry, "ray-env")
    add(registry, "other")
    result = invoke("cluster", "down", "nope")
    assert result.exit_code == 1
    assert "NAME is not a warm cluster in" in result.output
    assert "(warm clusters: other, ray-env); got 'nope'" in result.output


def test_down_needs_names_or_all(registry):
    assert invoke("cluster", "down").exit_code == 2
    assert invoke("cluster", "down", "--all", "x").exit_code == 2
    assert "no warm clusters to stop" in invoke("cluster", "down", "--all").output


def test_a_dead_keeper_is_cleaned_up_by_list(registry):
    add(registry, "orphan", owner=DEAD)
    output = invoke("cluster", "list").output
    assert "cleaned up warm cluster 'orphan': its keeper (pid 4194305) had died" in output
    assert registry.all() == []


def test_up_names_the_tasks_and_environments_of_the_file(registry, tmp_path):
    path = tmp_path / "tasks.py"
    path.write_text(
        "import flyray\nenv = flyray.TaskEnvironment('my_env')\n"
        "@env.task\ndef t() -> None:\n    pass\n"
    )
    result = invoke("cluster", "up", str(path), "nope")
    assert result.exit_code == 1
    assert "TASK is neither a task nor an environment" in result.output
    assert "(tasks: t; environments: my_env); got 'nope'" in result.output
    not_ray = invoke("cluster", "up", str(path), "my-env")  # found by its DNS name
    assert not_ray.exit_code == 1 and "is not a Ray task" in not_ray.output
