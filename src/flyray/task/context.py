"""Where a task's code is running: the flyray entrypoint sets a flag, nothing is guessed."""

from __future__ import annotations

import os

IN_CLUSTER_ENV = "FLYRAY_IN_CLUSTER"


def in_cluster() -> bool:
    """True inside ``python -m flyray.entrypoint``, i.e. as the driver of a Ray job."""
    return os.environ.get(IN_CLUSTER_ENV) == "1"
