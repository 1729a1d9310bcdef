"""The kuberay executor when the API server goes away or changes under a run (real servers).

Faults are made with the TCP proxy between flyray and the API server (``proxy.py``): cut
connections, refuse them, or send them to a second API server on the same etcd.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from flyray.store.record import RunStatus
from tests.k8s.real.runs import GROUP, PLURAL, VERSION, Recorder, only_record, rayjobs, run

pytestmark = pytest.mark.realkube


def watch_answer(kube: Any, server: str, resource_version: str) -> int:
    """The status a RayJob watch from ``resource_version`` gets at ``server`` (200: events)."""
    from kubernetes import client, watch

    with kube.api_client(server=server) as api:
        custom = client.CustomObjectsApi(api)
        deadline = time.monotonic() + 30
        while True:
            stream = watch.Watch().stream(
                custom.list_namespaced_custom_object,
                *(GROUP, VERSION, "default", PLURAL),
                resource_version=resource_version,
                timeout_seconds=1,
            )
            try:
                for _ in stream:
                    return 200
                return 200
            except client.ApiException as exc:
                if exc.status != 429 or time.monotonic() > deadline:  # 429: cache still filling
                    return exc.status
            time.sleep(0.1)


@pytest.fixture
def failover(real_kube: Any) -> Any:
    """Starts a second API server and moves the proxy's clients to it; undone afterwards."""
    started: list[Any] = []

    def fail_over() -> tuple[str, int]:
        url, process = real_kube.add_apiserver()
        started.append(process)
        port = int(url.rsplit(":", 1)[1])
        return url, real_kube.proxy.retarget(("127.0.0.1", port))

    yield fail_over
    real_kube.proxy.retarget(("127.0.0.1", int(real_kube.server.rsplit(":", 1)[1])))
    for process in started:
        process.stop()


@pytest.mark.slow
def test_a_watch_that_gets_410_gone_lists_again(kube_env, real_kube, kube_api, operator, failover):
    """Mid-run, the load balancer moves flyray to another API server whose watch cache began
    after the last event flyray saw: its resumed watch gets 410 Gone, it lists again, goes on."""
    from kubernetes import client

    seen: dict[str, Any] = {}

    def move_to_a_younger_replica() -> None:
        bump = client.CoreV1Api(kube_api).create_namespaced_config_map(
            "default", {"metadata": {"generateName": "realkube-bump-"}}
        )  # a write after the last event flyray saw (the one that called this)
        url, seen["cut"] = failover()
        older = str(int(bump.metadata.resource_version) - 1)
        seen["answer"] = watch_answer(real_kube, url, older)

    recorder = Recorder()
    recorder.at(r"Running: cluster ready", move_to_a_younger_replica)
    assert run("sum_of_squares", 10, recorder=recorder).result() == 285
    assert seen["answer"] == 410, seen  # what a watch from before the move gets there
    assert seen["cut"] >= 1, seen  # flyray's watch was among the connections cut
    record = only_record(kube_env)
    assert record.status is RunStatus.SUCCEEDED
    moved = [
        (event["verb"], event["responseStatus"]["code"])
        for event in real_kube.audit_events(name=record.manifest_name)
        if event["apiserver"] == "kube-apiserver-2" and event["user"]["username"] == "admin"
    ]
    # the resumed watch: HTTP 200 carrying an ERROR event with code 410; then a new list
    assert moved[:2] == [("watch", 200), ("list", 200)], moved
    assert ("delete", 200) in moved, moved
    assert rayjobs(kube_api, record.run_id) == []


class Outage:
    """Called (as a progress hook): ``start()`` now and ``end()`` ``seconds`` later, in a thread.

    ``wait()`` returns once it is over, so no test begins during another's outage.
    """

    def __init__(self, seconds: float, start: Any, end: Any) -> None:
        self.seconds, self.start, self.end = seconds, start, end
        self.over = threading.Event()
        self.over.set()

    def __call__(self) -> None:
        self.over.clear()
        self.start()
        threading.Timer(self.seconds, self._end).start()

    def _end(self) -> None:
        try:
            self.end()
        finally:
            self.over.set()

    def wait(self) -> None:
        assert self.over.wait(self.seconds + 30), "the outage did not end"


@pytest.mark.slow
def test_a_run_outlives_a_second_without_a_healthy_api_server(
    kube_env, real_kube, kube_api, operator
):
    """For 1 s the load balancer in front of the API server accepts and closes connections:
    flyray's watch is dropped mid-run; it watches again and the run ends, leaving nothing."""
    from flyray.executors.localcluster.raystart import free_port

    proxy, server = real_kube.proxy, ("127.0.0.1", int(real_kube.server.rsplit(":", 1)[1]))
    nowhere = ("127.0.0.1", free_port())  # no backend: the proxy closes what it accepts
    outage = Outage(1.0, lambda: proxy.retarget(nowhere), lambda: proxy.retarget(server))
    assert _sum_through(outage) == 285
    _nothing_left(kube_env, kube_api)


@pytest.mark.slow
def test_a_run_outlives_ten_seconds_without_an_api_server(kube_env, real_kube, kube_api, operator):
    """For 10 s (an API server restart) connections to the API server are refused."""
    outage = Outage(10.0, real_kube.proxy.refuse, real_kube.proxy.resume)
    assert _sum_through(outage) == 285
    _nothing_left(kube_env, kube_api)


def _nothing_left(store: Any, kube_api: Any) -> None:
    """The run is recorded SUCCEEDED and its RayJob is gone."""
    record = only_record(store)
    assert record.status is RunStatus.SUCCEEDED
    assert rayjobs(kube_api, record.run_id) == []


def _sum_through(outage: Any) -> Any:
    """Run ``sum_of_squares(10)``; ``outage`` starts once the RayJob is Running. Its result."""
    recorder = Recorder()
    recorder.at(r"Running: cluster ready", outage)
    try:
        return run("sum_of_squares", 10, recorder=recorder).result()
    finally:
        outage.wait()
