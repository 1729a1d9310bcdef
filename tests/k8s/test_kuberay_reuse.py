"""kuberay mode with ``reuse_cluster=True``: one RayCluster, a RayJob per run that selects it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from flyray.cli.main import cli
from flyray.executors.kuberay.session import RAYCLUSTERS, KubeSession
from flyray.executors.kuberay.warm import collect_idle
from flyray.manifest.labels import IDLE_TIMEOUT_ANNOTATION, LAST_USED_ANNOTATION
from flyray.store.record import RunStatus
from tests.k8s.recording import Recorder
from tests.k8s.test_kuberay_executor import run
from tests.procs import wait_until_gone


def posts(fake_kube, plural: str) -> list:
    return [
        r
        for r in fake_kube.requests
        if r.method == "POST" and r.path.endswith(f"/{plural}") and not r.query.get("dryRun")
    ]


@pytest.mark.slow
def test_second_run_reuses_the_cluster_and_gc_deletes_it_when_idle(kube_env, fake_kube):
    first = Recorder()
    node = run("driver_node", recorder=first).result()
    (cluster,) = fake_kube.objects("rayclusters")
    name = cluster["metadata"]["name"]
    assert name.startswith("kr-reused-")
    assert any(
        line.startswith(f"created reusable RayCluster default/{name}") for line in first.lines
    )
    assert fake_kube.objects("rayjobs") == []  # the run's RayJob is gone, the cluster stays
    annotations = cluster["metadata"]["annotations"]
    assert float(annotations[IDLE_TIMEOUT_ANNOTATION]) == 1800
    assert len(posts(fake_kube, "rayclusters")) == 1

    second = Recorder()
    assert run("driver_node", recorder=second).result() == node  # the same head node
    assert any(line.startswith(f"reusing RayCluster default/{name}") for line in second.lines)
    assert len(posts(fake_kube, "rayclusters")) == 1 and len(posts(fake_kube, "rayjobs")) == 2
    records = kube_env.list_records()
    assert [r.status for r in records] == [RunStatus.SUCCEEDED] * 2
    assert {r.cluster["raycluster"] for r in records} == {name}
    rayjob = kube_env.read_manifest(records[0].run_id)
    assert "clusterSelector" in rayjob and "rayClusterSpec" not in rayjob

    listed = CliRunner().invoke(cli, ["cluster", "list", "--kuberay"])
    assert re.search(rf"{name} +ready +0/0", listed.output), listed.output
    with KubeSession() as session:
        assert collect_idle(session, report=print) == []  # used just now: kept
        past = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat(timespec="seconds")
        session.patch(
            RAYCLUSTERS, name, {"metadata": {"annotations": {LAST_USED_ANNOTATION: past}}}
        )
    collected = CliRunner().invoke(cli, ["cluster", "gc", "--kuberay"])
    assert f"deleted RayCluster default/{name}: its idle timeout ended" in collected.output
    fake_kube.wait_for(lambda: not fake_kube.objects("rayclusters"), timeout=60)
    assert fake_kube.objects("pods") == []
    for folder in fake_kube.started_cluster_dirs:
        assert wait_until_gone(str(folder)) == [], folder


def test_down_names_only_flyrays_reusable_clusters(kube_env, fake_kube):
    result = CliRunner().invoke(cli, ["cluster", "down", "--kuberay", "nope"])
    assert result.exit_code == 1
    assert "NAME is not a reusable RayCluster of flyray's (there: none); got 'nope'" in (
        result.output
    )
