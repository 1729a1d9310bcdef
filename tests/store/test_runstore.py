"""The run store on a local path, a file:// URI and fsspec's memory:// file system."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from flyray import RunStatus
from flyray.errors import RunStoreError
from flyray.store import DEFAULT_RUN_STORE, ErrorInfo, RunRecord, RunStore


def test_record_round_trip(any_store: RunStore) -> None:
    record = RunRecord(run_id="r1", task="env.fn", mode="cluster", status=RunStatus.RUNNING)
    any_store.save_record(record)
    assert record.updated_at is not None
    assert any_store.load_record("r1") == record


def test_unknown_run_says_how_to_see_runs(any_store: RunStore) -> None:
    with pytest.raises(RunStoreError, match=r"no run 'r404' in the run store .*flyray runs list"):
        any_store.load_record("r404")


def test_list_records_newest_first(any_store: RunStore) -> None:
    assert any_store.list_records() == []
    for run_id, created in [("ra", "2026-01-02"), ("rb", "2026-01-03"), ("rc", "2026-01-01")]:
        record = RunRecord(run_id=run_id, task="env.fn", mode="cluster")
        record.created_at = f"{created}T00:00:00.000000+00:00"
        any_store.save_record(record)
    any_store.write_inputs("rd", (), {})  # a run folder without a record yet: not listed
    assert [r.run_id for r in any_store.list_records()] == ["rb", "ra", "rc"]


def test_s3_a_run_recorded_by_another_client_is_listed_at_once(s3_server, s3_bucket) -> None:
    """The store lists without fsspec's listing cache: drivers and other callers write too."""
    store = RunStore(f"s3://{s3_bucket}/flyray")
    store.save_record(RunRecord(run_id="mine", task="env.fn", mode="cluster"))
    assert [r.run_id for r in store.list_records()] == ["mine"]
    theirs = RunRecord(run_id="theirs", task="env.fn", mode="cluster")
    theirs.created_at = "2099-01-01T00:00:00.000000+00:00"
    body = json.dumps(theirs.to_dict()).encode()
    s3_server.client().put_object(Bucket=s3_bucket, Key="flyray/runs/theirs/record.json", Body=body)
    assert [r.run_id for r in store.list_records()] == ["theirs", "mine"]
    assert [r.run_id for r in RunStore(store.root).list_records()] == ["theirs", "mine"]


def test_inputs_outputs_and_errors(any_store: RunStore) -> None:
    any_store.write_inputs("r1", (1, [2]), {"k": "v"})
    assert any_store.read_inputs("r1") == ((1, [2]), {"k": "v"})
    with pytest.raises(RunStoreError, match=r"run 'r1' has no outputs .*flyray logs r1"):
        any_store.read_outputs("r1")
    any_store.write_outputs("r1", {"answer": 42})
    assert any_store.read_outputs("r1") == {"answer": 42}
    assert any_store.read_error("r1") is None
    error = ErrorInfo(type="ValueError", message="bad", traceback="Traceback ...\nValueError: bad")
    any_store.write_error("r1", error)
    assert any_store.read_error("r1") == error


def test_missing_inputs_name_the_run(any_store: RunStore) -> None:
    with pytest.raises(RunStoreError, match=r"run 'r2' has no inputs in the run store"):
        any_store.read_inputs("r2")


def test_manifest_and_logs(any_store: RunStore) -> None:
    assert any_store.read_manifest("r1") is None
    any_store.write_manifest("r1", "apiVersion: ray.io/v1\nkind: RayJob\n")
    assert any_store.read_manifest("r1") == "apiVersion: ray.io/v1\nkind: RayJob\n"
    assert any_store.read_log("r1") == ""
    any_store.append_log("r1", "first\n")
    any_store.append_log("r1", "second\n")
    assert any_store.read_log("r1") == "first\nsecond\n"
    any_store.write_log("r1", "replaced\n")
    any_store.append_log("r1", "more\n")
    assert any_store.read_log("r1") == "replaced\nmore\n"


def test_bundles_are_stored_once_by_sha256(any_store: RunStore) -> None:
    data = b"PK fake zip bytes"
    sha = hashlib.sha256(data).hexdigest()
    assert not any_store.has_bundle(sha)
    uri = any_store.put_bundle(sha, data)
    assert any_store.has_bundle(sha)
    assert uri == any_store.uri("bundles", f"{sha}.zip") and uri.endswith(f"/{sha}.zip")
    assert any_store.put_bundle(sha, data) == uri
    with pytest.raises(RunStoreError, match="does not match the sha256"):
        any_store.put_bundle("0" * 64, data)


def test_bad_run_ids_are_rejected(any_store: RunStore) -> None:
    for bad in ["../escape", "a/b", "", ".hidden"]:
        with pytest.raises(RunStoreError, match="is not a valid run id"):
            any_store.write_outputs(bad, 1)


def test_corrupt_record_is_named_and_skipped_in_lists(any_store: RunStore) -> None:
    any_store.save_record(RunRecord(run_id="good", task="env.fn", mode="cluster"))
    any_store._write(any_store._run_path("bad", "record.json"), b"{not json")
    with pytest.raises(RunStoreError, match=r"record of run 'bad' .*record\.json.* is corrupt"):
        any_store.load_record("bad")
    assert [r.run_id for r in any_store.list_records()] == ["good"]


# -- local stores ------------------------------------------------------------------------


def test_local_layout_and_uris(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "s")
    assert store.is_local and store.root == str(tmp_path / "s")
    store.save_record(RunRecord(run_id="r1", task="env.fn", mode="cluster"))
    store.write_inputs("r1", (), {})
    store.append_log("r1", "x")
    run = tmp_path / "s" / "runs" / "r1"
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*")) == [
        "inputs.pkl",
        "logs",
        "logs/job.log",
        "record.json",
    ]
    assert store.local_path("runs", "r1") == run
    assert store.uri("runs", "r1", "record.json") == (run / "record.json").as_uri()


def test_file_uri_and_path_are_the_same_store(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "a store%20")
    store.write_outputs("r1", "hello")
    assert store.uri().endswith("/a%20store%2520")
    for via_uri in [RunStore(store.uri()), RunStore((tmp_path / "a store%20").as_uri())]:
        assert via_uri.is_local and via_uri.root == store.root
        assert via_uri.read_outputs("r1") == "hello"


def test_record_writes_are_atomic_renames(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "s")
    record = RunRecord(run_id="r1", task="env.fn", mode="cluster")
    path = tmp_path / "s" / "runs" / "r1" / "record.json"
    store.save_record(record)
    inode = path.stat().st_ino
    record.status = RunStatus.SUCCEEDED
    store.save_record(record)
    assert path.stat().st_ino != inode  # replaced by a rename, never rewritten in place
    assert [p.name for p in path.parent.iterdir()] == ["record.json"]  # no temp files left


def test_default_store_is_in_the_home_folder() -> None:
    assert DEFAULT_RUN_STORE == "~/.flyray/runs"
    assert RunStore(DEFAULT_RUN_STORE).root == str(Path.home() / ".flyray" / "runs")


def test_a_memory_store_has_no_local_path() -> None:
    store = RunStore("memory://flyray-test-not-local")
    assert not store.is_local
    assert store.uri("runs", "r1").startswith("memory://")
    with pytest.raises(RunStoreError, match="is not a local folder"):
        store.local_path()


def test_importing_flyray_imports_no_fsspec() -> None:
    code = (
        "import sys, flyray, flyray.store, flyray.entrypoint;"
        "print(sorted(m for m in ('fsspec', 'pathspec', 'ray', 'kubernetes') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
