"""Warm clusters' lives: start one and hand it to its keeper, lend it to runs, stop it.

Every entry point first cleans up (``clean_up``): an entry whose keeper died (``kill -9``) has
its nodes stopped by process group and is removed, and a cluster that lost a node is stopped,
so no cluster outlives the next flyray command that looks at the registry.
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flyray.config.names import check_dns1123_label
from flyray.config.settings import Settings
from flyray.errors import ConfigError, FlyrayError, NodeStartError
from flyray.executors.base import ProgressCallback
from flyray.executors.localcluster.procs import (
    is_running,
    leaders_under,
    start_time,
    stop_detached,
    terminate_process,
)
from flyray.executors.localcluster.raystart import new_temp_dir
from flyray.executors.localcluster.warm.match import cluster_key, explain
from flyray.executors.localcluster.warm.registry import (
    KEPT,
    RUNNING,
    STARTING,
    Process,
    Registry,
    WarmCluster,
)
from flyray.task.base import FunctionTask

__all__ = [
    "Lease",
    "acquire",
    "clean_up",
    "declared_manifest",
    "down",
    "keep_for_ttl",
    "release",
    "up",
]

STOP_TIMEOUT_S = 60.0  # how long `down` waits for a keeper to stop its cluster


@dataclass(frozen=True)
class Lease:
    """A run's hold on a warm cluster: while it is held, the keeper does not stop the cluster."""

    cluster: WarmCluster
    lease_id: str


def declared_manifest(task: FunctionTask, settings: Settings) -> dict[str, Any]:
    """The RayJob of ``task`` without a run (no bundle, no inputs): its cluster is what counts.

    Its runtime env has what flyray ships with every job (``executors/shipping.py``, stored in
    the run store now), as a run's has, so that the run's cluster key is this one.
    """
    from flyray.config.ray_images import ray_version
    from flyray.executors.shipping import job_env_vars, job_py_modules
    from flyray.manifest.images import default_image_for
    from flyray.manifest.rayjob import render_rayjob
    from flyray.plugins.ray.request import ray_request
    from flyray.store.runstore import RunStore

    request = ray_request(task)
    store = RunStore(settings.run_store_path())
    mode = "local-cluster"
    return render_rayjob(
        request,
        run_id="warm",
        entrypoint=["true"],
        image=settings.image or default_image_for(request.image),
        py_modules=job_py_modules(request, store=store, settings=settings, mode=mode, write=True),
        env_vars=job_env_vars(settings, mode),
        ray_version=ray_version(),
        mode=mode,
    )


def up(
    task: FunctionTask,
    *,
    settings: Settings,
    source: str,
    name: str | None = None,
    idle_timeout: float | None = None,
    report: ProgressCallback | None = None,
    manifest: dict[str, Any] | None = None,
) -> tuple[WarmCluster, bool]:
    """Start ``task``'s declared cluster as warm cluster ``name`` (default: the environment's).

    ``manifest`` is a run's RayJob, whose cluster is then the one kept (a run with a reuse
    policy); without one, the task's declared cluster. Returns the entry and whether it was
    started now (False: the same cluster was already up).
    """
    report = report or _quiet
    registry = Registry(settings.clusters_dir_path())
    name = check_dns1123_label("--name", name or task.env.dns_name)
    manifest = manifest if manifest is not None else declared_manifest(task, settings)
    key = cluster_key(manifest)
    clean_up(registry, report)
    with registry.locked():
        existing = registry.get(name)
        if existing is not None:
            return _already_up(registry, existing, key), False
        idle = settings.cluster_idle_timeout if idle_timeout is None else idle_timeout
        entry = _reservation(name, manifest, source=source, idle_timeout=idle)
        registry.put(entry)  # the name is taken while the nodes start
    _start(registry, entry, manifest, report)
    _first_standby(entry, report)
    return entry, True


def down(registry: Registry, name: str, report: ProgressCallback | None = None) -> WarmCluster:
    """Stop warm cluster ``name`` (its keeper stops the nodes) and forget it."""
    report = report or _quiet
    clean_up(registry, report)
    entry = registry.get(name)
    if entry is None:
        names = ", ".join(e.name for e in registry.all())
        known = f"warm clusters: {names}" if names else "there are none"
        raise ConfigError("NAME", name, f"is not a warm cluster in {registry.root} ({known})")
    if entry.state == STARTING:
        rule = f"is still starting (`flyray cluster up`, pid {entry.owner.pid}): stop it once up"
        raise ConfigError("NAME", name, rule)
    _stop(registry, entry)
    report(f"stopped warm cluster {name!r} ({entry.nodes} nodes)")
    return entry


def clean_up(registry: Registry, report: ProgressCallback | None = None) -> list[str]:
    """Stop and forget clusters whose keeper died or that lost a node; their names."""
    if not registry.root.is_dir():
        return []
    report = report or _quiet
    with registry.locked():
        registry.sweep()
    cleaned = []
    for entry in registry.all():
        if not entry.owner.is_running():
            _teardown(registry, entry)
            what = "keeper" if entry.state != STARTING else "`flyray cluster up`"
            report(
                f"cleaned up warm cluster {entry.name!r}: its {what} (pid {entry.owner.pid}) "
                f"had died; its nodes were stopped"
            )
        elif entry.state in (RUNNING, KEPT) and (lost := _lost_nodes(entry.leaders)):
            _stop(registry, entry)
            report(f"stopped warm cluster {entry.name!r}: its node(s) {lost} had exited")
        else:
            continue
        cleaned.append(entry.name)
    return cleaned


def acquire(
    registry: Registry,
    manifest: Mapping[str, Any],
    *,
    preferred: str,
    report: ProgressCallback | None = None,
) -> Lease | None:
    """A lease on a running warm cluster whose key is the manifest's, ``preferred`` first.

    When cluster ``preferred`` exists but differs, ``report`` says which field differs.
    """
    report = report or _quiet
    if not registry.root.is_dir():
        return None
    clean_up(registry, report)
    key = cluster_key(manifest)
    running = [entry for entry in registry.all() if entry.state == RUNNING]
    for entry in sorted(running, key=lambda e: e.name != preferred):
        if entry.key == key and (lease := _lease(registry, entry)) is not None:
            return lease
    named = next((entry for entry in running if entry.name == preferred), None)
    if named is not None:
        why = explain(preferred, named.key, key)
        report(f"not using warm cluster {preferred!r}, it differs: {why}; starting a new cluster")
    return None


def keep_for_ttl(
    registry: Registry,
    cluster: Any,
    manifest: Mapping[str, Any],
    *,
    name: str,
    source: str,
    ttl: float,
) -> int:
    """Hand a run's started cluster to a reaper that stops it ``ttl`` s from now; its pid.

    Until then the cluster is in the registry as ``name`` (state "kept", never leased to a
    run): ``flyray cluster list`` shows it, ``flyray cluster down NAME`` stops it now, and the
    reaper removes the entry with the cluster.
    """
    from flyray.executors.localcluster.reaper import start_reaper

    with registry.locked():  # the reaper removes its entry (under the lock) once written
        leaders = cluster.leaders()
        pid = start_reaper(
            after=ttl, leaders=leaders, temp_dir=cluster.temp_dir, registry=registry.root, name=name
        )
        registry.put(
            WarmCluster(
                name=name,
                key=cluster_key(manifest),
                source=source,
                idle_timeout=ttl,
                owner=Process(pid, start_time(pid) or 0),
                state=KEPT,
                nodes=len(leaders),
                temp_dir=str(cluster.temp_dir),
                dashboard_url=cluster.dashboard_url,
                gcs_address=cluster.gcs_address,
                token_path=str(cluster.token_path),
                leaders=dict(leaders),
            )
        )
        cluster.detach()  # the reaper owns the nodes now: the cluster's guard leaves
    return pid


def release(registry: Registry, lease: Lease) -> None:
    """End a run's lease; the cluster's idle time starts now."""

    def give_back(entry: WarmCluster) -> None:
        entry.leases.pop(lease.lease_id, None)
        entry.last_used = time.time()

    registry.update(lease.cluster.name, give_back)


# -- helpers -------------------------------------------------------------------------------


def _quiet(message: str) -> None:
    """A progress callback that says nothing."""


def _reservation(
    name: str, manifest: Mapping[str, Any], *, source: str, idle_timeout: float
) -> WarmCluster:
    """The "starting" entry of a new warm cluster, owned by this process, with its temp dir.

    The temp dir is chosen now so that ``clean_up`` finds the nodes if this process dies.
    """
    from flyray.executors.localcluster.topology import cluster_nodes

    _, workers = cluster_nodes(manifest)
    entry = WarmCluster(
        name=name,
        key=cluster_key(manifest),
        source=source,
        idle_timeout=idle_timeout,
        owner=Process.current(),
        nodes=1 + len(workers),
    )
    entry.temp_dir = str(new_temp_dir())
    return entry


def _start(
    registry: Registry, entry: WarmCluster, manifest: Mapping[str, Any], report: ProgressCallback
) -> None:
    """Start the reserved cluster and hand it to its keeper; on failure, undo everything."""
    from flyray.executors.localcluster.from_manifest import new_cluster

    root = Path(entry.temp_dir)
    cluster = new_cluster(manifest, report, root=root)
    try:
        report(f"starting {entry.nodes} Ray nodes for warm cluster {entry.name!r}")
        cluster.start()
        _hand_over(registry, entry, cluster)
    except BaseException as exc:
        cluster.stop(timeout=5.0)
        if not isinstance(exc, NodeStartError):  # else its logs stay, for the error message
            shutil.rmtree(root, ignore_errors=True)
        _remove_if_owned(registry, entry.name, Process.current())  # a keeper would then exit
        raise


def _first_standby(entry: WarmCluster, report: ProgressCallback) -> None:
    """Submit the new cluster's standby driver (``warm.standby``): its first run starts at once."""
    from flyray.executors.jobs.client import ray_jobs_client
    from flyray.executors.localcluster.warm.standby import keep_one_ready

    try:
        client = ray_jobs_client(entry.dashboard_url, entry.auth_headers())
    except FlyrayError as exc:
        report(f"no standby driver for the first run ({exc}); it submits its own job")
        return
    keep_one_ready(client, entry.temp_dir, entry.key.get("runtimeEnv") or {}, report)


def _already_up(registry: Registry, existing: WarmCluster, key: dict[str, Any]) -> WarmCluster:
    """The running cluster ``up`` asked for again (its idle time restarts); else an error."""
    name = existing.name
    if existing.state != RUNNING:
        rule = f"is {existing.state} (pid {existing.owner.pid}); try again once it is done"
        raise ConfigError(f"warm cluster {name!r}", name, rule)
    if existing.key != key:
        why = explain(name, existing.key, key)
        raise ConfigError(
            f"warm cluster {name!r}",
            name,
            f"is already up with a different cluster ({why}): stop it with "
            f"`flyray cluster down {name}` first, or pick another --name",
        )
    existing.last_used = time.time()
    registry.put(existing)
    return existing


def _hand_over(registry: Registry, entry: WarmCluster, cluster: Any) -> None:
    """Detach the started cluster and give it to a new keeper; the entry says "running"."""
    from flyray.executors.localcluster.reaper import start_reaper

    with registry.locked():  # the keeper reads its entry only once this is written
        leaders = cluster.leaders()
        pid = start_reaper(
            leaders=leaders, temp_dir=cluster.temp_dir, registry=registry.root, name=entry.name
        )
        cluster.detach()  # the keeper owns the nodes now: the cluster's guard leaves
        entry.owner = Process(pid, start_time(pid) or 0)
        entry.state = RUNNING
        entry.leaders = dict(leaders)
        entry.temp_dir = str(cluster.temp_dir)
        entry.dashboard_url = cluster.dashboard_url
        entry.gcs_address = cluster.gcs_address
        entry.token_path = str(cluster.token_path)
        entry.last_used = time.time()
        registry.put(entry)


def _lease(registry: Registry, seen: WarmCluster) -> Lease | None:
    """Take a lease on ``seen`` if it is still the same running cluster."""
    lease_id = secrets.token_hex(6)

    def take(entry: WarmCluster) -> bool:
        if entry.state != RUNNING or entry.owner != seen.owner or entry.key != seen.key:
            return False
        entry.leases[lease_id] = Process.current()
        entry.last_used = time.time()
        return True

    entry = registry.update(seen.name, take)
    if entry is None or lease_id not in entry.leases:
        return None
    return Lease(entry, lease_id)


def _stop(registry: Registry, entry: WarmCluster) -> None:
    """SIGTERM the keeper and wait for it to stop the cluster; stop it here if it does not."""
    terminate_process(entry.owner.pid, entry.owner.start, timeout=STOP_TIMEOUT_S)
    if registry.get(entry.name) is not None:
        _teardown(registry, entry)


def _teardown(registry: Registry, entry: WarmCluster) -> None:
    """Stop an entry's nodes from this process, remove its temp dir and the entry."""
    leaders = entry.leaders or (leaders_under(entry.temp_dir) if entry.temp_dir else {})
    stop_detached(leaders, entry.temp_dir)
    _remove_if_owned(registry, entry.name, entry.owner)


def _remove_if_owned(registry: Registry, name: str, owner: Process) -> None:
    """Remove entry ``name`` if ``owner`` still owns it (else the name is another cluster's)."""
    with registry.locked():
        current = registry.get(name)
        if current is not None and current.owner == owner:
            registry.remove(name)


def _lost_nodes(leaders: Mapping[int, int]) -> list[int]:
    """The pids of the nodes (``ray start`` leaders) that no longer run."""
    return [pid for pid, start in leaders.items() if not is_running(pid, start)]
