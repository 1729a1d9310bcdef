"""An environment's ``Image`` realised per mode: runtime env, container image, refusals."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from flyray import Image, ManifestError, TaskEnvironment
from flyray.config.ray_images import default_image, ray_version
from flyray.manifest import image_env as image_env_module
from flyray.manifest.image_env import image_runtime_env, merge_image_env
from flyray.manifest.images import container_image, default_image_for
from flyray.manifest.job import render_job
from flyray.manifest.rayjob import render_rayjob
from flyray.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig
from flyray.plugins.ray.request import ray_request
from flyray.warn import FlyrayWarning

WHERE = "TaskEnvironment 'img'"


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees its own first warnings (they come once per process)."""
    monkeypatch.setattr(image_env_module, "_warned", set())


BASE = Image.from_debian_base()


def realise(image: Any, mode: str = "kuberay", task_file: Path | None = None) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning here would be a test failure
        return image_runtime_env(image, mode=mode, where=WHERE, task_file=task_file)


def make_task(image: Any, runtime_env: dict | None = None, **config: Any) -> Any:
    cfg = RayJobConfig(
        head_node_config=HeadNodeConfig(),
        worker_node_config=[WorkerNodeConfig(group_name="w", replicas=1)],
        runtime_env=runtime_env,
        **config,
    )
    env = TaskEnvironment("img", plugin_config=cfg, image=image)

    def fn() -> None:
        pass

    return env.task(fn)


def render(task: Any, image: str, **kwargs: Any) -> dict:
    return render_rayjob(
        ray_request(task),
        run_id="r0123456789",
        entrypoint=["true"],
        image=image,
        ray_version="2.60.0",
        **kwargs,
    )


def runtime_env_of(manifest: dict) -> dict:
    return yaml.safe_load(manifest["spec"]["runtimeEnvYAML"])


def containers_of(manifest: dict) -> list[dict]:
    cluster = manifest["spec"]["rayClusterSpec"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    return [g["template"]["spec"]["containers"][0] for g in groups]


# --- the runtime env ----------------------------------------------------------------------


def test_pip_packages_and_env_vars_become_the_runtime_env():
    image = BASE.with_pip_packages("numpy", "pandas==2.2").with_env_vars({"A": "1"})
    assert realise(image) == {"pip": ["numpy", "pandas==2.2"], "env_vars": {"A": "1"}}


def test_index_options_become_requirement_lines_and_extra_args_install_options():
    image = BASE.with_pip_packages("x", index_url="https://a", pre=True).with_pip_packages(
        "y", extra_index_urls=["https://b"], extra_args="--no-deps"
    )
    assert realise(image)["pip"] == {
        "packages": ["--index-url https://a", "--pre", "x", "--extra-index-url https://b", "y"],
        "pip_install_options": ["--disable-pip-version-check", "--no-cache-dir", "--no-deps"],
    }


def test_requirements_are_read_at_render_time_relative_to_the_cwd(tmp_path, monkeypatch):
    (tmp_path / "base.txt").write_text("requests>=2  # http\n")
    (tmp_path / "requirements.txt").write_text("# deps\n-r base.txt\n\nnumpy\n--pre\n")
    monkeypatch.chdir(tmp_path)
    image = BASE.with_requirements("requirements.txt")
    assert realise(image) == {"pip": ["requests>=2", "numpy", "--pre"]}
    (tmp_path / "base.txt").write_text("scipy\n")  # read again for every run
    assert realise(image)["pip"][0] == "scipy"


def test_a_missing_requirements_file_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ManifestError, match=rf"requirements file {tmp_path}/nope.txt"):
        realise(BASE.with_requirements("nope.txt"))


def test_requirements_with_local_files_are_refused_with_file_and_line(tmp_path):
    (tmp_path / "r.txt").write_text("numpy\n-e ./mylib\n")
    with pytest.raises(ManifestError, match=r"r.txt:2: '-e ./mylib' names local files"):
        realise(BASE.with_requirements(tmp_path / "r.txt"))


def test_uv_project_and_script_dependencies(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = ["attrs"]\n')
    script = tmp_path / "job.py"
    script.write_text(
        '# /// script\n# requires-python = ">=3.11"\n# dependencies = ["httpx"]\n# ///\nprint(1)\n'
    )
    assert realise(BASE.with_uv_project(tmp_path / "pyproject.toml")) == {"pip": ["attrs"]}
    assert realise(Image.from_uv_script(script, name="job")) == {"pip": ["httpx"]}


def test_a_uv_lock_is_not_used_and_says_so(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = ["attrs"]\n')
    (tmp_path / "uv.lock").write_text("")
    with pytest.warns(FlyrayWarning, match=r"its lock .*uv.lock' is not used"):
        env = image_runtime_env(
            BASE.with_uv_project(tmp_path / "pyproject.toml"), mode="kuberay", where=WHERE
        )
    assert env == {"pip": ["attrs"]}


def test_ray_itself_is_left_out_of_pip():
    image = BASE.with_pip_packages("ray[default]", "numpy", "raydp")
    assert realise(image) == {"pip": ["numpy", "raydp"]}
    with pytest.warns(FlyrayWarning, match=r"'ray\[default\]==1.0.0' is left out"):
        env = image_runtime_env(
            BASE.with_pip_packages("ray[default]==1.0.0"), mode="kuberay", where=WHERE
        )
    assert env == {}


def test_local_mode_uses_no_image_at_all():
    image = BASE.with_apt_packages("wget").with_pip_packages("numpy").with_env_vars({"A": "1"})
    assert realise(image, mode="local") == {}


def test_merge_keeps_config_env_vars_over_the_image_and_packages_after_it():
    image_env = {"pip": ["numpy"], "env_vars": {"A": "image", "B": "image"}}
    env = {"pip": ["pandas"], "env_vars": {"A": "config"}}
    merged = merge_image_env(env, image_env, where=WHERE)
    assert merged == {"pip": ["numpy", "pandas"], "env_vars": {"A": "config", "B": "image"}}
    as_dict = merge_image_env(
        {"pip": {"packages": ["pandas"], "pip_check": True}}, image_env, where=WHERE
    )
    assert as_dict["pip"] == {"packages": ["numpy", "pandas"], "pip_check": True}
    assert merge_image_env({"uv": ["pandas"]}, image_env, where=WHERE)["uv"] == ["numpy", "pandas"]
    with pytest.raises(ManifestError, match=r"runtime_env\['conda'\]"):
        merge_image_env({"conda": {"dependencies": []}}, image_env, where=WHERE)


# --- what needs a build -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["kuberay", "local-cluster"])
def test_calls_that_need_a_build_are_refused_where_the_image_runs(mode):
    image = BASE.with_apt_packages("wget").with_pip_packages("numpy").with_commands(["make"])
    with pytest.raises(ManifestError) as info:
        realise(image, mode=mode)
    message = str(info.value)
    assert message.startswith(f"{WHERE}: its Image needs an image build")
    assert f"({mode} mode" in message
    assert "with_apt_packages('wget'); with_commands(['make'])" in message
    assert "Image.from_base('registry/image:tag')" in message and "with_pip_packages" in message


_BUILDS = [
    (Image.from_dockerfile("Dockerfile", registry="r", name="n"), "from_dockerfile('Dockerfile')"),
    (Image.from_ref_name("gpu"), "from_ref_name('gpu')"),
    (
        BASE.with_pip_packages("x", secret_mounts="GITHUB_PAT"),
        "with_pip_packages(..., secret_mounts=...)",
    ),
    (
        BASE.with_uv_project("p/pyproject.toml", project_install_mode="install_project"),
        "with_uv_project('p/pyproject.toml', project_install_mode=...)",
    ),
    (Image.from_pixi_script("s.py", name="s"), "from_pixi_script('s.py')"),
]


@pytest.mark.parametrize(("image", "call"), _BUILDS)
def test_each_kind_of_build_is_named(image, call):
    with pytest.raises(ManifestError, match="needs an image build") as info:
        realise(image)
    assert call in str(info.value)


def test_cluster_mode_applies_the_runtime_env_and_warns_once_about_the_image():
    image = Image.from_base("x/y:1").with_apt_packages("wget").with_env_vars({"A": "1"})
    with pytest.warns(FlyrayWarning) as caught:
        env = image_runtime_env(image, mode="cluster", where=WHERE)
    assert env == {"env_vars": {"A": "1"}}
    (warning,) = caught
    text = str(warning.message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same warning comes once
        image_runtime_env(image, mode="cluster", where=WHERE)
    assert "no effect in cluster mode" in text and "from_base('x/y:1')" in text
    assert "with_apt_packages('wget')" in text and "the existing cluster runs its own image" in text


def test_cluster_mode_warns_about_a_plain_image_but_not_auto():
    with pytest.warns(FlyrayWarning, match="image='x/y:1' has no effect in cluster mode"):
        assert image_runtime_env("x/y:1", mode="cluster", where=WHERE) == {}
    assert realise("auto", mode="cluster") == {} and realise(None, mode="cluster") == {}


def test_workdir_has_no_effect_and_says_so():
    with pytest.warns(FlyrayWarning, match=r"with_workdir\('/w'\) \(a Ray job runs in"):
        assert image_runtime_env(BASE.with_workdir("/w"), mode="kuberay", where=WHERE) == {}


# --- source folders and files -------------------------------------------------------------


def test_sources_in_the_project_travel_with_the_code_bundle(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "pkg").mkdir()
    task_file = tmp_path / "tasks.py"
    image = BASE.with_source_folder(tmp_path / "pkg").with_source_file(task_file)
    task_file.write_text("")
    assert realise(image, task_file=task_file) == {}


def test_sources_outside_the_project_are_refused_or_shipped_as_py_modules(tmp_path):
    project, lib = tmp_path / "project", tmp_path / "lib"
    project.mkdir(), lib.mkdir()
    (project / "pyproject.toml").write_text("")
    task_file = project / "tasks.py"
    image = BASE.with_source_folder(lib)
    with pytest.raises(
        ManifestError, match=rf"with_source_folder\('{lib}'\) \(outside the project {project}\)"
    ):
        realise(image, task_file=task_file)
    env = image_runtime_env(image, mode="cluster", where=WHERE, task_file=task_file)
    assert env == {"py_modules": [str(lib)]}


def test_a_missing_source_is_named(tmp_path):
    with pytest.raises(ManifestError, match=r"source .*gone' does not exist"):
        realise(BASE.with_source_folder(tmp_path / "gone"), task_file=tmp_path / "t.py")


# --- the container image ------------------------------------------------------------------


def test_container_image_of_each_kind_of_image():
    assert container_image(None) is None and container_image("auto") is None
    assert container_image("x/y:1") == "x/y:1"
    assert container_image(Image.from_base("x/y:1").with_pip_packages("z")) == "x/y:1"
    assert container_image(Image.from_debian_base(name="ray")) is None


def test_default_image_follows_the_images_python():
    ray = ray_version()
    assert default_image_for(Image.from_debian_base(python_version=(3, 12))) == (
        f"rayproject/ray:{ray}-py312"
    )
    assert default_image_for("auto") == default_image() == default_image_for(None)


def test_a_rayjob_with_pip_and_env_vars_from_the_image_runs_the_default_ray_image():
    task = make_task(Image.from_debian_base().with_pip_packages("x").with_env_vars({"A": "1"}))
    manifest = render(task, image=default_image_for(task.env.image))
    assert runtime_env_of(manifest) == {"pip": ["x"], "env_vars": {"A": "1"}}
    assert {c["image"] for c in containers_of(manifest)} == {default_image()}


def test_the_environments_own_image_wins_over_the_setting():
    task = make_task(Image.from_base("example.com/ray:1"))
    assert {c["image"] for c in containers_of(render(task, image="setting/ray:2"))} == {
        "example.com/ray:1"
    }
    auto = make_task("auto")
    assert {c["image"] for c in containers_of(render(auto, image="setting/ray:2"))} == {
        "setting/ray:2"
    }


def test_env_vars_of_every_source_in_order():
    task = make_task(
        Image.from_debian_base().with_env_vars({"A": "image", "B": "image", "C": "image"}),
        runtime_env={"env_vars": {"B": "config"}, "pip": ["y"]},
    )
    env = runtime_env_of(render(task, image="i:1", env_vars={"C": "run"}))
    assert env == {"env_vars": {"A": "image", "B": "config", "C": "run"}, "pip": ["y"]}


def test_rendering_for_kuberay_refuses_and_for_cluster_warns():
    task = make_task(Image.from_debian_base().with_apt_packages("wget"))
    with pytest.raises(ManifestError, match="with_apt_packages"):
        render(task, image="i:1")
    with pytest.warns(FlyrayWarning, match="no effect in cluster mode"):
        render(task, image="i:1", mode="cluster")


def test_a_job_on_an_existing_cluster_gets_the_images_env_vars_and_refuses_packages():
    task = make_task(Image.from_base("x/y:1").with_env_vars({"A": "1"}), address="ray://h:10001")
    job = render_job(ray_request(task), run_id="r0123456789", command=["true"], image="i:1")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "x/y:1" and container["env"] == [{"name": "A", "value": "1"}]
    task = make_task(Image.from_debian_base().with_pip_packages("x"), address="ray://h:10001")
    with pytest.raises(ManifestError, match="pip packages cannot be installed"):
        render_job(ray_request(task), run_id="r0123456789", command=["true"], image="i:1")


def test_the_images_runtime_env_is_part_of_a_warm_clusters_identity():
    from flyray.executors.localcluster.warm.match import cluster_key

    def key(image: Image) -> dict:
        return cluster_key(render(make_task(image), image="i:1", mode="local-cluster"))

    one = key(BASE.with_env_vars({"A": "1"}))
    assert one == key(BASE.with_env_vars({"A": "1"}))
    assert one != key(BASE.with_env_vars({"A": "2"}))
    assert one["runtimeEnv"] == {"env_vars": {"A": "1"}}
