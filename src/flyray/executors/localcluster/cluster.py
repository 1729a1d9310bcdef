"""A local Ray cluster's life: a head and workers here, each a ``ray start --block`` process group.

Used by the tests as "an existing Ray cluster" and by the local-cluster executor, which starts a
head plus the worker groups of a KubeRay manifest. ``raystart`` starts each node, ``procs`` stops
them; this module starts them in order, waits until all are up, and owns the cluster's auth token.

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
A runtime env whose pip install fails is tried once (``RUNTIME_ENV_RETRY_TIMES=1`` unless set):
Ray's default of 3 tries triples the time to an error that trying again does not fix.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from flyray.errors import ConfigError, NodeStartError
from flyray.executors.localcluster.health import GcsNodes, jobs_api_ready, port_open
from flyray.executors.localcluster.procs import (
    TOKEN_FILE,
    forget_at_exit,
    kill_strays,
    stop_at_exit,
    terminate_nodes,
    terminate_under,
)
from flyray.executors.localcluster.raystart import (
    MAX_TEMP_DIR_LEN,
    Node,
    NodeSpec,
    new_temp_dir,
    plan_nodes,
    transient_failure,
)
from flyray.executors.localcluster.reaper import release_guard, start_guard
from flyray.plugins.ray.envsetup import ENV_SETUP_TRIES

if TYPE_CHECKING:
    from flyray.executors.localcluster.autoscale.config import AutoscalingPlan

__all__ = ["START_ATTEMPTS", "LocalRayCluster"]

log = logging.getLogger(__name__)

START_ATTEMPTS = 3  # a node's first start and two retries, when it failed for a transient cause
_POLL_S = 0.1
# Variables a node must not inherit: they point clients at some other cluster or token.
_CLIENT_VARS = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


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
        on_retry: Callable[[str], None] | None = None,
        ray_executable: str | None = None,
        autoscaling: AutoscalingPlan | None = None,
    ) -> None:
        """Describe the cluster; nothing starts before ``start()``.

        ``root`` holds Ray's temp dir and the node logs and is kept at stop(); it must be a short
        path (Ray's unix sockets live under it). Without it a new /tmp/flyray-* is used and removed
        at stop(), unless start() failed (its logs are then kept for the error message).
        ``env`` adds variables to the nodes' environment. ``client_server=False`` only skips
        waiting for the Ray Client server: `ray start --head` always runs one (here on a free port).
        ``ray_executable`` is the `ray` CLI that starts the nodes (default: the one beside this
        interpreter), e.g. another virtualenv's. ``on_progress(up, total)`` hears of nodes
        coming up, ``on_retry(line)`` of a node started again; ``start_timeout`` bounds the
        start, counted again from each retry.
        ``autoscaling`` runs Ray's autoscaler on the head (``autoscale``): it then owns the
        workers, these first ones too, and may stop and start them while the cluster runs.
        """
        if not head.head:
            raise ConfigError("head.head", head.head, "must be True for the head node")
        if any(w.head for w in workers):
            raise ConfigError("workers[].head", True, "must be False for worker nodes")
        names = [head.name, *(w.name for w in workers)]
        if len(set(names)) != len(names):
            raise ConfigError("node names", names, "must be unique (they name the log files)")
        root = Path(root).absolute() if root is not None else None
        if root is not None and len(str(root)) > MAX_TEMP_DIR_LEN:
            rule = f"must be at most {MAX_TEMP_DIR_LEN} characters (Ray's unix socket paths)"
            raise ConfigError("root", str(root), rule)
        self.head = head
        self.workers = tuple(workers)
        self.dashboard = dashboard
        self.client_server = client_server
        self.start_timeout = start_timeout
        self._root = root
        self._env = dict(env or {})
        self._ray_executable = ray_executable
        self._on_progress = on_progress
        self._on_retry = on_retry
        self._state = "new"
        self._temp_dir: Path | None = None
        self._nodes: list[Node] = []
        self._gcs = GcsNodes(self._token)
        self._guard: subprocess.Popen[bytes] | None = None
        self._deadline = 0.0
        self._reported_up = 0
        self._autoscaling = autoscaling
        self._managed = {w.name for w in self.workers} if autoscaling is not None else set()

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
        return self.temp_dir / TOKEN_FILE

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
        """Start the head, then all workers at once; return when every node is alive.

        A node whose start fails in a way worth retrying (``transient_failure``) is cleaned up
        and started again, up to ``START_ATTEMPTS`` times in all, its earlier logs kept; a
        head that fails takes the workers with it, so they all start again on fresh ports.
        """
        if self._state != "new":
            raise RuntimeError(f"start() needs a new cluster; this one is {self._state}")
        self._prepare_files()
        self._guard = start_guard(self.temp_dir, keep_temp_dir=self._root is not None)
        self._nodes = plan_nodes((self.head, *self.workers), self.temp_dir, self.log_dir)
        self._deadline = time.monotonic() + self.start_timeout
        try:
            self._launch(self._nodes[0])
            while (waiting := self._not_up()) is not None:
                self._check_progress(*waiting)
                time.sleep(_POLL_S)
        except BaseException:
            self._terminate(timeout=5.0)
            self._state = "stopped"
            self._release_guard()
            raise
        self._state = "running"
        stop_at_exit(self)
        return self

    def _prepare_files(self) -> None:
        """Create the temp and log dirs and write a fresh random auth token (mode 0600)."""
        if self._root is None:
            self._temp_dir = new_temp_dir()
        else:
            self._temp_dir = self._root
            self._temp_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        fd = os.open(self.token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when root held an older token file
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        if self._autoscaling is not None:
            from flyray.executors.localcluster.autoscale.launch import record_pending

            record_pending(self.temp_dir, self.workers)

    def _node_env(self) -> dict[str, str]:
        """The environment of every node: ours, ``env``, then this cluster's auth variables."""
        env = dict(os.environ)
        env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"  # a local node has nothing to drain
        env.setdefault(*ENV_SETUP_TRIES)  # a failed pip install fails the job at once
        env.update(self._env)
        for name in _CLIENT_VARS:
            env.pop(name, None)
        env.update(self.auth_env())
        return env

    def _launch(self, node: Node) -> None:
        """Start one node, with the flags and environment of this cluster.

        With autoscaling, the head gets the autoscaler's config and the workers are recorded
        as the autoscaler's instances (``autoscale.launch``).
        """
        argv = node.argv(
            gcs_address=self.gcs_address, dashboard=self.dashboard, ray=self._ray_executable
        )
        env = self._node_env()
        if self._autoscaling is None:
            node.launch(argv, env)
            return
        from flyray.executors.localcluster.autoscale.launch import launch_head, launch_worker

        if node.spec.head:
            launch_head(node, argv, env, self._autoscaling, self.gcs_address, self.temp_dir)
        else:
            launch_worker(node, argv, env, self.temp_dir)

    def _not_up(self) -> tuple[Node, str] | None:
        """The node the start waits for and why, or None once all is up; launches the workers.

        Workers start once the head's GCS answers. A node is up once the GCS counts it alive AND
        its `ray start` has finished starting: until then that process does not act on SIGTERM
        (seen stuck for over 20 s). Then the Jobs API and the Ray Client server must answer.
        """
        head = self._nodes[0]
        alive = self._gcs.alive_ports(self.gcs_address, quiet=True)
        if alive is None:
            return head, "its GCS did not answer"
        for node in self._nodes[1:]:
            if node.process is None:
                self._launch(node)
        missing = [
            n
            for n in self._nodes
            if (n.ports["node_manager"] not in alive or not n.started()) and not self._let_go(n)
        ]
        self._report_up(len(self._nodes) - len(missing))
        if missing:
            return missing[0], "not alive in the GCS or `ray start` not done"
        if self.dashboard and not jobs_api_ready(self.dashboard_url, self.auth_headers()):
            return head, "its dashboard (Jobs API) did not answer"
        if self.client_server and not port_open(head.ports["client"]):
            return head, "its Ray Client server did not listen"
        return None

    def _report_up(self, up: int) -> None:
        """Report how many nodes are up, when that changed."""
        if up != self._reported_up and self._on_progress is not None:
            self._on_progress(up, len(self._nodes))
        self._reported_up = up

    def _check_progress(self, waiting: Node, why: str) -> None:
        """Retry or fail a node that exited; raise NodeStartError once the deadline passed."""
        for node in self._nodes:
            code = node.process.poll() if node.process is not None else None
            if code is not None and not self._let_go(node):
                self._exited(node, code)
                return
        if time.monotonic() > self._deadline:
            raise self._node_error(waiting, f"not up after {self.start_timeout:g} s: {why}")

    def _let_go(self, node: Node) -> bool:
        """True for a worker that started and then exited: the autoscaler stopped it (idle)."""
        return (
            node.spec.name in self._managed
            and node.started()
            and node.process is not None
            and node.process.poll() is not None
        )

    def _exited(self, node: Node, code: int) -> None:
        """Start a node whose `ray start` exited again if that may help, else raise."""
        what = f"`ray start` exited with code {code}"
        if node.attempt >= START_ATTEMPTS or not transient_failure(code, node.log_tail()):
            raise self._node_error(node, what)
        again = self._nodes if node.spec.head else [node]  # the workers need the new head
        self._terminate_nodes(again, timeout=5.0)
        taken = {port for n in self._nodes for port in n.ports.values()}
        for each in again:
            each.retire(taken)
        kept = node.earlier_logs()[-1]
        said = _last_line(kept)
        message = (
            f"Ray node {node.spec.name!r} failed to start ({what}{': ' + said if said else ''});"
            f" retrying, start {node.attempt}/{START_ATTEMPTS} (its log kept as {kept})"
        )
        log.warning("%s", message)
        if self._on_retry is not None:
            self._on_retry(message)
        self._deadline = max(self._deadline, time.monotonic() + self.start_timeout)
        if node.spec.head:
            self._gcs.close()  # the GCS moves to a new port
            self._reported_up = 0
            self._launch(node)
        # a worker starts again in _not_up, once the GCS answers

    def _node_error(self, node: Node, what: str) -> NodeStartError:
        """A NodeStartError naming the node, its log file, and the log's last lines."""
        tail = node.log_tail()
        earlier = node.earlier_logs()
        kept = ", ".join(map(str, earlier))
        tries = f" (start {node.attempt} of {START_ATTEMPTS}; earlier: {kept})" if earlier else ""
        message = (
            f"Ray node {node.spec.name!r} failed to start{tries}: {what}; see {node.err_log}"
            f" (and Ray's logs in {node.temp_dir / 'session_latest' / 'logs'})"
        )
        return NodeStartError(message + (f"\n--- end of its log ---\n{tail}" if tail else ""))

    # -- the GCS's view --------------------------------------------------------------------

    def alive_nodes(self) -> int:
        """How many nodes the GCS counts as alive (one cheap gRPC call, ~1 ms)."""
        if self._state != "running":
            raise RuntimeError(f"alive_nodes() needs a running cluster; this one is {self._state}")
        ports = self._gcs.alive_ports(self.gcs_address, quiet=False)
        assert ports is not None
        return len(ports)

    # -- stop ------------------------------------------------------------------------------

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every node (TERM; KILL of its process group after ``timeout``); safe to repeat."""
        self._terminate(timeout)
        if self._root is None and self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
        self._state = "stopped"
        self._release_guard()
        forget_at_exit(self)

    def _terminate(self, timeout: float) -> None:
        """Stop every node and wait until all its processes (a job's driver too) are gone.

        Then the nodes the autoscaler started (found by their temp dirs, under this
        cluster's), again until none is left: one may start while the head stops.
        """
        self._gcs.close()
        self._terminate_nodes(self._nodes, timeout=timeout)
        if self._temp_dir is not None:
            terminate_under(self._temp_dir, timeout=timeout)
            kill_strays(self.token_path)

    def _terminate_nodes(self, nodes: Sequence[Node], *, timeout: float) -> None:
        """Stop ``nodes`` and wait until all their processes are gone."""
        leaders = {n.process.pid: n.started_at for n in nodes if n.process is not None}
        children = [n.process for n in nodes if n.process is not None]
        terminate_nodes(leaders, timeout=timeout, children=children)

    def _release_guard(self) -> None:
        """Tell the guard that this process stopped the cluster or handed it over."""
        if self._guard is not None:
            release_guard(self._guard)
            self._guard = None

    def leaders(self) -> dict[int, int]:
        """{pid: start time} of each node's `ray start`: enough for any process to stop them.

        With autoscaling, only the head's: the autoscaler stops and starts the workers, which
        ``procs.stop_detached`` finds under the temp dir.
        """
        nodes = [n for n in self._nodes if n.spec.name not in self._managed]
        return {n.process.pid: n.started_at for n in nodes if n.process is not None}

    def detach(self) -> dict[int, int]:
        """Leave the cluster running past this object (and this process); returns ``leaders()``.

        Whoever takes it over stops it and removes ``temp_dir`` with ``procs.stop_detached``:
        see ``flyray.executors.localcluster.reaper``. Start that owner before detaching: the
        cluster's guard leaves with this call, and would stop the nodes were this process to
        die while nobody else owns them.
        """
        self._gcs.close()
        self._state = "detached"
        self._release_guard()
        forget_at_exit(self)
        return self.leaders()

    def exited_nodes(self) -> dict[str, int]:
        """{name: exit code} of the nodes whose `ray start` has exited (one of them died)."""
        nodes = [n for n in self._nodes if n.spec.name not in self._managed]
        codes = {n.spec.name: n.process.poll() for n in nodes if n.process is not None}
        return {name: code for name, code in codes.items() if code is not None}


def _last_line(path: Path) -> str:
    """The last non-empty line of a log file ("" if none): why its start failed, usually."""
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""
