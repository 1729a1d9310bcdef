from decimal import Decimal

import pytest

from flyray import ConfigError, Resources
from flyray.config.quantities import format_cpu, parse_quantity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        ("1.5", Decimal("1.5")),
        ("2Gi", Decimal(2 * 2**30)),
        ("512Mi", Decimal(512 * 2**20)),
        ("1G", Decimal(10**9)),
        ("1e3", Decimal(1000)),
        (3, Decimal(3)),
        (0.25, Decimal("0.25")),
    ],
)
def test_parse_quantity(text, expected):
    assert parse_quantity("f", text) == expected


@pytest.mark.parametrize("bad", ["2 GB", "abc", "-1", "1Qi", "", True, -2, float("nan")])
def test_parse_quantity_rejects(bad):
    with pytest.raises(ConfigError) as info:
        parse_quantity("Resources.memory", bad)
    assert info.value.field == "Resources.memory"


def test_kubernetes_and_ray_forms():
    res = Resources(cpu="500m", memory="2Gi", gpu="A100:2", disk="10Gi", shm="1Gi")
    assert res.to_kubernetes() == {
        "cpu": "500m",
        "memory": "2Gi",
        "ephemeral-storage": "10Gi",
        "nvidia.com/gpu": "2",
    }
    assert res.to_ray() == {
        "num_cpus": 0.5,
        "memory": 2 * 2**30,
        "num_gpus": 2,
        "accelerator_type": "A100",
    }


@pytest.mark.parametrize(
    ("cpu", "k8s"), [(1, "1"), (0.5, "500m"), ("2", "2"), ("1500m", "1500m"), (2.0, "2")]
)
def test_cpu_rendering(cpu, k8s):
    assert Resources(cpu=cpu).to_kubernetes()["cpu"] == k8s


@pytest.mark.parametrize(
    ("gpu", "count", "kind"), [(1, 1, None), ("T4", 1, "T4"), ("A100:4", 4, "A100"), ("2", 2, None)]
)
def test_gpu_forms(gpu, count, kind):
    res = Resources(gpu=gpu)
    assert (res.gpu_count, res.accelerator) == (count, kind)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cpu": "lots"}, "Resources.cpu"),
        ({"cpu": "0.0001"}, "Resources.cpu"),
        ({"memory": "2 Gi"}, "Resources.memory"),
        ({"gpu": -1}, "Resources.gpu"),
        ({"gpu": "A100:x"}, "Resources.gpu"),
        ({"shm": "big"}, "Resources.shm"),
    ],
)
def test_resources_rejects(kwargs, field):
    with pytest.raises(ConfigError) as info:
        Resources(**kwargs)
    assert info.value.field == field
    assert repr(next(iter(kwargs.values()))) in str(info.value)


def test_format_cpu_millicores():
    assert format_cpu(Decimal("0.25")) == "250m"
