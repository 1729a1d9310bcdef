"""Where the time of a warm local-cluster run goes: the seed task's run, phase by phase.

A warm cluster of the seed's topology is started (`flyray cluster up examples/seed.py
my_ray_task`), one run is made untimed (it sets up the cluster's runtime env), then ``--runs``
runs (default 5) of

    flyray run --mode local-cluster examples/seed.py my_ray_task --n 10

each timed from process start to exit, each started once the cluster's standby driver is
ready (as in warm_cluster.py). After each run its timeline is put together from
clocks that all read this machine's time:

    process start         the benchmark, just before it starts `flyray run`
    record created        the run record's ``created_at`` (task loaded, bundle stored, manifest
                          rendered)
    attempt started       the attempt's ``started_at`` (inputs, manifest and record written,
                          cluster leased, Jobs client made): the job is submitted or handed over
    job submitted         Ray's ``JobInfo.start_time``: the Jobs API took the submission
    supervisor ready      the job supervisor actor's worker ready (state API: the worker whose
                          pid is the actor's)
    driver connected      the job's driver registered (state API: the DRIVER worker's
                          ``start_time_ms``, i.e. its ``ray.init()`` returned)
    first task started    the driver first gave one of the task's 10 Ray tasks (``f``) to a
                          worker (state API: the earliest SUBMITTED_TO_WORKER event)
    last task ended       the latest ``end_time_ms`` of those tasks
    job ended             Ray's ``JobInfo.end_time``: the supervisor saw the driver exit
    process exit          the benchmark, when `flyray run` has exited

A phase is the time between two consecutive events; an event that happened before the one
listed above it (a driver made ready ahead of the run) counts as happening at that one, so
its phase is 0. Each phase's median over the runs is printed, with the median total.

``--client-steps`` prints the client side split further, measured in a fresh interpreter that
repeats ``flyray run``'s steps in-process (median of ``--runs`` fresh interpreters): import
flyray, load the task file (which imports Ray), bundle, render, store writes, Jobs client.

Everything lives in a private temp dir; the warm cluster is stopped at the end and /proc is
checked for processes of it (a survivor fails the run, exit 2). Exit status: 0, or 2 when a
run fails. About 2 minutes on 2 cores:

    .venv/bin/python benchmarks/warm_breakdown.py
    .venv/bin/python benchmarks/warm_breakdown.py --runs 9 --client-steps
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from warm_cluster import BIN, SEED, Bench, BenchmarkError, check_result

STATE_TIMEOUT_S = 30.0  # how long the task events of a finished job may take to reach the GCS
EVENTS = (
    "process start",
    "record created",
    "attempt started",
    "job submitted",
    "supervisor ready",
    "driver connected",
    "first task started",
    "last task ended",
    "job ended",
    "process exit",
)
PHASES = (
    "client: start, imports, load, bundle, render",
    "client: store writes, lease, Jobs client",
    "submit (Jobs API)",
    "job supervisor start",
    "driver start (python, imports, ray.init)",
    "worker start",
    "the task",
    "driver exit, job end",
    "client: status seen, logs, record, exit",
)
CLIENT_STEPS = """\
import json, sys, time
t = {}
began = time.perf_counter()
import flyray
t["import flyray"] = time.perf_counter() - began
from flyray.config.settings import Settings
from flyray.store.runstore import RunStore
from flyray.task.loader import load_task
mark = time.perf_counter()
task = load_task(sys.argv[1], "my_ray_task")
t["load the task file"] = time.perf_counter() - mark
mark = time.perf_counter()
import inspect
from pathlib import Path
from flyray.store.bundle import create_bundle
settings = Settings.load()
store = RunStore(settings.run_store_path())
bundle = create_bundle(Path(inspect.getfile(task.func)), store)
t["bundle"] = time.perf_counter() - mark
mark = time.perf_counter()
from flyray.executors.base import new_run_id
from flyray.executors.render import render_for_run
from flyray.manifest.serialization import dump_yaml
run_id = new_run_id()
manifest = render_for_run(task, run_id=run_id, store=store, settings=settings, mode="local-cluster")
text = dump_yaml(manifest)
t["render_for_run (bundles again)"] = time.perf_counter() - mark
mark = time.perf_counter()
from flyray.store.record import RunRecord
store.write_inputs(run_id, (), {"n": 10})
store.write_manifest(run_id, text)
store.save_record(RunRecord(run_id=run_id, task=task.name, mode="local-cluster",
                            manifest_name=manifest["metadata"]["name"]))
t["store writes"] = time.perf_counter() - mark
mark = time.perf_counter()
from flyray.executors.localcluster.warm.registry import Registry
entry = Registry(settings.clusters_dir_path()).get("ray-env")
from flyray.executors.jobs.client import connect
connect(entry.dashboard_url, entry.auth_headers())
t["Jobs client"] = time.perf_counter() - mark
print(json.dumps(t))
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """--runs, --client-steps."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument(
        "--client-steps", action="store_true", help="also split the client side step by step"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def epoch(iso: str) -> float:
    """Seconds since the epoch of a record's ISO-8601 time."""
    return datetime.fromisoformat(iso).timestamp()


class Timeline:
    """The events of one warm run, read from its record and the cluster's state API."""

    def __init__(self, bench: Bench, entry: dict) -> None:
        self.bench, self.entry = bench, entry
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=entry["token_path"])
        from ray.job_submission import JobSubmissionClient

        self.address = entry["dashboard_url"]
        self.jobs = JobSubmissionClient(self.address)

    def measure(self) -> dict[str, float]:
        """One timed warm run; its events (epoch seconds)."""
        began = time.time()
        argv = [str(BIN / "flyray"), "run", "--mode", "local-cluster"]
        _, out, err = self.bench.run([*argv, str(SEED), "my_ray_task", "--n", "10"])
        ended = time.time()
        check_result(out.strip(), err)
        if "on warm cluster 'ray-env'" not in err:
            raise BenchmarkError(f"the run did not use the warm cluster:\n{err}")
        found = re.search(r"\(run (r[0-9a-f]+)\)", err)
        if found is None:
            raise BenchmarkError(f"no run id in the output:\n{err}")
        record = json.loads((self.bench.runs / "runs" / found.group(1) / "record.json").read_text())
        attempt = record["attempts"][-1]
        events = {
            "process start": began,
            "record created": epoch(record["created_at"]),
            "attempt started": epoch(attempt["started_at"]),
            "process exit": ended,
        }
        events.update(self._ray_events(attempt["submission_id"]))
        return events

    def _ray_events(self, submission_id: str) -> dict[str, float]:
        """The job's events as Ray recorded them (state API, Jobs API), in epoch seconds."""
        from ray.util.state import list_actors, list_tasks, list_workers

        info = self.jobs.get_job_info(submission_id)
        deadline = time.monotonic() + STATE_TIMEOUT_S
        while True:
            tasks = list_tasks(
                address=self.address,
                filters=[("job_id", "=", info.job_id)],
                detail=True,
                raise_on_missing_output=False,
            )
            tasks = [t for t in tasks if t.type == "NORMAL_TASK" and t.name == "f"]
            given = [ms for t in tasks if (ms := _given_to_worker(t)) is not None]
            if len(tasks) == 10 and all(t.end_time_ms for t in tasks) and given:
                break
            if time.monotonic() > deadline:
                raise BenchmarkError(f"the task events of job {submission_id} did not arrive")
            time.sleep(0.2)
        actor = list_actors(
            address=self.address,
            filters=[("name", "=", f"_ray_internal_job_actor_{submission_id}")],
            detail=True,
            raise_on_missing_output=False,
        )[0]
        workers = {
            w.pid: w
            for w in list_workers(
                address=self.address, detail=True, limit=10_000, raise_on_missing_output=False
            )
        }
        driver = workers[int(info.driver_info.pid)]
        return {
            "job submitted": info.start_time / 1000,
            "supervisor ready": workers[actor.pid].start_time_ms / 1000,
            "driver connected": driver.start_time_ms / 1000,
            "first task started": min(given) / 1000,
            "last task ended": max(t.end_time_ms for t in tasks) / 1000,
            "job ended": info.end_time / 1000,
        }


def _given_to_worker(task: Any) -> int | None:
    """When the driver gave ``task`` to a worker (ms): its SUBMITTED_TO_WORKER event.

    The driver reports it; a task's RUNNING event comes from its worker, which may be gone
    (workers of an ended job are stopped) before it reports.
    """
    times = [e["created_ms"] for e in task.events or () if e["state"] == "SUBMITTED_TO_WORKER"]
    return min(times) if times else None


def phases(events: dict[str, float]) -> list[float]:
    """The time between consecutive events; one earlier than its predecessor counts as 0."""
    durations, last = [], events[EVENTS[0]]
    for name in EVENTS[1:]:
        at = max(events[name], last)
        durations.append(at - last)
        last = at
    return durations


def client_steps(bench: Bench, runs: int) -> dict[str, float]:
    """The median time of each client step, each run in a fresh interpreter."""
    times: dict[str, list[float]] = {}
    for _ in range(runs):
        _, out, _ = bench.run([sys.executable, "-c", CLIENT_STEPS, str(SEED)])
        for step, seconds in json.loads(out).items():
            times.setdefault(step, []).append(seconds)
    return {step: statistics.median(values) for step, values in times.items()}


def report(runs: list[list[float]], walls: list[float]) -> None:
    """Every phase's median, and the median of the wall times."""
    for index, name in enumerate(PHASES):
        median = statistics.median(run[index] for run in runs)
        each = " ".join(f"{run[index]:5.2f}" for run in runs)
        print(f"{name:<46} {median:5.2f} s   ({each})")
    print(f"{'total (process start to exit)':<46} {statistics.median(walls):5.2f} s")


def main(argv: list[str] | None = None) -> int:
    """Start the warm cluster, time the runs, print the breakdown."""
    args = parse_args(argv)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"warm breakdown: {os.cpu_count()} cores; load average {load}", flush=True)
    with tempfile.TemporaryDirectory(prefix="fwp-") as home:
        bench = Bench(Path(home))
        failure: Exception | None = None
        try:
            entry = bench.up()
            bench.seed_run(fresh=False)  # untimed: the first job sets up the runtime env
            timeline = Timeline(bench, entry)
            runs, walls = [], []
            for index in range(args.runs):
                bench.settle()  # untimed: the standby driver the last run left is ready
                events = timeline.measure()
                runs.append(phases(events))
                walls.append(events["process exit"] - events["process start"])
                print(f"run {index + 1}/{args.runs} {walls[-1]:6.2f} s", flush=True)
            steps = client_steps(bench, args.runs) if args.client_steps else {}
        except (BenchmarkError, subprocess.TimeoutExpired, KeyError, IndexError) as exc:
            failure = exc
        finally:
            failure = bench.down() or failure
    if failure is not None:
        print(f"FAILED: {failure!r}", file=sys.stderr)
        return 2
    report(runs, walls)
    for step, seconds in steps.items():
        print(f"client step: {step:<30} {seconds:5.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
