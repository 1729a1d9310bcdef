"""An ``s3://`` run store that cannot be used fails before a run writes or starts anything.

Against a real S3 API (moto's server, ``tests/s3server.py``): refused credentials and a
missing bucket; a closed port for an endpoint that does not answer. The error is a
``RunStoreError`` naming the store's URI and the cause, never the secret; no Ray cluster is
started (``new_cluster`` is never reached) and nothing is written to the bucket.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest

import flyray
from flyray.config.settings import Settings
from flyray.errors import RunStoreError
from flyray.executors.localcluster import from_manifest
from flyray.store.preflight import check_reachable
from flyray.store.runstore import RunStore
from flyray.task.loader import load_task

TASKS = str(Path(__file__).parents[1] / "executors" / "lc_tasks.py")
CASES = {
    "refused-secret": (r"the credentials were refused \(The request signature"),
    "unknown-key": (r"the credentials were refused \(The AWS Access Key Id you provided"),
    "missing-bucket": (r"the bucket 'flyray-no-such-bucket' does not exist"),
    "closed-port": (r"the endpoint did not answer \(Could not connect to the endpoint URL"),
    "no-credentials": (r"no credentials were found \(set AWS_ACCESS_KEY_ID"),
}


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=sorted(CASES))
def broken_s3(request, s3_server, s3_bucket, monkeypatch, tmp_path) -> tuple[str, str]:
    """(store URI, expected cause) of a store that cannot be used, the environment set so."""
    uri = f"s3://{s3_bucket}/flyray"
    if request.param == "refused-secret":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-" + s3_server.secret_key)
    elif request.param == "unknown-key":
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFLYRAYNOSUCHKEY0")
    elif request.param == "missing-bucket":
        uri = "s3://flyray-no-such-bucket/flyray"
    elif request.param == "no-credentials":  # nor a file, a profile or an instance role
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.delenv(name)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    return uri, CASES[request.param]


def _assert_names_store_not_secret(error: RunStoreError, uri: str, cause: str, secret: str):
    text = str(error)
    assert f"the run store {uri} cannot be used: " in text, text
    assert re.search(cause, text), text
    assert secret not in text, text
    assert os.environ.get("AWS_SECRET_ACCESS_KEY", secret) not in text, text


def test_an_empty_prefix_of_an_existing_s3_bucket_passes(s3_bucket):
    check_reachable(RunStore(f"s3://{s3_bucket}/not/written/yet"))
    check_reachable(RunStore(f"s3://{s3_bucket}"))


def test_an_s3_store_that_cannot_be_used_is_refused_naming_uri_and_cause(broken_s3, s3_server):
    uri, cause = broken_s3
    with pytest.raises(RunStoreError) as info:
        check_reachable(RunStore(uri))
    _assert_names_store_not_secret(info.value, uri, cause, s3_server.secret_key)


def test_a_local_cluster_run_on_a_broken_s3_store_starts_no_cluster(
    broken_s3, s3_server, s3_bucket, monkeypatch
):
    uri, cause = broken_s3
    started = []
    real_new_cluster = from_manifest.new_cluster

    def spy(*args, **kwargs):  # records the call, then does what it always does
        started.append(args)
        return real_new_cluster(*args, **kwargs)

    monkeypatch.setattr(from_manifest, "new_cluster", spy)
    context = flyray.with_runcontext(mode="local-cluster", run_store=uri, fresh=True)
    with pytest.raises(RunStoreError) as info:
        context.run(load_task(TASKS, "squares_on_the_worker"), 10)
    _assert_names_store_not_secret(info.value, uri, cause, s3_server.secret_key)
    assert started == []
    assert s3_server.keys(s3_bucket) == []  # no bundle, inputs or record either


def test_a_cluster_mode_run_on_a_broken_s3_store_contacts_no_cluster(
    broken_s3, s3_server, s3_bucket
):
    uri, cause = broken_s3
    contacted = []

    def jobs_client(address, headers):  # the Jobs API client factory: never reached
        contacted.append(address)
        raise AssertionError("the cluster was contacted")

    from flyray.executors.jobs.cluster import ClusterExecutor

    settings = Settings.load(overrides={"run_store": uri, "address": "http://h:8265"})
    executor = ClusterExecutor(settings, jobs_client=jobs_client)
    task = load_task(TASKS, "sum_of_squares")
    with pytest.raises(RunStoreError) as info:
        executor.submit(task, (3,), {}, run_id="s3-refused")
    _assert_names_store_not_secret(info.value, uri, cause, s3_server.secret_key)
    assert contacted == []
    assert s3_server.keys(s3_bucket) == []


def test_an_s3_store_uses_s3fs_after_flyte_registers_obstore_for_s3(s3_bucket):
    """flyte registers obstore's fsspec class for ``s3`` when imported; the store keeps s3fs."""
    pytest.importorskip("flyte.storage._storage", reason="flyte (the reference) not installed")
    import fsspec
    import s3fs

    assert not issubclass(fsspec.get_filesystem_class("s3"), s3fs.S3FileSystem)
    store = RunStore(f"s3://{s3_bucket}")
    check_reachable(store)
    assert isinstance(store._fs, s3fs.S3FileSystem)
