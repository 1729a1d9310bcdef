"""``Resources``: what a task or a Ray node asks for, in Kubernetes and in Ray terms."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flyray.config.quantities import format_cpu, parse_quantity
from flyray.errors import ConfigError

__all__ = ["GPU_RESOURCE_KEY", "Resources"]

GPU_RESOURCE_KEY = "nvidia.com/gpu"
_GPU = re.compile(r"^(?P<type>[A-Za-z][A-Za-z0-9 ._-]*?)(?::(?P<count>[0-9]+))?$")

Quantity = int | float | str


@dataclass(frozen=True)
class Resources:
    """CPU, memory, GPU, disk and shared memory, checked when constructed.

    ``cpu`` is a number or a quantity ("500m", "2"); ``memory``, ``disk`` and ``shm`` are
    quantities ("2Gi", "512Mi", "1G") or bytes; ``shm`` also takes "auto"; ``gpu`` is a count
    or "TYPE:COUNT" such as "A100:2".
    """

    cpu: Quantity | None = None
    memory: Quantity | None = None
    gpu: int | str | None = None
    disk: Quantity | None = None
    shm: Quantity | None = None

    def __post_init__(self) -> None:
        if self.cpu is not None:
            cpus = parse_quantity("Resources.cpu", self.cpu)
            if (cpus * 1000) != (cpus * 1000).to_integral_value():
                raise ConfigError("Resources.cpu", self.cpu, "must be a whole number of millicores")
        for name in ("memory", "disk"):
            if getattr(self, name) is not None:
                parse_quantity(f"Resources.{name}", getattr(self, name))
        if self.shm is not None and self.shm != "auto":
            parse_quantity("Resources.shm", self.shm)
        if self.gpu is not None:
            _parse_gpu(self.gpu)

    @property
    def cpus(self) -> Decimal | None:
        """CPUs as an exact number, or None when not set."""
        return None if self.cpu is None else parse_quantity("Resources.cpu", self.cpu)

    @property
    def memory_bytes(self) -> int | None:
        """Memory in bytes (rounded up), or None when not set."""
        if self.memory is None:
            return None
        return math.ceil(parse_quantity("Resources.memory", self.memory))

    @property
    def gpu_count(self) -> int:
        """How many GPUs; 0 when none are asked for."""
        return 0 if self.gpu is None else _parse_gpu(self.gpu)[1]

    @property
    def accelerator(self) -> str | None:
        """The GPU type from "TYPE:COUNT", or None."""
        return None if self.gpu is None else _parse_gpu(self.gpu)[0]

    def to_kubernetes(self, *, gpu_key: str = GPU_RESOURCE_KEY) -> dict[str, str]:
        """Container resource quantities: cpu, memory, ephemeral-storage and the GPU key."""
        out: dict[str, str] = {}
        if self.cpus is not None:
            out["cpu"] = format_cpu(self.cpus)
        if self.memory is not None:
            out["memory"] = _quantity_text(self.memory)
        if self.disk is not None:
            out["ephemeral-storage"] = _quantity_text(self.disk)
        if self.gpu is not None:
            out[gpu_key] = str(self.gpu_count)
        return out

    def to_ray(self) -> dict[str, Any]:
        """Arguments for ``ray.remote``/``ray start``: num_cpus, memory (bytes), num_gpus."""
        out: dict[str, Any] = {}
        if self.cpus is not None:
            out["num_cpus"] = float(self.cpus)
        if self.memory is not None:
            out["memory"] = self.memory_bytes
        if self.gpu is not None:
            out["num_gpus"] = self.gpu_count
            if self.accelerator:
                out["accelerator_type"] = self.accelerator
        return out

    def comparable(self) -> dict[str, Decimal]:
        """Every set quantity as a number, for comparing requests with limits."""
        out: dict[str, Decimal] = {}
        if self.cpus is not None:
            out["cpu"] = self.cpus
        if self.memory is not None:
            out["memory"] = parse_quantity("memory", self.memory)
        if self.disk is not None:
            out["disk"] = parse_quantity("disk", self.disk)
        if self.gpu is not None:
            out["gpu"] = Decimal(self.gpu_count)
        return out


def _quantity_text(value: Quantity) -> str:
    return value.strip() if isinstance(value, str) else str(value)


def _parse_gpu(value: object) -> tuple[str | None, int]:
    """Split a GPU spec into (type, count): 2 -> (None, 2); "A100:2" -> ("A100", 2)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ConfigError("Resources.gpu", value, "must be >= 0")
        return None, value
    if isinstance(value, str):
        if value.isdigit():
            return None, int(value)
        match = _GPU.match(value)
        if match:
            count = int(match["count"]) if match["count"] else 1
            if count < 1:
                raise ConfigError("Resources.gpu", value, "must ask for at least one GPU")
            return match["type"], count
    raise ConfigError(
        "Resources.gpu", value, "must be a GPU count or 'TYPE:COUNT' such as 'A100:2'"
    )
