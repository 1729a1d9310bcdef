"""Every invalid configuration is refused at construction with the field, value and rule."""

import pytest

from flyray import ConfigError, Resources
from flyray.plugins.ray import (
    AutoscalerOptionsConfig,
    HeadNodeConfig,
    RayJobConfig,
    WorkerNodeConfig,
)

W = "WorkerNodeConfig(group_name='g')"


def worker(**kwargs):
    return WorkerNodeConfig(**{"group_name": "g", "replicas": 1, **kwargs})


INVALID = [
    # (id, factory, field named in the error, value shown in the message)
    ("negative replicas", lambda: worker(replicas=-1), f"{W}.replicas", "-1"),
    ("replicas not int", lambda: worker(replicas="2"), f"{W}.replicas", "'2'"),
    ("replicas bool", lambda: worker(replicas=True), f"{W}.replicas", "True"),
    ("negative min", lambda: worker(min_replicas=-2), f"{W}.min_replicas", "-2"),
    ("min > max", lambda: worker(min_replicas=3, max_replicas=2), f"{W}.min_replicas", "3"),
    (
        "replicas < min",
        lambda: worker(replicas=1, min_replicas=2, max_replicas=4),
        f"{W}.replicas",
        "1",
    ),
    (
        "replicas > max",
        lambda: worker(replicas=5, min_replicas=1, max_replicas=4),
        f"{W}.replicas",
        "5",
    ),
    (
        "group name underscore",
        lambda: WorkerNodeConfig(group_name="cpu_workers", replicas=1),
        "WorkerNodeConfig(group_name='cpu_workers').group_name",
        "'cpu_workers'",
    ),
    (
        "group name upper",
        lambda: WorkerNodeConfig(group_name="CPU", replicas=1),
        "WorkerNodeConfig(group_name='CPU').group_name",
        "'CPU'",
    ),
    (
        "group name too long",
        lambda: WorkerNodeConfig(group_name="g" * 64, replicas=1),
        f"WorkerNodeConfig(group_name='{'g' * 64}').group_name",
        "'gggg",
    ),
    (
        "duplicate group",
        lambda: RayJobConfig(worker_node_config=[worker(), worker()]),
        "worker_node_config[1].group_name",
        "'g'",
    ),
    (
        "not a worker",
        lambda: RayJobConfig(worker_node_config=[{"group_name": "g"}]),
        "worker_node_config[0]",
        "{'group_name': 'g'}",
    ),
    (
        "workers not a list",
        lambda: RayJobConfig(worker_node_config=worker()),
        "worker_node_config",
        "WorkerNodeConfig",
    ),
    (
        "start param list value",
        lambda: HeadNodeConfig(ray_start_params={"num-cpus": [1]}),
        "HeadNodeConfig.ray_start_params['num-cpus']",
        "[1]",
    ),
    (
        "start param None value",
        lambda: worker(ray_start_params={"block": None}),
        f"{W}.ray_start_params['block']",
        "None",
    ),
    (
        "start param dashed key",
        lambda: HeadNodeConfig(ray_start_params={"--num-cpus": "1"}),
        "HeadNodeConfig.ray_start_params['--num-cpus']",
        "'--num-cpus'",
    ),
    (
        "start params not dict",
        lambda: HeadNodeConfig(ray_start_params=["num-cpus=1"]),
        "HeadNodeConfig.ray_start_params",
        "['num-cpus=1']",
    ),
    (
        "negative ttl",
        lambda: RayJobConfig(shutdown_after_job_finishes=True, ttl_seconds_after_finished=-5),
        "ttl_seconds_after_finished",
        "-5",
    ),
    (
        "ttl without shutdown",
        lambda: RayJobConfig(ttl_seconds_after_finished=600),
        "ttl_seconds_after_finished",
        "600",
    ),
    (
        "pre-running deadline zero",
        lambda: RayJobConfig(pre_running_deadline_seconds=0),
        "pre_running_deadline_seconds",
        "0",
    ),
    (
        "pre-running deadline not int",
        lambda: RayJobConfig(pre_running_deadline_seconds=1.5),
        "pre_running_deadline_seconds",
        "1.5",
    ),
    (
        "runtime_env not dict",
        lambda: RayJobConfig(runtime_env=["numpy"]),
        "runtime_env",
        "['numpy']",
    ),
    (
        "runtime_env not json",
        lambda: RayJobConfig(runtime_env={"env_vars": {"A": object}}),
        "runtime_env",
        "env_vars",
    ),
    ("address no port", lambda: RayJobConfig(address="ray://head"), "address", "'ray://head'"),
    (
        "address bad scheme",
        lambda: RayJobConfig(address="grpc://head:10001"),
        "address",
        "'grpc://head:10001'",
    ),
    ("address port range", lambda: RayJobConfig(address="head:70000"), "address", "'head:70000'"),
    ("address not str", lambda: RayJobConfig(address=10001), "address", "10001"),
    (
        "requests above limits",
        lambda: HeadNodeConfig(requests=Resources(cpu=4), limits=Resources(cpu=2)),
        "HeadNodeConfig.requests.cpu",
        "4",
    ),
    (
        "memory above limit",
        lambda: worker(requests=Resources(memory="8Gi"), limits=Resources(memory="4Gi")),
        f"{W}.requests.memory",
        "'8Gi'",
    ),
    (
        "gpu without limit",
        lambda: worker(requests=Resources(gpu=1), limits=Resources(cpu=2)),
        f"{W}.limits.gpu",
        "None",
    ),
    (
        "gpu limit differs",
        lambda: worker(requests=Resources(gpu=2), limits=Resources(gpu=1)),
        f"{W}.limits.gpu",
        "1",
    ),
    ("requests not Resources", lambda: worker(requests={"cpu": 1}), f"{W}.requests", "{'cpu': 1}"),
    (
        "pod template not a spec",
        lambda: HeadNodeConfig(pod_template="pod.yaml"),
        "HeadNodeConfig.pod_template",
        "'pod.yaml'",
    ),
    (
        "pod template container without name",
        lambda: worker(pod_template={"containers": [{"image": "x"}]}),
        f"{W}.pod_template.containers",
        "[{'image': 'x'}]",
    ),
    (
        "head config wrong type",
        lambda: RayJobConfig(head_node_config=worker()),
        "head_node_config",
        "WorkerNodeConfig",
    ),
    (
        "autoscaling flag not bool",
        lambda: RayJobConfig(enable_autoscaling="yes"),
        "enable_autoscaling",
        "'yes'",
    ),
    (
        "upscaling mode",
        lambda: AutoscalerOptionsConfig(upscaling_mode="Fast"),
        "AutoscalerOptionsConfig.upscaling_mode",
        "'Fast'",
    ),
    (
        "idle timeout",
        lambda: AutoscalerOptionsConfig(idle_timeout_seconds=-1),
        "AutoscalerOptionsConfig.idle_timeout_seconds",
        "-1",
    ),
    (
        "autoscaler version",
        lambda: AutoscalerOptionsConfig(version="v3"),
        "AutoscalerOptionsConfig.version",
        "'v3'",
    ),
]


@pytest.mark.parametrize(
    ("factory", "field", "shown"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_configuration_names_field_value_and_rule(factory, field, shown):
    with pytest.raises(ConfigError) as info:
        factory()
    error = info.value
    assert error.field == field
    message = str(error)
    assert message.startswith(field)
    assert shown in message
    assert error.rule and error.rule in message


def test_table_is_large_enough():
    assert len(INVALID) >= 25


def test_config_changed_after_construction_is_checked_again():
    config = RayJobConfig(worker_node_config=[worker()])
    config.worker_node_config.append(worker())
    with pytest.raises(ConfigError, match=r"worker_node_config\[1\]\.group_name"):
        config.validate()


@pytest.mark.parametrize(
    "address",
    [
        "ray://head:10001",
        "head:6379",
        "auto",
        "http://10.0.0.1:8265",
        "https://ray.example.com:443",
        "ray://[::1]:10001",
    ],
)
def test_valid_addresses(address):
    assert RayJobConfig(address=address).address == address


def test_autoscaling_with_bounds_is_valid():
    config = RayJobConfig(
        worker_node_config=[worker(replicas=1, min_replicas=1, max_replicas=5)],
        enable_autoscaling=True,
        autoscaler_options=AutoscalerOptionsConfig(
            upscaling_mode="Conservative", idle_timeout_seconds=30
        ),
    )
    assert config.worker_node_config[0].max_replicas == 5


def test_autoscaling_without_bounds_takes_kuberays_defaults_with_a_warning():
    with pytest.warns(UserWarning, match=r"worker_node_config\[0\] \('g'\).*no max_replicas"):
        config = RayJobConfig(
            worker_node_config=[WorkerNodeConfig(group_name="g", replicas=2)],
            enable_autoscaling=True,
        )
    group = _task_for(config).custom_config()["rayClusterSpec"]["workerGroupSpecs"][0]
    assert (group["replicas"], group["minReplicas"], group["maxReplicas"]) == (2, 0, 2147483647)


def test_autoscaler_options_without_autoscaling_warn_instead_of_failing():
    with pytest.warns(UserWarning, match="autoscaler_options has no effect"):
        RayJobConfig(autoscaler_options=AutoscalerOptionsConfig(idle_timeout_seconds=5))


@pytest.mark.parametrize(
    ("mode", "rendered"),
    [
        (AutoscalerOptionsConfig.UpscalingMode.DEFAULT, "Default"),
        (AutoscalerOptionsConfig.UpscalingMode.AGGRESSIVE, "Aggressive"),
        (AutoscalerOptionsConfig.UpscalingMode.CONSERVATIVE, "Conservative"),
        ("Conservative", "Conservative"),
        (AutoscalerOptionsConfig.UpscalingMode.UNSPECIFIED, None),
    ],
)
def test_upscaling_modes_take_flytes_ints_and_kuberays_names(mode, rendered):
    config = RayJobConfig(
        worker_node_config=[WorkerNodeConfig(group_name="g", replicas=1, max_replicas=2)],
        enable_autoscaling=True,
        autoscaler_options=AutoscalerOptionsConfig(upscaling_mode=mode),
    )
    options = _task_for(config).custom_config()["rayClusterSpec"].get("autoscalerOptions", {})
    assert options.get("upscalingMode") == rendered


def _task_for(config):
    import flyray

    env = flyray.TaskEnvironment(name="autoscaling_env", plugin_config=config)

    def job() -> None:
        pass

    return env.task(job)
