"""Site-bundle benchmark: what shipping flyray with every job costs on the caller's side.

Measured, for a local run store and an ``s3://`` one (which adds s3fs and botocore): the size
of flyray's site bundle (``flyray.store.sitebundle``), the time of a first build (an empty
cache, in a temp folder) and of a cached one (what every later run pays: the shipped files
are stat'ed to find the cached zip). Nothing is written to either store (``write=False``).
The target: a cached build within --target seconds (default 1.0) for both stores.

    .venv/bin/python benchmarks/site_bundle.py
    .venv/bin/python benchmarks/site_bundle.py --runs 5

Exit status: 0 when the target is met, 1 when it is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from flyray.store.runstore import RunStore
from flyray.store.sitebundle import site_bundle

STORES = {"local": "/tmp/flyray-bench-store", "s3": "s3://flyray-bench/runs"}


def _timed(store: RunStore, cache: Path) -> tuple[float, int, int]:
    started = time.perf_counter()
    bundle = site_bundle(store, write=False, cache_dir=cache)
    return time.perf_counter() - started, bundle.size, len(bundle.distributions)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="cached builds to time per store")
    parser.add_argument("--target", type=float, default=1.0, help="seconds a cached build may take")
    args = parser.parse_args()
    met = True
    for name, root in STORES.items():
        store = RunStore(root)
        with tempfile.TemporaryDirectory(prefix="fb-site-") as folder:
            first, size, dists = _timed(store, Path(folder))
            cached = statistics.median(_timed(store, Path(folder))[0] for _ in range(args.runs))
        met = met and cached <= args.target
        print(
            f"{name:5} site bundle {size / 2**20:5.1f} MiB, {dists:2} distributions: "
            f"first build {first:.2f} s, cached {cached:.2f} s (median of {args.runs})"
        )
    print("target met" if met else f"target missed: a cached build over {args.target} s")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
