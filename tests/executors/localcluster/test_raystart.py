"""One Ray node's `ray start`: free ports, flags, what ray start would reject, what to retry."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from flyray.errors import ConfigError
from flyray.executors.localcluster.raystart import (
    NodeSpec,
    free_port,
    plan_nodes,
    transient_failure,
)


def test_free_port_is_above_the_worker_port_range() -> None:
    assert all(free_port() > 20000 for _ in range(20))


def test_node_spec_renders_ray_start_flags() -> None:
    spec = NodeSpec(
        name="gpu-workers-0",
        num_cpus=4.0,
        num_gpus=1,
        memory=2**30,
        resources={"workers": 1},
        labels={"zone": "a", "tier": "gpu"},
        params={"object-store-memory": "100000000", "block": "true", "log-color": "false"},
    )
    flags = spec.flags()
    assert flags[:4] == [
        "--num-cpus=4",
        "--num-gpus=1",
        "--memory=1073741824",
        "--resources=" + json.dumps({"workers": 1}),
    ]
    assert "--labels=zone=a,tier=gpu" in flags
    assert "--object-store-memory=100000000" in flags
    assert not any(f.startswith("--block") for f in flags)  # flyray manages it
    assert "--log-color=false" in flags  # KubeRay passes true/false of log-color as a value
    assert NodeSpec(name="w", params={"ray-debugger-external": "True"}).flags() == [
        "--ray-debugger-external"
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_cpus": 1.5},
        {"num_gpus": -1},
        {"name": "a/b"},
        {"labels": {"k": "a,b"}},
        {"num_cpus": 2, "params": {"num-cpus": "3"}},
    ],
)
def test_node_spec_rejects_what_ray_start_would(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        NodeSpec(**{"name": "w", **kwargs})


@pytest.mark.parametrize(
    ("code", "log", "transient"),
    [
        (1, "Exception: The current node timed out during startup. This could happen", True),
        (1, "grpc: RPC error: Deadline Exceeded", True),
        (-9, "", True),  # the node's process was killed while it started
        (2, "Error: No such option: --no-such-option", False),  # a usage error repeats
        (1, "ValueError: invalid literal for int() with base 10: 'x'", False),
    ],
)
def test_only_a_start_that_timed_out_or_was_killed_is_worth_retrying(
    code: int, log: str, transient: bool
) -> None:
    assert transient_failure(code, log) is transient


def test_a_retired_node_keeps_its_logs_and_gets_new_ports(tmp_path: Path) -> None:
    (node,) = plan_nodes([NodeSpec(name="w")], tmp_path, tmp_path)
    node.process = subprocess.Popen(["true"])  # a start that failed
    node.process.wait()
    node.err_log.write_text("timed out")
    node.out_log.write_text("starting")
    old = dict(node.ports)
    taken = set(old.values())
    node.retire(taken)
    assert (tmp_path / "w.attempt1.err").read_text() == "timed out"
    assert (tmp_path / "w.attempt1.out").read_text() == "starting"
    assert not node.err_log.exists() and node.attempt == 2 and node.process is None
    assert node.earlier_logs() == [tmp_path / "w.attempt1.err"]
    assert set(node.ports) == set(old) and not set(node.ports.values()) & set(old.values())
    assert set(node.ports.values()) <= taken
