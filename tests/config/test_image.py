"""``flyray.Image``: Flyte's builder calls as an immutable value, checked when made."""

from __future__ import annotations

import dataclasses
import inspect
import sys
from pathlib import Path

import pytest

from flyray import ConfigError, Image, TaskEnvironment
from flyray.config.image import as_image
from flyray.config.image_layers import (
    BuildStep,
    EnvVars,
    NoEffect,
    PipPackages,
    Requirements,
    Source,
    UVProject,
    UVScript,
)

HERE = (sys.version_info[0], sys.version_info[1])


def test_direct_construction_is_refused_as_in_flyte():
    with pytest.raises(ConfigError, match="from_base"):
        Image()


def test_from_debian_base_is_the_default_ray_image_with_this_python():
    image = Image.from_debian_base(name="ray")
    assert image.base_image is None and image.name == "ray"
    assert image.python_version == HERE and image.extendable
    assert image.platform == ("linux/amd64", "linux/arm64")
    assert Image.from_debian_base(python_version=(3, 12)).python_version == (3, 12)


def test_from_base_names_the_container_image():
    image = Image.from_base("rayproject/ray:2.60.0-py311")
    assert image.base_image == image.uri == "rayproject/ray:2.60.0-py311"
    assert image._layers == ()


def test_every_with_call_returns_a_new_image_and_leaves_the_old_one():
    base = Image.from_debian_base()
    more = base.with_pip_packages("numpy")
    assert base._layers == () and more is not base
    assert more._layers == (PipPackages(packages=("numpy",)),)
    with pytest.raises(dataclasses.FrozenInstanceError):
        more.name = "other"  # type: ignore[misc]


def test_equal_calls_give_equal_hashable_images():
    def build() -> Image:
        return (
            Image.from_debian_base(name="ray")
            .with_pip_packages("numpy", index_url="https://pypi.example/simple")
            .with_env_vars({"A": "1"})
        )

    assert build() == build() and hash(build()) == hash(build())
    assert build() != build().with_env_vars({"B": "2"})
    assert build() != Image.from_debian_base(name="other").with_pip_packages("numpy")


def test_pip_options_are_kept_on_the_layer():
    image = Image.from_debian_base().with_pip_packages(
        "numpy", index_url="https://a", extra_index_urls="https://b", pre=True, extra_args="--x"
    )
    (layer,) = image._layers
    assert layer == PipPackages(
        packages=("numpy",),
        index_url="https://a",
        extra_index_urls=("https://b",),
        pre=True,
        extra_args="--x",
    )


def test_requirements_must_be_a_txt_file():
    image = Image.from_debian_base().with_requirements("reqs/requirements.txt")
    assert image._layers == (Requirements(file=Path("reqs/requirements.txt")),)
    with pytest.raises(ConfigError, match=r"with_requirements\(file\) must be a .txt file"):
        Image.from_debian_base().with_requirements("pyproject.toml")


def test_uv_project_finds_its_lock_and_checks_the_install_mode(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname='p'\n")
    (tmp_path / "uv.lock").write_text("")
    (layer,) = Image.from_debian_base().with_uv_project(tmp_path / "pyproject.toml")._layers
    assert layer == UVProject(pyproject=tmp_path / "pyproject.toml", uvlock=tmp_path / "uv.lock")
    with pytest.raises(ConfigError, match=r"project_install_mode\) must be one of"):
        Image.from_debian_base().with_uv_project("pyproject.toml", project_install_mode="all")


def test_from_uv_script_is_the_default_image_plus_the_script():
    image = Image.from_uv_script("job.py", name="job", python_version=(3, 12))
    assert image.base_image is None and image.name == "job" and image.python_version == (3, 12)
    assert image._layers == (UVScript(script=Path("job.py")),)


def test_env_vars_are_checked():
    image = Image.from_debian_base().with_env_vars({"A": "1", "B_2": "x"})
    assert image._layers == (EnvVars((("A", "1"), ("B_2", "x"))),)
    with pytest.raises(ConfigError, match=r"with_env_vars\(env_vars\)\['1A'\]"):
        Image.from_debian_base().with_env_vars({"1A": "x"})
    with pytest.raises(ConfigError, match="must be a string"):
        Image.from_debian_base().with_env_vars({"A": 1})  # type: ignore[dict-item]


def test_source_folder_and_files_keep_flyte_destinations():
    image = Image.from_debian_base().with_source_folder(Path("lib/pkg"))
    assert image._layers == (Source(Path("lib/pkg"), "./pkg", is_dir=True),)
    inside = Image.from_debian_base().with_source_folder(Path("pkg"), copy_contents_only=True)
    assert inside._layers == (Source(Path("pkg"), ".", is_dir=True),)
    files = Image.from_debian_base().with_source_file([Path("a.py"), Path("b.py")], dst="/app")
    assert [layer.src for layer in files._layers] == [Path("a.py"), Path("b.py")]
    with pytest.raises(ConfigError, match="would overwrite each other"):
        Image.from_debian_base().with_source_file([Path("x/a.py"), Path("y/a.py")])


@pytest.mark.parametrize(
    ("build", "call"),
    [
        (lambda i: i.with_apt_packages("wget", "git"), "with_apt_packages('wget', 'git')"),
        (lambda i: i.with_commands(["echo hi"]), "with_commands(['echo hi'])"),
        (
            lambda i: i.with_poetry_project("pyproject.toml"),
            "with_poetry_project('pyproject.toml')",
        ),
        (lambda i: i.with_pixi_project("pixi.toml"), "with_pixi_project('pixi.toml')"),
        (lambda i: i.with_local_v2(), "with_local_v2()"),
        (lambda i: i.with_local_rs_controller(), "with_local_rs_controller()"),
        (
            lambda i: i.with_local_v2_plugins("flyteplugins-x"),
            "with_local_v2_plugins('flyteplugins-x')",
        ),
    ],
)
def test_calls_that_need_a_build_are_recorded_not_refused(build, call):
    assert build(Image.from_debian_base())._layers == (BuildStep(call),)


def test_calls_without_effect_are_recorded_with_the_reason():
    image = Image.from_base("x/y:1").with_workdir("/home/nonroot").with_code_bundle()
    assert [layer.call for layer in image._layers] == [
        "with_workdir('/home/nonroot')",
        "with_code_bundle('loaded_modules')",
    ]
    assert all(isinstance(layer, NoEffect) and layer.why for layer in image._layers)


def test_dockerfile_and_ref_name_are_recorded():
    image = Image.from_dockerfile("Dockerfile", registry="r.example", name="img")
    assert image.dockerfile == Path("Dockerfile") and image.registry == "r.example"
    assert Image.from_ref_name()._ref_name == "default"


def test_clone_changes_base_properties_and_adds_a_layer():
    base = Image.from_base("x/y:1")
    clone = base.clone(name="n", registry="r", python_version=(3, 12), extendable=True)
    assert (clone.name, clone.registry, clone.python_version) == ("n", "r", (3, 12))
    assert clone.base_image == "x/y:1" and base.name is None
    layer = EnvVars((("A", "1"),))
    assert base.clone(addl_layer=layer)._layers == (layer,)
    with pytest.raises(ConfigError, match=r"addl_layer\) must be a flyray image layer"):
        base.clone(addl_layer="apt-get install x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: Image.from_base(""), "Image.from_base(image_uri)"),
        (lambda: Image.from_debian_base(python_version=(3,)), "python_version"),
        (lambda: Image.from_debian_base().with_pip_packages(""), "with_pip_packages(packages)"),
        (lambda: Image.from_debian_base().with_env_vars(["A=1"]), "with_env_vars(env_vars)"),
    ],
)
def test_bad_arguments_name_the_call(call, field):
    with pytest.raises(ConfigError) as info:
        call()
    assert field in info.value.field


def test_validate_names_a_missing_file(tmp_path):
    image = Image.from_debian_base().with_requirements(tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match=r"missing\.txt"):
        image.validate()
    (tmp_path / "missing.txt").write_text("numpy\n")
    image.validate()


def test_as_image_accepts_auto_names_and_images_only():
    image = Image.from_debian_base()
    assert as_image("f", None) is None and as_image("f", "auto") == "auto"
    assert as_image("f", "x/y:1") == "x/y:1" and as_image("f", image) is image
    for bad in ("", "  ", 3, ["x/y:1"]):
        with pytest.raises(ConfigError, match="must be 'auto', a container image name or a"):
            as_image("TaskEnvironment.image", bad)


def test_task_environment_defaults_to_auto_and_takes_an_image():
    assert TaskEnvironment("e").image == "auto"
    image = Image.from_debian_base().with_pip_packages("numpy")
    assert TaskEnvironment("e", image=image).image is image
    with pytest.raises(ConfigError, match=r"TaskEnvironment\.image"):
        TaskEnvironment("e", image=42)  # type: ignore[arg-type]


_COMPARED = [
    "from_debian_base", "from_base", "from_ref_name", "from_dockerfile", "from_uv_script",
    "from_pixi_script", "clone", "with_workdir", "with_requirements", "with_pip_packages",
    "with_env_vars", "with_source_folder", "with_source_file", "with_code_bundle",
    "with_dockerignore", "with_uv_project", "with_poetry_project", "with_pixi_project",
    "with_apt_packages", "with_commands", "with_local_v2", "with_local_rs_controller",
    "with_local_v2_plugins", "validate",
]  # fmt: skip


@pytest.mark.parametrize("method", _COMPARED)
def test_parameters_and_defaults_are_flytes(method):
    flyte = pytest.importorskip("flyte")

    def shape(func):
        params = inspect.signature(func).parameters.values()
        return [(p.name, p.kind, p.default) for p in params]

    assert shape(getattr(Image, method)) == shape(getattr(flyte.Image, method))
