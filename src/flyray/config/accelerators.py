"""Accelerators: Flyte's device names, what Kubernetes and Ray call them, and ``GPU()``/``Device``.

One table per fact, so each can be checked against its source:

- the node label value Flyte's backend selects a device with (flyte's ``ACCELERATOR_DEVICE_MAP``,
  then flytepropeller's ``accelerator-devices`` defaults for the names the SDK leaves alone);
- the container resource key of each device class (flytepropeller's
  ``accelerator-device-classes`` defaults: ``amd.com/gpu``, ``aws.amazon.com/neuron``, ...);
- Ray's ``accelerator_type`` names (``ray.util.accelerators``), so
  ``@ray.remote(accelerator_type=NVIDIA_TESLA_T4)`` matches a ``"T4:1"`` node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from flyray.errors import ConfigError

__all__ = [
    "AMD_GPU",
    "DEVICE_CLASSES",
    "GPU",
    "HABANA_GAUDI",
    "TPU",
    "Device",
    "DeviceClass",
    "Neuron",
    "canonical_device",
    "device_resource_key",
    "node_label_value",
    "ray_accelerator_types",
]

DeviceClass = Literal["GPU", "TPU", "NEURON", "AMD_GPU", "HABANA_GAUDI", "APPLE_SILICON"]
DEVICE_CLASSES: tuple[str, ...] = (
    "GPU",
    "TPU",
    "NEURON",
    "AMD_GPU",
    "HABANA_GAUDI",
    "APPLE_SILICON",
)

_NVIDIA = (
    *("A2", "A10", "A10G", "A100", "A100_80G", "B200", "H100", "H200", "L4", "L40s", "T4"),
    *("V100", "RTX_PRO_4500", "RTX_PRO_6000", "GB10"),
)
_SHARED = ("T4 shared", "L4 shared", "A10G shared", "A10 shared", "L40S shared")
_TPU = ("V5E", "V5P", "V6E")
_NEURON = ("Inf1", "Inf2", "Trn1", "Trn1n", "Trn2", "Trn2u")
_AMD = ("MI100", "MI210", "MI250", "MI250X", "MI300A", "MI300X", "MI325X", "MI350X", "MI355X")
_HABANA = ("Gaudi1",)
APPLE_SILICON_DEVICE = "AppleSilicon"

# Flyte's device name -> its class; the key is lower-cased so "t4" finds "T4".
_CLASS_OF: dict[str, tuple[str, str]] = {
    name.lower(): (name, device_class)
    for names, device_class in (
        (_NVIDIA, "GPU"),
        (_SHARED, "GPU"),
        (_TPU, "TPU"),
        (_NEURON, "NEURON"),
        (_AMD, "AMD_GPU"),
        (_HABANA, "HABANA_GAUDI"),
        ((APPLE_SILICON_DEVICE,), "APPLE_SILICON"),
    )
    for name in names
}
# Spellings Flyte still takes and rewrites (flyte._resources._DEPRECATED_GPU_ALIASES).
_ALIASES = {"a100 80g": "A100_80G", "rtx pro 6000": "RTX_PRO_6000"}

# Node label values: flyte's ACCELERATOR_DEVICE_MAP first, flytepropeller's defaults after.
_NODE_LABEL = {
    "A10": "nvidia-a10",
    "A10G": "nvidia-a10g",
    "A100": "nvidia-tesla-a100",
    "A100_80G": "nvidia-a100-80gb",
    "B200": "nvidia-b200",
    "H100": "nvidia-tesla-h100",
    "H200": "nvidia-h200",
    "L4": "nvidia-l4",
    "L40s": "nvidia-l40s",
    "RTX_PRO_4500": "nvidia-rtx-pro-4500",
    "RTX_PRO_6000": "nvidia-rtx-pro-6000",
    "T4": "nvidia-tesla-t4",
    "V100": "nvidia-tesla-v100",
    "V5E": "tpu-v5-lite-podslice",
    "V5P": "tpu-v5p-slice",
    "V6E": "tpu-v6e-slice",
    **{name: f"aws-neuron-{name.lower()}" for name in _NEURON},
    **{name: f"amd-{name.lower()}" for name in _AMD},
    "Gaudi1": "habana-gaudi-dl1",
    # Older NVIDIA names Flyte's SDK maps though its GPU type list no longer has them.
    "A100G": "nvidia-a100g",
    "K80": "nvidia-tesla-k80",
    "L4_VWS": "nvidia-l4-vws",
    "M60": "nvidia-tesla-m60",
    "P4": "nvidia-tesla-p4",
    "P100": "nvidia-tesla-p100",
}
_NODE_LABEL_BY_LOWER = {name.lower(): value for name, value in _NODE_LABEL.items()}

# Container resource keys per class; NVIDIA's is the caller's (``nvidia.com/gpu`` by default).
_RESOURCE_KEY = {
    "TPU": "google.com/tpu",
    "NEURON": "aws.amazon.com/neuron",
    "AMD_GPU": "amd.com/gpu",
    "HABANA_GAUDI": "habana.ai/gaudi",
}

# Ray's accelerator_type names (ray.util.accelerators); a sized model also declares its base
# model, as Ray's own detection does on such a node ("A100-80G" nodes report "A100").
_RAY_NAMES: dict[str, tuple[str, ...]] = {
    "A100_80G": ("A100-80G", "A100"),
    "L40s": ("L40S",),
    "RTX_PRO_4500": ("RTX-PRO-4500",),
    "RTX_PRO_6000": ("RTX-PRO-6000",),
    "V5E": ("TPU-V5LITEPOD",),
    "V5P": ("TPU-V5P",),
    "V6E": ("TPU-V6E",),
    **{name: ("aws-neuron-core",) for name in _NEURON},
    "MI100": ("AMD-Instinct-MI100",),
    "MI210": ("AMD-Instinct-MI210",),
    "MI250": ("AMD-Instinct-MI250X-MI250",),
    "MI250X": ("AMD-Instinct-MI250X",),
    "MI300A": ("AMD-Instinct-MI300A",),
    "MI300X": ("AMD-Instinct-MI300X-OAM",),
    "MI325X": ("AMD-Instinct-MI325X-OAM",),
    "MI350X": ("AMD-Instinct-MI350X-OAM",),
    "MI355X": ("AMD-Instinct-MI355X-OAM",),
    "Gaudi1": ("Intel-GAUDI",),
    APPLE_SILICON_DEVICE: ("Apple-Silicon",),
}

# MIG partitions (GPU) and slice topologies (TPU) Flyte accepts per device.
_PARTITIONS = {
    "A100": ("1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"),
    "A100_80G": ("1g.10gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
    "H100": ("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
    "H200": ("1g.18gb", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb"),
    "RTX_PRO_6000": ("1g.24gb", "2g.48gb", "4g.96gb"),
    "V5E": ("1x1", "2x2", "2x4", "4x4", "4x8", "8x8", "8x16", "16x16"),
    "V5P": (
        *("2x2x1", "2x2x2", "2x4x4", "4x4x4", "4x4x8", "4x8x8", "8x8x8", "8x8x16", "8x16x16"),
        *("16x16x16", "16x16x24"),
    ),
    "V6E": ("1x1", "2x2", "2x4", "4x4", "4x8", "8x8", "8x16", "16x16"),
}


@dataclass(frozen=True)
class Device:
    """An accelerator: how many, of which class, which model and (MIG/TPU) which partition.

    The same fields and order as ``flyte.Device``; ``GPU()``, ``TPU()``, ``Neuron()``,
    ``AMD_GPU()`` and ``HABANA_GAUDI()`` build the checked ones.
    """

    quantity: int
    device_class: DeviceClass
    device: str | None = None
    partition: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int):
            raise ConfigError("Device.quantity", self.quantity, "must be an integer")
        if self.quantity < 1:
            raise ConfigError("Device.quantity", self.quantity, "must be at least 1")
        if self.device_class not in DEVICE_CLASSES:
            raise ConfigError(
                "Device.device_class", self.device_class, f"must be one of {DEVICE_CLASSES}"
            )
        if (self.device == APPLE_SILICON_DEVICE) != (self.device_class == "APPLE_SILICON"):
            raise ConfigError(
                "Device.device",
                self.device,
                "must be 'AppleSilicon' exactly when device_class='APPLE_SILICON'",
            )
        if self.device_class == "APPLE_SILICON" and self.quantity != 1:
            raise ConfigError("Device.quantity", self.quantity, "must be 1 for the Mac's one GPU")
        for name in ("device", "partition"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"Device.{name}", value, "must be a non-empty string or None")


def GPU(device: str, quantity: int, partition: str | None = None) -> Device:
    """A GPU of a type Flyte knows ("T4", "A100", "T4 shared", ...), optionally a MIG partition."""
    name, device_class = _known("GPU.device", device)
    if device_class != "GPU":
        raise ConfigError("GPU.device", device, f"must be a GPU type: {', '.join(_NVIDIA)}")
    if partition is not None:
        if name in _SHARED:
            raise ConfigError(
                "GPU.partition", partition, f"must be None for the shared device {name!r}"
            )
        _check_partition("GPU.partition", name, partition)
    return Device(quantity=quantity, device_class="GPU", device=name, partition=partition)


def TPU(device: str, partition: str | None = None) -> Device:
    """A Google Cloud TPU ("V5E", "V5P", "V6E"), optionally a slice topology such as "2x2"."""
    name, device_class = _known("TPU.device", device)
    if device_class != "TPU":
        raise ConfigError("TPU.device", device, f"must be one of {', '.join(_TPU)}")
    if partition is not None:
        _check_partition("TPU.partition", name, partition)
    return Device(quantity=1, device_class="TPU", device=name, partition=partition)


def Neuron(device: str) -> Device:
    """An AWS Neuron device ("Inf1", "Inf2", "Trn1", "Trn1n", "Trn2", "Trn2u")."""
    return _single("Neuron.device", device, "NEURON", _NEURON)


def AMD_GPU(device: str) -> Device:
    """An AMD Instinct GPU ("MI100" ... "MI355X")."""
    return _single("AMD_GPU.device", device, "AMD_GPU", _AMD)


def HABANA_GAUDI(device: str) -> Device:
    """A Habana Gaudi accelerator ("Gaudi1")."""
    return _single("HABANA_GAUDI.device", device, "HABANA_GAUDI", _HABANA)


def canonical_device(name: str) -> tuple[str, str]:
    """(Flyte's spelling, device class) of a device name; an unknown name is an NVIDIA GPU."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key).lower()
    return _CLASS_OF.get(key, (name.strip(), "GPU"))


def node_label_value(device: Device) -> str | None:
    """The node label value Flyte's backend selects ``device`` with; None for a bare count.

    A shared device ("T4 shared") gets its model's value with ``-shared``: Flyte's public
    defaults have no value for it, and a label value cannot contain a space.
    """
    if device.device is None:
        return None
    if device.device in _SHARED:
        model = device.device.split()[0]
        return f"{_NODE_LABEL_BY_LOWER.get(model.lower(), model.lower())}-shared"
    return _NODE_LABEL_BY_LOWER.get(device.device.lower(), device.device)


def device_resource_key(device: Device, nvidia_key: str) -> str:
    """The container resource key of ``device``: ``nvidia_key`` for NVIDIA GPUs."""
    return _RESOURCE_KEY.get(device.device_class, nvidia_key)


def ray_accelerator_types(device: Device) -> tuple[str, ...]:
    """Ray's ``accelerator_type`` names for ``device`` (empty for a bare count)."""
    if device.device is None:
        return ()
    name = device.device.split()[0] if device.device in _SHARED else device.device
    name = canonical_device(name)[0]
    return _RAY_NAMES.get(name, (name,))


def _known(field: str, device: object) -> tuple[str, str]:
    if not isinstance(device, str) or device.strip().lower() not in {*_CLASS_OF, *_ALIASES}:
        raise ConfigError(field, device, "must be a device type Flyte knows, e.g. 'T4', 'A100'")
    return canonical_device(device)


def _single(field: str, device: object, device_class: str, names: tuple[str, ...]) -> Device:
    name, found = _known(field, device)
    if found != device_class:
        raise ConfigError(field, device, f"must be one of {', '.join(names)}")
    return Device(quantity=1, device_class=device_class, device=name)  # type: ignore[arg-type]


def _check_partition(field: str, device: str, partition: object) -> None:
    allowed = _PARTITIONS.get(device)
    if allowed is None:
        raise ConfigError(field, partition, f"must be None: {device} has no partitions")
    if partition not in allowed:
        raise ConfigError(field, partition, f"must be one of {', '.join(allowed)} for {device}")
