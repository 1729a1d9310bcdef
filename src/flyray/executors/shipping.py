"""What flyray adds to every Ray job it submits so that the cluster needs only Ray.

The job's runtime env gets ``py_modules``: flyray's site bundle first (``store/sitebundle.py``,
unless the ``ship_flyray`` setting is off), then the user's own entries with local folders
turned into store zips (``store/pymodules.py``); and two env vars for the job's driver: the
caller's flyray version, which ``flyray.entrypoint`` compares with its own, and whether
flyray was shipped. ``local-cluster`` nodes run the caller's own Python, which has flyray, but
they get the same runtime env: a local-cluster run rehearses what KubeRay gets, and
``flyray render`` shows the manifest either mode submits. A driver that fails because the
cluster has no flyray gets a message that says what to do (``missing_flyray``), not Python's
bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import warnings
from typing import Any

from flyray.config.settings import Settings
from flyray.manifest.request import RayJobRequest
from flyray.store.runstore import RunStore

__all__ = [
    "CALLER_VERSION_ENV",
    "SHIPPED_ENV",
    "SHIPPING_MODES",
    "job_env_vars",
    "job_py_modules",
    "missing_flyray",
]

SHIPPING_MODES = ("local-cluster", "cluster", "kuberay")  # every mode whose driver is a Ray job
CALLER_VERSION_ENV = "FLYRAY_CALLER_VERSION"
SHIPPED_ENV = "FLYRAY_SHIPPED"
_MISSING = ("No module named 'flyray'", "No module named flyray")


def job_py_modules(
    request: RayJobRequest, *, store: RunStore, settings: Settings, mode: str, write: bool
) -> list[str] | None:
    """The job's ``py_modules`` (site bundle first), or None to leave the runtime env as is.

    ``write=False`` (``flyray render``) names the bundles by their hashes and stores nothing.
    """
    from flyray.store.pymodules import store_py_modules

    if mode not in SHIPPING_MODES:
        return None
    user = request.runtime_env.get("py_modules")
    modules = store_py_modules(user, store, write=write)
    if settings.ship_flyray:
        from flyray.store.sitebundle import site_bundle
        from flyray.warn import FlyrayWarning

        site = site_bundle(store, write=write)
        if site.left_out:
            warnings.warn(
                f"flyray's site bundle leaves out {', '.join(site.left_out)}: the cluster "
                "must have these installed",
                FlyrayWarning,
                stacklevel=2,
            )
        modules.insert(0, site.uri)
    return modules or None


def job_env_vars(settings: Settings, mode: str) -> dict[str, Any]:
    """The env vars that tell the job's driver the caller's flyray version and the shipping."""
    from flyray._version import __version__

    if mode not in SHIPPING_MODES:
        return {}
    return {CALLER_VERSION_ENV: __version__, SHIPPED_ENV: "1" if settings.ship_flyray else "0"}


def missing_flyray(log: str | None, *, shipped: bool) -> str | None:
    """What to do when a driver's ``log`` says the cluster has no flyray; None otherwise."""
    from flyray._version import __version__

    if not log or not any(mark in log for mark in _MISSING):
        return None
    if shipped:
        return (
            "the job's driver could not import flyray although flyray was shipped with the job "
            "(runtime env py_modules): the cluster did not apply the job's runtime env; see "
            "the job's log"
        )
    return (
        "the cluster has no flyray (the job's driver failed with ModuleNotFoundError: No module "
        "named 'flyray') and shipping flyray with the job is off: turn it on (drop "
        "--no-ship-flyray, or set ship_flyray = true / FLYRAY_SHIP_FLYRAY=1), or install "
        f"flyray=={__version__} on the cluster"
    )
