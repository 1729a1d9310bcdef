"""`flyray runs list --kuberay`: flyray's RayJobs found by label, whatever run store made them."""

from __future__ import annotations

from click.testing import CliRunner
from kubernetes import client

from flyray.cli.main import cli
from tests.k8s.test_apiserver import GROUP, NS, RAYJOBS, VERSION, rayjob


def test_lists_flyray_rayjobs_by_label(fake_kube, kube_api, monkeypatch):
    fake_kube.stuck_initializing = True  # the RayJobs need no Ray for this
    crds = client.CustomObjectsApi(kube_api)
    ours = rayjob("r0000000001")
    foreign = rayjob("r0000000002")
    foreign["metadata"]["name"] = "someone-elses"
    foreign["metadata"]["labels"] = {"team": "other"}
    for body in (ours, foreign):
        crds.create_namespaced_custom_object(GROUP, VERSION, NS, RAYJOBS, body)
    monkeypatch.setenv("KUBECONFIG", str(fake_kube.kubeconfig_path))
    result = CliRunner().invoke(cli, ["runs", "list", "--kuberay"])
    assert result.exit_code == 0, result.output
    assert ours["metadata"]["name"] in result.output and "r0000000001" in result.output
    assert "k8s_api.tiny" in result.output
    assert "someone-elses" not in result.output
