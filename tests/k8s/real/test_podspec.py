"""The process kubelet reads a pod's env and command as a kubelet does (no cluster needed)."""

from __future__ import annotations

import base64

import pytest

from flyray.sandbox.pods.spec import PodSpecError, container_argv, container_env, expand

POD = {
    "metadata": {
        "name": "rc-head-x1",
        "namespace": "kuberay-pods",
        "uid": "u-1",
        "labels": {"ray.io/cluster": "rc", "ray.io/group": "headgroup"},
    },
    "spec": {"nodeName": "node-a", "serviceAccountName": "default", "containers": []},
    "status": {"podIP": "10.213.7.2", "podIPs": [{"ip": "10.213.7.2"}], "hostIP": "127.0.0.1"},
}
SECRETS = {"creds": {"api-key": base64.b64encode(b"s3cret").decode()}}
CONFIGMAPS = {"settings": {"MODE": "fast", "LEVEL": "3"}}


def lookup(kind, name):
    return (SECRETS if kind == "secret" else CONFIGMAPS).get(name)


def env_of(container):
    return container_env(
        POD, container, base={"PATH": "/venv/bin"}, lookup=lookup, node_capacity={"cpu": "2"}
    )


def test_references_expand_as_kubernetes_does():
    env = {"A": "1", "B": "two"}
    assert expand("$(A)-$(B)", env) == "1-two"
    assert expand("$$(A) $(MISSING) $$", env) == "$(A) $(MISSING) $"


def test_field_resource_secret_and_configmap_values():
    container = {
        "name": "ray-head",
        "resources": {"limits": {"cpu": "1500m", "memory": "1Gi"}, "requests": {"cpu": "500m"}},
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
        "env": [
            {
                "name": "CLUSTER",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['ray.io/cluster']"}},
            },
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "CPUS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {
                "name": "MEM_MI",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
            {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "api-key"}}},
            {"name": "ADDR", "value": "$(POD).$(CLUSTER):$(CFG_LEVEL)"},
        ],
    }
    env = env_of(container)
    assert env["PATH"] == "/venv/bin"
    assert env["CFG_MODE"] == "fast"
    assert (env["CLUSTER"], env["POD"], env["IP"]) == ("rc", "rc-head-x1", "10.213.7.2")
    assert (env["CPUS"], env["MEM_MI"]) == ("2", "1024")  # CPU rounded up to whole cores
    assert env["KEY"] == "s3cret"
    assert env["ADDR"] == "rc-head-x1.rc:3"


def test_an_unset_resource_falls_back_to_the_limit_then_the_node():
    container = {
        "name": "c",
        "resources": {"limits": {"cpu": "3"}},
        "env": [
            {"name": "REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
            {"name": "NODE", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        ],
    }
    assert env_of(container)["REQ"] == "3"
    assert env_of({**container, "resources": {}})["NODE"] == "2"


def test_a_missing_secret_is_a_config_error_unless_optional():
    ref = {"name": "nowhere", "key": "k"}
    container = {"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": ref}}]}
    with pytest.raises(PodSpecError, match='secret "nowhere" not found'):
        env_of(container)
    optional = {"name": "X", "valueFrom": {"secretKeyRef": {**ref, "optional": True}}}
    assert "X" not in env_of({"name": "c", "env": [optional]})


def test_argv_is_command_then_args_expanded():
    container = {"name": "c", "command": ["/bin/bash", "-c", "--"], "args": ["echo $(POD) $HOME"]}
    assert container_argv(container, {"POD": "p"}) == ["/bin/bash", "-c", "--", "echo p $HOME"]
    with pytest.raises(PodSpecError, match="has no command"):
        container_argv({"name": "c", "args": ["x"]}, {})
