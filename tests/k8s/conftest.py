"""Fixtures for the kuberay tests: ``fake_kube``, a test API server that plays KubeRay.

See ``tests/k8s/apiserver.py`` for what it emulates and the faults a test can set.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.manifest.kuberay import require_schema
from tests.procs import wait_until_gone


@pytest.fixture
def fake_kube(tmp_path: Path) -> Iterator[Any]:
    """A started FakeKube with ``kubeconfig_path`` written; stopped after the test.

    Teardown stops every Ray cluster its operator started and fails the test if a process of
    one is left, or if the fake operator itself raised (a bug of the fake).
    """
    require_schema()  # skips cleanly where ../shared is absent
    from tests.k8s.apiserver import FakeKube

    kube = FakeKube()
    kube.start()
    try:
        kube.kubeconfig(tmp_path / "kubeconfig")
        yield kube
    finally:
        kube.close()
    survivors = {str(d): wait_until_gone(str(d)) for d in kube.started_cluster_dirs}
    assert not any(survivors.values()), f"Ray processes outlived FakeKube: {survivors}"
    assert not kube.operator_errors, "the fake operator failed:\n" + "\n".join(kube.operator_errors)


@pytest.fixture
def kube_api(fake_kube: Any) -> Iterator[Any]:
    """A ``kubernetes.client.ApiClient`` for ``fake_kube`` (closed after the test)."""
    api = fake_kube.api_client()
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def crds(kube_api: Any) -> Any:
    """``CustomObjectsApi`` on ``kube_api`` (the fake server here, the real one under real/)."""
    from kubernetes import client

    return client.CustomObjectsApi(kube_api)


@pytest.fixture
def core(kube_api: Any) -> Any:
    """``CoreV1Api`` on ``kube_api``."""
    from kubernetes import client

    return client.CoreV1Api(kube_api)


@pytest.fixture
def kube_env(fake_kube: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """The caller's environment for ``fake_kube``: its kubeconfig, a shared local run store."""
    from flyray.store.runstore import RunStore

    monkeypatch.setenv("KUBECONFIG", str(fake_kube.kubeconfig_path))
    store = str(tmp_path / "runs")
    monkeypatch.setenv("FLYRAY_RUN_STORE", store)
    monkeypatch.setenv("FLYRAY_SHARED_RUN_STORE", "1")
    return RunStore(store)
