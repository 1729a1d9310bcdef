"""One Ray node as a ``ray start --block`` process: its spec, ports, flags, start and output.

A NodeSpec says what a node offers (CPUs, GPUs, memory, resources, labels, KubeRay-style
rayStartParams); ``plan_nodes`` gives every node of a cluster its own free ports and a temp dir
under the cluster's private one (``new_temp_dir``), and ``Node`` starts it and reads its output.
Every port is chosen here (above 20000, out of Ray's worker port range) so that several clusters
and a plain ``ray.init()`` can share a host. ``transient_failure`` tells a start worth retrying
(Ray timed out, the process was killed) from one that would fail again (a bad flag).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flyray.errors import ConfigError, NodeStartError
from flyray.executors.localcluster.procs import start_leader, start_time

__all__ = [
    "MAX_TEMP_DIR_LEN",
    "Node",
    "NodeSpec",
    "free_port",
    "new_temp_dir",
    "plan_node",
    "plan_nodes",
    "transient_failure",
]

log = logging.getLogger(__name__)

_MIN_PORT = 20000  # Ray's default worker ports are 10002-19999
_CLIENT_SPECIFIC_PORTS = range(23000, 24000)  # every Ray Client proxy hands these out
# Ray's longest unix socket path is <temp_dir>/n<k>/session_<date>_<time>_<us>_<pid>/sockets/
# plasma_store: 64 characters past a node's temp dir (7-digit pid), 5 more for /n<k>; Linux: 107.
MAX_TEMP_DIR_LEN = 107 - 64 - 5
_LOG_TAIL_CHARS = 2000
_STARTED_MARK = b"Ray runtime started."
# What `ray start` says when it gave up waiting (on an overloaded machine, e.g. right after a
# heavy job: "The current node timed out during startup", gRPC's "Deadline Exceeded"): the
# same start succeeds a moment later. A usage error or a missing binary says none of these.
_TRANSIENT_MARKS = ("timed out", "deadline exceeded", "deadline_exceeded")
# rayStartParams this module sets itself; a NodeSpec's params cannot change them.
_MANAGED_PARAMS = frozenset(
    {
        "address",
        "block",
        "dashboard-agent-grpc-port",
        "dashboard-agent-listen-port",
        "dashboard-host",
        "dashboard-port",
        "disable-usage-stats",
        "head",
        "include-dashboard",
        "metrics-export-port",
        "node-ip-address",
        "node-manager-port",
        "object-manager-port",
        "port",
        "ray-client-server-port",
        "runtime-env-agent-port",
        "temp-dir",
    }
)
# Options that take true/false as a value; KubeRay passes them as --key=value, not bare.
_VALUED_FLAGS = frozenset({"log-color", "include-dashboard"})
# rayStartParams that NodeSpec has a typed field for.
_TYPED_PARAMS = {
    "num-cpus": "num_cpus",
    "num-gpus": "num_gpus",
    "memory": "memory",
    "resources": "resources",
    "labels": "labels",
}


def transient_failure(code: int, log: str) -> bool:
    """True if a `ray start` that exited with ``code`` is worth starting again.

    It is when the process was killed by a signal (it died during startup) or when its log says
    that it timed out; any other failure (a usage error, a bad value) would only repeat.
    """
    text = log.lower()
    return code < 0 or any(mark in text for mark in _TRANSIENT_MARKS)


def free_port() -> int:
    """A TCP port free on every local address, above 20000 (out of Ray's worker port range)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("", 0))  # all interfaces: the GCS and raylet listen on *:port
            port = sock.getsockname()[1]
        if port > _MIN_PORT and port not in _CLIENT_SPECIFIC_PORTS:
            return port
    raise OSError(f"the kernel offered no free port above {_MIN_PORT}")


@dataclass(frozen=True)
class NodeSpec:
    """One Ray node to start: its name (for log files), role and resources."""

    name: str
    head: bool = False
    num_cpus: float | None = None
    num_gpus: float | None = None
    memory: int | None = None
    resources: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Reject what `ray start` would reject, before any process starts."""
        where = f"NodeSpec({self.name!r})"
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ConfigError(f"{where}.name", self.name, "must be a plain file name")
        for attr in ("num_cpus", "num_gpus"):
            value = getattr(self, attr)
            if value is not None and (value < 0 or float(value) != int(value)):
                rule = "must be a whole number >= 0 (ray start takes an integer)"
                raise ConfigError(f"{where}.{attr}", value, rule)
        if self.memory is not None and self.memory < 0:
            raise ConfigError(f"{where}.memory", self.memory, "must be >= 0 bytes")
        for key, value in self.labels.items():
            if any(c in f"{key}{value}" for c in ",="):
                raise ConfigError(f"{where}.labels", {key: value}, "must not contain ',' or '='")
        for key in self.params:
            typed = _TYPED_PARAMS.get(_param_key(key))
            if typed and getattr(self, typed) not in (None, {}):
                rule = f"sets {typed} twice (as a field and as a param)"
                raise ConfigError(f"{where}.params[{key!r}]", self.params[key], rule)

    def flags(self) -> list[str]:
        """The `ray start` flags for this node's resources, labels and extra params."""
        flags = []
        if self.num_cpus is not None:
            flags.append(f"--num-cpus={int(self.num_cpus)}")
        if self.num_gpus is not None:
            flags.append(f"--num-gpus={int(self.num_gpus)}")
        if self.memory is not None:
            flags.append(f"--memory={int(self.memory)}")
        if self.resources:
            flags.append(f"--resources={json.dumps(self.resources)}")
        if self.labels:
            flags.append("--labels=" + ",".join(f"{k}={v}" for k, v in self.labels.items()))
        return flags + _param_flags(self.name, self.params)


def _param_key(key: str) -> str:
    """A rayStartParams key as a `ray start` option name: no dashes in front, '-' not '_'."""
    return key.strip().lstrip("-").replace("_", "-")


def _param_flags(node: str, params: Mapping[str, str]) -> list[str]:
    """KubeRay-style params as flags: "true" -> --key, "false" -> dropped, else --key=value."""
    flags = []
    for raw_key, raw_value in params.items():
        key, value = _param_key(raw_key), str(raw_value).strip()
        if key in _MANAGED_PARAMS:
            log.info("node %s: ignoring rayStartParam %r, flyray sets it", node, raw_key)
        elif key in _VALUED_FLAGS:
            flags.append(f"--{key}={value}")
        elif value.lower() == "true":
            flags.append(f"--{key}")
        elif value.lower() != "false":
            flags.append(f"--{key}={value}")
    return flags


def _ray_executable() -> str:
    """The `ray` CLI of this interpreter's environment, else the one on PATH."""
    beside = Path(sys.executable).parent / "ray"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("ray")
    if found is None:
        raise NodeStartError(f"no `ray` executable next to {sys.executable} or on PATH")
    return found


@dataclass
class Node:
    """A node of a cluster: its spec, its ports and (once launched) its `ray start` process."""

    spec: NodeSpec
    ports: dict[str, int]
    log_dir: Path
    temp_dir: Path  # Ray's --temp-dir: one per node, or concurrent starts share socket names
    process: subprocess.Popen[bytes] | None = None
    started_at: int = 0  # the leader's start time (/proc clock ticks): guards against pid reuse
    attempt: int = 1  # which start of this node the logs and the process are

    @property
    def err_log(self) -> Path:
        """Where `ray start` writes its errors."""
        return self.log_dir / f"{self.spec.name}.err"

    @property
    def out_log(self) -> Path:
        """Where `ray start` writes its progress."""
        return self.log_dir / f"{self.spec.name}.out"

    def earlier_logs(self) -> list[Path]:
        """The error logs of the failed starts before this one (``<name>.attempt<k>.err``)."""
        return [self._attempt_log(k, ".err") for k in range(1, self.attempt)]

    def retire(self, taken: set[int]) -> None:
        """Make ready for another start: keep the logs as ``<name>.attempt<k>.*``, new ports.

        The failed start's process group must be gone by now (a node never launched only gets
        new ports). ``taken`` holds the ports no node may get (every port of the cluster so
        far); the new ones are added to it.
        """
        if self.process is not None:
            for log_file in (self.out_log, self.err_log):
                if log_file.exists():
                    log_file.rename(self._attempt_log(self.attempt, log_file.suffix))
            self.attempt += 1
        self.process, self.started_at = None, 0
        self.ports = _ports(self.spec, taken)

    def _attempt_log(self, attempt: int, suffix: str) -> Path:
        return self.log_dir / f"{self.spec.name}.attempt{attempt}{suffix}"

    def argv(self, *, gcs_address: str, dashboard: bool, ray: str | None = None) -> list[str]:
        """The `ray start --block` command line; a worker joins the head at ``gcs_address``.

        ``ray`` is the `ray` CLI to start (default: this interpreter's environment's).
        """
        p = self.ports
        argv = [
            ray or _ray_executable(),
            "start",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--temp-dir={self.temp_dir}",
            "--disable-usage-stats",
            f"--node-manager-port={p['node_manager']}",
            f"--object-manager-port={p['object_manager']}",
            f"--dashboard-agent-listen-port={p['agent_listen']}",
            f"--dashboard-agent-grpc-port={p['agent_grpc']}",
            f"--runtime-env-agent-port={p['runtime_env_agent']}",
            f"--metrics-export-port={p['metrics_export']}",
        ]
        if self.spec.head:
            # `ray start --head` always runs a client server (10001 unless told): give it a port.
            argv += [
                "--head",
                f"--port={p['gcs']}",
                f"--include-dashboard={str(dashboard).lower()}",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={p['dashboard']}",
                f"--ray-client-server-port={p['client']}",
            ]
        else:
            argv.append(f"--address={gcs_address}")
        return argv + self.spec.flags()

    def launch(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        """Start `ray start --block` as the leader of a new session, its output to the logs."""
        log.debug("starting Ray node %s: %s", self.spec.name, " ".join(argv))
        with self.out_log.open("wb") as out, self.err_log.open("wb") as err:
            self.process = start_leader(argv, stdout=out, stderr=err, env=env)
        self.started_at = start_time(self.process.pid) or 0

    def started(self) -> bool:
        """True once `ray start` has said "Ray runtime started." and only blocks from then on."""
        try:
            return _STARTED_MARK in self.out_log.read_bytes()
        except OSError:
            return False

    def log_tail(self) -> str:
        """The end of the node's error log (or of its output log when that is empty)."""
        for path in (self.err_log, self.out_log):
            try:
                text = path.read_text(errors="replace").strip()
            except OSError:
                continue
            if text:
                return text[-_LOG_TAIL_CHARS:]
        return ""


def new_temp_dir() -> Path:
    """A new private temp dir for a cluster, /tmp/flyray-* (short: Ray's socket paths must fit)."""
    tmp = "/tmp" if Path("/tmp").is_dir() else tempfile.gettempdir()
    return Path(tempfile.mkdtemp(prefix="flyray-", dir=tmp))


def plan_nodes(specs: Sequence[NodeSpec], temp_dir: Path, log_dir: Path) -> list[Node]:
    """Every node with its own distinct free ports; node k > 0 gets ``temp_dir/n<k>``."""
    taken: set[int] = set()
    nodes = []
    for index, spec in enumerate(specs):
        node_temp_dir = temp_dir / f"n{index}" if index else temp_dir
        nodes.append(Node(spec, _ports(spec, taken), log_dir, node_temp_dir))
    return nodes


def plan_node(spec: NodeSpec, temp_dir: Path, log_dir: Path, taken: set[int]) -> Node:
    """One more node of a running cluster (an autoscaled worker): free ports, not in ``taken``."""
    return Node(spec, _ports(spec, taken), log_dir, temp_dir)


def _ports(spec: NodeSpec, taken: set[int]) -> dict[str, int]:
    """Free ports for every port a node of this role needs, none in ``taken`` (then added)."""
    names = ["node_manager", "object_manager", "agent_listen", "agent_grpc"]
    names += ["runtime_env_agent", "metrics_export"]
    if spec.head:
        names += ["gcs", "dashboard", "client"]
    ports = {}
    for name in names:
        while (port := free_port()) in taken:
            pass
        taken.add(port)
        ports[name] = port
    return ports
