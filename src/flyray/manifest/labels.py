"""The label and annotation keys flyray writes on its objects and finds them by, in one place.

Keys under ``flyray.io/`` and the managed-by label are flyray's own: a run's labels and
annotations may not set them (``runmeta.check_labels``).
"""

from __future__ import annotations

__all__ = [
    "ADDRESS_ANNOTATION",
    "CLUSTER_HASH_LABEL",
    "CLUSTER_LABEL",
    "ENVIRONMENT_LABEL",
    "FLYRAY_PREFIX",
    "GROUP_LABEL",
    "IDLE_TIMEOUT_ANNOTATION",
    "LAST_USED_ANNOTATION",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "MANAGED_BY_SELECTOR",
    "RUN_ID_LABEL",
    "SELECTED_CLUSTER_LABEL",
    "TASK_LABEL",
    "TASK_NAME_ANNOTATION",
]

FLYRAY_PREFIX = "flyray.io/"  # the prefix of every key below but the managed-by label's
MANAGED_BY = "flyray"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"  # every object flyray made

# A run's RayJob or batch Job.
RUN_ID_LABEL = "flyray.io/run-id"
TASK_LABEL = "flyray.io/task"  # <env>-<task> as a label value
TASK_NAME_ANNOTATION = "flyray.io/task-name"  # the task's full name, <env>.<function>
ADDRESS_ANNOTATION = "flyray.io/ray-address"  # marks the Jobs flyray creates itself

# Reused RayClusters and the RayJobs that select them.
CLUSTER_LABEL = "ray.io/cluster"  # KubeRay's clusterSelector key
CLUSTER_HASH_LABEL = "flyray.io/cluster-hash"
SELECTED_CLUSTER_LABEL = "flyray.io/cluster"  # on a RayJob: the reused cluster it runs on
ENVIRONMENT_LABEL = "flyray.io/environment"
LAST_USED_ANNOTATION = "flyray.io/last-used"
IDLE_TIMEOUT_ANNOTATION = "flyray.io/idle-timeout"

# The Ray node label of a local cluster's worker: its group.
GROUP_LABEL = "flyray.io/group"
