"""What an environment's ``Image`` gives a Ray job, per mode, without building an image.

- ``local``: nothing. As in Flyte's local mode the task runs in the caller's environment.
- ``kuberay`` and ``local-cluster`` (its rehearsal): pip packages, requirements and uv
  dependencies become the runtime env's ``pip``; env vars its ``env_vars``; source folders and
  files travel in the task's code bundle. A call only a build can realise is refused.
- ``cluster``: the same runtime env; what only a container image could carry is warned about
  once, since the existing cluster runs its own image.

A ``ray`` requirement is left out of ``pip``: the cluster's Ray comes from its image, and a
second Ray installed into the job's virtualenv would shadow it.
"""

from __future__ import annotations

import re
import shlex
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flyray.config.image import Image
from flyray.config.image_layers import (
    BuildStep,
    EnvVars,
    NoEffect,
    PipOptions,
    PipPackages,
    Requirements,
    Source,
    UVProject,
    UVScript,
)
from flyray.errors import ManifestError

__all__ = ["IMAGE_MODES", "image_runtime_env", "merge_image_env"]

IMAGE_MODES = ("kuberay", "local-cluster")  # the modes whose containers run the image
_DEFAULT_PIP_OPTIONS = ["--disable-pip-version-check", "--no-cache-dir"]  # Ray's own default
_RAY_REQUIREMENT = re.compile(r"^ray(?:\[[^\]]*\])?(?=$|[\s<>=!~;@,])", re.IGNORECASE)
_RAY_PIN = re.compile(r"==\s*([0-9][\w.+-]*)\s*$")
_SCRIPT_BLOCK = re.compile(
    r"(?m)^# /// script$\s(?P<content>(^#(| .*)$\s)+)^# ///$"
)  # PEP 723's reference regular expression, for the ``script`` block only
_warned: set[str] = set()
_CALLS = {
    PipPackages: "with_pip_packages",
    Requirements: "with_requirements",
    UVProject: "with_uv_project",
    UVScript: "from_uv_script",
}


def image_runtime_env(
    image: object, *, mode: str, where: str, task_file: Path | None = None
) -> dict[str, Any]:
    """``pip``, ``env_vars`` and ``py_modules`` of ``image`` for a run in ``mode``.

    ``where`` names the owner in messages (``TaskEnvironment 'ray_env'``); ``task_file``
    finds the project the code bundle ships, for source folders and files.
    """
    if mode == "local":
        return {}
    if not isinstance(image, Image):
        if mode == "cluster" and isinstance(image, str) and image != "auto":
            _warn(f"{where}: image={image!r} has no effect in cluster mode: {_OWN_IMAGE}")
        return {}
    root = _project_root(task_file)
    needs_build = _needs_build(image, root, cluster=mode == "cluster")
    if needs_build and mode != "cluster":
        raise ManifestError(_refusal(where, mode, image, needs_build))
    _warn_unused(image, where, mode, needs_build)
    env: dict[str, Any] = {}
    pip = _pip(image, where)
    if pip:
        env["pip"] = pip
    env_vars = {
        k: v for layer in image._layers if isinstance(layer, EnvVars) for k, v in layer.env_vars
    }
    if env_vars:
        env["env_vars"] = env_vars
    outside = [str(_local(layer.src)) for layer in _sources(image) if not _inside(layer.src, root)]
    if outside and mode == "cluster":
        env["py_modules"] = outside  # Ray's Jobs client uploads local paths on submission
    return env


def merge_image_env(
    env: dict[str, Any], image_env: dict[str, Any], *, where: str
) -> dict[str, Any]:
    """``env`` (a runtime env) with the image's parts: packages first, env vars underneath."""
    merged = dict(env)
    if "env_vars" in image_env:
        merged["env_vars"] = {**image_env["env_vars"], **merged.get("env_vars", {})}
    if "py_modules" in image_env:
        merged["py_modules"] = [*image_env["py_modules"], *merged.get("py_modules", [])]
    if "pip" in image_env:
        merged.update(_merge_packages(merged, image_env["pip"], where))
    return merged


# --- pip ----------------------------------------------------------------------------------


def _pip(image: Image, where: str) -> list[str] | dict[str, Any]:
    """The image's requirement lines (index options as lines too), a dict if it has extra_args."""
    lines: list[str] = []
    options: list[str] = []
    for layer in image._layers:
        if not isinstance(layer, PipOptions):
            continue
        for line in [*_option_lines(layer), *_packages(layer)]:
            if _RAY_REQUIREMENT.match(line):
                _warn_ray_pin(line, image, where)
            elif line not in lines or not line.startswith("-"):
                lines.append(line)
        options += shlex.split(layer.extra_args or "")
    if not options or not lines:
        return lines
    return {"packages": lines, "pip_install_options": [*_DEFAULT_PIP_OPTIONS, *options]}


def _option_lines(layer: PipOptions) -> list[str]:
    """Index options as requirements-file lines, which Ray writes into its requirements.txt."""
    lines = [f"--index-url {layer.index_url}"] if layer.index_url else []
    lines += [f"--extra-index-url {url}" for url in layer.extra_index_urls]
    return [*lines, "--pre"] if layer.pre else lines


def _packages(layer: PipOptions) -> list[str]:
    if isinstance(layer, PipPackages):
        return list(layer.packages)
    if isinstance(layer, Requirements):
        return _requirements(_local(layer.file), seen=set())
    if isinstance(layer, UVProject):
        return _project_dependencies(_local(layer.pyproject))
    if isinstance(layer, UVScript):
        return _script_dependencies(_local(layer.script))
    return []


def _requirements(path: Path, *, seen: set[Path]) -> list[str]:
    """A requirements file's lines; ``-r`` files inlined (they are not on the cluster)."""
    if path in seen:
        return []
    seen.add(path)
    lines = []
    for number, raw in enumerate(_read(path, "requirements file").splitlines(), start=1):
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        include = re.match(r"^(?:-r|--requirement)[\s=]*(\S+)$", line)
        if include:
            lines += _requirements(_local(Path(include.group(1)), base=path.parent), seen=seen)
        elif re.match(r"^(-c|--constraint|-e|--editable)\b", line):
            raise ManifestError(
                f"{path}:{number}: {line!r} names local files the cluster does not have; "
                "list the packages themselves, or build an image and use Image.from_base"
            )
        else:
            lines.append(line)
    return lines


def _project_dependencies(pyproject: Path) -> list[str]:
    data = _toml(_read(pyproject, "pyproject file"), pyproject)
    deps = data.get("project", {}).get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ManifestError(f"{pyproject}: [project] dependencies must be a list of strings")
    return deps


def _script_dependencies(script: Path) -> list[str]:
    match = _SCRIPT_BLOCK.search(_read(script, "uv script"))
    if match is None:
        return []
    content = "".join(
        line[2:] if line.startswith("# ") else line[1:]
        for line in match.group("content").splitlines(keepends=True)
    )
    deps = _toml(content, script).get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ManifestError(f"{script}: the script block's dependencies must be a list of strings")
    return deps


def _merge_packages(env: dict[str, Any], pip: list[str] | dict[str, Any], where: str) -> dict:
    """The image's packages joined to the runtime env's ``pip`` or ``uv``; conda refuses them."""
    if "conda" in env:
        raise ManifestError(
            f"{where}: Ray cannot combine the Image's pip packages with RayJobConfig."
            "runtime_env['conda']; list them in the conda environment's pip section instead"
        )
    key = "uv" if "uv" in env else "pip"
    image_lines = pip["packages"] if isinstance(pip, dict) else pip
    current = env.get(key)
    if current is None:
        return {key: pip}
    if isinstance(current, str):
        current = _requirements(_local(Path(current)), seen=set())
    if isinstance(current, list):
        current = {"packages": current}
    current = dict(current)
    packages = current.get("packages") or []
    if isinstance(packages, str):
        packages = _requirements(_local(Path(packages)), seen=set())
    current["packages"] = [*image_lines, *packages]
    if isinstance(pip, dict):
        if key == "uv":
            raise ManifestError(
                f"{where}: the Image's extra_args are pip options, but RayJobConfig.runtime_env "
                "installs with uv; drop extra_args or use runtime_env['pip']"
            )
        options = current.get("pip_install_options", _DEFAULT_PIP_OPTIONS)
        extra = [o for o in pip["pip_install_options"] if o not in options]
        current["pip_install_options"] = [*options, *extra]
    return {key: current if set(current) != {"packages"} else current["packages"]}


# --- what needs a build -------------------------------------------------------------------


def _needs_build(image: Image, root: Path | None, *, cluster: bool) -> list[str]:
    """The calls of ``image`` that only a build (or, in cluster mode, another image) realises."""
    calls = []
    if image.dockerfile is not None:
        calls.append(f"from_dockerfile({str(image.dockerfile)!r})")
    if image._ref_name is not None:
        calls.append(f"from_ref_name({image._ref_name!r})")
    if cluster and image.base_image is not None:
        calls.append(f"from_base({image.base_image!r})")
    for layer in image._layers:
        if isinstance(layer, BuildStep):
            calls.append(layer.call)
        elif isinstance(layer, UVProject) and layer.project_install_mode == "install_project":
            calls.append(f"with_uv_project({str(layer.pyproject)!r}, project_install_mode=...)")
        elif isinstance(layer, PipOptions) and layer.secret_mounts:
            calls.append(f"{_CALLS[type(layer)]}(..., secret_mounts=...)")
        elif isinstance(layer, Source):
            _check_exists(layer.src)
            if not cluster and not _inside(layer.src, root):
                what = "with_source_folder" if layer.is_dir else "with_source_file"
                calls.append(f"{what}({str(layer.src)!r}) (outside the project {root})")
    return calls


def _refusal(where: str, mode: str, image: Image, calls: list[str]) -> str:
    return (
        f"{where}: its Image needs an image build, which flyray does not do ({mode} mode "
        f"runs the image as it is): {'; '.join(calls)}. Build the image yourself (from "
        f"{_base_hint(image)}, plus what these calls add), push it and pass "
        "Image.from_base('registry/image:tag'); move Python packages to with_pip_packages or "
        "with_requirements, and code into the task's project, which flyray ships"
    )


def _base_hint(image: Image) -> str:
    """The image to build on: the one ``from_base`` named, else the official Ray image."""
    if image.base_image is not None:
        return image.base_image
    from flyray.manifest.images import default_image_for

    try:
        return default_image_for(image)
    except ManifestError:  # no Ray installed here
        return "a rayproject/ray image"


_OWN_IMAGE = "the existing cluster runs its own image; the runtime env (pip, env vars) applies"


def _warn_unused(image: Image, where: str, mode: str, needs_build: list[str]) -> None:
    """One warning for what has no effect in ``mode`` (flyray keeps nothing silent)."""
    unused = [
        f"{layer.call} ({layer.why})" for layer in image._layers if isinstance(layer, NoEffect)
    ]
    unused += [
        f"with_uv_project({str(layer.pyproject)!r}): its lock {str(layer.uvlock)!r} is not "
        "used, the runtime env installs the pyproject's dependencies"
        for layer in image._layers
        if isinstance(layer, UVProject) and layer.uvlock is not None
    ]
    if needs_build:  # only in cluster mode: elsewhere they were refused
        unused.append(f"{'; '.join(needs_build)} ({_OWN_IMAGE})")
    if unused:
        _warn(f"{where}: these Image calls have no effect in {mode} mode: {'; '.join(unused)}")


def _warn_ray_pin(line: str, image: Image, where: str) -> None:
    """A ``ray==X`` pin that the default image (this Ray's) does not honour is worth a word."""
    from flyray.config.ray_images import ray_version

    pin = _RAY_PIN.search(line)
    if image.base_image is None and pin and pin.group(1) != ray_version():
        _warn(
            f"{where}: the Image's {line!r} is left out of the runtime env: the cluster's Ray "
            f"comes from its image, here the Ray {ray_version()} image of this machine's Ray; "
            f"install Ray {pin.group(1)} here, or pass an image with it to Image.from_base"
        )


def _warn(message: str) -> None:
    """A ``FlyrayWarning``, once per message in this process."""
    from flyray.warn import FlyrayWarning

    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, FlyrayWarning, stacklevel=3)


# --- files --------------------------------------------------------------------------------


def _sources(image: Image) -> Iterable[Source]:
    return (layer for layer in image._layers if isinstance(layer, Source))


def _project_root(task_file: Path | None) -> Path | None:
    if task_file is None:
        return None
    from flyray.store.bundle import project_root

    return project_root(task_file)


def _inside(src: Path, root: Path | None) -> bool:
    return root is not None and _local(src).is_relative_to(root)


def _check_exists(src: Path) -> None:
    if not _local(src).exists():
        raise ManifestError(f"the Image's source {str(src)!r} does not exist ({_local(src)})")


def _local(path: Path, base: Path | None = None) -> Path:
    """``path`` made absolute against ``base`` (default: the current directory)."""
    return ((base or Path.cwd()) / path).resolve()


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(
            f"cannot read the Image's {what} {path}: {exc.strerror or exc}; paths are relative "
            "to the directory flyray runs in"
        ) from None


def _toml(text: str, path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        raise ManifestError(
            f"reading {path} needs Python 3.11 (tomllib); list its dependencies with "
            "with_pip_packages instead"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path} is not valid TOML: {exc}") from None
