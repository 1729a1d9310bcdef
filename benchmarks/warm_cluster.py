"""Warm-cluster benchmark: the seed task on a warm local cluster, against a cold one and by hand.

Measured, as wall time from process start to exit (every run must give 285):

(a) warm vs cold, ``--runs`` each (default 5), alternating, the order flipping every round:
    warm  flyray run --mode local-cluster examples/seed.py my_ray_task --n 10
          (a warm cluster of the seed's topology is up: `flyray cluster up`)
    cold  the same with --fresh: a new 3-node cluster per run. The seed keeps its cluster
          600 s after the job (ttl_seconds_after_finished); the benchmark stops it after each
          run through the reaper pid in the run record, outside the timing.
    Target: median(warm) / median(cold) <= 0.25 (--target-cold).

(b) flyray vs by hand, on the same warm cluster, alternating likewise:
    flyray  the warm run above
    hand    ray job submit --address <dashboard> --runtime-env-json <the run's runtime env>
            -- <the run's entrypoint>, with RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH
            set to the cluster's token file: the job flyray would submit, prepared
            beforehand (inputs and code bundle in the run store, outside the timing);
            its outputs are read back from the run store.
    Target: median(flyray) / median(hand) <= 1.2 (--target-hand).

Before every timed run, of either side, the benchmark waits (untimed) until the warm cluster's
standby driver is ready: each warm run leaves the next one's driver starting (docs/warm-
clusters.md), and that start-up must not run into the next timed run.

Everything lives in a private temp dir (``FLYRAY_CLUSTERS_DIR``, ``FLYRAY_RUN_STORE``); the
warm cluster is stopped with `flyray cluster down --all` at the end, and /proc is checked for
processes that name any cluster's temp dir (a survivor fails the run, exit 2).

Exit status: 0 when both targets are met, 1 when one is missed, 2 when a run fails.

    .venv/bin/python benchmarks/warm_cluster.py            # about 4 minutes on 2 cores
    .venv/bin/python benchmarks/warm_cluster.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SEED = REPO_ROOT / "examples" / "seed.py"
BIN = Path(sys.executable).parent
EXPECTED = "285"
RUN_TIMEOUT_S = 300.0
GONE_TIMEOUT_S = 30.0


class BenchmarkError(RuntimeError):
    """A run failed, printed the wrong result, or left processes behind."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """--runs, --target-cold, --target-hand."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each (default 5)")
    parser.add_argument(
        "--target-cold",
        type=float,
        default=0.25,
        help="maximum median(warm) / median(cold) (default 0.25)",
    )
    parser.add_argument(
        "--target-hand",
        type=float,
        default=1.2,
        help="maximum median(flyray on warm) / median(ray job submit) (default 1.2)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


class Bench:
    """The benchmark's private state: its temp dir, environment and warm cluster."""

    def __init__(self, home: Path) -> None:
        self.clusters = home / "clusters"
        self.runs = home / "runs"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("FLYRAY_", "RAY_"))
        }
        self.env.update(FLYRAY_CLUSTERS_DIR=str(self.clusters), FLYRAY_RUN_STORE=str(self.runs))
        self.temp_dirs: set[str] = set()

    # -- commands ------------------------------------------------------------------------

    def run(self, argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str, str]:
        """(seconds, stdout, stderr) of one command, which must succeed."""
        began = time.perf_counter()
        done = subprocess.run(
            argv,
            cwd=REPO_ROOT,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
        elapsed = time.perf_counter() - began
        if done.returncode != 0:
            raise BenchmarkError(f"{shlex.join(argv)} exited {done.returncode}:\n{done.stderr}")
        return elapsed, done.stdout, done.stderr

    def up(self) -> dict:
        """Start the warm cluster of the seed's topology; its registry entry."""
        self.run([str(BIN / "flyray"), "cluster", "up", str(SEED), "my_ray_task"])
        entry = json.loads((self.clusters / "ray-env.json").read_text())
        self.temp_dirs.add(entry["temp_dir"])
        return entry

    def settle(self) -> None:
        """Wait, untimed, until the warm cluster's standby driver waits for the next run.

        A warm run leaves a standby driver starting (``warm.standby``), which takes CPU for a
        few seconds: the next timed run, of either side, starts once it is ready.
        """
        from flyray.executors.localcluster.warm.registry import Registry
        from flyray.executors.localcluster.warm.standby import unclaimed

        entry = Registry(self.clusters).get("ray-env")
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not any(standby.socket.exists() for standby in unclaimed(entry.temp_dir)):
            if time.monotonic() > deadline:
                raise BenchmarkError(f"no standby driver got ready in {entry.temp_dir}")
            time.sleep(0.1)

    def seed_run(self, *, fresh: bool) -> float:
        """One `flyray run` of the seed on local-cluster; a cold one's kept cluster is stopped."""
        argv = [str(BIN / "flyray"), "run", "--mode", "local-cluster"]
        argv += ["--fresh"] if fresh else []
        seconds, out, err = self.run([*argv, str(SEED), "my_ray_task", "--n", "10"])
        check_result(out.strip(), err)
        if ("on warm cluster 'ray-env'" in err) == fresh:
            raise BenchmarkError(f"fresh={fresh}, but the run said:\n{err}")
        if fresh:
            self.stop_kept_cluster(err)
        return seconds

    def stop_kept_cluster(self, stderr: str) -> None:
        """Stop the cluster a cold run keeps for its TTL: SIGTERM to the reaper in its record."""
        found = re.search(r"\(run (r[0-9a-f]+)\)", stderr)
        if found is None:
            raise BenchmarkError(f"no run id in the output:\n{stderr}")
        record = json.loads((self.runs / "runs" / found.group(1) / "record.json").read_text())
        temp_dir = record["cluster"]["temp_dir"]
        self.temp_dirs.add(temp_dir)
        os.kill(int(record["cluster"]["reaper_pid"]), signal.SIGTERM)
        wait_gone(temp_dir)

    def hand_run(self, entry: dict, prepare: Callable[[], tuple[str, dict]]) -> float:
        """`ray job submit` of a prepared run's entrypoint and runtime env; checks its output."""
        import yaml

        from flyray.store.runstore import RunStore

        run_id, manifest = prepare()
        spec = manifest["spec"]
        argv = [str(BIN / "ray"), "job", "submit", "--address", entry["dashboard_url"]]
        argv += ["--submission-id", f"{run_id}-hand"]
        argv += ["--runtime-env-json", json.dumps(yaml.safe_load(spec["runtimeEnvYAML"]))]
        argv += ["--", *shlex.split(spec["entrypoint"])]
        env = {**self.env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": entry["token_path"]}
        seconds, _, err = self.run(argv, env)
        check_result(str(RunStore(str(self.runs)).read_outputs(run_id)), err)
        return seconds

    def preparer(self) -> Callable[[], tuple[str, dict]]:
        """A function that prepares one run as flyray would: bundle, inputs, manifest."""
        from flyray.config.settings import Settings
        from flyray.executors.base import new_run_id
        from flyray.executors.render import render_for_run
        from flyray.store.runstore import RunStore
        from flyray.task.loader import load_task

        task = load_task(str(SEED), "my_ray_task")
        settings = Settings.load(cwd=REPO_ROOT, environ=self.env)
        store = RunStore(settings.run_store_path())

        def prepare() -> tuple[str, dict]:
            run_id = new_run_id()
            manifest = render_for_run(task, run_id=run_id, store=store, settings=settings)
            store.write_inputs(run_id, (), {"n": 10})
            return run_id, manifest

        return prepare

    def down(self) -> BenchmarkError | None:
        """Stop every warm cluster; an error if a process of any cluster is left."""
        try:
            self.run([str(BIN / "flyray"), "cluster", "down", "--all"])
            for temp_dir in self.temp_dirs:
                wait_gone(temp_dir)
        except BenchmarkError as exc:
            return exc
        return None


def check_result(result: str, stderr: str) -> None:
    """A run must give 285."""
    if result != EXPECTED:
        raise BenchmarkError(f"expected {EXPECTED}, got {result!r}:\n{stderr}")


def pids_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text.encode() in cmdline and state != "Z":
            found.append(int(entry))
    return found


def wait_gone(temp_dir: str) -> None:
    """Poll until no process names ``temp_dir``; a survivor is an error."""
    deadline = time.monotonic() + GONE_TIMEOUT_S
    while (left := pids_mentioning(temp_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if left:
        raise BenchmarkError(f"processes of {temp_dir} survived: {left}")


def alternate(
    runs: int,
    first: Callable[[], float],
    second: Callable[[], float],
    names: str,
    settle: Callable[[], None],
):
    """``runs`` rounds of both, the order flipping every round, ``settle`` before each; times."""
    times: tuple[list[float], list[float]] = ([], [])
    labels = names.split("/")
    for index in range(runs):
        order = (0, 1) if index % 2 == 0 else (1, 0)
        for which in order:
            settle()
            seconds = (first, second)[which]()
            times[which].append(seconds)
            print(f"run {index + 1}/{runs}  {labels[which]:<6} {seconds:6.2f} s", flush=True)
    return times


def verdict(label: str, a: list[float], b: list[float], names: str, target: float) -> bool:
    """Print both medians and the ratio; True when the ratio meets the target."""
    first, second = names.split("/")
    med_a, med_b = statistics.median(a), statistics.median(b)
    ratio = med_a / med_b
    met = ratio <= target
    print(f"{label}: median {first} {med_a:6.2f} s, median {second} {med_b:6.2f} s")
    print(
        f"{label}: ratio {names} {ratio:.2f} (target <= {target:g}: {'met' if met else 'MISSED'})"
    )
    return met


def measure(bench: Bench, runs: int) -> tuple[list[float], ...]:
    """(a) warm and cold times, (b) flyray and hand times."""
    entry = bench.up()
    prepare = bench.preparer()
    bench.seed_run(fresh=False)  # untimed: the first job on a cluster sets up its env
    print("(a) warm vs cold", flush=True)
    warm, cold = alternate(
        runs,
        lambda: bench.seed_run(fresh=False),
        lambda: bench.seed_run(fresh=True),
        "warm/cold",
        bench.settle,
    )
    print("(b) flyray vs ray job submit, on the warm cluster", flush=True)
    flyray, hand = alternate(
        runs,
        lambda: bench.seed_run(fresh=False),
        lambda: bench.hand_run(entry, prepare),
        "flyray/hand",
        bench.settle,
    )
    return warm, cold, flyray, hand


def main(argv: list[str] | None = None) -> int:
    """Run (a) and (b) and print their figures."""
    args = parse_args(argv)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"warm cluster: {os.cpu_count()} cores; load average {load}", flush=True)
    with tempfile.TemporaryDirectory(prefix="fwb-") as home:
        bench = Bench(Path(home))
        failure: Exception | None = None
        try:
            warm, cold, flyray, hand = measure(bench, args.runs)
        except (BenchmarkError, subprocess.TimeoutExpired) as exc:
            failure = exc
        finally:
            failure = bench.down() or failure
    if failure is not None:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 2
    met_a = verdict("(a)", warm, cold, "warm/cold", args.target_cold)
    met_b = verdict("(b)", flyray, hand, "flyray/hand", args.target_hand)
    return 0 if met_a and met_b else 1


if __name__ == "__main__":
    sys.exit(main())
