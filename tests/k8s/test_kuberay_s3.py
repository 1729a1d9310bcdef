"""kuberay mode with an ``s3://`` run store that cannot be used: refused before Kubernetes.

moto's real S3 server (``tests/s3server.py``) refuses the credentials or has no such bucket;
the test API server (``fake_kube``) records every request, so the test sees that flyray made
no request at all (no discovery, no dry run, no create) and wrote nothing to the bucket.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import flyray
from flyray.errors import RunStoreError
from flyray.task.loader import load_task

TASKS = str(Path(__file__).with_name("kr_tasks.py"))


@pytest.mark.parametrize("case", ["refused-secret", "missing-bucket"])
def test_a_kuberay_run_on_a_broken_s3_store_creates_no_rayjob(
    case, fake_kube, s3_server, s3_bucket, monkeypatch
):
    monkeypatch.setenv("KUBECONFIG", str(fake_kube.kubeconfig_path))
    uri = f"s3://{s3_bucket}/flyray"
    if case == "refused-secret":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-" + s3_server.secret_key)
        cause = r"the credentials were refused \(The request signature"
    else:
        uri = "s3://flyray-no-such-bucket/flyray"
        cause = r"the bucket 'flyray-no-such-bucket' does not exist"
    context = flyray.with_runcontext(mode="kuberay", run_store=uri, store_secret="run-store")
    with pytest.raises(RunStoreError) as info:
        context.run(load_task(TASKS, "sum_of_squares"), 3)
    text = str(info.value)
    assert f"the run store {uri} cannot be used: " in text and re.search(cause, text), text
    assert s3_server.secret_key not in text
    assert [r.path for r in fake_kube.requests] == []  # not even discovery or a dry run
    assert s3_server.keys(s3_bucket) == []
