"""Render benchmark: how long ``ray_request`` + ``render_rayjob`` + ``dump_yaml`` take.

Measured: the median wall time of rendering a task with a head and 10 worker groups (each
with requests, limits and a pod template with a sidecar) to its request, then to a RayJob dict,
and dumping it as YAML, against a baseline measured in the same run and interleaved with it:
``yaml.safe_dump`` of the same dict (stock PyYAML, pure-Python emitter). ``dump_yaml`` uses
libyaml's emitter when PyYAML has it, so rendering and dumping together usually beat the
baseline. One untimed warm-up of each comes first (imports, caches).

Exit status: 0 when the median render is under the target (default 20 ms), 1 when it is
not, 2 when rendering fails.

Run it with the project's venv, from the checkout's root (any directory works):

    .venv/bin/python benchmarks/render.py                 # 50 runs of each
    .venv/bin/python benchmarks/render.py --runs 200 --target-ms 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

WORKER_GROUPS = 10
RENDER_ARGS: dict[str, Any] = {
    "run_id": "r0123456789",
    "image": "rayproject/ray:2.60.0-py311",
    "ray_version": "2.60.0",
    "entrypoint": ["python", "-m", "flyray.entrypoint", "--run-id", "r0123456789"],
    "working_dir": "file:///tmp/store/runs/r0123456789/bundle.zip",
    "env_vars": {"FLYRAY_RUN_ID": "r0123456789"},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="timed runs of each (default 50)")
    parser.add_argument(
        "--target-ms", type=float, default=20.0, help="maximum median render in ms (default 20)"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def big_task() -> Any:
    """A Ray task whose cluster has a head and ``WORKER_GROUPS`` worker groups."""
    from flyray import Resources, TaskEnvironment
    from flyray.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig

    sidecar = {"spec": {"containers": [{"name": "log-shipper", "image": "fluent/fluent-bit:3"}]}}
    workers = [
        WorkerNodeConfig(
            group_name=f"group-{i}",
            replicas=2,
            min_replicas=1,
            max_replicas=8,
            requests=Resources(cpu=2, memory="8Gi", gpu=i % 2 or None, shm="1Gi"),
            ray_start_params={"object-store-memory": 10**9},
            pod_template=sidecar,
        )
        for i in range(WORKER_GROUPS)
    ]
    config = RayJobConfig(
        head_node_config=HeadNodeConfig(
            requests=Resources(cpu=2, memory="8Gi"), ray_start_params={"num-cpus": 0}
        ),
        worker_node_config=workers,
        enable_autoscaling=True,
        runtime_env={"pip": ["numpy", "pandas"], "env_vars": {"MODE": "bench"}},
        shutdown_after_job_finishes=True,
        ttl_seconds_after_finished=300,
    )
    env = TaskEnvironment("bench_env", plugin_config=config, env_vars={"LEVEL": "info"})

    def train() -> None:
        pass

    return env.task(retries=2, timeout=3600)(train)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(runs: int) -> tuple[list[float], list[float], int]:
    """Interleaved timings (baseline, render) after one warm-up; also the YAML's size."""
    import yaml

    from flyray.manifest.rayjob import render_rayjob
    from flyray.manifest.serialization import dump_yaml
    from flyray.plugins.ray.request import ray_request

    task = big_task()
    manifest = render_rayjob(ray_request(task), **RENDER_ARGS)

    def render() -> str:
        return dump_yaml(render_rayjob(ray_request(task), **RENDER_ARGS))

    def baseline() -> str:
        return yaml.safe_dump(manifest)

    size = len(render())
    baseline()
    base_times, render_times = [], []
    for _ in range(runs):
        base_times.append(timed(baseline))
        render_times.append(timed(render))
    return base_times, render_times, size


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        base_times, render_times, size = measure(args.runs)
    except Exception as exc:  # a benchmark reports, it does not debug
        print(f"ERROR: rendering failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    base, render = statistics.median(base_times), statistics.median(render_times)
    print(f"manifest: head + {WORKER_GROUPS} worker groups, {size} bytes of YAML")
    print(f"runs: {args.runs} of each, interleaved, after one warm-up; medians reported")
    print(f"baseline  yaml.safe_dump(manifest):                         {ms(base)}")
    print(f"flyray    dump_yaml(render_rayjob(ray_request(task), ...)):  {ms(render)}")
    print(f"ratio render/baseline: {render / base:.2f}")
    target = args.target_ms / 1000
    if render > target:
        print(f"FAIL: median render {ms(render)} exceeds the target of {args.target_ms:g} ms")
        return 1
    print(f"OK: median render {ms(render)} is under the target of {args.target_ms:g} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
