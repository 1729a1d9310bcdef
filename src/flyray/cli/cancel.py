"""``flyray cancel RUN``: stop a run that outlives flyray (``--detach``) on its cluster."""

from __future__ import annotations

import click

from flyray.errors import ConfigError, FlyrayError
from flyray.store.record import RunRecord
from flyray.store.runstore import RunStore

from .output import stderr
from .runs import fail, open_store, run_store_option


@click.command("cancel")
@click.argument("run_id", metavar="RUN")
@run_store_option
def cancel(run_id: str, run_store: str | None) -> None:
    """Stop RUN: a detached cluster run's Ray job, or a kuberay run's RayJob or Job (deleted)."""
    try:
        store = open_store(run_store)
        record = store.load_record(run_id)
        if record.mode == "cluster":
            line = _cancel_cluster_run(store, record)
        elif record.mode == "kuberay":
            line = _cancel_kuberay_run(store, record)
        else:
            raise ConfigError(
                "RUN",
                run_id,
                f"is a {record.mode} run; only cluster and kuberay runs outlive flyray",
            )
    except FlyrayError as exc:
        fail(exc)
    stderr.print(line, markup=False, soft_wrap=True)


def _cancel_cluster_run(store: RunStore, record: RunRecord) -> str:
    from flyray.executors.jobs.cluster import cancel_run

    was = record.status
    record = cancel_run(store, record)
    if was.is_terminal() or record.message != "cancelled with `flyray cancel`":
        return f"run {record.run_id} had already ended: {record.status.value}"
    return f"run {record.run_id}: Ray job stopped; status {record.status.value}"


def _cancel_kuberay_run(store: RunStore, record: RunRecord) -> str:
    from flyray.executors.kuberay.executor import CANCELLED, cancel_run, run_object

    was = record.status
    record, deleted = cancel_run(store, record)
    found = run_object(record)
    kind, name = (found[0].kind.kind, found[1]) if found else ("RayJob", "?")
    rayjob = f"{kind} {record.cluster.get('namespace')}/{name}"
    if not deleted:
        return f"run {record.run_id} ({record.status.value}): {rayjob} was already gone"
    if was.is_terminal() or record.message != CANCELLED:
        return f"run {record.run_id} had already ended ({record.status.value}); {rayjob} deleted"
    return f"run {record.run_id}: {rayjob} deleted; status {record.status.value}"
