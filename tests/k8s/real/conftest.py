"""Fixtures of the ``realkube`` tests: a real kube-apiserver (with etcd) for the session.

The binaries are built before the first test runs (``pytest_collection_finish``), outside any
test's timeout, when a selected test is marked ``realkube``; a build failure fails those
tests with the build log's end. Without ``../shared/kuberay`` they skip, and nothing is built.
The real KubeRay operator and the status kubelet start only when a test asks for them, once
per session; a failing test that used the operator gets the end of its log in its report.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flyray.sandbox.build import KubeBuildError, ensure_binaries
from tests.manifest.kuberay import RAYJOB_SCHEMA, SHARED, require_schema
from tests.procs import wait_until_gone

_build_error: list[str] = []


def _say(config: pytest.Config) -> Any:
    """Print one line past pytest's output capture (progress while the build runs)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return print
    return lambda line: reporter.write_line(line, flush=True)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build (or find) the binaries once, before any test, if a realkube test will run."""
    if not RAYJOB_SCHEMA.is_file() or session.config.option.collectonly:
        return
    if not any(item.get_closest_marker("realkube") for item in session.items):
        return
    try:
        ensure_binaries(say=_say(session.config))
    except KubeBuildError as exc:
        _build_error.append(str(exc))


@pytest.fixture(scope="session")
def real_kube() -> Iterator[Any]:
    """etcd, kube-apiserver and the garbage collector on loopback, with KubeRay's CRDs."""
    require_schema()  # skips cleanly where ../shared is absent
    from flyray.sandbox.controlplane import KubeStartError, RealKube

    if _build_error:
        pytest.fail(_build_error[0], pytrace=False)
    try:
        bin_dir = ensure_binaries()
    except KubeBuildError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        kube = RealKube(bin_dir, SHARED).start()
    except KubeStartError as exc:
        pytest.fail(f"the real Kubernetes control plane did not start: {exc}", pytrace=False)
    keep = os.environ.get("FLYRAY_REALKUBE_KEEP") == "1"  # logs, audit log, etcd data
    try:
        yield kube
    finally:
        folder = str(kube.dir)
        kube.close(keep_dir=keep)
        if keep:
            print(f"realkube: kept {folder}")
    left = wait_until_gone(folder)
    assert not left, f"processes of the real control plane outlived it: {left}"


@pytest.fixture
def kube_api(real_kube: Any) -> Iterator[Any]:
    """An admin ``kubernetes.client.ApiClient`` straight to the real API server."""
    api = real_kube.api_client()
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def kube_env(real_kube: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """The caller's environment for ``real_kube``: its kubeconfig, a shared local run store."""
    from flyray.store.runstore import RunStore

    monkeypatch.setenv("KUBECONFIG", str(real_kube.kubeconfig_path))
    store = str(tmp_path / "runs")
    monkeypatch.setenv("FLYRAY_RUN_STORE", store)
    monkeypatch.setenv("FLYRAY_SHARED_RUN_STORE", "1")
    return RunStore(store)


@pytest.fixture
def operator(real_kube: Any, ray_cluster: Any) -> Iterator[Any]:
    """The stand-in KubeRay operator (user kuberay-operator), running RayJobs on ``ray_cluster``."""
    from tests.k8s.real.standin import StandInOperator

    api = real_kube.api_client(token=real_kube.credentials.operator_token)
    try:
        with StandInOperator(api, "default", ray_cluster) as standin:
            yield standin
    finally:
        api.close()
    assert not standin.errors, "the stand-in operator failed:\n" + "\n".join(standin.errors)


@pytest.fixture(scope="session")
def kuberay_operator(real_kube: Any) -> Iterator[Any]:
    """The REAL KubeRay operator, watching namespace ``kuberay-real`` (``operator.py``)."""
    from flyray.sandbox.controlplane import KubeStartError
    from flyray.sandbox.operator import start_operator

    try:
        operator = start_operator(real_kube)
    except KubeStartError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield operator
    finally:
        operator.stop()


@pytest.fixture(scope="session")
def status_kubelet(real_kube: Any, kuberay_operator: Any) -> Iterator[Any]:
    """Binds and reports Running + Ready every pod of the operator's namespace (``kubelet.py``)."""
    from flyray.sandbox.operator import NAMESPACE
    from tests.k8s.real.kubelet import StatusKubelet

    api = real_kube.api_client()
    try:
        with StatusKubelet(api, NAMESPACE) as kubelet:
            yield kubelet
    finally:
        api.close()
    assert not kubelet.errors, "the status kubelet failed:\n" + "\n".join(kubelet.errors)


@pytest.fixture(scope="session")
def process_kubelet(real_kube: Any, kuberay_operator: Any) -> Iterator[Any]:
    """Runs every pod of ``kuberay-pods`` as processes in network namespaces (level 3)."""
    from flyray.sandbox.operator import PODS_NAMESPACE
    from flyray.sandbox.pods.kubelet import ProcessKubelet
    from flyray.sandbox.pods.net import netns_available

    missing = netns_available()
    if missing:
        pytest.skip(f"pods cannot run here: {missing} (needs root and iproute2)")
    api = real_kube.api_client()
    keep = os.environ.get("FLYRAY_REALKUBE_KEEP") == "1"
    kubelet = ProcessKubelet(api, PODS_NAMESPACE, real_kube.credentials)
    try:
        yield kubelet.open()
    finally:
        kubelet.close(keep_dir=keep)
        api.close()
    assert not kubelet.errors, "the process kubelet failed:\n" + "\n".join(kubelet.errors)


@pytest.fixture
def pods_env(process_kubelet: Any, real_kube: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The caller's environment: the kubeconfig, and a run store the pods see."""
    from flyray.store.runstore import RunStore

    store = str(process_kubelet.shared / f"runs-{secrets.token_hex(4)}")
    monkeypatch.setenv("KUBECONFIG", str(real_kube.kubeconfig_path))
    monkeypatch.setenv("FLYRAY_RUN_STORE", store)
    monkeypatch.setenv("FLYRAY_SHARED_RUN_STORE", "1")
    return RunStore(store)


@pytest.fixture
def objects(kube_api: Any, real_kube: Any, process_kubelet: Any) -> Iterator[Any]:
    """The namespace (``objects.Namespace``); afterwards the kubelet has met no error, and a
    failed test's RayJobs go."""
    from flyray.executors.kuberay.session import RAYJOBS, KubeSession
    from flyray.sandbox.operator import PODS_NAMESPACE
    from tests.k8s.real.objects import Namespace

    errors = len(process_kubelet.errors)
    namespace = Namespace(kube_api, PODS_NAMESPACE)
    yield namespace
    for rayjob in namespace.ray("rayjobs"):  # nothing, unless the test failed half-way
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("KUBECONFIG", str(real_kube.kubeconfig_path))
            KubeSession(namespace=PODS_NAMESPACE).delete(RAYJOBS, rayjob["metadata"]["name"])
    assert process_kubelet.errors[errors:] == [], "the process kubelet failed"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test that used the operator: add the end of the operator's log to its report."""
    outcome = yield
    report = outcome.get_result()
    operator = getattr(item, "funcargs", {}).get("kuberay_operator")
    if report.failed and operator is not None:
        report.sections.append(("kuberay-operator log", operator.tail()))
