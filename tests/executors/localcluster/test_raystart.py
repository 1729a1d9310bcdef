"""One Ray node's `ray start` command line: free ports, flags, and what ray start would reject."""

from __future__ import annotations

import json

import pytest

from flyray.errors import ConfigError
from flyray.executors.localcluster.raystart import NodeSpec, free_port


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
