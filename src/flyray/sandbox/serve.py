"""The sandbox's supervisor: ``python -m flyray.sandbox.serve FOLDER``, started by ``up``.

It builds (or finds) the binaries and the stock image's virtualenv, starts the control plane,
the KubeRay operator (watching ``kuberay-pods``) and the process kubelet, writes ``state.json``,
and runs until SIGTERM; then it stops everything in reverse order. It owns all of it: killed
outright, its watchdog removes what it started. Its output (one line a step) is ``serve.log``,
which ``up`` shows.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from flyray.config.ray_images import ray_version
from flyray.sandbox.build import ensure_binaries
from flyray.sandbox.controlplane import RealKube
from flyray.sandbox.crds import kuberay_crd_dir
from flyray.sandbox.operator import OPERATOR_VERSION, PODS_NAMESPACE, KubeRayOperator
from flyray.sandbox.owner import Owner, clean
from flyray.sandbox.pods.kubelet import ProcessKubelet
from flyray.sandbox.rayvenv import ray_venv
from flyray.sandbox.state import READY_LINE, STATE_FILE, SandboxState

__all__ = ["main", "serve"]


def say(line: str) -> None:
    print(line, flush=True)


def serve(folder: Path) -> None:
    """Start the sandbox in ``folder``, wait for SIGTERM, stop it; raises what failed."""
    signal.signal(signal.SIGTERM, _stop)
    controlplane = folder / "controlplane"
    if controlplane.exists() and not Owner(controlplane).owner_alive():
        say("sandbox: removing what an earlier sandbox left")
        clean(controlplane)
    stops: list[Callable[[], None]] = []  # newest last
    try:
        bin_dir = ensure_binaries(say=say)
        say("sandbox: the virtualenv of the stock rayproject/ray image (Ray alone, no flyray)")
        ray_venv(ray_version(), image=True, on_progress=lambda line: say(f"sandbox: {line}"))
        crds = kuberay_crd_dir(OPERATOR_VERSION)
        say("sandbox: starting etcd, kube-apiserver and kube-controller-manager")
        kube = RealKube(bin_dir, crds, workdir=controlplane).start()
        stops.append(kube.close)
        say(f"sandbox: starting kuberay-operator {OPERATOR_VERSION}")
        operator = KubeRayOperator(kube, namespaces=(PODS_NAMESPACE,)).start()
        stops.append(operator.stop)
        say("sandbox: starting the process kubelet (pods run as local processes)")
        kubelet = ProcessKubelet(kube.api_client(), PODS_NAMESPACE, kube.credentials).open()
        stops.append(kubelet.close)
        kubeconfig = _user_kubeconfig(kube, folder / "kubeconfig")
        run_store = kubelet.shared / "runs"
        run_store.mkdir()
        SandboxState(str(kubeconfig), PODS_NAMESPACE, str(run_store), time.time()).write(folder)
        say(READY_LINE)
        while True:
            signal.pause()
    finally:
        (folder / STATE_FILE).unlink(missing_ok=True)
        say("sandbox: stopping")
        for stop in reversed(stops):
            stop()
        say("sandbox: stopped")


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _user_kubeconfig(kube: RealKube, path: Path) -> Path:
    """The admin context only, its namespace the one whose pods run."""
    config = yaml.safe_load(kube.kubeconfig_path.read_text())
    config["contexts"] = [
        {**context, "context": {**context["context"], "namespace": PODS_NAMESPACE}}
        for context in config["contexts"]
        if context["context"]["user"] == "admin"
    ]
    config["users"] = [user for user in config["users"] if user["name"] == "admin"]
    config["current-context"] = config["contexts"][0]["name"]
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)  # it holds the admin token
    return path


def main(argv: list[str]) -> int:
    try:
        serve(Path(argv[1]))
    except SystemExit:
        return 0
    except BaseException as exc:
        say(f"sandbox: failed: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
