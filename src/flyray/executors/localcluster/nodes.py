"""Real Ray nodes on this machine: a head and workers, each a ``ray start --block`` process group.

Used by the tests as "an existing Ray cluster" and by the local-cluster executor, which starts a
head plus the worker groups of a KubeRay manifest. Every port is chosen here (above 20000, out
of Ray's worker port range) so that several clusters and a plain ``ray.init()`` can share a host.

Token authentication in Ray 2.60, as found by experiment on this machine:

- ``ray start --head`` turns token auth on only when ``RAY_AUTH_MODE=token`` is set or a token
  already exists (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``); only a
  local ``ray.init()`` creates ``~/.ray/auth_token`` by itself.
- A worker (``ray start --address``) never turns it on by itself: without ``RAY_AUTH_MODE=token``
  it fails after about 20 s with "InvalidAuthToken: Authentication token is missing".
- Clients given an explicit address (``ray.init("ray://...")``, ``JobSubmissionClient``) need
  ``RAY_AUTH_MODE=token`` AND a token source; either one alone fails. Without them a Ray Client
  waits 30 s and then says only "ray client connection timeout".
- The token is read from ``RAY_AUTH_TOKEN``, else the file at ``RAY_AUTH_TOKEN_PATH``, else
  ``~/.ray/auth_token`` (in that order), once per process: the C++ loader caches it.
- HTTP clients send ``Authorization: Bearer <token>``; ``JobSubmissionClient(headers=...)`` keeps
  a caller's own Authorization header, which needs no environment at all.

So each cluster gets its own random token in ``<temp_dir>/auth_token`` (mode 0600; ``~/.ray`` is
never touched), its nodes run with ``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN_PATH`` (and without
``RAY_AUTH_TOKEN``), and ``auth_env()`` / ``auth_headers()`` give clients the same.

Also found: Ray replaces ``--node-ip-address=127.0.0.1`` by the machine's own address (the GCS
advertises e.g. 192.0.2.2), but it listens on all interfaces, so 127.0.0.1 addresses work; and a
SIGTERM to ``ray start --block`` first drains the node for up to 30 s (set by
``RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S``, which these nodes get as 0 unless ``env`` says else).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flyray.errors import ConfigError, NodeStartError

__all__ = [
    "LocalRayCluster",
    "NodeSpec",
    "free_port",
    "is_running",
    "leaders_under",
    "start_time",
    "terminate_nodes",
]

log = logging.getLogger(__name__)

_MIN_PORT = 20000  # Ray's default worker ports are 10002-19999
_CLIENT_SPECIFIC_PORTS = range(23000, 24000)  # every Ray Client proxy hands these out
_POLL_S = 0.1
# Ray's longest unix socket path is <temp_dir>/n<k>/session_<date>_<time>_<us>_<pid>/sockets/
# plasma_store: 64 characters past a node's temp dir (7-digit pid), 5 more for /n<k>; Linux: 107.
_MAX_TEMP_DIR_LEN = 107 - 64 - 5
_LOG_TAIL_CHARS = 2000
_STARTED_MARK = b"Ray runtime started."
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
# An HTTP opener that ignores http_proxy & co: every request here goes to 127.0.0.1.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# Variables a node must not inherit: they point clients at some other cluster or token.
_CLIENT_VARS = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


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
class _Node:
    """A started node: its spec, its ports and its `ray start --block` process."""

    spec: NodeSpec
    ports: dict[str, int]
    log_dir: Path
    temp_dir: Path  # Ray's --temp-dir: one per node, or concurrent starts share socket names
    process: subprocess.Popen[bytes] | None = None
    started_at: int = 0  # the leader's start time (/proc clock ticks): guards against pid reuse

    @property
    def err_log(self) -> Path:
        """Where `ray start` writes its errors."""
        return self.log_dir / f"{self.spec.name}.err"

    @property
    def out_log(self) -> Path:
        """Where `ray start` writes its progress."""
        return self.log_dir / f"{self.spec.name}.out"

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


class LocalRayCluster:
    """A Ray head plus workers here, in states "new" -> "running" -> "stopped" (or "detached")."""

    def __init__(
        self,
        head: NodeSpec,
        workers: Sequence[NodeSpec] = (),
        *,
        root: Path | None = None,
        dashboard: bool = True,
        client_server: bool = True,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 120.0,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Describe the cluster; nothing starts before ``start()``.

        ``root`` holds Ray's temp dir and the node logs and is kept at stop(); it must be a short
        path (Ray's unix sockets live under it). Without it a new /tmp/flyray-* is used and removed
        at stop(), unless start() failed (its logs are then kept for the error message).
        ``env`` adds variables to the nodes' environment. ``client_server=False`` only skips
        waiting for the Ray Client server: `ray start --head` always runs one (here on a free port).
        """
        if not head.head:
            raise ConfigError("head.head", head.head, "must be True for the head node")
        if any(w.head for w in workers):
            raise ConfigError("workers[].head", True, "must be False for worker nodes")
        names = [head.name, *(w.name for w in workers)]
        if len(set(names)) != len(names):
            raise ConfigError("node names", names, "must be unique (they name the log files)")
        root = Path(root).absolute() if root is not None else None
        if root is not None and len(str(root)) > _MAX_TEMP_DIR_LEN:
            rule = f"must be at most {_MAX_TEMP_DIR_LEN} characters (Ray's unix socket paths)"
            raise ConfigError("root", str(root), rule)
        self.head = head
        self.workers = tuple(workers)
        self.dashboard = dashboard
        self.client_server = client_server
        self.start_timeout = start_timeout
        self._root = root
        self._env = dict(env or {})
        self._on_progress = on_progress
        self._state = "new"
        self._temp_dir: Path | None = None
        self._nodes: list[_Node] = []
        self._channel: Any = None

    # -- state and addresses ---------------------------------------------------------------

    @property
    def state(self) -> str:
        """Where the cluster is in its life: "new", "running", "stopped" or "detached"."""
        return self._state

    @property
    def temp_dir(self) -> Path:
        """Ray's --temp-dir of the head; worker k uses <temp_dir>/n<k> (its own sockets)."""
        if self._temp_dir is None:
            raise RuntimeError("the cluster has not been started")
        return self._temp_dir

    @property
    def log_dir(self) -> Path:
        """Where each node's `ray start` output goes, as <name>.out and <name>.err."""
        return self.temp_dir / "logs"

    @property
    def gcs_address(self) -> str:
        """The head's GCS address, for `ray start --address` and ``ray.init(address=...)``."""
        return f"127.0.0.1:{self._head_port('gcs')}"

    @property
    def dashboard_url(self) -> str:
        """The dashboard and Jobs API address (only with ``dashboard=True``)."""
        if not self.dashboard:
            raise RuntimeError("the cluster was created with dashboard=False")
        return f"http://127.0.0.1:{self._head_port('dashboard')}"

    @property
    def client_address(self) -> str:
        """The Ray Client server address (only with ``client_server=True``)."""
        if not self.client_server:
            raise RuntimeError("the cluster was created with client_server=False")
        return f"ray://127.0.0.1:{self._head_port('client')}"

    @property
    def pids(self) -> list[int]:
        """The `ray start --block` process of each node, each leading its own process group."""
        return [n.process.pid for n in self._nodes if n.process is not None]

    @property
    def token_path(self) -> Path:
        """The file holding this cluster's auth token (never print its content)."""
        return self.temp_dir / "auth_token"

    def auth_env(self) -> dict[str, str]:
        """Environment variables a client process needs to talk to this cluster.

        ``RAY_AUTH_TOKEN`` must not be set next to them: Ray reads it before the token file.
        """
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token_path)}

    def auth_headers(self) -> dict[str, str]:
        """HTTP headers that authenticate a request (e.g. ``JobSubmissionClient(headers=...)``)."""
        return {"Authorization": f"Bearer {self._token()}"}

    def _token(self) -> str:
        """This cluster's auth token."""
        return self.token_path.read_text().strip()

    def _head_port(self, name: str) -> int:
        """A port of the head node, once the cluster has been started."""
        if not self._nodes:
            raise RuntimeError("the cluster has not been started")
        return self._nodes[0].ports[name]

    def __repr__(self) -> str:
        where = f" gcs={self.gcs_address}" if self._nodes else ""
        return f"<LocalRayCluster {self._state} nodes={1 + len(self.workers)}{where}>"

    def __enter__(self) -> LocalRayCluster:
        return self.start() if self._state == "new" else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- start -----------------------------------------------------------------------------

    def start(self) -> LocalRayCluster:
        """Start the head, then all workers at once; return when every node is alive."""
        if self._state != "new":
            raise RuntimeError(f"start() needs a new cluster; this one is {self._state}")
        self._prepare_files()
        self._nodes = self._plan_nodes()
        deadline = time.monotonic() + self.start_timeout
        try:
            self._launch(self._nodes[0])
            self._wait_for_gcs(deadline)
            for node in self._nodes[1:]:
                self._launch(node)
            self._wait_for_nodes(deadline)
            self._wait_for_endpoints(deadline)
        except BaseException:
            self._terminate(timeout=5.0)
            self._state = "stopped"
            raise
        self._state = "running"
        _RUNNING.add(self)
        return self

    def _prepare_files(self) -> None:
        """Create the temp and log dirs and write a fresh random auth token (mode 0600)."""
        if self._root is None:
            tmp = "/tmp" if Path("/tmp").is_dir() else tempfile.gettempdir()
            self._temp_dir = Path(tempfile.mkdtemp(prefix="flyray-", dir=tmp))
        else:
            self._temp_dir = self._root
            self._temp_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        fd = os.open(self.token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when root held an older token file
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))

    def _plan_nodes(self) -> list[_Node]:
        """Every node with its own distinct free ports."""
        taken: set[int] = set()

        def port() -> int:
            while (p := free_port()) in taken:
                pass
            taken.add(p)
            return p

        nodes = []
        for index, spec in enumerate((self.head, *self.workers)):
            names = ["node_manager", "object_manager", "agent_listen", "agent_grpc"]
            names += ["runtime_env_agent", "metrics_export"]
            if spec.head:
                names += ["gcs", "dashboard", "client"]
            temp_dir = self.temp_dir / f"n{index}" if index else self.temp_dir
            nodes.append(_Node(spec, {n: port() for n in names}, self.log_dir, temp_dir))
        return nodes

    def _argv(self, node: _Node) -> list[str]:
        """The `ray start --block` command line of one node."""
        p = node.ports
        argv = [
            _ray_executable(),
            "start",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--temp-dir={node.temp_dir}",
            "--disable-usage-stats",
            f"--node-manager-port={p['node_manager']}",
            f"--object-manager-port={p['object_manager']}",
            f"--dashboard-agent-listen-port={p['agent_listen']}",
            f"--dashboard-agent-grpc-port={p['agent_grpc']}",
            f"--runtime-env-agent-port={p['runtime_env_agent']}",
            f"--metrics-export-port={p['metrics_export']}",
        ]
        if node.spec.head:
            # `ray start --head` always runs a client server (10001 unless told): give it a port.
            argv += [
                "--head",
                f"--port={p['gcs']}",
                f"--include-dashboard={str(self.dashboard).lower()}",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={p['dashboard']}",
                f"--ray-client-server-port={p['client']}",
            ]
        else:
            argv.append(f"--address={self.gcs_address}")
        return argv + node.spec.flags()

    def _node_env(self) -> dict[str, str]:
        """The environment of every node: ours, ``env``, then this cluster's auth variables."""
        env = dict(os.environ)
        env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"  # a local node has nothing to drain
        env.update(self._env)
        for name in _CLIENT_VARS:
            env.pop(name, None)
        env.update(self.auth_env())
        return env

    def _launch(self, node: _Node) -> None:
        """Start one node's `ray start --block` as the leader of a new session."""
        argv = self._argv(node)
        log.debug("starting Ray node %s: %s", node.spec.name, " ".join(argv))
        with node.out_log.open("wb") as out, node.err_log.open("wb") as err:
            node.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=self._node_env(),
                start_new_session=True,
            )
        stat = _stat(node.process.pid)
        node.started_at = stat[4] if stat is not None else 0

    def _wait_for_gcs(self, deadline: float) -> None:
        """Poll until the head's GCS answers, so that workers can register with it."""
        head = self._nodes[0]
        while self._alive_node_ports(quiet=True) is None:
            self._check_progress([head], deadline, "its GCS did not answer")
            time.sleep(_POLL_S)

    def _wait_for_nodes(self, deadline: float) -> None:
        """Poll until every node is alive and started, reporting progress as nodes come up.

        A node is up once the GCS counts it alive AND its `ray start` has finished starting:
        until then that process does not act on SIGTERM (seen stuck for over 20 s).
        """
        total, reported = len(self._nodes), 0
        while True:
            alive = self._alive_node_ports(quiet=True) or set()
            missing = [
                n for n in self._nodes if n.ports["node_manager"] not in alive or not n.started()
            ]
            up = total - len(missing)
            if up != reported and self._on_progress is not None:
                self._on_progress(up, total)
            reported = up
            if not missing:
                return
            self._check_progress(missing, deadline, "not alive in the GCS or `ray start` not done")
            time.sleep(_POLL_S)

    def _wait_for_endpoints(self, deadline: float) -> None:
        """Poll until the Jobs API and the Ray Client server (when asked for) accept requests."""
        head = self._nodes[0]
        while self.dashboard and not self._jobs_api_ready():
            self._check_progress([head], deadline, "its dashboard (Jobs API) did not answer")
            time.sleep(_POLL_S)
        while self.client_server and not _port_open(head.ports["client"]):
            self._check_progress([head], deadline, "its Ray Client server did not listen")
            time.sleep(_POLL_S)

    def _check_progress(self, waiting: Iterable[_Node], deadline: float, why: str) -> None:
        """Raise NodeStartError if any node exited, or if the deadline passed for ``waiting``."""
        for node in self._nodes:
            code = node.process.poll() if node.process is not None else None
            if code is not None:
                raise self._node_error(node, f"`ray start` exited with code {code}")
        if time.monotonic() > deadline:
            first = next(iter(waiting))
            raise self._node_error(first, f"not up after {self.start_timeout:g} s: {why}")

    def _node_error(self, node: _Node, what: str) -> NodeStartError:
        """A NodeStartError naming the node, its log file, and the log's last lines."""
        tail = node.log_tail()
        message = (
            f"Ray node {node.spec.name!r} failed to start: {what}; see {node.err_log}"
            f" (and Ray's logs in {node.temp_dir / 'session_latest' / 'logs'})"
        )
        return NodeStartError(message + (f"\n--- end of its log ---\n{tail}" if tail else ""))

    def _jobs_api_ready(self) -> bool:
        """True once the dashboard answers an authenticated Jobs API request."""
        request = urllib.request.Request(
            f"{self.dashboard_url}/api/jobs/", headers=self.auth_headers()
        )
        try:
            with _DIRECT.open(request, timeout=2.0) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    # -- the GCS's view --------------------------------------------------------------------

    def alive_nodes(self) -> int:
        """How many nodes the GCS counts as alive (one cheap gRPC call, ~1 ms)."""
        if self._state != "running":
            raise RuntimeError(f"alive_nodes() needs a running cluster; this one is {self._state}")
        ports = self._alive_node_ports(quiet=False)
        assert ports is not None
        return len(ports)

    def _alive_node_ports(self, *, quiet: bool) -> set[int] | None:
        """The node-manager ports of the alive nodes; None (if quiet) when the GCS is not up."""
        import grpc
        from ray.core.generated import gcs_pb2, gcs_service_pb2

        try:
            reply = self._gcs_stub().GetAllNodeInfo(
                gcs_service_pb2.GetAllNodeInfoRequest(),
                metadata=(("authorization", f"Bearer {self._token()}"),),
                timeout=2.0,
            )
        except grpc.RpcError:
            if quiet:
                return None
            raise
        alive = gcs_pb2.GcsNodeInfo.GcsNodeState.Value("ALIVE")
        return {n.node_manager_port for n in reply.node_info_list if n.state == alive}

    def _gcs_stub(self) -> Any:
        """A gRPC stub for the GCS node table, over one channel kept until stop()."""
        import grpc
        from ray.core.generated import gcs_service_pb2_grpc

        if self._channel is None:
            options = [("grpc.enable_http_proxy", 0)]  # never via an http_proxy of the caller
            self._channel = grpc.insecure_channel(self.gcs_address, options=options)
        return gcs_service_pb2_grpc.NodeInfoGcsServiceStub(self._channel)

    # -- stop ------------------------------------------------------------------------------

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every node (TERM; KILL of its process group after ``timeout``); safe to repeat."""
        self._terminate(timeout)
        if self._root is None and self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
        self._state = "stopped"
        _RUNNING.discard(self)

    def _terminate(self, timeout: float) -> None:
        """Stop every node and wait until all its processes are gone."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        children = [n.process for n in self._nodes if n.process is not None]
        terminate_nodes(self.leaders(), timeout=timeout, children=children)

    def leaders(self) -> dict[int, int]:
        """{pid: start time} of each node's `ray start`: enough for any process to stop them."""
        return {n.process.pid: n.started_at for n in self._nodes if n.process is not None}

    def detach(self) -> dict[int, int]:
        """Leave the cluster running past this object (and this process); returns ``leaders()``.

        Whoever takes it over stops it with ``terminate_nodes(leaders, ...)`` and removes
        ``temp_dir``: see ``flyray.executors.localcluster.reaper``.
        """
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        self._state = "detached"
        _RUNNING.discard(self)
        return self.leaders()


def terminate_nodes(
    leaders: Mapping[int, int],
    *,
    timeout: float,
    children: Sequence[subprocess.Popen[bytes]] = (),
) -> None:
    """Stop the Ray nodes led by ``leaders`` ({pid: start time}) and wait until all are gone.

    SIGTERM goes to each `ray start` alone: it then stops its children in order (about 3 s).
    A SIGTERM to the whole group leaves the GCS and `ray start` hanging for over 20 s. Works
    from any process; ``children`` are the leaders' Popen objects when this process has them.
    """
    if not leaders:
        return
    sessions = set(leaders)
    tracked = _session_processes(sessions, _descendants_of(sessions))
    for pid, start in leaders.items():
        if _alive({pid: start}):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        else:  # `ray start` is gone: nothing can stop its children in order any more
            _signal_group(pid, signal.SIGTERM)
    if _wait_gone(children, sessions, tracked, time.monotonic() + timeout):
        return
    log.warning("Ray nodes still running %g s after SIGTERM; sending SIGKILL", timeout)
    for pid in leaders:
        _signal_group(pid, signal.SIGKILL)
    for pid, start in _alive(tracked).items():
        _kill_if_same(pid, start)
    if not _wait_gone(children, sessions, tracked, time.monotonic() + 10.0):
        log.error("Ray processes survived SIGKILL: %s", sorted(_alive(tracked)))


# Clusters still running when the interpreter exits are stopped then, not left behind.
_RUNNING: weakref.WeakSet[LocalRayCluster] = weakref.WeakSet()


@atexit.register
def _stop_running_clusters() -> None:
    """Stop every cluster this process started and did not stop."""
    for cluster in list(_RUNNING):
        cluster.stop()


# -- processes, from /proc -----------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int, int, int, int] | None:
    """(state, ppid, pgrp, session, start time) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19])


def start_time(pid: int) -> int | None:
    """When ``pid`` started (/proc clock ticks), None if it is gone: with the pid, an identity."""
    st = _stat(pid)
    return None if st is None else st[4]


def is_running(pid: int, start: int) -> bool:
    """True while the process ``pid`` that started at ``start`` runs (a zombie does not)."""
    return bool(_alive({pid: start}))


def leaders_under(temp_dir: Path | str) -> dict[int, int]:
    """{pid: start time} of the `ray start` processes whose --temp-dir is ``temp_dir`` or below.

    How to find the nodes of a cluster whose starter died before it could say which they were.
    """
    mark = f"--temp-dir={temp_dir}".encode()
    found = {}
    for pid, st in _all_stats().items():
        if st[3] != pid or st[0] in ("Z", "X"):  # every node leads a session of its own
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(arg == mark or arg.startswith(mark + b"/") for arg in argv):
            found[pid] = st[4]
    return found


def _all_stats() -> dict[int, tuple[str, int, int, int, int]]:
    """The stat of every process on the machine."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            stats[int(entry)] = st
    return stats


def _descendants_of(roots: Iterable[int]) -> dict[int, int]:
    """{pid: start time} of every descendant of ``roots`` (and the roots themselves)."""
    stats = _all_stats()
    children: dict[int, list[int]] = {}
    for pid, st in stats.items():
        children.setdefault(st[1], []).append(pid)
    found, todo = {}, [r for r in roots if r in stats]
    while todo:
        pid = todo.pop()
        found[pid] = stats[pid][4]
        todo.extend(c for c in children.get(pid, ()) if c not in found)
    return found


def _session_processes(sessions: set[int], known: Mapping[int, int]) -> dict[int, int]:
    """``known`` plus every process in one of ``sessions`` (Ray workers keep their session)."""
    found = dict(known)
    for pid, st in _all_stats().items():
        if st[3] in sessions and pid not in found:
            found[pid] = st[4]
    return found


def _alive(tracked: Mapping[int, int]) -> dict[int, int]:
    """The tracked processes still running (same pid and start time, not a zombie)."""
    alive = {}
    for pid, start in tracked.items():
        st = _stat(pid)
        if st is not None and st[4] == start and st[0] not in ("Z", "X"):
            alive[pid] = start
    return alive


def _wait_gone(
    leaders: Sequence[subprocess.Popen[bytes]],
    sessions: set[int],
    tracked: dict[int, int],
    deadline: float,
) -> bool:
    """Reap our leaders and poll until no tracked or session process runs; False at deadline."""
    while True:
        for process in leaders:
            process.poll()
        tracked.update(_session_processes(sessions, {}))
        if not _alive(tracked):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_S)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to a process group that may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _kill_if_same(pid: int, start: int) -> None:
    """SIGKILL ``pid`` unless it exited and the pid was reused."""
    st = _stat(pid)
    if st is not None and st[4] == start:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _port_open(port: int) -> bool:
    """True if something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
