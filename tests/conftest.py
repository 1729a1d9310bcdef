"""Shared fixtures: one real Ray cluster for the whole session, and a clean environment."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from flyray.executors.localcluster.cluster import LocalRayCluster
from flyray.executors.localcluster.raystart import NodeSpec


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
