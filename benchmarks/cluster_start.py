"""Cluster start benchmark: LocalRayCluster's parallel worker start against a sequential start.

Measured: the wall time until a cluster of 1 head + 2 worker groups x 2 replicas (5 real Ray
nodes on this machine, 1 CPU each, derived from a RayJob manifest by ``cluster_nodes``) is up,
started two ways in the same run, alternating (the order flips every round):

- parallel: ``LocalRayCluster(head, workers).start()``: the head, then all workers at once; it
  returns when the GCS counts every node alive and every ``ray start`` is done.
- sequential: the same nodes started by hand, one ``ray start --block`` process after another,
  each in its own session, with the same kind of flags as ``flyray.executors.localcluster.raystart``
  (free ports above 20000, ``--node-ip-address=127.0.0.1``, a private ``--temp-dir`` per worker, the
  same resource flags, token auth through ``RAY_AUTH_MODE``/``RAY_AUTH_TOKEN_PATH``); each node
  must have printed "Ray runtime started." before the next one starts, and at the end the GCS must
  count all nodes alive (the same "up" as the parallel start).

Both run without the dashboard (``--include-dashboard=false``), which keeps the comparison about
nodes. After every run everything is stopped (``LocalRayCluster.stop()``; SIGTERM to each
hand-started ``ray start``, then SIGKILL to its process group if needed) and /proc is scanned
for any process whose command line names the run's temp dir or that still lives in one of the
run's sessions; a survivor is reported, killed by process group, and fails the benchmark.

Exit status: 0 when median(parallel) / median(sequential) is at most the target (default 0.6),
1 when it is not, 2 when a start fails or a process survives.

Run it with the project's venv, from the checkout's root (any directory works; about 30 s per
round on 2 cores):

    .venv/bin/python benchmarks/cluster_start.py               # 3 rounds
    .venv/bin/python benchmarks/cluster_start.py --runs 5 --target-ratio 0.6
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORKER_GROUPS = 2
REPLICAS = 2
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
POLL_S = 0.1
QUIET_IDLE = 0.8  # a machine is quiet when its CPUs were at least this idle over one second
STARTED_MARK = b"Ray runtime started."
# Variables a node must not inherit: they point at some other cluster or token.
CLIENT_VARS = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


class BenchmarkError(RuntimeError):
    """A node did not come up, or a process survived its cluster's stop."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """--runs (rounds of both starts) and --target-ratio (parallel / sequential)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each (default 3)")
    parser.add_argument(
        "--target-ratio",
        type=float,
        default=0.6,
        help="maximum median(parallel) / median(sequential) (default 0.6)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=60.0,
        help="before each start, wait up to this many seconds for the CPUs to be "
        f"{QUIET_IDLE * 100:.0f}%% idle (default 60; 0: do not wait)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.settle < 0:
        parser.error("--settle must be >= 0")
    return args


# -- the cluster ---------------------------------------------------------------------------


def manifest() -> dict[str, Any]:
    """A RayJob with a 1-CPU head and WORKER_GROUPS groups of REPLICAS 1-CPU workers."""

    def template(name: str) -> dict[str, Any]:
        container = {"name": name, "image": "rayproject/ray", "resources": {"limits": {"cpu": "1"}}}
        return {"spec": {"containers": [container]}}

    groups = [
        {
            "groupName": f"group-{g}",
            "replicas": REPLICAS,
            "minReplicas": REPLICAS,
            "maxReplicas": REPLICAS,
            "rayStartParams": {},
            "template": template("ray-worker"),
        }
        for g in range(WORKER_GROUPS)
    ]
    head = {"rayStartParams": {}, "template": template("ray-head")}
    cluster = {"headGroupSpec": head, "workerGroupSpecs": groups}
    return {"kind": "RayJob", "spec": {"rayClusterSpec": cluster}}


def node_specs() -> tuple[Any, list[Any]]:
    """The head and worker NodeSpecs of ``manifest()``, derived as the local-cluster mode does."""
    from flyray.executors.localcluster.topology import cluster_nodes

    return cluster_nodes(manifest())


def new_root() -> Path:
    """A short private temp dir for one run (Ray's unix socket paths must fit 107 bytes)."""
    return Path(tempfile.mkdtemp(prefix="frb-", dir="/tmp"))


# -- parallel: LocalRayCluster -------------------------------------------------------------


def run_parallel(head: Any, workers: Sequence[Any]) -> float:
    """Seconds for ``LocalRayCluster(...).start()``; stops it and checks for survivors."""
    from flyray.executors.localcluster.cluster import LocalRayCluster

    root = new_root()
    cluster = LocalRayCluster(
        head,
        workers,
        root=root,
        dashboard=False,
        client_server=False,
        start_timeout=START_TIMEOUT_S,
    )
    try:
        began = time.perf_counter()
        cluster.start()
        elapsed = time.perf_counter() - began
        if cluster.alive_nodes() != 1 + len(workers):
            raise BenchmarkError(f"parallel: {cluster.alive_nodes()} nodes alive after start()")
    finally:
        sessions = set(cluster.pids)
        cluster.stop(timeout=STOP_TIMEOUT_S)
        check_no_survivors("parallel", root, sessions)
        shutil.rmtree(root, ignore_errors=True)
    return elapsed


# -- sequential: by hand -------------------------------------------------------------------


@dataclass
class HandNode:
    """A node started by hand: its `ray start --block` process and its output log."""

    name: str
    process: subprocess.Popen[bytes]
    out_log: Path

    def started(self) -> bool:
        """True once `ray start` printed "Ray runtime started."."""
        try:
            return STARTED_MARK in self.out_log.read_bytes()
        except OSError:
            return False


def ray_executable() -> str:
    """The `ray` CLI next to this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "ray"
    if beside.is_file():
        return str(beside)
    found = shutil.which("ray")
    if found is None:
        raise BenchmarkError("no `ray` executable next to the interpreter or on PATH")
    return found


def write_token(root: Path) -> Path:
    """A fresh random auth token in ``root/auth_token`` (mode 0600), as cluster.py writes it."""
    path = root / "auth_token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return path


def node_env(token_path: Path) -> dict[str, str]:
    """The nodes' environment: ours, no inherited client variables, this run's token auth."""
    env = dict(os.environ)
    env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"
    for name in CLIENT_VARS:
        env.pop(name, None)
    env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_path)})
    return env


def distinct_ports(count: int, taken: set[int]) -> list[int]:
    """``count`` free ports above 20000 that no other node of the run uses."""
    from flyray.executors.localcluster.raystart import free_port

    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in taken:
            taken.add(port)
            ports.append(port)
    return ports


def node_argv(
    spec: Any, temp_dir: Path, gcs: str, head_ports: list[int], taken: set[int]
) -> list[str]:
    """The `ray start --block` command line of one node, with the flags raystart.py uses."""
    nm, om, listen, grpc_port, rt_env, metrics = distinct_ports(6, taken)
    argv = [
        ray_executable(),
        "start",
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--temp-dir={temp_dir}",
        "--disable-usage-stats",
        f"--node-manager-port={nm}",
        f"--object-manager-port={om}",
        f"--dashboard-agent-listen-port={listen}",
        f"--dashboard-agent-grpc-port={grpc_port}",
        f"--runtime-env-agent-port={rt_env}",
        f"--metrics-export-port={metrics}",
    ]
    if spec.head:
        gcs_port, dashboard, client = head_ports
        argv += [
            "--head",
            f"--port={gcs_port}",
            "--include-dashboard=false",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard}",
            f"--ray-client-server-port={client}",
        ]
    else:
        argv.append(f"--address={gcs}")
    return argv + spec.flags()


def launch(spec: Any, argv: list[str], log_dir: Path, env: dict[str, str]) -> HandNode:
    """Start one node as the leader of a new session, its output in ``log_dir``."""
    out_log = log_dir / f"{spec.name}.out"
    with out_log.open("wb") as out, (log_dir / f"{spec.name}.err").open("wb") as err:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, start_new_session=True
        )
    return HandNode(spec.name, process, out_log)


def wait_until(
    ready: Callable[[], bool], nodes: Sequence[HandNode], deadline: float, what: str
) -> None:
    """Poll ``ready`` until true; raise if a node's `ray start` exits or the deadline passes."""
    while not ready():
        for node in nodes:
            code = node.process.poll()
            if code is not None:
                raise BenchmarkError(f"sequential: `ray start` of {node.name} exited with {code}")
        if time.monotonic() > deadline:
            raise BenchmarkError(f"sequential: {what} not up after {START_TIMEOUT_S:g} s")
        time.sleep(POLL_S)


def alive_nodes(gcs: str, token_path: Path) -> int:
    """How many nodes the GCS counts alive (0 while it does not answer), as cluster.py asks it."""
    import grpc
    from ray.core.generated import gcs_pb2, gcs_service_pb2, gcs_service_pb2_grpc

    token = token_path.read_text().strip()
    with grpc.insecure_channel(gcs, options=[("grpc.enable_http_proxy", 0)]) as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            reply = stub.GetAllNodeInfo(
                gcs_service_pb2.GetAllNodeInfoRequest(),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=2.0,
            )
        except grpc.RpcError:
            return 0
    alive = gcs_pb2.GcsNodeInfo.GcsNodeState.Value("ALIVE")
    return sum(1 for n in reply.node_info_list if n.state == alive)


def start_sequentially(
    head: Any, workers: Sequence[Any], root: Path, nodes: list[HandNode]
) -> None:
    """Start head then each worker, each once the previous one is up; ``nodes`` gets each one."""
    log_dir = root / "logs"
    log_dir.mkdir()
    token_path = write_token(root)
    env = node_env(token_path)
    taken: set[int] = set()
    head_ports = distinct_ports(3, taken)
    gcs = f"127.0.0.1:{head_ports[0]}"
    deadline = time.monotonic() + START_TIMEOUT_S
    for index, spec in enumerate((head, *workers)):
        temp_dir = root / f"n{index}" if index else root  # raystart.py: one temp dir per worker
        node = launch(spec, node_argv(spec, temp_dir, gcs, head_ports, taken), log_dir, env)
        nodes.append(node)
        wait_until(node.started, nodes, deadline, f"node {spec.name}")
    total = 1 + len(workers)
    wait_until(
        lambda: alive_nodes(gcs, token_path) == total, nodes, deadline, "every node in the GCS"
    )


def run_sequential(head: Any, workers: Sequence[Any]) -> float:
    """Seconds to start the nodes one after another by hand; stops them, checks for survivors."""
    root = new_root()
    nodes: list[HandNode] = []
    try:
        began = time.perf_counter()
        start_sequentially(head, workers, root, nodes)
        elapsed = time.perf_counter() - began
    finally:
        sessions = {node.process.pid for node in nodes}
        stop_by_hand(nodes, sessions)
        check_no_survivors("sequential", root, sessions)
        shutil.rmtree(root, ignore_errors=True)
    return elapsed


def stop_by_hand(nodes: Sequence[HandNode], sessions: set[int]) -> None:
    """SIGTERM each `ray start` (it stops its children in order), then SIGKILL stragglers' groups.

    A SIGTERM to a whole group instead leaves the GCS and `ray start` hanging (see procs.py).
    """
    for node in nodes:
        if node.process.poll() is None:
            node.process.send_signal(signal.SIGTERM)
    if wait_sessions_empty(nodes, sessions, time.monotonic() + STOP_TIMEOUT_S):
        return
    print(f"  sequential: nodes still running {STOP_TIMEOUT_S:g} s after SIGTERM; SIGKILL")
    for pgid in sessions:
        kill_group(pgid)
    wait_sessions_empty(nodes, sessions, time.monotonic() + 10.0)


def wait_sessions_empty(nodes: Sequence[HandNode], sessions: set[int], deadline: float) -> bool:
    """Reap the leaders and poll until no live process is in ``sessions``; False at deadline."""
    while True:
        for node in nodes:
            node.process.poll()
        if not any(st[1] in sessions for st in live_processes().values()):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)


# -- processes, from /proc -----------------------------------------------------------------


def live_processes() -> dict[int, tuple[int, int]]:
    """{pid: (process group, session)} of every process on the machine that is not a zombie."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        if fields[0] not in ("Z", "X"):
            found[int(entry)] = (int(fields[2]), int(fields[3]))
    return found


def cmdline(pid: int) -> str:
    """A process's command line ("" once it is gone)."""
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def survivors(root: Path, sessions: set[int]) -> dict[int, tuple[int, int]]:
    """Live processes whose command line names ``root`` or that are in one of ``sessions``."""
    mark = str(root)
    return {
        pid: ids
        for pid, ids in live_processes().items()
        if pid != os.getpid() and (ids[1] in sessions or mark in cmdline(pid))
    }


def check_no_survivors(label: str, root: Path, sessions: set[int]) -> None:
    """Raise (after killing their groups) if any process of the run outlives its stop."""
    deadline = time.monotonic() + 5.0  # exiting processes can take a moment to disappear
    while (left := survivors(root, sessions)) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    if not left:
        return
    described = "; ".join(f"{pid}: {cmdline(pid)[:120]}" for pid in sorted(left))
    for pgid in {ids[0] for ids in left.values()} & sessions:
        kill_group(pgid)  # only groups this benchmark started
    raise BenchmarkError(f"{label}: processes survived the stop: {described}")


def kill_group(pgid: int) -> None:
    """SIGKILL a process group this benchmark started, if it still exists."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def cpu_idle_fraction(window: float = 1.0) -> float:
    """How idle the machine's CPUs were over the next ``window`` seconds (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, total

    idle0, total0 = sample()
    time.sleep(window)
    idle1, total1 = sample()
    return (idle1 - idle0) / max(1, total1 - total0)


def wait_for_quiet(max_wait: float) -> float:
    """Poll until the CPUs are QUIET_IDLE idle, at most ``max_wait`` s; the last idle fraction.

    Other work on a small machine (e.g. other Ray clusters) would otherwise decide the figures;
    the wait is bounded so that a busy machine still gets measured (and says so).
    """
    deadline = time.monotonic() + max_wait
    idle = cpu_idle_fraction()
    while idle < QUIET_IDLE and time.monotonic() < deadline:
        idle = cpu_idle_fraction()
    return idle


# -- main ----------------------------------------------------------------------------------


def measure(runs: int, settle: float) -> tuple[list[float], list[float]]:
    """``runs`` rounds of both starts, alternating, the order flipped every round."""
    head, workers = node_specs()
    methods = {"parallel": run_parallel, "sequential": run_sequential}
    times: dict[str, list[float]] = {name: [] for name in methods}
    for index in range(runs):
        order: Iterable[str] = list(methods) if index % 2 == 0 else reversed(list(methods))
        for name in order:
            idle = wait_for_quiet(settle) if settle else cpu_idle_fraction()
            seconds = methods[name](head, workers)
            times[name].append(seconds)
            print(
                f"run {index + 1}/{runs}  {name:<10}  {seconds:6.2f} s"
                f"   (CPUs {idle:.0%} idle just before)",
                flush=True,
            )
    return times["parallel"], times["sequential"]


def preload() -> None:
    """Import what the timed code imports lazily (Ray's gRPC stubs), outside the timing."""
    import grpc  # noqa: F401
    from ray.core.generated import gcs_pb2, gcs_service_pb2, gcs_service_pb2_grpc  # noqa: F401

    import flyray.executors.localcluster.cluster  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print every time, both medians and the ratio."""
    args = parse_args(argv)
    preload()
    nodes = 1 + WORKER_GROUPS * REPLICAS
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"cluster start: {nodes} nodes (1 head + {WORKER_GROUPS} groups x {REPLICAS}), "
        f"1 CPU each; {os.cpu_count()} cores; load average {load}",
        flush=True,
    )
    try:
        parallel, sequential = measure(args.runs, args.settle)
    except BenchmarkError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 2
    med_par, med_seq = statistics.median(parallel), statistics.median(sequential)
    ratio = med_par / med_seq
    print(f"median parallel   (LocalRayCluster.start): {med_par:6.2f} s")
    print(f"median sequential (one node at a time):    {med_seq:6.2f} s")
    verdict = "met" if ratio <= args.target_ratio else "MISSED"
    print(f"ratio parallel/sequential: {ratio:.2f} (target <= {args.target_ratio:g}: {verdict})")
    return 0 if ratio <= args.target_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
