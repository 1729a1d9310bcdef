"""A realkube test session killed from outside leaves nothing: no process, namespace, bridge.

A child pytest runs the level-3 seed test; once its pods run Ray, the whole child process group
is SIGKILLed, as a CI timeout does. The control plane's components die with it
(``PR_SET_PDEATHSIG``) and its watchdog removes the pods' processes and network namespaces,
the bridge and the session's folders, by the records the session wrote.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from flyray.sandbox.owner import Owner
from flyray.sandbox.pods.kubelet import DIR_PARENT, DIR_PREFIX
from flyray.sandbox.pods.net import PREFIX, ip, netns_available
from tests.manifest.kuberay import require_schema

pytestmark = [pytest.mark.realkube, pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).parents[3]
SEED_TEST = "tests/k8s/real/test_pods.py::test_the_seed_task_returns_285_from_pods_that_really_ran"
PODS_UP_TIMEOUT_S = 300.0
GONE_TIMEOUT_S = 60.0


def _netns(owner: int) -> list[str]:
    names = [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]
    return [name for name in names if name.startswith(f"{PREFIX}{owner}-")]


def _bridges(owner: int) -> list[str]:
    links = json.loads(ip("-j", "link", "show", "type", "bridge") or "[]")
    return [link["ifname"] for link in links if link["ifname"] == f"{PREFIX}{owner}"]


def _netns_pids(names: list[str]) -> set[int]:
    found: set[int] = set()
    for name in names:
        try:
            found |= {int(pid) for pid in ip("netns", "pids", name).split()}
        except Exception:  # the namespace went meanwhile
            continue
    return found


def _session_folder(owner: int) -> Path | None:
    for folder in Path(tempfile.gettempdir()).glob("flyray-realkube-*"):
        record = Owner(folder).owner()
        if record and record["pid"] == owner:
            return folder
    return None


def _live(pids: set[int]) -> set[int]:
    def running(pid: int) -> bool:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[1].split()[0] != "Z"

    return {pid for pid in pids if running(pid)}


def test_a_sigkilled_session_leaves_no_process_namespace_or_bridge(tmp_path: Path) -> None:
    require_schema()
    missing = netns_available()
    if missing:
        pytest.skip(f"pods cannot run here: {missing}")
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", SEED_TEST],
        cwd=ROOT,
        stdout=(tmp_path / "child.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group, which the kill below takes whole
        env={**os.environ, "FLYRAY_RUN_STORE": str(tmp_path / "runs")},
    )
    try:
        deadline = time.monotonic() + PODS_UP_TIMEOUT_S
        # wait until Ray runs in at least two pods (head and a worker) of the child's kubelet
        while len([n for n in _netns(child.pid) if _netns_pids([n])]) < 2:
            log = (tmp_path / "child.log").read_text(errors="replace")
            assert child.poll() is None, f"the child session ended first:\n{log[-3000:]}"
            assert time.monotonic() < deadline, f"no pods ran Ray:\n{log[-3000:]}"
            time.sleep(0.5)
        folder = _session_folder(child.pid)
        assert folder is not None, "the child's control plane folder was not found"
        groups = Owner(folder).groups()
        assert {group["name"] for group in groups} >= {"etcd", "kube-apiserver"}, groups
        pod_pids = _netns_pids(_netns(child.pid))
        leaders = {group["pgid"] for group in groups}
        assert _live(leaders) == leaders, "a component of the child was not running"

        os.killpg(child.pid, signal.SIGKILL)
        child.wait(30)
        killed_at = time.monotonic()

        def left() -> list[str]:
            found = [f"process {pid}" for pid in sorted(_live(leaders | pod_pids))]
            found += [f"network namespace {name}" for name in _netns(child.pid)]
            found += [f"bridge {name}" for name in _bridges(child.pid)]
            found += [f"folder {path}" for path in (folder,) if path.exists()]
            kubelet_dirs = Path(DIR_PARENT).glob(f"{DIR_PREFIX}{child.pid}-*")
            found += [f"folder {path}" for path in kubelet_dirs]
            return found

        while (remaining := left()) and time.monotonic() - killed_at < GONE_TIMEOUT_S:
            time.sleep(0.2)
        assert not remaining, f"left behind by the killed session: {remaining}"
        print(f"everything gone {time.monotonic() - killed_at:.1f} s after the SIGKILL")
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
