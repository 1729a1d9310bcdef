"""``flyray cluster up|list|down|gc``: warm clusters that later runs reuse.

Local ones (``local-cluster`` runs) by default; with ``--kuberay`` the reusable RayClusters of
tasks with ``reuse_cluster=True`` in a Kubernetes namespace.
"""

from __future__ import annotations

import time
from typing import Any

import click
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from flyray.config.settings import Settings
from flyray.errors import ConfigError, TaskLoadError
from flyray.executors.localcluster.warm.registry import STARTING, Registry, WarmCluster
from flyray.task.base import FunctionTask
from flyray.task.loader import load_module, tasks_in

from .output import stderr
from .runs import print_rows


@click.group("cluster")
def cluster() -> None:
    """Warm clusters: keep a task's declared cluster up so that runs start at once."""


def kuberay_options(command: Any) -> Any:
    """``--kuberay`` with the namespace and context it applies to."""
    command = click.option("--context", help="With --kuberay: the kubeconfig context.")(command)
    command = click.option(
        "--namespace", help="With --kuberay: the namespace [default: the context's]."
    )(command)
    return click.option(
        "--kuberay",
        is_flag=True,
        help="flyray's reusable RayClusters on Kubernetes instead of local clusters.",
    )(command)


@cluster.command("up")
@click.argument("file")
@click.argument("target", metavar="TASK")
@click.option("--name", help="The cluster's name [default: the environment's, e.g. ray-env].")
@click.option(
    "--idle-timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Stop it after this long unused [default: the cluster_idle_timeout setting, 1800].",
)
def up(file: str, target: str, name: str | None, idle_timeout: float | None) -> None:
    """Start the cluster TASK declares (a task or environment in FILE) and keep it warm."""
    from flyray.executors.localcluster.warm.clusters import up as start_warm

    task = _task_or_environment(file, target)
    entry, started = start_warm(
        task,
        settings=Settings.load(),
        source=f"{file} {target}",
        name=name,
        idle_timeout=idle_timeout,
        report=_note,
    )
    how = "is up" if started else "was already up (its idle time starts again)"
    _note(
        f"warm cluster {entry.name!r} {how}: {entry.nodes} nodes, dashboard "
        f"{entry.dashboard_url}; it stops after {_span(entry.idle_timeout)} unused, or now with "
        f"`flyray cluster down {entry.name}`"
    )
    click.echo(entry.name)


@cluster.command("list")
@kuberay_options
def list_clusters(kuberay: bool, namespace: str | None, context: str | None) -> None:
    """List the warm local clusters (clusters whose keeper died are cleaned up first)."""
    from flyray.executors.localcluster.warm.clusters import clean_up

    if kuberay:
        _list_kuberay(namespace, context)
        return
    registry = _registry()
    clean_up(registry, _note)
    entries = registry.all()
    if not entries:
        stderr.print(f"no warm clusters in {escape(str(registry.root))}", soft_wrap=True)
        return
    print_rows(local_table(entries))


@cluster.command("down")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--all", "every", is_flag=True, help="Stop every warm cluster.")
@kuberay_options
def down(
    names: tuple[str, ...],
    every: bool,
    kuberay: bool,
    namespace: str | None,
    context: str | None,
) -> None:
    """Stop warm clusters by NAME (see `flyray cluster list`), or --all of them."""
    from flyray.executors.localcluster.warm.clusters import clean_up
    from flyray.executors.localcluster.warm.clusters import down as stop_warm

    if bool(names) == every:
        raise click.UsageError("name the clusters to stop, or pass --all (not both)")
    if kuberay:
        _down_kuberay(names, namespace, context)
        return
    registry = _registry()
    if every:
        clean_up(registry, _note)
        names = tuple(e.name for e in registry.all() if e.state != STARTING)
        if not names:
            _note(f"no warm clusters to stop in {registry.root}")
    for name in names:
        stop_warm(registry, name, report=_note)


@cluster.command("gc")
@kuberay_options
def gc(kuberay: bool, namespace: str | None, context: str | None) -> None:
    """Clean up now: local clusters whose keeper died, or (--kuberay) idle RayClusters.

    A reusable RayCluster past its idle timeout with no unfinished RayJob on it is deleted.
    """
    from flyray.executors.localcluster.warm.clusters import clean_up

    if not kuberay:
        clean_up(_registry(), _note)
        return
    from flyray.executors.kuberay.warm import collect_idle

    with _kube_session(namespace, context) as session:
        if not collect_idle(session, report=_note):
            _note(f"no idle reusable RayClusters in {session.describe()}")


def _list_kuberay(namespace: str | None, context: str | None) -> None:
    """flyray's reusable RayClusters: name, state, workers, last used, idle until."""
    from flyray.executors.kuberay.warm import idle_until, list_clusters
    from flyray.manifest.labels import LAST_USED_ANNOTATION

    with _kube_session(namespace, context) as session:
        items = list_clusters(session)
        where = session.describe()
    if not items:
        stderr.print(f"no reusable RayClusters in {escape(where)}", soft_wrap=True)
        return
    table = Table(box=None, pad_edge=False)
    for column in ("name", "state", "workers", "last used", "idle until"):
        table.add_column(column, no_wrap=True)
    for item in items:
        status = item.get("status") or {}
        until = idle_until(item)
        workers = f"{status.get('readyWorkerReplicas', 0)}/{status.get('desiredWorkerReplicas', 0)}"
        table.add_row(
            Text(item["metadata"]["name"]),
            Text(str(status.get("state", ""))),
            Text(workers),
            Text((item["metadata"].get("annotations") or {}).get(LAST_USED_ANNOTATION, "")),
            Text(until.isoformat(timespec="seconds") if until else ""),
        )
    print_rows(table)


def _down_kuberay(names: tuple[str, ...], namespace: str | None, context: str | None) -> None:
    """Delete flyray's reusable RayClusters by name (or all of them)."""
    from flyray.executors.kuberay.session import RAYCLUSTERS
    from flyray.executors.kuberay.warm import list_clusters

    with _kube_session(namespace, context) as session:
        known = [item["metadata"]["name"] for item in list_clusters(session)]
        for name in names or known:
            if name not in known:
                there = ", ".join(known) or "none"
                rule = f"is not a reusable RayCluster of flyray's (there: {there})"
                raise ConfigError("NAME", name, rule)
            session.delete(RAYCLUSTERS, name)
            _note(f"deleted {session.ref(RAYCLUSTERS, name)}")


def _kube_session(namespace: str | None, context: str | None) -> Any:
    from flyray.executors.kuberay.session import KubeSession

    settings = Settings.load(overrides={"namespace": namespace, "context": context})
    return KubeSession(context=settings.context, namespace=settings.namespace)


def local_table(entries: list[WarmCluster]) -> Table:
    """One row per warm local cluster: name, state, nodes, workers, source, dashboard, use, stop.

    ``workers`` is each autoscaled group's workers up and its target (``cpu 1/2``), else "-".
    """
    from flyray.executors.localcluster.warm.keeper import idle_at, in_use

    table = Table(box=None, pad_edge=False)
    columns = ("name", "state", "nodes", "workers", "from", "dashboard", "last used", "stops")
    for column in columns:
        table.add_column(column, no_wrap=True)
    now = time.time()
    for entry in entries:
        if entry.state not in ("running", "kept"):
            stops = ""
        elif in_use(entry):
            stops = "after its runs"
        else:
            stops = f"in {_span(max(idle_at(entry) - now, 0))}"
        table.add_row(
            Text(entry.name),
            Text(entry.state),
            Text(str(entry.nodes)),
            Text(_workers(entry)),
            Text(entry.source),
            Text(entry.dashboard_url),
            Text(f"{_span(now - entry.last_used)} ago"),
            Text(stops),
        )
    return table


def _workers(entry: WarmCluster) -> str:
    """Each autoscaled group's workers up and target ("cpu 1/2, gpu 0/0"), or "-"."""
    from flyray.executors.localcluster.autoscale.records import alive_node_ports, group_counts

    if not entry.temp_dir:
        return "-"
    counts = group_counts(entry.temp_dir, alive_node_ports(entry.temp_dir))
    return ", ".join(f"{group} {c.up}/{c.target}" for group, c in counts.items()) or "-"


def _task_or_environment(file: str, target: str) -> FunctionTask:
    """Task ``target`` of ``file``, else the first task (by name) of environment ``target``."""
    tasks = tasks_in(load_module(file))
    if target in tasks:
        return tasks[target]
    by_env: dict[str, FunctionTask] = {}
    for name in sorted(tasks):
        by_env.setdefault(tasks[name].env.name, tasks[name])
        by_env.setdefault(tasks[name].env.dns_name, tasks[name])
    if target in by_env:
        return by_env[target]
    envs = sorted({task.env.name for task in tasks.values()})
    raise TaskLoadError(
        "TASK",
        target,
        f"is neither a task nor an environment in {file} "
        f"(tasks: {', '.join(sorted(tasks)) or 'none'}; environments: {', '.join(envs) or 'none'})",
    )


def _registry() -> Registry:
    """The registry the settings name (``clusters_dir``)."""
    return Registry(Settings.load().clusters_dir_path())


def _note(message: str) -> None:
    """A progress line on stderr."""
    stderr.print(message, markup=False, soft_wrap=True)


def _span(seconds: float) -> str:
    """``42 s``, ``12m 05s`` or ``2h 03m``."""
    if seconds < 60:
        return f"{int(seconds)} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m {rest:02d}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60:02d}m"
