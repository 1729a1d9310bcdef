"""Autoscaling benchmark: Ray's autoscaler on a local cluster against a plain `ray start`.

Measured on one autoscaled local cluster (``new_cluster`` of a RayJob manifest: a head with
``num-cpus: 0``, one group of 1-CPU workers with replicas 0, min 0, max 1, idle timeout 5 s),
with one Ray driver (a subprocess) connected to it, alternating rounds (the order flips):

- scale-up, autoscaled: the driver submits a 1-CPU task that no node can run; the time from
  its submission to the moment it starts running on the node the autoscaler started.
- scale-up, plain: the driver submits a task that only a node with the custom resource
  ``bench_plain`` can run (none of the autoscaler's can, so it starts nothing), then this
  script starts one worker by hand with the same ``ray start`` command flyray uses
  (``raystart.Node``: free ports, private temp dir, token auth) plus that resource; the time
  from that start to the task running on it. The node is stopped (by process group) after.
- scale-down: from the end of the autoscaled round's task to the moment the autoscaler's
  worker is gone (its ``ray start`` process exited and its record removed).

Targets: median(autoscaled scale-up) / median(plain scale-up) at most 1.5 (``--target-ratio``)
and median(scale-down) at most the idle timeout + 5 s (``--target-down``). Exit status 0 when
both hold, 1 when one does not, 2 when a round fails or a process of the cluster survives it.

Run it with the project's venv from the checkout's root (about 3 minutes on 2 cores):

    .venv/bin/python benchmarks/autoscale.py              # 3 rounds
    .venv/bin/python benchmarks/autoscale.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from flyray.executors.localcluster.autoscale.records import alive_node_ports, read_records
from flyray.executors.localcluster.from_manifest import new_cluster
from flyray.executors.localcluster.procs import is_running, leaders_under, terminate_nodes
from flyray.executors.localcluster.raystart import NodeSpec, plan_node

IDLE_TIMEOUT_S = 5
GROUP = "bench"
WAIT_S = 180.0
POLL_S = 0.05

MANIFEST: dict[str, Any] = {
    "spec": {
        "rayClusterSpec": {
            "enableInTreeAutoscaling": True,
            "autoscalerOptions": {"idleTimeoutSeconds": IDLE_TIMEOUT_S},
            "headGroupSpec": {
                "rayStartParams": {"num-cpus": "0"},
                "template": {"spec": {"containers": [{"name": "ray-head"}]}},
            },
            "workerGroupSpecs": [
                {
                    "groupName": GROUP,
                    "replicas": 0,
                    "minReplicas": 0,
                    "maxReplicas": 1,
                    "rayStartParams": {"num-cpus": "1"},
                    "template": {"spec": {"containers": [{"name": "ray-worker"}]}},
                }
            ],
        }
    }
}

# The driver: reads one command a line, answers one JSON line. "submit auto|plain" submits the
# round's task and says when; "wait" waits for it and says when it started and ended.
DRIVER = r"""
import json, sys, time
import ray
ray.init(address=sys.argv[1], log_to_driver=False)

@ray.remote(num_cpus=1)
def probe():
    start = time.time()
    return start, time.time()

pending = None
for line in sys.stdin:
    command = line.split()
    if command[0] == "submit":
        extra = {"resources": {"bench_plain": 1}} if command[1] == "plain" else {}
        submitted = time.time()
        pending = probe.options(**extra).remote()
        print(json.dumps({"submitted": submitted}), flush=True)
    elif command[0] == "wait":
        start, end = ray.get(pending, timeout=float(command[1]))
        print(json.dumps({"start": start, "end": end}), flush=True)
"""


class BenchmarkError(RuntimeError):
    """A round failed, or a process survived the cluster."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds of each (default 3)")
    parser.add_argument(
        "--target-ratio",
        type=float,
        default=1.5,
        help="maximum median scale-up, autoscaled / plain (default 1.5)",
    )
    parser.add_argument(
        "--target-down",
        type=float,
        default=IDLE_TIMEOUT_S + 5.0,
        help=f"maximum median scale-down in seconds (default {IDLE_TIMEOUT_S + 5})",
    )
    return parser.parse_args(argv)


class Driver:
    """The Ray driver subprocess, spoken to a line at a time."""

    def __init__(self, cluster: Any) -> None:
        env = {**os.environ, **cluster.auth_env(), "RAY_SCHEDULER_EVENTS": "0"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", DRIVER, cluster.gcs_address],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def ask(self, command: str) -> dict[str, float]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        while answer := self.process.stdout.readline():
            if answer.startswith("{"):  # Ray also prints its autoscaler's events here
                return json.loads(answer)
        raise BenchmarkError(f"the driver exited (code {self.process.wait()}) on {command!r}")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wait_for(condition: Any, what: str, timeout: float = WAIT_S) -> float:
    """Poll ``condition`` until it holds; the time it did (raises at the deadline)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise BenchmarkError(f"timed out waiting for {what}")
        time.sleep(POLL_S)
    return time.time()


def no_workers(temp_dir: Path) -> bool:
    """True when no autoscaled worker runs (all records gone or their processes exited)."""
    return not any(r.alive() for r in read_records(temp_dir))


def autoscaled_round(cluster: Any, driver: Driver) -> tuple[float, float]:
    """(scale-up s, scale-down s) of one pending task on an empty group."""
    wait_for(lambda: no_workers(cluster.temp_dir), "the group to be empty")
    submitted = driver.ask("submit auto")["submitted"]
    ran = driver.ask(f"wait {WAIT_S}")
    gone = wait_for(lambda: no_workers(cluster.temp_dir), "the idle worker to be stopped")
    return ran["start"] - submitted, gone - ran["end"]


def plain_round(cluster: Any, driver: Driver, number: int) -> float:
    """Scale-up s of the same kind of pending task onto a worker started by hand."""
    spec = NodeSpec(name=f"plain-{number}", num_cpus=1, resources={"bench_plain": 1})
    node = plan_node(spec, cluster.temp_dir / f"p{number}", cluster.log_dir, set())
    argv = node.argv(gcs_address=cluster.gcs_address, dashboard=False)
    env = {**os.environ, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0", **cluster.auth_env()}
    driver.ask("submit plain")
    started = time.time()
    node.launch(argv, env)
    try:
        ran = driver.ask(f"wait {WAIT_S}")
    finally:
        assert node.process is not None
        terminate_nodes({node.process.pid: node.started_at}, timeout=15, children=[node.process])
    port = node.ports["node_manager"]
    wait_for(
        lambda: port not in (alive_node_ports(cluster.temp_dir) or set()),
        "the plain worker to leave the GCS",
    )
    return ran["start"] - started


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cluster = new_cluster(MANIFEST, lambda line: None)
    ups: list[float] = []
    downs: list[float] = []
    plains: list[float] = []
    try:
        cluster.start()
        temp_dir = cluster.temp_dir
        driver = Driver(cluster)
        try:
            for number in range(args.runs):
                order = ("auto", "plain") if number % 2 == 0 else ("plain", "auto")
                for kind in order:
                    if kind == "auto":
                        up, down = autoscaled_round(cluster, driver)
                        ups.append(up)
                        downs.append(down)
                        print(
                            f"round {number + 1}: autoscaled scale-up {up:.2f} s, "
                            f"scale-down {down:.2f} s after idle",
                            flush=True,
                        )
                    else:
                        plain = plain_round(cluster, driver, number)
                        plains.append(plain)
                        print(
                            f"round {number + 1}: plain ray start scale-up {plain:.2f} s",
                            flush=True,
                        )
        finally:
            driver.close()
    except BenchmarkError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        cluster.stop()
        return 2
    cluster.stop()
    left = leaders_under(temp_dir)
    if left or any(is_running(r.pid, r.start) for r in read_records(temp_dir)):
        print(f"FAILED: processes left behind: {sorted(left)}", file=sys.stderr)
        return 2
    up, plain, down = statistics.median(ups), statistics.median(plains), statistics.median(downs)
    ratio = up / plain
    print(
        f"median scale-up: autoscaled {up:.2f} s, plain ray start {plain:.2f} s, "
        f"ratio {ratio:.2f} (target <= {args.target_ratio})"
    )
    print(
        f"median scale-down after idle: {down:.2f} s (idle timeout {IDLE_TIMEOUT_S} s, "
        f"target <= {args.target_down:g} s)"
    )
    return 0 if ratio <= args.target_ratio and down <= args.target_down else 1


if __name__ == "__main__":
    sys.exit(main())
