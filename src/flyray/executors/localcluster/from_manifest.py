"""A manifest's local cluster: the nodes ``topology`` derives, or the autoscaler's plan.

Kept apart from ``topology`` (pure: a spec's groups as nodes), which the autoscaler's config
uses too, so that neither imports the cluster that runs them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from flyray.executors.localcluster.autoscale.config import autoscaling_enabled, autoscaling_plan
from flyray.executors.localcluster.cluster import LocalRayCluster
from flyray.executors.localcluster.topology import cluster_nodes

__all__ = ["new_cluster"]


def new_cluster(
    manifest: Mapping[str, Any], report: Callable[[str], None], *, root: Path | None = None
) -> LocalRayCluster:
    """The (not yet started) local cluster a manifest declares; nodes coming up are reported.

    So is a node started again after a transient failure (one line saying why).
    With ``enableInTreeAutoscaling``, Ray's autoscaler runs on the head and the workers
    started first are each group's ``replicas`` within its min and max (``autoscale``).

    ``root`` is its temp dir (kept at stop()), else a new /tmp/flyray-* removed at stop().
    """
    plan = autoscaling_plan(manifest) if autoscaling_enabled(manifest) else None
    if plan is None:
        head, workers = cluster_nodes(manifest)
    else:
        head = plan.head
        workers = [
            replace(group.template, name=f"{group.name}-{index}")
            for group in plan.groups
            for index in range(group.replicas)
        ]
    total = 1 + len(workers)
    return LocalRayCluster(
        head,
        workers,
        root=root,
        env={"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
        on_progress=lambda up, _: report(f"nodes up {up}/{total}"),
        on_retry=report,
        autoscaling=plan,
    )
