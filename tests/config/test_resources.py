from decimal import Decimal

import pytest

from flyray import GPU, TPU, ConfigError, Device, Resources
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


# -- Flyte's forms: (request, limit) pairs, GPU strings, Device ---------------------------


def test_flyte_ray_example_pairs():
    res = Resources(cpu=(1, 2), memory=("1Gi", "2Gi"))
    assert res.as_requests() == Resources(cpu=1, memory="1Gi")
    assert res.as_limits() == Resources(cpu=2, memory="2Gi")
    assert Resources(cpu=1).as_requests() == Resources(cpu=1) == Resources(cpu=1).as_limits()


def test_parameter_names_order_and_defaults_match_flyte():
    import inspect

    params = inspect.signature(Resources).parameters
    assert list(params) == ["cpu", "memory", "gpu", "disk", "shm"]
    assert all(p.default is None for p in params.values())


def test_ray_view_and_single_numbers_use_the_limit():
    res = Resources(cpu=("500m", "1500m"), memory=("1Gi", "4Gi"))
    assert res.to_ray() == {"num_cpus": 1.5, "memory": 4 * 2**30}
    assert (res.cpus, res.memory_bytes) == (Decimal("1.5"), 4 * 2**30)
    assert res.to_kubernetes() == {"cpu": "1500m", "memory": "4Gi"}
    # comparing a node's requests with its limits reads a pair's request
    assert res.comparable() == {"cpu": Decimal("0.5"), "memory": Decimal(2**30)}


@pytest.mark.parametrize(
    ("kwargs", "field", "rule"),
    [
        ({"cpu": (1, 2, 3)}, "Resources.cpu", "(request, limit) tuple"),
        ({"cpu": (None, 2)}, "Resources.cpu", "(request, limit) tuple"),
        ({"memory": ("2Gi", None)}, "Resources.memory", "(request, limit) tuple"),
        ({"cpu": (2, 1)}, "Resources.cpu", "Kubernetes refuses"),
        ({"memory": ("4Gi", "1Gi")}, "Resources.memory", "Kubernetes refuses"),
        ({"cpu": ("lots", 2)}, "Resources.cpu[0]", "Kubernetes quantity"),
        ({"memory": ("1Gi", "2 Gi")}, "Resources.memory[1]", "Kubernetes quantity"),
        ({"cpu": ("1", "0.0001")}, "Resources.cpu[1]", "millicores"),
        ({"cpu": [1, 2]}, "Resources.cpu", "not a list"),
        ({"disk": ("1Gi", "2Gi")}, "Resources.disk", "one quantity"),
        ({"shm": ("1Gi", "2Gi")}, "Resources.shm", "one quantity"),
        ({"gpu": ("T4", 1)}, "Resources.gpu", "TYPE:COUNT"),
        ({"gpu": "T4:0"}, "Resources.gpu", "at least one"),
        ({"gpu": True}, "Resources.gpu", "GPU count"),
    ],
)
def test_pair_and_gpu_refusals(kwargs, field, rule):
    with pytest.raises(ConfigError) as info:
        Resources(**kwargs)
    assert info.value.field == field
    assert rule in info.value.rule
    assert isinstance(info.value, ValueError)  # what Flyte raises, so Flyte code still catches it


# Every accelerator form Flyte lists, with the Device Flyte's get_device() gives for it.
FLYTE_GPU_STRINGS = [
    ("T4:1", "GPU", "T4", 1),
    ("A100:8", "GPU", "A100", 8),
    ("A100_80G:1", "GPU", "A100_80G", 1),
    ("H100:8", "GPU", "H100", 8),
    ("L40s:1", "GPU", "L40s", 1),
    ("A10G:4", "GPU", "A10G", 4),
    ("RTX_PRO_6000:2", "GPU", "RTX_PRO_6000", 2),
    ("GB10:1", "GPU", "GB10", 1),
    ("T4 shared:1", "GPU", "T4 shared", 1),
    ("L40S shared:1", "GPU", "L40S shared", 1),
    ("Trn1:16", "NEURON", "Trn1", 16),
    ("Inf2:12", "NEURON", "Inf2", 12),
    ("MI300X:1", "AMD_GPU", "MI300X", 1),
    ("Gaudi1:1", "HABANA_GAUDI", "Gaudi1", 1),
    ("AppleSilicon", "APPLE_SILICON", "AppleSilicon", 1),
    ("AppleSilicon:1", "APPLE_SILICON", "AppleSilicon", 1),
]


@pytest.mark.parametrize(("gpu", "device_class", "device", "count"), FLYTE_GPU_STRINGS)
def test_flyte_gpu_strings(gpu, device_class, device, count):
    res = Resources(gpu=gpu)
    assert res.get_device() == Device(quantity=count, device_class=device_class, device=device)
    assert (res.gpu_count, res.accelerator) == (count, device)


@pytest.mark.parametrize(
    ("gpu", "device"), [("A100 80G:1", "A100_80G"), ("RTX PRO 6000:1", "RTX_PRO_6000")]
)
def test_deprecated_flyte_spellings_mean_the_current_names(gpu, device):
    assert Resources(gpu=gpu).accelerator == device


def test_flyray_extra_gpu_forms_keep_working():
    assert Resources(gpu="t4:2").get_device() == Device(2, "GPU", "T4")  # any case
    assert Resources(gpu="H100-SXM:2").get_device() == Device(2, "GPU", "H100-SXM")  # unknown
    assert Resources(gpu="3").get_device() == Device(3, "GPU")
    assert Resources(gpu=0).get_device() is None and Resources(gpu=0).gpu_count == 0


def test_device_objects():
    res = Resources(gpu=GPU(device="A100", quantity=2, partition="1g.5gb"))
    assert res.gpu_count == 2 and res.accelerator == "A100"
    assert res.get_device().partition == "1g.5gb"
    assert Resources(gpu=Device(quantity=1, device_class="GPU", device="T4")).accelerator == "T4"


@pytest.mark.parametrize(
    ("gpu", "key", "ray"),
    [
        ("T4:2", "nvidia.com/gpu", {"num_gpus": 2, "accelerator_type": "T4"}),
        ("MI300X:1", "amd.com/gpu", {"num_gpus": 1, "accelerator_type": "AMD-Instinct-MI300X-OAM"}),
        ("Trn1:4", "aws.amazon.com/neuron", {"accelerator_type": "aws-neuron-core"}),
        (
            "Gaudi1:1",
            "habana.ai/gaudi",
            {"resources": {"HPU": 1}, "accelerator_type": "Intel-GAUDI"},
        ),
        (
            TPU("V5P", "2x2x1"),
            "google.com/tpu",
            {"resources": {"TPU": 1}, "accelerator_type": "TPU-V5P"},
        ),
        (2, "nvidia.com/gpu", {"num_gpus": 2}),
    ],
)
def test_each_vendor_has_its_own_resource_key(gpu, key, ray):
    res = Resources(gpu=gpu)
    assert list(res.to_kubernetes()) == [key]
    assert res.to_ray() == ray


def test_shared_memory_as_flyte_reports_it():
    assert Resources(shm="auto").get_shared_memory() == ""
    assert Resources(shm="1Gi").get_shared_memory() == "1Gi"
    assert Resources().get_shared_memory() is None
