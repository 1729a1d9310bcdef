"""The layers of an ``Image``: one immutable record per builder call, in call order.

``flyray.manifest.image_env`` reads them per mode: pip packages, requirements, uv dependencies
and env vars become a Ray job's runtime env; sources travel in the code bundle; a ``BuildStep``
is refused where an image is used, and a ``NoEffect`` is only reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BuildStep",
    "EnvVars",
    "Layer",
    "NoEffect",
    "PipOptions",
    "PipPackages",
    "Requirements",
    "Source",
    "UVProject",
    "UVScript",
    "layer_file",
    "recorded_call",
]


@dataclass(frozen=True, kw_only=True)
class PipOptions:
    """Options of a pip install: an index, extra indexes, pre-releases, extra arguments."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    pre: bool = False
    extra_args: str | None = None
    secret_mounts: tuple[Any, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PipPackages(PipOptions):
    """``with_pip_packages``: requirement strings, in pip syntax."""

    packages: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Requirements(PipOptions):
    """``with_requirements``: a requirements file, read when the run is rendered."""

    file: Path


@dataclass(frozen=True, kw_only=True)
class UVProject(PipOptions):
    """``with_uv_project``: the ``[project] dependencies`` of a pyproject.toml."""

    pyproject: Path
    uvlock: Path | None = None
    project_install_mode: str = "dependencies_only"


@dataclass(frozen=True, kw_only=True)
class UVScript(PipOptions):
    """``from_uv_script``: the ``dependencies`` of a script's PEP 723 block."""

    script: Path


@dataclass(frozen=True)
class EnvVars:
    """``with_env_vars``: variables set in the image, as (name, value) pairs."""

    env_vars: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Source:
    """``with_source_folder`` / ``with_source_file``: local code copied into the image."""

    src: Path
    dst: str = "."
    is_dir: bool = True


@dataclass(frozen=True)
class BuildStep:
    """A call that only an image build can realise (``with_apt_packages('wget')``)."""

    call: str


@dataclass(frozen=True)
class NoEffect:
    """A call about building or laying out the image that no flyray run needs."""

    call: str
    why: str


Layer = PipPackages | Requirements | UVProject | UVScript | EnvVars | Source | BuildStep | NoEffect


def layer_file(layer: Layer) -> Path | None:
    """The local file or folder a layer names, or None."""
    if isinstance(layer, Requirements):
        return layer.file
    if isinstance(layer, UVProject):
        return layer.pyproject
    if isinstance(layer, UVScript):
        return layer.script
    if isinstance(layer, Source):
        return layer.src
    return None


def recorded_call(method: str, *args: Any) -> str:
    """``with_apt_packages('wget', 'git')``: how a recorded call reads in messages."""
    return f"{method}({', '.join(repr(a) for a in args)})"
