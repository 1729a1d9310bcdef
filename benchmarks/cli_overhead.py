"""CLI-overhead benchmark: ``flyray run`` against a plain Python script doing the same Ray work.

Measured: the wall time, from process start to exit, of

    A  flyray run examples/seed.py my_ray_task --n 10
    B  python plain.py   (written to a temp file: ray.init(), sum of ten squares on Ray,
                          ray.shutdown())

alternated A B A B ... for --runs pairs (default 5) to spread machine noise over both.
Every run must print 285. The report lists every run's time, both medians and the ratio
flyray/plain; the target is a ratio <= 1.10 (--target-ratio).

Isolation: each run gets a private Ray temp dir (RAY_TMPDIR, a fresh short directory
/tmp/fb-XXXXXXXX, deleted afterwards), its own session (start_new_session=True) and
RAY_ADDRESS removed, so it starts its own local Ray instead of joining one. After each run
the script looks through /proc for processes of that run (command line containing its temp
dir, or in its session) that outlive a short grace period, kills their process groups with
os.killpg and reports them. Ray usage stats are disabled (RAY_USAGE_STATS_ENABLED=0) for
both commands.

Exit status: 0 when the target is met, 1 when it is missed, 2 when a run fails (non-zero
exit, timeout, or output other than 285).

Run it from the checkout's root (any directory works; it uses the ``flyray`` console script
next to sys.executable):

    .venv/bin/python benchmarks/cli_overhead.py              # 5 pairs of runs
    .venv/bin/python benchmarks/cli_overhead.py --runs 9
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EXPECTED = "285"
PLAIN_SCRIPT = """\
import ray

ray.init()


@ray.remote
def f(x):
    return x * x


print(sum(ray.get([f.remote(i) for i in range(10)])))
ray.shutdown()
"""


class RunFailed(Exception):
    """A benchmarked command failed or printed the wrong result."""


@dataclass
class Leftover:
    """A process of a finished run that was still alive."""

    pid: int
    pgid: int
    cmdline: str


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each (default 5)")
    parser.add_argument(
        "--target-ratio",
        type=float,
        default=1.10,
        help="maximum median ratio flyray/plain (default 1.10)",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds allowed per run (default 300)"
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=5.0,
        help="seconds a run's processes may take to exit after it ends (default 5)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def flyray_command() -> list[str]:
    """``flyray run examples/seed.py my_ray_task --n 10`` with the console script of this venv."""
    script = Path(sys.executable).parent / "flyray"
    if not script.exists():
        raise RunFailed(f"no flyray console script at {script}")
    return [str(script), "run", "examples/seed.py", "my_ray_task", "--n", "10"]


def plain_command(workdir: Path) -> list[str]:
    """Write the plain Ray script into workdir; the command that runs it."""
    path = workdir / "plain_ray.py"
    path.write_text(PLAIN_SCRIPT)
    return [sys.executable, str(path)]


def child_env(ray_tmpdir: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env["RAY_TMPDIR"] = ray_tmpdir
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, pgid, session id) of a process from /proc/PID/stat, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return fields[0], int(fields[2]), int(fields[3])


def proc_cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def find_leftovers(marker: str, session: int) -> list[Leftover]:
    """Live processes whose cmdline contains marker or that belong to the given session."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        stat = proc_stat(pid)
        if stat is None or stat[0] == "Z":  # gone, or a zombie nobody can kill
            continue
        cmdline = proc_cmdline(pid)
        if marker in cmdline or stat[2] == session:
            found.append(Leftover(pid, stat[1], cmdline))
    return found


def wait_for_exit(marker: str, session: int, grace: float) -> list[Leftover]:
    """Give a run's processes up to grace seconds to exit; return those still alive."""
    deadline = time.monotonic() + grace
    while True:
        leftovers = find_leftovers(marker, session)
        if not leftovers or time.monotonic() >= deadline:
            return leftovers
        time.sleep(0.2)


def kill_groups(leftovers: list[Leftover]) -> None:
    """SIGTERM then SIGKILL the process groups of leftovers (never this script's own group)."""
    own_group = os.getpgrp()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for proc in leftovers:
            try:
                if proc.pgid == own_group:
                    os.kill(proc.pid, sig)
                else:
                    os.killpg(proc.pgid, sig)
            except ProcessLookupError:
                pass
        if sig == signal.SIGTERM:
            time.sleep(2)


def clean_up(label: str, marker: str, session: int, grace: float) -> int:
    """Make sure nothing of a run survives; report and kill what did. Returns how many."""
    leftovers = wait_for_exit(marker, session, grace)
    if leftovers:
        print(f"    WARNING: {len(leftovers)} process(es) of the {label} run survived; killing:")
        for proc in leftovers:
            print(f"      pid {proc.pid} pgid {proc.pgid}: {proc.cmdline[:150]}")
        kill_groups(leftovers)
    shutil.rmtree(marker, ignore_errors=True)
    return len(leftovers)


def check_output(label: str, returncode: int, stdout: str, stderr: str) -> None:
    if returncode != 0:
        raise RunFailed(f"{label} exited {returncode}\n{stderr[-3000:]}")
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines or lines[-1] != EXPECTED:
        raise RunFailed(f"{label} printed {stdout[-500:]!r}, expected {EXPECTED}")


def run_once(label: str, cmd: list[str], args: argparse.Namespace) -> tuple[float, int]:
    """Run cmd once in isolation; (wall seconds, leftover processes killed)."""
    ray_tmpdir = tempfile.mkdtemp(prefix="fb-", dir="/tmp")
    session = -1
    try:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            start = time.perf_counter()
            proc = subprocess.Popen(
                cmd,
                cwd=REPO_ROOT,
                env=child_env(ray_tmpdir),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
            session = proc.pid
            try:
                returncode = proc.wait(timeout=args.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise RunFailed(f"{label} timed out after {args.timeout:g} s") from None
            elapsed = time.perf_counter() - start
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode(errors="replace")
            stderr = err.read().decode(errors="replace")
    finally:
        killed = clean_up(label, ray_tmpdir, session, args.grace)
    check_output(label, returncode, stdout, stderr)
    return elapsed, killed


def benchmark(args: argparse.Namespace, workdir: Path) -> tuple[list[float], list[float], int]:
    """Alternate flyray and plain runs; (flyray times, plain times, leftovers killed)."""
    commands = {"flyray": flyray_command(), "plain": plain_command(workdir)}
    times: dict[str, list[float]] = {label: [] for label in commands}
    killed = 0
    for i in range(1, args.runs + 1):
        for label, cmd in commands.items():
            elapsed, leftovers = run_once(label, cmd, args)
            times[label].append(elapsed)
            killed += leftovers
            print(f"  run {i}/{args.runs}  {label:<6} {elapsed:6.2f} s", flush=True)
    return times["flyray"], times["plain"], killed


def report(flyray: list[float], plain: list[float], killed: int, target: float) -> bool:
    """Print medians and ratio; True when the target is met."""
    flyray_median = statistics.median(flyray)
    plain_median = statistics.median(plain)
    ratio = flyray_median / plain_median
    print(f"median flyray run: {flyray_median:6.2f} s")
    print(f"median plain Ray:  {plain_median:6.2f} s")
    print(f"ratio flyray/plain: {ratio:.3f} (target <= {target:.2f})")
    if killed:
        print(f"WARNING: {killed} leftover process(es) had to be killed in total")
    ok = ratio <= target
    print("OK: target met" if ok else "FAIL: target missed")
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"flyray run examples/seed.py my_ray_task --n 10  vs  plain Ray script, {args.runs} each")
    workdir = Path(tempfile.mkdtemp(prefix="fb-plain-"))
    try:
        flyray, plain, killed = benchmark(args, workdir)
    except (RunFailed, OSError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if report(flyray, plain, killed, args.target_ratio) else 1


if __name__ == "__main__":
    sys.exit(main())
