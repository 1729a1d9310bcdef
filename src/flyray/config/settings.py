"""Settings: defaults < ``[tool.flyray]`` in pyproject.toml < ``FLYRAY_*`` env vars < flags.

Each effective value remembers where it came from, so ``flyray config`` can say.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from flyray.config.names import check_dns1123_subdomain
from flyray.errors import ConfigError

__all__ = [
    "DEFAULT_ACCELERATOR_LABEL",
    "DEFAULT_ACCELERATOR_PARTITION_LABEL",
    "DEFAULT_CLUSTERS_DIR",
    "DEFAULT_CLUSTER_IDLE_TIMEOUT",
    "DEFAULT_KUBERAY_VERSION",
    "DEFAULT_RUN_STORE",
    "Settings",
    "find_pyproject",
]

DEFAULT_RUN_STORE = "~/.flyray/runs"
DEFAULT_CLUSTERS_DIR = "~/.flyray/clusters"
DEFAULT_CLUSTER_IDLE_TIMEOUT = 1800.0  # seconds: a warm cluster nobody uses for 30 min stops
DEFAULT_KUBERAY_VERSION = "1.7.0"  # the newest KubeRay release flyray writes RayJobs for
# The node labels Flyte's backend selects a GPU type and a MIG partition with (flytepropeller's
# gpu-device-node-label and gpu-partition-size-node-label defaults).
DEFAULT_ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
DEFAULT_ACCELERATOR_PARTITION_LABEL = "k8s.amazonaws.com/gpu-partition-size"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")
_FLAGS = ("shared_run_store", "ship_flyray")  # yes/no settings
_SECONDS = ("cluster_idle_timeout",)  # durations > 0; every other setting is a string
_LABEL_KEYS = ("accelerator_label", "accelerator_partition_label")  # Kubernetes label keys
_LABEL_KEY = re.compile(
    r"^(?:[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


@dataclass(frozen=True)
class Settings:
    """Project-wide defaults that flags override; ``sources`` says where each came from.

    ``namespace`` and ``context`` pick where kuberay runs go (default: the kubeconfig's current
    context and its namespace); ``shared_run_store`` states that a run store on a local path is
    mounted at the same path in the cluster's pods, so kuberay mode may use it;
    ``ship_flyray`` sends flyray and the packages its job driver needs with every cluster and
    kuberay job (runtime env ``py_modules``), so that a cluster needs only Ray: turn it off for
    clusters with flyray installed (docs/existing-clusters.md).
    ``clusters_dir`` holds the registry of warm local clusters; ``cluster_idle_timeout`` is how
    long (seconds) a warm cluster may go unused before its keeper stops it. ``remote_mode`` is
    the mode that Flyte's ``mode="remote"`` (or ``mode = "remote"``) runs in.
    ``accelerator_label`` and ``accelerator_partition_label`` are the node labels a Ray pod
    with a GPU type ("T4:1") or a MIG partition is steered with (see docs/gpus.md).
    ``store_secret`` names a Kubernetes Secret in the pods' namespace whose keys become
    environment variables (``envFrom``) of every Ray container, the submitter and a batch
    Job's pod: the run store's credentials (``AWS_ACCESS_KEY_ID``...), never read by flyray.
    """

    mode: str = "local"
    remote_mode: str = "kuberay"
    run_store: str = DEFAULT_RUN_STORE
    image: str | None = None
    namespace: str | None = None
    address: str | None = None
    context: str | None = None
    shared_run_store: bool = False
    ship_flyray: bool = True
    clusters_dir: str = DEFAULT_CLUSTERS_DIR
    cluster_idle_timeout: float = DEFAULT_CLUSTER_IDLE_TIMEOUT
    kuberay_version: str = DEFAULT_KUBERAY_VERSION
    accelerator_label: str = DEFAULT_ACCELERATOR_LABEL
    accelerator_partition_label: str = DEFAULT_ACCELERATOR_PARTITION_LABEL
    store_secret: str | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in _FLAGS:
            where = f"{name} (from {self.sources.get(name, 'default')})"
            object.__setattr__(self, name, _flag(where, getattr(self, name)))
        for name in _SECONDS:
            where = f"{name} (from {self.sources.get(name, 'default')})"
            object.__setattr__(self, name, _seconds(where, getattr(self, name)))
        for name in _LABEL_KEYS:
            if not _LABEL_KEY.match(str(getattr(self, name))):
                where = f"{name} (from {self.sources.get(name, 'default')})"
                rule = "must be a Kubernetes label key such as 'cloud.google.com/gke-accelerator'"
                raise ConfigError(where, getattr(self, name), rule)
        if self.store_secret is not None:
            where = f"store_secret (from {self.sources.get('store_secret', 'default')})"
            check_dns1123_subdomain(where, self.store_secret)

    @classmethod
    def names(cls) -> list[str]:
        """The setting names, as used in pyproject.toml and (upper-cased) in FLYRAY_* vars."""
        return [f.name for f in fields(cls) if f.name != "sources"]

    @classmethod
    def load(
        cls,
        *,
        cwd: Path | None = None,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Effective settings for a command run in ``cwd`` with ``overrides`` from its flags."""
        values: dict[str, Any] = {}
        sources = dict.fromkeys(cls.names(), "default")
        pyproject = find_pyproject(cwd or Path.cwd())
        if pyproject is not None:
            for key, value in _tool_table(pyproject).items():
                values[key], sources[key] = value, str(pyproject)
        environ = os.environ if environ is None else environ
        for key in cls.names():
            var = f"FLYRAY_{key.upper()}"
            if environ.get(var):
                values[key], sources[key] = environ[var], f"env {var}"
        for key, value in (overrides or {}).items():
            if value is not None:
                values[key], sources[key] = value, "flag"
        return cls(**values, sources=sources)

    def run_store_path(self) -> str:
        """The run store with ``~`` expanded (fsspec URIs are returned as they are)."""
        return os.path.expanduser(self.run_store)

    def clusters_dir_path(self) -> Path:
        """The warm-cluster registry folder, ``~`` expanded."""
        return Path(self.clusters_dir).expanduser()

    def rows(self) -> list[tuple[str, str, str]]:
        """(name, value, source) for each setting, for display."""
        return [(n, str(getattr(self, n)), self.sources.get(n, "default")) for n in self.names()]


def _flag(where: str, value: object) -> bool:
    """A yes/no setting from a bool or from text such as ``1``, ``true``, ``no``."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ConfigError(where, value, f"must be true or false ({', '.join(_TRUE)} / 0, false, no)")


def _seconds(where: str, value: object) -> float:
    """A duration in seconds > 0, from a number or text such as ``"600"``."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = 0.0
    if isinstance(value, bool) or not 0 < seconds < math.inf:
        raise ConfigError(where, value, "must be a number of seconds > 0")
    return seconds


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above ``start``."""
    for folder in (start.resolve(), *start.resolve().parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _tool_table(pyproject: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib
    try:
        data = tomllib.loads(pyproject.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(pyproject), "pyproject.toml", f"must be valid TOML ({exc})") from exc
    table = data.get("tool", {}).get("flyray", {})
    for key, value in table.items():
        if key not in Settings.names():
            raise ConfigError(
                f"{pyproject} [tool.flyray].{key}",
                value,
                f"is not a flyray setting (settings: {', '.join(Settings.names())})",
            )
        if key in _FLAGS and isinstance(value, bool):
            continue
        if key in _SECONDS and isinstance(value, (int, float)):
            continue
        if not isinstance(value, str):
            raise ConfigError(f"{pyproject} [tool.flyray].{key}", value, "must be a string")
    return table
