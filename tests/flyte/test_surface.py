"""Flyte's public surface for Ray users, compared by introspection with flyray's.

Every name below must exist in flyray; every parameter of a Flyte callable or dataclass must
exist in flyray's with the same kind, the same position (positional-or-keyword parameters) and
the same default (by value). flyray may add parameters, and may give a default where Flyte
requires the argument. Deliberate differences are listed, with the reason, in ``DIFFERENCES``.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Any

import pytest

pytest.importorskip("flyte", reason="the real flyte is installed by the 'flyte' extra")
pytest.importorskip("flyteplugins.ray", reason="flyteplugins-ray comes with the 'flyte' extra")

import flyray
import flyray.errors

# Flyte's name -> flyray's: "module:attribute.path". "<task>" is a task object made with
# @env.task in that library.
SURFACE: dict[str, str] = {
    "flyteplugins.ray:RayJobConfig": "flyray.plugins.ray:RayJobConfig",
    "flyteplugins.ray:HeadNodeConfig": "flyray.plugins.ray:HeadNodeConfig",
    "flyteplugins.ray:WorkerNodeConfig": "flyray.plugins.ray:WorkerNodeConfig",
    "flyteplugins.ray:AutoscalerOptionsConfig": "flyray.plugins.ray:AutoscalerOptionsConfig",
    "flyteplugins.ray.task:RayJobConfig": "flyray.plugins.ray.task:RayJobConfig",
    "flyteplugins.ray.task:HeadNodeConfig": "flyray.plugins.ray.task:HeadNodeConfig",
    "flyteplugins.ray.task:WorkerNodeConfig": "flyray.plugins.ray.task:WorkerNodeConfig",
    "flyteplugins.ray.task:AutoscalerOptionsConfig": (
        "flyray.plugins.ray.task:AutoscalerOptionsConfig"
    ),
    "flyte:Resources": "flyray:Resources",
    "flyte:TaskEnvironment": "flyray:TaskEnvironment",
    "flyte:TaskEnvironment.task": "flyray:TaskEnvironment.task",
    "<task>:aio": "<task>:aio",
    "<task>:override": "<task>:override",
    "flyte:Secret": "flyray:Secret",
    "flyte:Image.from_debian_base": "flyray:Image.from_debian_base",
    "flyte:Image.from_base": "flyray:Image.from_base",
    "flyte:Image.from_dockerfile": "flyray:Image.from_dockerfile",
    "flyte:Image.with_pip_packages": "flyray:Image.with_pip_packages",
    "flyte:Image.with_requirements": "flyray:Image.with_requirements",
    "flyte:Image.with_apt_packages": "flyray:Image.with_apt_packages",
    "flyte:Image.with_env_vars": "flyray:Image.with_env_vars",
    "flyte:Image.with_source_folder": "flyray:Image.with_source_folder",
    "flyte:Image.with_source_file": "flyray:Image.with_source_file",
    "flyte:ReusePolicy": "flyray:ReusePolicy",
    "flyte:RetryStrategy": "flyray:RetryStrategy",
    "flyte:Timeout": "flyray:Timeout",
    "flyte:PodTemplate": "flyray:PodTemplate",
    "flyte:GPU": "flyray:GPU",
    "flyte:Device": "flyray:Device",
    "flyte:init": "flyray:init",
    "flyte:init_from_config": "flyray:init_from_config",
    "flyte:run": "flyray:run",
    "flyte:with_runcontext": "flyray:with_runcontext",
    "flyte.remote:Run.wait": "flyray:Run.wait",
    "flyte.remote:Run.outputs": "flyray:Run.outputs",
}

# The exceptions of flyte.errors that a flyray run can meet, each under flyray.errors.
ERRORS = [
    "BaseRuntimeError",
    "RuntimeUserError",
    "RuntimeSystemError",
    "RuntimeUnknownError",
    "OOMError",
    "TaskTimeoutError",
    "RetriesExhaustedError",
    "ImagePullBackOffError",
    "CustomError",
]

# (Flyte's name, parameter) -> why flyray differs on purpose. Keep this short.
DIFFERENCES: dict[tuple[str, str], str] = {
    # flyray keeps labels and annotations as dicts; an empty dict and Flyte's None both mean none.
    ("flyte:PodTemplate", "labels"): "default {} instead of None",
    ("flyte:PodTemplate", "annotations"): "default {} instead of None",
}


def resolve(ref: str) -> Any:
    """The object a ``module:attribute.path`` reference names (AttributeError if missing)."""
    module_name, _, path = ref.partition(":")
    if module_name == "<task>":
        raise ValueError("use resolve_in")
    obj: Any = importlib.import_module(module_name)
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def resolve_in(ref: str, library: str) -> Any:
    """Like ``resolve``, with ``<task>`` a task made in ``library`` ("flyte" or "flyray")."""
    if not ref.startswith("<task>:"):
        return resolve(ref)
    lib = importlib.import_module(library)
    env = lib.TaskEnvironment(name=f"surface_{library}_env")

    def square(x: int) -> int:
        return x * x

    return getattr(env.task(square), ref.partition(":")[2])


def parameters(obj: Any) -> list[inspect.Parameter]:
    """The parameters of a callable or a class's constructor, without ``self``."""
    return [p for p in inspect.signature(obj).parameters.values() if p.name != "self"]


def default_of(obj: Any, param: inspect.Parameter) -> Any:
    """A parameter's default by value: a dataclass field's default_factory is called."""
    if dataclasses.is_dataclass(obj) and isinstance(obj, type):
        for f in dataclasses.fields(obj):
            if f.name == param.name and f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
    return param.default


def comparable(value: Any) -> Any:
    """A default in a form both libraries can compare: their own classes by name and fields."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, dataclasses.asdict(value))
    return value


def mismatches(flyte_ref: str, flyte_obj: Any, flyray_obj: Any) -> list[str]:
    """Every way flyray's parameters differ from Flyte's (except the deliberate ones)."""
    theirs, ours = parameters(flyte_obj), parameters(flyray_obj)
    ours_by_name = {p.name: (i, p) for i, p in enumerate(ours)}
    found = []
    for i, param in enumerate(theirs):
        if (flyte_ref, param.name) in DIFFERENCES:
            continue
        if param.name.startswith("_") and param.kind == inspect.Parameter.KEYWORD_ONLY:
            continue  # Flyte's private keywords (e.g. with_runcontext's _tracker)
        if param.name not in ours_by_name:
            found.append(f"{param.name}: missing")
            continue
        j, mine = ours_by_name[param.name]
        if mine.kind != param.kind:
            found.append(f"{param.name}: kind {mine.kind.name}, Flyte's is {param.kind.name}")
        if param.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD and i != j:
            found.append(f"{param.name}: position {j}, Flyte's is {i}")
        if param.default is inspect.Parameter.empty:
            continue  # flyray may give a default where Flyte requires the argument
        expected = comparable(default_of(flyte_obj, param))
        actual = comparable(default_of(flyray_obj, mine))
        if mine.default is inspect.Parameter.empty or actual != expected:
            found.append(f"{param.name}: default {actual!r}, Flyte's is {expected!r}")
    return found


@pytest.mark.parametrize("flyte_ref", sorted(SURFACE))
def test_name_exists_in_flyray(flyte_ref):
    resolve_in(flyte_ref, "flyte")  # the table names Flyte's objects correctly
    try:
        resolve_in(SURFACE[flyte_ref], "flyray")
    except (AttributeError, ImportError) as exc:
        pytest.fail(f"{SURFACE[flyte_ref]} is missing: {exc}")


@pytest.mark.parametrize("flyte_ref", sorted(SURFACE))
def test_parameters_kinds_positions_and_defaults_match(flyte_ref):
    flyte_obj = resolve_in(flyte_ref, "flyte")
    try:
        flyray_obj = resolve_in(SURFACE[flyte_ref], "flyray")
    except (AttributeError, ImportError) as exc:
        pytest.fail(f"{SURFACE[flyte_ref]} is missing: {exc}")
    problems = mismatches(flyte_ref, flyte_obj, flyray_obj)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", ["RayJobConfig", "HeadNodeConfig", "WorkerNodeConfig"])
def test_config_field_order_starts_as_flytes(name):
    import flyteplugins.ray

    import flyray.plugins.ray

    theirs = [f.name for f in dataclasses.fields(getattr(flyteplugins.ray, name))]
    ours = [f.name for f in dataclasses.fields(getattr(flyray.plugins.ray, name))]
    assert ours[: len(theirs)] == theirs


def test_autoscaler_options_field_order_starts_as_flytes():
    import flyteplugins.ray

    import flyray.plugins.ray

    theirs = [f.name for f in dataclasses.fields(flyteplugins.ray.AutoscalerOptionsConfig)]
    ours = [f.name for f in dataclasses.fields(flyray.plugins.ray.AutoscalerOptionsConfig)]
    assert ours[: len(theirs)] == theirs


@pytest.mark.parametrize("member", ["UNSPECIFIED", "DEFAULT", "AGGRESSIVE", "CONSERVATIVE"])
def test_upscaling_mode_members_have_flytes_values(member):
    import flyteplugins.ray

    import flyray.plugins.ray

    theirs = getattr(flyteplugins.ray.AutoscalerOptionsConfig.UpscalingMode, member)
    ours = getattr(flyray.plugins.ray.AutoscalerOptionsConfig.UpscalingMode, member)
    assert ours == theirs


@pytest.mark.parametrize("attribute", ["name", "url", "wait", "outputs"])
def test_run_handle_has_flytes_attributes(attribute):
    import flyte.remote

    assert hasattr(flyte.remote.Run, attribute)
    fields = {f.name for f in dataclasses.fields(flyray.Run)}
    assert hasattr(flyray.Run, attribute) or attribute in fields


@pytest.mark.parametrize("name", ERRORS)
def test_error_exists_under_flyray_errors_and_flyrays_root(name):
    assert hasattr(flyray.errors, name), f"flyray.errors.{name} is missing"
    assert issubclass(getattr(flyray.errors, name), flyray.errors.FlyrayError)


@pytest.mark.parametrize("name", ERRORS)
def test_error_keeps_flytes_bases_and_constructor(name):
    import flyte.errors

    if not hasattr(flyray.errors, name):
        pytest.fail(f"flyray.errors.{name} is missing")
    theirs, ours = getattr(flyte.errors, name), getattr(flyray.errors, name)
    for base in ERRORS:
        if issubclass(theirs, getattr(flyte.errors, base)):
            assert issubclass(ours, getattr(flyray.errors, base, ())), f"{name} is a {base}"
    if issubclass(theirs, RuntimeError):
        assert issubclass(ours, RuntimeError)
    problems = mismatches(f"flyte.errors:{name}", theirs, ours)
    assert not problems, "\n".join(problems)


def test_surface_table_names_every_flyte_object():
    for ref in SURFACE:
        assert resolve_in(ref, "flyte") is not None
