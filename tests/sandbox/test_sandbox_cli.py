"""``flyray sandbox``: refusals without root or network namespaces, and a whole life for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from flyray.cli.main import cli
from flyray.executors.localcluster.procs import is_running
from flyray.sandbox.owner import Owner
from flyray.sandbox.pods.net import PREFIX, ip, netns_available
from flyray.sandbox.state import Supervisor
from tests.manifest.kuberay import require_schema

ROOT = Path(__file__).parents[2]
FLYRAY = str(Path(sys.executable).parent / "flyray")


def test_up_without_root_says_why_and_starts_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    result = CliRunner().invoke(cli, ["sandbox", "up", "--dir", str(tmp_path / "sbx")])
    assert result.exit_code == 1
    assert "the sandbox needs root" in result.output and "sudo -E" in result.output
    assert not (tmp_path / "sbx").exists()


def test_up_without_network_namespaces_says_why(tmp_path, monkeypatch):
    import flyray.sandbox.pods.net as net

    monkeypatch.setattr(net, "netns_available", lambda: "no `ip` command (Debian iproute2)")
    result = CliRunner().invoke(cli, ["sandbox", "up", "--dir", str(tmp_path / "sbx")])
    assert result.exit_code == 1
    assert "cannot run pods here: no `ip` command" in result.output


def test_status_and_down_when_nothing_runs(tmp_path):
    runner = CliRunner()
    status = runner.invoke(cli, ["sandbox", "status", "--dir", str(tmp_path)])
    assert status.exit_code == 0 and "not running" in status.output
    down = runner.invoke(cli, ["sandbox", "down", "--dir", str(tmp_path)])
    assert down.exit_code == 0 and "none ran" in down.output


def _flyray(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLYRAY, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.realkube
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_up_run_the_seed_down_leaves_nothing(tmp_path):
    require_schema()  # the realkube tests' binaries are built for sessions that have ../shared
    missing = netns_available()
    if missing:
        pytest.skip(f"pods cannot run here: {missing}")
    folder = tmp_path / "sbx"
    up = _flyray("sandbox", "up", "--dir", str(folder))
    try:
        assert up.returncode == 0, up.stderr
        for step in ("starting kuberay-operator", "starting the process kubelet", "sandbox: up in"):
            assert step in up.stderr, up.stderr
        exports = dict(
            line.removeprefix("export ").split("=", 1) for line in up.stdout.splitlines()
        )
        assert set(exports) == {"KUBECONFIG", "FLYRAY_RUN_STORE", "FLYRAY_SHARED_RUN_STORE"}
        supervisor = Supervisor.read(folder)
        assert supervisor is not None and supervisor.alive()

        again = _flyray("sandbox", "up", "--dir", str(folder))  # finds the running one
        assert again.returncode == 0 and again.stdout == up.stdout, again.stderr

        run = _flyray(
            *("run", "--mode", "kuberay", "examples/seed.py", "my_ray_task", "--n", "10"),
            env=exports,
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip().splitlines()[-1] == "285", run.stdout + run.stderr

        status = _flyray("sandbox", "status", "--dir", str(folder))
        assert status.returncode == 0, status.stderr
        assert "sandbox: running for" in status.stdout and "Complete" in status.stdout, (
            status.stdout
        )
        groups = Owner(folder / "controlplane").groups()
        assert {group["name"] for group in groups} >= {"etcd", "kube-apiserver", "kuberay-operator"}
    finally:
        down = _flyray("sandbox", "down", "--dir", str(folder))
    assert down.returncode == 0, down.stderr
    assert "nothing of it is left" in down.stderr
    assert not supervisor.alive()
    assert not (folder / "controlplane").exists()
    assert not [n for n in ip("netns", "list").split() if n.startswith(f"{PREFIX}{supervisor.pid}")]
    links = json.loads(ip("-j", "link", "show", "type", "bridge") or "[]")
    assert f"{PREFIX}{supervisor.pid}" not in [link["ifname"] for link in links]
    assert not list(Path("/var/tmp").glob(f"flyray-kubelet-{supervisor.pid}-*"))
    deadline = time.monotonic() + 30
    while left := [g["name"] for g in groups if is_running(g["pgid"], g["start"])]:
        assert time.monotonic() < deadline, f"outlived the sandbox: {left}"
        time.sleep(0.2)


def test_a_failed_start_quotes_the_supervisors_log_and_leaves_nothing(tmp_path):
    missing = netns_available() if os.geteuid() == 0 else "not root"
    if missing:
        pytest.skip(f"the sandbox cannot start here at all: {missing}")
    folder = tmp_path / "sbx"
    env = {"GO": "/nonexistent/go", "FLYRAY_K8S_CACHE": str(tmp_path / "cache")}
    up = _flyray("sandbox", "up", "--dir", str(folder), env=env, timeout=120)
    assert up.returncode == 1
    assert "the sandbox did not start (its supervisor exited 1)" in up.stderr, up.stderr
    assert "no Go toolchain" in up.stderr, up.stderr  # the build's own words, quoted
    assert up.stdout == ""
    assert not (folder / "serve.pid").exists() and not (folder / "controlplane").exists()
