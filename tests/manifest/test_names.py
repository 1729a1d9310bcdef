"""The names and metadata of a run's objects: short DNS-1035 labels, unique per run."""

from __future__ import annotations

from typing import Any

import pytest

from flyray import ConfigError
from flyray.manifest.names import rayjob_name, task_label
from flyray.plugins.ray import RayJobConfig
from flyray.plugins.ray.request import ray_request
from tests.manifest.cases import CASES, RUN_ID, long_names, make_task, rendered, spec_example


def test_top_level_and_metadata() -> None:
    manifest = rendered("spec_example")
    assert (manifest["apiVersion"], manifest["kind"]) == ("ray.io/v1", "RayJob")
    assert manifest["metadata"] == {
        "annotations": {"flyray.io/task-name": "ray_env.my_ray_task"},
        "labels": {
            "app.kubernetes.io/managed-by": "flyray",
            "flyray.io/run-id": RUN_ID,
            "flyray.io/task": "ray-env-my-ray-task",
        },
        "name": "ray-env-my-ray-task-r0123456789",
    }
    assert rendered("several_groups")["metadata"]["namespace"] == "ml-jobs"


@pytest.mark.parametrize("name", sorted(CASES))
def test_name_is_a_short_dns1035_label(name: str) -> None:
    task, _ = CASES[name]()
    metadata = rendered(name)["metadata"]
    assert metadata["name"] == rayjob_name(ray_request(task), RUN_ID)
    assert len(metadata["name"]) <= 47 and metadata["name"].endswith(f"-{RUN_ID}")
    assert len(metadata["labels"]["flyray.io/task"]) <= 63


def test_long_names_are_cut_with_a_hash_and_stay_unique() -> None:
    task, _ = long_names()
    request = ray_request(task)
    names = {
        rayjob_name(request, run_id) for run_id in ("r0123456789", "r0123456788", "rffffffffff")
    }
    assert len(names) == 3
    assert all(len(n) == 47 for n in names)
    # Both names stay readable: the start of each, then a hash of the full name.
    assert rayjob_name(request, RUN_ID) == "a-very-long-train-the-mode-7d7413bc-r0123456789"
    assert task_label(request) == "a-very-long-environment-na-train-the-model-with-every-7d7413bc"
    other = make_task(
        RayJobConfig(),
        env_name="a_very_long_environment_name_for_the_nightly_training_pipeline",
        task_name="train_the_model_with_every_option_switched_off",
    )
    assert rayjob_name(ray_request(other), RUN_ID) != rayjob_name(request, RUN_ID)
    assert rendered("long_names")["metadata"]["annotations"]["flyray.io/task-name"] == task.name


@pytest.mark.parametrize("run_id", ["", "R0123", "r_1", "-r1", "r1-", "r" * 33, 12345])
def test_bad_run_id(run_id: Any) -> None:
    with pytest.raises(ConfigError, match="run_id"):
        rayjob_name(ray_request(spec_example()[0]), run_id)


def test_an_environment_name_that_starts_with_a_digit_still_names_a_rayjob():
    task = make_task(RayJobConfig(), env_name="2d_env")
    name = rayjob_name(ray_request(task), "abc123")
    assert name.startswith("e2d-env-") and name.endswith("-abc123")
