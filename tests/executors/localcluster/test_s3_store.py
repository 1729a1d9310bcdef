"""local-cluster mode with an ``s3://`` run store on a real S3 API (moto's server).

``FLYRAY_RUN_STORE=s3://BUCKET/PREFIX`` and the AWS_* variables in the caller's environment:
the caller writes the bundle, inputs and record there; the Ray nodes (which inherit that
environment) fetch the bundle as the job's ``working_dir`` through Ray's own S3 download
(boto3, which reads ``AWS_ENDPOINT_URL``), the driver reads the inputs and writes the outputs
with s3fs; ``flyray runs list/show`` and ``flyray logs`` read them back from the bucket.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[3]
TASKS = str(ROOT / "tests" / "executors" / "lc_tasks.py")
FLYRAY = str(Path(sys.executable).parent / "flyray")
PREFIX = "team/flyray"


def _flyray(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLYRAY, *args],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_local_cluster_run_keeps_everything_in_the_s3_store(s3_server, s3_bucket, monkeypatch):
    uri = f"s3://{s3_bucket}/{PREFIX}"
    monkeypatch.setenv("FLYRAY_RUN_STORE", uri)
    done = _flyray(
        *("run", "--mode", "local-cluster", "--fresh", TASKS, "squares_on_the_worker"),
        *("--n", "10"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "285", done.stdout + done.stderr
    assert s3_server.secret_key not in done.stdout + done.stderr

    stored = s3_server.run_objects(s3_bucket, PREFIX)
    run_id, run, bundle = stored.run_id, stored.run, stored.code_bundle
    # flyray never GETs a bundle (it HEADs and PUTs it): these are Ray's working_dir downloads
    fetched = [line for line in s3_server.requests() if f"GET /{s3_bucket}/{bundle}" in line]
    assert fetched, s3_server.requests()[-20:]

    listed = _flyray("runs", "list")
    assert listed.returncode == 0, listed.stderr
    assert run_id in listed.stdout and "SUCCEEDED" in listed.stdout, listed.stdout
    shown = _flyray("runs", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    assert "SUCCEEDED" in shown.stdout, shown.stdout
    assert f"{uri}/runs/{run_id}/logs/job.log" in shown.stdout, shown.stdout
    stored_log = s3_server.client().get_object(Bucket=s3_bucket, Key=f"{run}/logs/job.log")
    log = stored_log["Body"].read().decode()
    assert log.strip()
    logs = _flyray("logs", run_id)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout == re.sub(r"\x1b\[[0-9;]*m", "", log)  # colours dropped off a terminal
