"""Accelerators: Flyte's device factories, and the names Kubernetes and Ray give each device."""

from __future__ import annotations

import pytest

from flyray import AMD_GPU, GPU, HABANA_GAUDI, TPU, ConfigError, Device, Neuron
from flyray.config.accelerators import (
    device_resource_key,
    node_label_value,
    ray_accelerator_types,
)


def test_gpu_factory_matches_flyte():
    assert GPU(device="T4", quantity=1) == Device(1, "GPU", "T4")
    assert GPU("A100", 2, "1g.5gb") == Device(2, "GPU", "A100", "1g.5gb")
    assert GPU("A100 80G", 1).device == "A100_80G"  # Flyte's deprecated spelling
    assert GPU("T4 shared", 1).device == "T4 shared"


@pytest.mark.parametrize(
    ("call", "field", "rule"),
    [
        (lambda: GPU("K9000", 1), "GPU.device", "device type Flyte knows"),
        (lambda: GPU("V5E", 1), "GPU.device", "must be a GPU type"),
        (lambda: GPU("T4", 0), "Device.quantity", "at least 1"),
        (lambda: GPU("A100", 1, "1g.10gb"), "GPU.partition", "1g.5gb"),
        (lambda: GPU("T4", 1, "1g.5gb"), "GPU.partition", "no partitions"),
        (lambda: GPU("T4 shared", 1, "1g.5gb"), "GPU.partition", "shared device"),
        (lambda: TPU("V5P", "1x1"), "TPU.partition", "2x2x1"),
        (lambda: TPU("T4"), "TPU.device", "V5E"),
        (lambda: Neuron("MI300X"), "Neuron.device", "Trn1"),
        (lambda: AMD_GPU("T4"), "AMD_GPU.device", "MI300X"),
        (lambda: HABANA_GAUDI("Gaudi2"), "HABANA_GAUDI.device", "device type Flyte knows"),
        (lambda: Device(1, "FPGA"), "Device.device_class", "must be one of"),
        (lambda: Device(2, "APPLE_SILICON", "AppleSilicon"), "Device.quantity", "must be 1"),
        (lambda: Device(1, "GPU", "AppleSilicon"), "Device.device", "APPLE_SILICON"),
        (lambda: Device(1, "GPU", ""), "Device.device", "non-empty"),
        (lambda: Device(True, "GPU"), "Device.quantity", "integer"),
    ],
)
def test_factories_refuse_what_flyte_refuses(call, field, rule):
    with pytest.raises(ConfigError) as info:
        call()
    assert info.value.field == field
    assert rule in info.value.rule


def test_other_vendors():
    assert TPU("V6E", "2x2") == Device(1, "TPU", "V6E", "2x2")
    assert Neuron("Trn1") == Device(1, "NEURON", "Trn1")
    assert AMD_GPU("MI300X") == Device(1, "AMD_GPU", "MI300X")
    assert HABANA_GAUDI("Gaudi1") == Device(1, "HABANA_GAUDI", "Gaudi1")


@pytest.mark.parametrize(
    ("device", "label"),
    [
        ("T4", "nvidia-tesla-t4"),
        ("A100", "nvidia-tesla-a100"),
        ("A10G", "nvidia-a10g"),
        ("A100_80G", "nvidia-a100-80gb"),
        ("H100", "nvidia-tesla-h100"),
        ("L40s", "nvidia-l40s"),
        ("B200", "nvidia-b200"),
        ("T4 shared", "nvidia-tesla-t4-shared"),
        ("L40S shared", "nvidia-l40s-shared"),
        ("Trn1", "aws-neuron-trn1"),
        ("MI300X", "amd-mi300x"),
        ("Gaudi1", "habana-gaudi-dl1"),
        ("V5E", "tpu-v5-lite-podslice"),
        ("GB10", "GB10"),  # neither Flyte's SDK nor its backend maps it
    ],
)
def test_node_label_values(device, label):
    from flyray import Resources

    assert node_label_value(Resources(gpu=f"{device}:1").get_device()) == label


def test_node_label_values_agree_with_flyte_sdk():
    serde = pytest.importorskip("flyte._internal.runtime.resources_serde")
    from flyray import Resources

    for name, value in serde.ACCELERATOR_DEVICE_MAP.items():
        device = Resources(gpu=f"{name}:1").get_device()
        if device.device_class == "GPU" and device.device == name.replace(" ", "_"):
            assert node_label_value(device) == value, name


def test_bare_counts_have_no_label_or_ray_type():
    assert node_label_value(Device(2, "GPU")) is None
    assert ray_accelerator_types(Device(2, "GPU")) == ()
    assert device_resource_key(Device(2, "GPU"), "nvidia.com/mig-1g.5gb") == "nvidia.com/mig-1g.5gb"


def test_ray_names_are_rays_own_constants():
    accelerators = pytest.importorskip("ray.util.accelerators.accelerators")
    expected = {
        "T4": accelerators.NVIDIA_TESLA_T4,
        "A100": accelerators.NVIDIA_A100,
        "A10G": accelerators.NVIDIA_TESLA_A10G,
        "A100_80G": accelerators.NVIDIA_A100_80G,
        "L40s": accelerators.NVIDIA_L40S,
        "H100": accelerators.NVIDIA_H100,
        "V100": accelerators.NVIDIA_TESLA_V100,
        "L4": accelerators.NVIDIA_L4,
        "B200": accelerators.NVIDIA_B200,
        "H200": accelerators.NVIDIA_H200,
        "RTX_PRO_6000": accelerators.NVIDIA_RTX_PRO_6000,
        "T4 shared": accelerators.NVIDIA_TESLA_T4,
        "MI300X": accelerators.AMD_INSTINCT_MI300x,
        "MI250": accelerators.AMD_INSTINCT_MI250,
        "MI250X": accelerators.AMD_INSTINCT_MI250x,
        "Trn1": accelerators.AWS_NEURON_CORE,
        "Gaudi1": accelerators.INTEL_GAUDI,
        "V5E": accelerators.GOOGLE_TPU_V5LITEPOD,
        "V6E": accelerators.GOOGLE_TPU_V6E,
        "AppleSilicon": accelerators.APPLE_SILICON,
    }
    from flyray import Resources

    for name, ray_name in expected.items():
        types = ray_accelerator_types(Resources(gpu=f"{name}:1").get_device())
        assert types[0] == ray_name, name
    # a sized model also answers to its base model, as Ray's detection reports it
    assert ray_accelerator_types(GPU("A100_80G", 1)) == ("A100-80G", accelerators.NVIDIA_A100)
