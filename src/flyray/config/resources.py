"""``Resources``: what a task or a Ray node asks for, in Kubernetes and in Ray terms."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from flyray.config.accelerators import (
    Device,
    canonical_device,
    device_resource_key,
    ray_accelerator_types,
)
from flyray.config.quantities import format_cpu, parse_quantity
from flyray.errors import ConfigError

__all__ = ["GPU_RESOURCE_KEY", "Resources"]

GPU_RESOURCE_KEY = "nvidia.com/gpu"
_GPU = re.compile(r"^(?P<type>[A-Za-z][A-Za-z0-9 ._-]*?)(?::(?P<count>[0-9]+))?$")
_PAIRED = ("cpu", "memory")  # the fields that take a (request, limit) pair, as in Flyte
_KUBERNETES_REFUSES = "Kubernetes refuses a container whose request is above its limit"

Quantity = int | float | str
# Ray's resource name for the accelerators Ray does not count as "GPU".
_RAY_RESOURCE = {"TPU": "TPU", "HABANA_GAUDI": "HPU"}


@dataclass(frozen=True)
class Resources:
    """CPU, memory, GPU, disk and shared memory, checked when constructed.

    ``cpu`` is a number or a quantity ("500m", "2"); ``memory``, ``disk`` and ``shm`` are
    quantities ("2Gi", "512Mi", "1G") or bytes; ``shm`` also takes "auto". ``cpu`` and
    ``memory`` also take a ``(request, limit)`` tuple, as in Flyte: ``cpu=(1, 2)``. ``gpu`` is a
    count, "TYPE:COUNT" such as "T4:1" or "A100:2", "TYPE" for one, or a ``Device`` from
    ``flyray.GPU(...)``. Where one number is needed (Ray's view, ``to_ray``), a pair gives its
    limit: Ray sizes a node from its limits, as KubeRay does.
    """

    cpu: Quantity | tuple[Quantity, Quantity] | None = None
    memory: Quantity | tuple[Quantity, Quantity] | None = None
    gpu: int | str | Device | None = None
    disk: Quantity | None = None
    shm: Quantity | None = None

    def __post_init__(self) -> None:
        for name in _PAIRED:
            value = getattr(self, name)
            if isinstance(value, tuple):
                _check_pair(name, value)
            elif value is not None:
                _check_one(name, value, name)
        for name in ("disk", "shm"):
            value = getattr(self, name)
            if isinstance(value, (tuple, list)):
                raise ConfigError(
                    f"Resources.{name}", value, "must be one quantity (a pair is for cpu, memory)"
                )
            if value is not None and not (name == "shm" and value == "auto"):
                _check_one(name, value, name)
        if self.gpu is not None:
            _parse_gpu(self.gpu)

    @property
    def cpus(self) -> Decimal | None:
        """CPUs as an exact number (a pair's limit), or None when not set."""
        cpu = _limit(self.cpu)
        return None if cpu is None else parse_quantity("Resources.cpu", cpu)

    @property
    def memory_bytes(self) -> int | None:
        """Memory in bytes (a pair's limit, rounded up), or None when not set."""
        memory = _limit(self.memory)
        return None if memory is None else math.ceil(parse_quantity("Resources.memory", memory))

    @property
    def gpu_count(self) -> int:
        """How many GPUs (or other accelerators); 0 when none are asked for."""
        return 0 if self.gpu is None else _parse_gpu(self.gpu)[1]

    @property
    def accelerator(self) -> str | None:
        """The accelerator type in Flyte's spelling ("T4", "A100_80G"), or None."""
        device = self.get_device()
        return None if device is None else device.device

    def get_device(self) -> Device | None:
        """The accelerator as a ``Device``; None without one (including ``gpu=0``), as in Flyte."""
        return None if self.gpu is None else _parse_gpu(self.gpu)[0]

    def get_shared_memory(self) -> str | None:
        """The /dev/shm size as Flyte reports it: "" for "auto", None when not set."""
        if self.shm is None:
            return None
        return "" if self.shm == "auto" else _quantity_text(self.shm)

    def as_requests(self) -> Resources:
        """This with every (request, limit) pair replaced by its request."""
        return replace(self, **{n: getattr(self, n)[0] for n in _PAIRED if self._paired(n)})

    def as_limits(self) -> Resources:
        """This with every (request, limit) pair replaced by its limit."""
        return replace(self, **{n: getattr(self, n)[1] for n in _PAIRED if self._paired(n)})

    def to_kubernetes(self, *, gpu_key: str = GPU_RESOURCE_KEY) -> dict[str, str]:
        """Container resource quantities: cpu, memory, ephemeral-storage and the GPU key.

        A pair gives its limit (split with ``as_requests``/``as_limits`` first for both); an
        accelerator that is not an NVIDIA GPU uses its own key (``amd.com/gpu``, ...), an
        NVIDIA GPU or a bare count uses ``gpu_key``.
        """
        out: dict[str, str] = {}
        if self.cpus is not None:
            out["cpu"] = format_cpu(self.cpus)
        if self.memory is not None:
            out["memory"] = _quantity_text(_limit(self.memory))
        if self.disk is not None:
            out["ephemeral-storage"] = _quantity_text(self.disk)
        if self.gpu is not None:
            device = self.get_device()
            key = gpu_key if device is None else device_resource_key(device, gpu_key)
            out[key] = str(self.gpu_count)
        return out

    def to_ray(self) -> dict[str, Any]:
        """Arguments for ``ray.remote``: num_cpus, memory (bytes), num_gpus, accelerator_type.

        Pairs give their limits. A TPU or Gaudi asks for Ray's "TPU"/"HPU" resource instead of
        num_gpus; a Neuron device only names its accelerator_type (Ray counts Neuron cores,
        not devices).
        """
        out: dict[str, Any] = {}
        if self.cpus is not None:
            out["num_cpus"] = float(self.cpus)
        if self.memory is not None:
            out["memory"] = self.memory_bytes
        device = self.get_device()
        if self.gpu is not None and device is None:
            out["num_gpus"] = self.gpu_count
        elif device is not None:
            if device.device_class in _RAY_RESOURCE:
                out["resources"] = {_RAY_RESOURCE[device.device_class]: device.quantity}
            elif device.device_class != "NEURON":
                out["num_gpus"] = device.quantity
            types = ray_accelerator_types(device)
            if types:
                out["accelerator_type"] = types[0]
        return out

    def comparable(self) -> dict[str, Decimal]:
        """Every set quantity (a pair's request) as a number, to compare requests with limits."""
        asked = self.as_requests()
        out: dict[str, Decimal] = {}
        if asked.cpus is not None:
            out["cpu"] = asked.cpus
        if asked.memory is not None:
            out["memory"] = parse_quantity("memory", asked.memory)
        if asked.disk is not None:
            out["disk"] = parse_quantity("disk", asked.disk)
        if asked.gpu is not None:
            out["gpu"] = Decimal(asked.gpu_count)
        return out

    def _paired(self, name: str) -> bool:
        return isinstance(getattr(self, name), tuple)


def _limit(value: Any) -> Any:
    return value[1] if isinstance(value, tuple) else value


def _quantity_text(value: Quantity) -> str:
    return value.strip() if isinstance(value, str) else str(value)


def _check_one(name: str, value: object, where: str) -> Decimal:
    """One quantity of field ``name``; CPUs must be whole millicores."""
    if isinstance(value, list):
        raise ConfigError(
            f"Resources.{where}", value, "must be a value or a (request, limit) tuple, not a list"
        )
    number = parse_quantity(f"Resources.{where}", value)
    if name == "cpu" and (number * 1000) != (number * 1000).to_integral_value():
        raise ConfigError(f"Resources.{where}", value, "must be a whole number of millicores")
    return number


def _check_pair(name: str, pair: tuple[Any, ...]) -> None:
    if len(pair) != 2 or any(part is None for part in pair):
        raise ConfigError(
            f"Resources.{name}", pair, "must be a (request, limit) tuple of two set values"
        )
    request = _check_one(name, pair[0], f"{name}[0]")
    limit = _check_one(name, pair[1], f"{name}[1]")
    if request > limit:
        raise ConfigError(
            f"Resources.{name}", pair, f"must have request <= limit ({_KUBERNETES_REFUSES})"
        )


def _parse_gpu(value: object) -> tuple[Device | None, int]:
    """A GPU spec as (device, count): 2 -> (None, 2); "A100:2" -> (Device(2, "GPU", "A100"), 2)."""
    if isinstance(value, Device):
        return value, value.quantity
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ConfigError("Resources.gpu", value, "must be >= 0")
        return (Device(quantity=value, device_class="GPU") if value else None), value
    if isinstance(value, str):
        if value.strip().isdigit():
            return _parse_gpu(int(value))
        match = _GPU.match(value.strip())
        if match:
            count = int(match["count"]) if match["count"] else 1
            if count < 1:
                raise ConfigError("Resources.gpu", value, "must ask for at least one GPU")
            name, device_class = canonical_device(match["type"])
            return Device(quantity=count, device_class=device_class, device=name), count  # type: ignore[arg-type]
    raise ConfigError(
        "Resources.gpu",
        value,
        "must be a GPU count, 'TYPE:COUNT' such as 'T4:1' or 'A100:2', or a flyray.GPU(...)",
    )
