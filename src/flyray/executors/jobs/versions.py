"""Compare a cluster's Ray and Python versions with the caller's before running on it.

The Ray Client needs the same Ray version and Python minor version on both sides; inputs and
outputs pickled with cloudpickle need the same Python minor version. Anything else that
differs, or is unknown, is worth a warning, not a refusal.
"""

from __future__ import annotations

from flyray.errors import VersionSkewError

__all__ = ["check_versions"]

HINT = "use an image / environment with matching versions, or pass --skip-version-check"


def check_versions(
    *,
    address: str,
    local_ray: str,
    local_python: str,
    remote_ray: str | None,
    remote_python: str | None,
    via: str,
) -> list[str]:
    """Raise VersionSkewError for a mismatch that would break; return warnings for the rest.

    ``via`` is "client" (Ray Client: Ray and Python must match) or "jobs" (Jobs API: the
    Python minor must match for pickled inputs and outputs).
    """
    problems, warnings = [], []
    if remote_python is None:
        warnings.append(f"the Python version of the cluster at {address} is unknown")
    elif _minor(remote_python) != _minor(local_python):
        problems.append(f"Python {remote_python} on the cluster, {local_python} here")
    if remote_ray is None:
        warnings.append(f"the Ray version of the cluster at {address} is unknown")
    elif remote_ray != local_ray:
        mismatch = f"Ray {remote_ray} on the cluster, {local_ray} here"
        (problems if via == "client" else warnings).append(mismatch)
    if problems:
        raise VersionSkewError(
            f"the cluster at {address} does not match this environment: "
            f"{'; '.join(problems)}; {HINT}",
            address=address,
        )
    return warnings


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])
