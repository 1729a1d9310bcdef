"""What a level-3 test checks at its end: nothing of its run is left, in the API or on the host."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.k8s.real.objects import Namespace

__all__ = ["GONE_TIMEOUT_S", "alive", "nothing_left", "pod_pids"]

GONE_TIMEOUT_S = 60.0


def nothing_left(objects: Namespace, kubelet: Any, pids: set[int]) -> None:
    """No RayJob, RayCluster, Job, pod, Service or cluster Secret in the namespace; no pod
    network namespace or process."""

    def left() -> list[str]:
        found = [f"rayjob {o['metadata']['name']}" for o in objects.ray("rayjobs")]
        found += [f"raycluster {o['metadata']['name']}" for o in objects.ray("rayclusters")]
        found += [f"pod {o['metadata']['name']}" for o in objects.pods()]
        found += [f"job {o['metadata']['name']}" for o in objects.jobs()]
        found += [f"service {o['metadata']['name']}" for o in objects.services()]
        found += [f"secret {o['metadata']['name']}" for o in objects.secrets("ray.io/cluster")]
        found += [f"network namespace {name}" for name in kubelet.network.namespaces()]
        found += [f"process {pid}" for pid in pids if alive(pid)]
        return found

    deadline = time.monotonic() + GONE_TIMEOUT_S
    while (remaining := left()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not remaining, f"left behind: {remaining}"


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def pod_pids(kubelet: Any) -> set[int]:
    """Every process the kubelet saw in any pod so far."""
    return {pid for pod in kubelet.history for pid in pod.seen_pids}
