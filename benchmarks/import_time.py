"""Import-time benchmark: what ``import flyray, flyray.plugins.ray`` costs a fresh interpreter.

Measured: the median wall time of ``python -c "import flyray, flyray.plugins.ray"`` over
N fresh subprocesses, against a baseline measured in the same run and interleaved with it,
``python -c "pass"`` (interpreter start-up). flyray's own import cost is the difference of
the two medians. One untimed warm-up of each comes first so that bytecode caches exist.

A separate subprocess then imports the same modules and reports any heavy dependency that
the import pulled in: Ray, Kubernetes or a cloud SDK (boto3/botocore, google.cloud, azure).
flyray promises to load those only when a task runs.

Exit status: 0 when both checks pass, 1 when the import cost exceeds the target (default
150 ms) or a forbidden module was imported, 2 when a subprocess fails.

Run it from the repository root:

    .venv/bin/python benchmarks/import_time.py            # 7 runs of each
    .venv/bin/python benchmarks/import_time.py --runs 15 --target-ms 150
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FLYRAY_IMPORT = "import flyray, flyray.plugins.ray"
BASELINE = "pass"
# Top-level names (or dotted prefixes) that must not be in sys.modules after the import.
FORBIDDEN = ("ray", "kubernetes", "boto3", "botocore", "google.cloud", "azure")
# Runs in the checking subprocess; prints one forbidden module per line, nothing if clean.
CHECK_CODE = f"""
import sys
{FLYRAY_IMPORT}
forbidden = {FORBIDDEN!r}
for name in sorted(sys.modules):
    if any(name == f or name.startswith(f + ".") for f in forbidden):
        print(name)
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each (default 7)")
    parser.add_argument(
        "--target-ms",
        type=float,
        default=150.0,
        help="maximum import cost of flyray in ms (default 150)",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter to measure (default: the one running this script)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def run_code(python: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` from the repository root; raise if it fails."""
    return subprocess.run(
        [python, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )


def time_code(python: str, code: str) -> float:
    """Wall time in seconds of one fresh ``python -c code``."""
    start = time.perf_counter()
    run_code(python, code)
    return time.perf_counter() - start


def measure(python: str, runs: int) -> tuple[list[float], list[float]]:
    """Interleaved timings (baseline, flyray) after one untimed warm-up of each."""
    run_code(python, BASELINE)
    run_code(python, FLYRAY_IMPORT)
    baseline: list[float] = []
    flyray: list[float] = []
    for _ in range(runs):
        baseline.append(time_code(python, BASELINE))
        flyray.append(time_code(python, FLYRAY_IMPORT))
    return baseline, flyray


def forbidden_modules(python: str) -> list[str]:
    """The forbidden modules present in sys.modules after the import, checked in a subprocess."""
    return run_code(python, CHECK_CODE).stdout.split()


def summarize(leaked: list[str]) -> str:
    """``ray (312 modules: ray, ray._common, ...)``-style summary per forbidden prefix."""
    parts = []
    for prefix in FORBIDDEN:
        hits = [m for m in leaked if m == prefix or m.startswith(prefix + ".")]
        if hits:
            shown = ", ".join(hits[:3]) + (", ..." if len(hits) > 3 else "")
            parts.append(f"{prefix} ({len(hits)} modules: {shown})")
    return "; ".join(parts)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def report_timings(baseline: list[float], flyray: list[float]) -> float:
    """Print the samples and medians; return flyray's own import cost in seconds."""
    print(f"runs: {len(baseline)} of each, interleaved, medians reported")
    print("baseline samples:", " ".join(f"{t * 1000:.1f}" for t in baseline), "ms")
    print("flyray samples:  ", " ".join(f"{t * 1000:.1f}" for t in flyray), "ms")
    base_median = statistics.median(baseline)
    flyray_median = statistics.median(flyray)
    cost = flyray_median - base_median
    print(f"interpreter start  python -c {BASELINE!r}: {ms(base_median)}")
    print(f"with flyray        python -c {FLYRAY_IMPORT!r}: {ms(flyray_median)}")
    print(f"flyray import cost (difference of medians): {ms(cost)}")
    return cost


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"python: {args.python}")
    try:
        baseline, flyray = measure(args.python, args.runs)
        leaked = forbidden_modules(args.python)
    except subprocess.CalledProcessError as exc:
        print(f"ERROR: {exc.cmd!r} exited {exc.returncode}\n{exc.stderr}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ERROR: cannot run {args.python}: {exc}", file=sys.stderr)
        return 2

    cost = report_timings(baseline, flyray)
    failed = False
    target = args.target_ms / 1000
    if cost > target:
        print(f"FAIL: import cost {ms(cost).strip()} exceeds the target of {args.target_ms:g} ms")
        failed = True
    else:
        print(f"OK: import cost within the target of {args.target_ms:g} ms")
    if leaked:
        print(f"FAIL: the import pulled in forbidden modules: {summarize(leaked)}")
        failed = True
    else:
        print(f"OK: none of {', '.join(FORBIDDEN)} in sys.modules after the import")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
