"""Shared fixtures: one real Ray cluster and one real S3 API for the whole session, and a clean
environment."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from flyray.executors.localcluster.cluster import LocalRayCluster
from flyray.executors.localcluster.raystart import NodeSpec
from tests.s3server import S3Server


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[LocalRayCluster]:
    """A head (2 CPUs) and one worker (1 CPU, resource "workers"), with dashboard and client."""
    cluster = LocalRayCluster(
        head=NodeSpec(name="head", head=True, num_cpus=2),
        workers=[NodeSpec(name="worker-0", num_cpus=1, resources={"workers": 1})],
        dashboard=True,
        client_server=True,
        # Jobs run `python`: make it this interpreter, which has flyray installed.
        env={"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
    )
    with cluster:
        yield cluster


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 (``tests/s3server.py``); its log stays in the temp dir."""
    server = S3Server.start("127.0.0.1", tmp_path_factory.mktemp("s3") / "moto.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new bucket of ``s3_server``, whose credentials and endpoint are in the environment.

    Set in os.environ, they reach every process a test starts: Ray nodes, job drivers and
    Ray's runtime-env agent, which downloads an ``s3://`` working_dir with boto3.
    """
    for name in list(os.environ):
        if name.startswith("AWS_") and name != "AWS_CA_BUNDLE":
            monkeypatch.delenv(name)
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server.create_bucket(f"flyray-{secrets.token_hex(4)}")


@pytest.fixture(scope="session")
def clusters_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warm-cluster registry of the test session's own, never the user's."""
    return tmp_path_factory.mktemp("clusters")


@pytest.fixture(autouse=True)
def clean_ray_env(monkeypatch: pytest.MonkeyPatch, clusters_dir: Path) -> None:
    """Keep RAY_ADDRESS and FLYRAY_* of the calling shell out of every test.

    FLYRAY_CLUSTERS_DIR points at the session's registry, so that no local-cluster run of a
    test uses a warm cluster of the user's.
    """
    for name in list(os.environ):
        if name == "RAY_ADDRESS" or name.startswith("FLYRAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FLYRAY_CLUSTERS_DIR", str(clusters_dir))


@pytest.fixture
def ray_tmpdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A short private RAY_TMPDIR for a Ray that a test's code starts with ray.init()."""
    path = tempfile.mkdtemp(prefix="frt-")  # short: Ray's unix socket paths must fit 107 bytes
    monkeypatch.setenv("RAY_TMPDIR", path)
    yield path
    shutil.rmtree(path, ignore_errors=True)
