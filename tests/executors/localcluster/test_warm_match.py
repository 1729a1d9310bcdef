"""Matching a run's cluster to a warm one: what counts, what does not, and how a diff reads."""

import flyray
from flyray import Resources
from flyray.executors.localcluster.warm.match import cluster_key, differences, explain
from flyray.manifest.rayjob import render_rayjob
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig
from flyray.plugins.ray.request import ray_request


def seed_task(replicas=2, env_vars=None, **config):
    env = flyray.TaskEnvironment(
        name="ray_env",
        env_vars=env_vars,
        plugin_config=RayJobConfig(
            head_node_config=HeadNodeConfig(requests=Resources(cpu="1", memory="2Gi")),
            worker_node_config=[
                WorkerNodeConfig(
                    group_name="cpu-workers",
                    replicas=replicas,
                    requests=Resources(cpu="2", memory="4Gi"),
                )
            ],
            **config,
        ),
    )

    @env.task
    def my_ray_task(n: int) -> int:
        return n

    return my_ray_task


def manifest(task, run_id="r0000000001", working_dir="file:///store/bundles/a.zip"):
    return render_rayjob(
        ray_request(task),
        run_id=run_id,
        entrypoint=["python", "-m", "flyray.entrypoint", "--run-id", run_id],
        image="rayproject/ray:2.60.0-py311",
        working_dir=working_dir,
        ray_version="2.60.0",
    )


def test_per_run_fields_do_not_count():
    one = manifest(seed_task())
    other = manifest(
        seed_task(shutdown_after_job_finishes=True, ttl_seconds_after_finished=600),
        run_id="r0000000002",
        working_dir="file:///store/bundles/b.zip",
    )
    assert one["metadata"] != other["metadata"] and one["spec"] != other["spec"]
    assert cluster_key(one) == cluster_key(other)
    assert "working_dir" not in str(cluster_key(one))


def test_a_different_replica_count_is_named():
    warm, run = cluster_key(manifest(seed_task(2))), cluster_key(manifest(seed_task(3)))
    assert ("workerGroupSpecs[0].replicas", 2, 3) in differences(warm, run)
    text = explain("ray-env", warm, run, limit=5)
    assert "workerGroupSpecs[0].replicas: 2 (warm cluster 'ray-env') != 3 (this run)" in text


def test_the_runtime_env_counts_without_the_working_dir():
    warm = cluster_key(manifest(seed_task(env_vars={"MODE": "a"})))
    run = cluster_key(manifest(seed_task(env_vars={"MODE": "b"})))
    assert explain("ray-env", warm, run) == (
        'runtimeEnv.env_vars.MODE: "a" (warm cluster \'ray-env\') != "b" (this run)'
    )
    assert differences(cluster_key(manifest(seed_task())), run) == [
        ("runtimeEnv", None, {"env_vars": {"MODE": "b"}})
    ]


def test_explain_shows_absent_values_list_sizes_and_a_limit():
    warm = {"a": 1, "b": [1, 2], "c": {"d": "x" * 80}, "e": [list(range(30))]}
    run = {"b": [1], "c": {"d": "y"}, "e": [list(range(31))], "f": True}
    text = explain("w", warm, run, limit=2)
    assert text == (
        "a: 1 (warm cluster 'w') != <absent> (this run); "
        "b: [1, 2] (warm cluster 'w') != [1] (this run); and 3 more"
    )
    assert "e[0]: [30 items] (warm cluster 'w') != [31 items] (this run)" in explain(
        "w", warm, run, limit=9
    )
