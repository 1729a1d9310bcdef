"""What every Ray job gets so that its cluster needs only Ray: py_modules, env vars, messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import flyray
from flyray import TaskEnvironment
from flyray.config.settings import Settings
from flyray.executors.render import render_for_run
from flyray.executors.shipping import job_env_vars, missing_flyray
from flyray.plugins.ray import RayJobConfig
from flyray.store.runstore import RunStore


def _runtime_env(tmp_path: Path, *, mode: str, ship: bool, **config: Any) -> dict[str, Any]:
    env = TaskEnvironment("ship_env", plugin_config=RayJobConfig(**config))

    def train() -> None:
        pass

    manifest = render_for_run(
        env.task(train),
        run_id="r1",
        store=RunStore(tmp_path / "runs"),
        settings=Settings(ship_flyray=ship),
        mode=mode,
        store_bundle=False,
    )
    return yaml.safe_load(manifest["spec"]["runtimeEnvYAML"])


@pytest.mark.parametrize("mode", ["local-cluster", "cluster", "kuberay"])
def test_the_site_bundle_comes_first_then_the_users_modules(tmp_path, mode):
    helpers = tmp_path / "helpers"
    helpers.mkdir()
    (helpers / "__init__.py").write_text("X = 1\n")
    runtime_env = _runtime_env(
        tmp_path, mode=mode, ship=True, runtime_env={"py_modules": [str(helpers), "s3://b/m.zip"]}
    )
    site, mine, uri = runtime_env["py_modules"]
    bundles = RunStore(tmp_path / "runs").uri("bundles") + "/"
    assert site.startswith(bundles) and mine.startswith(bundles) and site != mine
    assert uri == "s3://b/m.zip"
    assert runtime_env["env_vars"] == {
        "FLYRAY_CALLER_VERSION": flyray.__version__,
        "FLYRAY_SHIPPED": "1",
    }
    assert not (tmp_path / "runs").exists()  # a render names bundles, it stores none


def test_shipping_off_leaves_the_users_modules_only(tmp_path):
    assert "py_modules" not in _runtime_env(tmp_path, mode="cluster", ship=False)
    env = _runtime_env(tmp_path, mode="kuberay", ship=False, runtime_env={"py_modules": ["s3://x"]})
    assert env["py_modules"] == ["s3://x"] and env["env_vars"]["FLYRAY_SHIPPED"] == "0"


def test_local_mode_gets_nothing():
    assert job_env_vars(Settings(), "local") == {}


def test_a_missing_flyray_says_what_to_do():
    log = "ModuleNotFoundError: No module named 'flyray'"
    assert missing_flyray("all fine", shipped=False) is None
    off = missing_flyray(log, shipped=False)
    assert off is not None and "--no-ship-flyray" in off and f"flyray=={flyray.__version__}" in off
    on = missing_flyray(log, shipped=True)
    assert on is not None and "was shipped" in on
