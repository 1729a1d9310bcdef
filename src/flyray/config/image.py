"""``Image``: Flyte's image builder calls, recorded as an immutable value; nothing is built.

Every ``from_*`` / ``with_*`` call returns a new ``Image`` with one more layer. What a layer
means for a run is decided later, per mode, by ``flyray.manifest.image_env``: pip packages,
requirements, uv dependencies and env vars become the Ray job's runtime env; ``from_base``
names the KubeRay container image; the calls that need an image build (apt packages, shell
commands, Dockerfiles, ...) are recorded as ``BuildStep`` and refused where an image is used.
Those calls are in ``image_build``, the layers in ``image_layers``, the argument checks in
``image_checks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field, replace
from pathlib import Path
from typing import Any

from flyray.config import image_checks as check
from flyray.config.image_build import BuildCalls
from flyray.config.image_layers import (
    BuildStep,
    EnvVars,
    Layer,
    PipPackages,
    Requirements,
    Source,
    UVProject,
    UVScript,
    layer_file,
    recorded_call,
)
from flyray.config.names import check_env_vars
from flyray.errors import ConfigError

__all__ = ["AUTO", "Image", "as_image"]

AUTO = "auto"  # Flyte's default image: here, the official Ray image for this Ray and Python
_TOKEN = object()  # only Image's own constructors pass it, as Flyte allows only from_*()
_INSTALL_MODES = ("dependencies_only", "install_project")
_DEBIAN_PLATFORMS = ("linux/amd64", "linux/arm64")


@dataclass(frozen=True)
class Image(BuildCalls):
    """A container image as Flyte's builder describes it, realised by flyray without a build.

    Start with a ``from_*`` class method and add layers with ``with_*`` methods; each returns a
    new ``Image``. ``base_image`` is ``None`` for the default (the official Ray image for this
    Ray and ``python_version``), else the image ``from_base`` named.
    """

    base_image: str | None = None
    dockerfile: Path | None = None
    registry: str | None = None
    name: str | None = None
    platform: tuple[str, ...] = ("linux/amd64",)
    python_version: tuple[int, int] = field(default_factory=check.this_python)
    extendable: bool = False
    _layers: tuple[Layer, ...] = ()
    _ref_name: str | None = None
    _registry_secret: Any = None
    _token: InitVar[object] = None

    def __post_init__(self, _token: object) -> None:
        if _token is not _TOKEN:
            raise ConfigError(
                "Image",
                "Image(...)",
                "is made with Image.from_base(...), "
                "Image.from_debian_base(...) or another from_*() method, not directly",
            )

    @classmethod
    def _new(cls, **fields: Any) -> Image:
        return cls(**fields, _token=_TOKEN)

    # --- where an image starts ------------------------------------------------------------

    @classmethod
    def from_debian_base(
        cls,
        python_version: tuple[int, int] | None = None,
        flyte_version: str | None = None,
        install_flyte: bool = True,
        registry: str | None = None,
        registry_secret: Any = None,
        name: str | None = None,
        platform: tuple[str, ...] | None = None,
    ) -> Image:
        """The default image: in flyray, the official Ray image for this Ray and ``python_version``.

        ``flyte_version`` and ``install_flyte`` are accepted and have no effect (no build).
        """
        return cls._new(
            registry=check.optional_text("Image.from_debian_base(registry)", registry),
            name=check.optional_text("Image.from_debian_base(name)", name),
            platform=check.platform(
                "Image.from_debian_base(platform)", platform, _DEBIAN_PLATFORMS
            ),
            python_version=check.python_version(
                "Image.from_debian_base(python_version)", python_version
            ),
            extendable=True,
            _registry_secret=registry_secret,
        )

    @classmethod
    def from_base(cls, image_uri: str) -> Image:
        """A pre-built image, used as it is for every KubeRay container."""
        return cls._new(
            base_image=check.text("Image.from_base(image_uri)", image_uri), extendable=True
        )

    @classmethod
    def from_ref_name(cls, name: str = "default") -> Image:
        """An image named in Flyte's config (``image.refs``), which flyray does not read."""
        name = check.text("Image.from_ref_name(name)", name)
        return cls._new(name=name, _ref_name=name, extendable=True)

    @classmethod
    def from_dockerfile(
        cls, file: Path | str, registry: str, name: str, platform: Any = None
    ) -> Image:
        """An image built from a Dockerfile: recorded, refused where an image is used."""
        return cls._new(
            dockerfile=check.path("Image.from_dockerfile(file)", file),
            registry=check.text("Image.from_dockerfile(registry)", registry),
            name=check.text("Image.from_dockerfile(name)", name),
            platform=check.platform("Image.from_dockerfile(platform)", platform, ("linux/amd64",)),
        )

    @classmethod
    def from_uv_script(
        cls,
        script: Path | str,
        *,
        name: str,
        registry: str | None = None,
        registry_secret: Any = None,
        python_version: tuple[int, int] | None = None,
        index_url: str | None = None,
        extra_index_urls: str | list[str] | tuple[str, ...] | None = None,
        pre: bool = False,
        extra_args: str | None = None,
        platform: tuple[str, ...] | None = None,
        secret_mounts: Any = None,
    ) -> Image:
        """The default image plus the ``dependencies`` of the script's PEP 723 block."""
        where = "Image.from_uv_script"
        layer = UVScript(
            script=check.path(f"{where}(script)", script),
            **check.pip_options(where, index_url, extra_index_urls, pre, extra_args, secret_mounts),
        )
        base = cls.from_debian_base(
            python_version=python_version,
            registry=registry,
            registry_secret=registry_secret,
            name=check.text(f"{where}(name)", name),
            platform=platform,
        )
        return base._add(layer)

    @classmethod
    def from_pixi_script(
        cls,
        script: Path | str,
        *,
        name: str,
        registry: str | None = None,
        registry_secret: Any = None,
        environment: str = "default",
        extra_args: str | None = None,
        platform: tuple[str, ...] | None = None,
        secret_mounts: Any = None,
    ) -> Image:
        """A pixi script's conda and PyPI packages: needs a build (recorded)."""
        base = cls.from_debian_base(
            registry=registry, registry_secret=registry_secret, name=name, platform=platform
        )
        return base._add(BuildStep(recorded_call("from_pixi_script", str(script))))

    def clone(
        self,
        registry: str | None = None,
        registry_secret: Any = None,
        name: str | None = None,
        base_image: str | None = None,
        python_version: tuple[int, int] | None = None,
        addl_layer: Layer | None = None,
        extendable: bool | None = None,
        platform: Any = None,
    ) -> Image:
        """A copy with other base properties, and optionally one more layer."""
        changes: dict[str, Any] = {
            "registry": registry or self.registry,
            "name": name or self.name,
            "base_image": check.optional_text("Image.clone(base_image)", base_image)
            or self.base_image,
            "_registry_secret": registry_secret or self._registry_secret,
            "platform": check.platform("Image.clone(platform)", platform, self.platform),
            "extendable": self.extendable if extendable is None else bool(extendable),
        }
        if python_version is not None:
            changes["python_version"] = check.python_version(
                "Image.clone(python_version)", python_version
            )
        image = replace(self, **changes, _token=_TOKEN)
        if addl_layer is None:
            return image
        if not isinstance(addl_layer, Layer):
            raise ConfigError("Image.clone(addl_layer)", addl_layer, "must be a flyray image layer")
        return image._add(addl_layer)

    # --- what goes into the runtime env ---------------------------------------------------

    def with_pip_packages(
        self,
        *packages: str,
        index_url: str | None = None,
        extra_index_urls: str | list[str] | tuple[str, ...] | None = None,
        pre: bool = False,
        extra_args: str | None = None,
        secret_mounts: Any = None,
    ) -> Image:
        """Pip packages: the Ray job's runtime env ``pip`` (installed when the job starts)."""
        where = "Image.with_pip_packages"
        return self._add(
            PipPackages(
                packages=tuple(check.text(f"{where}(packages)", p) for p in packages),
                **check.pip_options(
                    where, index_url, extra_index_urls, pre, extra_args, secret_mounts
                ),
            )
        )

    def with_requirements(
        self,
        file: str | Path,
        index_url: str | None = None,
        extra_index_urls: str | list[str] | tuple[str, ...] | None = None,
        pre: bool = False,
        extra_args: str | None = None,
        secret_mounts: Any = None,
    ) -> Image:
        """A requirements file (``.txt``), read when a run is rendered, relative to the cwd."""
        where = "Image.with_requirements"
        path = check.path(f"{where}(file)", file)
        if path.suffix != ".txt":
            raise ConfigError(f"{where}(file)", str(file), "must be a .txt file")
        return self._add(
            Requirements(
                file=path,
                **check.pip_options(
                    where, index_url, extra_index_urls, pre, extra_args, secret_mounts
                ),
            )
        )

    def with_uv_project(
        self,
        pyproject_file: str | Path,
        uvlock: Path | None = None,
        index_url: str | None = None,
        extra_index_urls: list[str] | tuple[str, ...] | None = None,
        pre: bool = False,
        extra_args: str | None = None,
        secret_mounts: Any = None,
        project_install_mode: str = "dependencies_only",
    ) -> Image:
        """A uv project's ``[project] dependencies`` (the lock is not used: nothing is built)."""
        where = "Image.with_uv_project"
        pyproject = check.path(f"{where}(pyproject_file)", pyproject_file)
        if project_install_mode not in _INSTALL_MODES:
            rule = f"must be one of {', '.join(map(repr, _INSTALL_MODES))}"
            raise ConfigError(f"{where}(project_install_mode)", project_install_mode, rule)
        if uvlock is None and (pyproject.parent / "uv.lock").exists():
            uvlock = pyproject.parent / "uv.lock"
        return self._add(
            UVProject(
                pyproject=pyproject,
                uvlock=None if uvlock is None else check.path(f"{where}(uvlock)", uvlock),
                project_install_mode=project_install_mode,
                **check.pip_options(
                    where, index_url, extra_index_urls, pre, extra_args, secret_mounts
                ),
            )
        )

    def with_env_vars(self, env_vars: dict[str, str]) -> Image:
        """Environment variables: the Ray job's runtime env ``env_vars``."""
        where = "Image.with_env_vars(env_vars)"
        if not isinstance(env_vars, Mapping):
            raise ConfigError(where, env_vars, "must be a dict of str to str")
        check_env_vars(where, env_vars)
        return self._add(EnvVars(tuple(env_vars.items())))

    def with_source_folder(
        self, src: Path, dst: str = ".", copy_contents_only: bool = False
    ) -> Image:
        """A local folder: shipped with the task's code bundle when it lies in the project."""
        path = check.path("Image.with_source_folder(src)", src)
        if not copy_contents_only and dst == ".":
            dst = f"./{path.name}"
        return self._add(
            Source(path, check.text("Image.with_source_folder(dst)", dst), is_dir=True)
        )

    def with_source_file(self, src: Path | list[Path], dst: str = ".") -> Image:
        """Local files: shipped with the task's code bundle when they lie in the project."""
        where = "Image.with_source_file(src)"
        paths = (
            [check.path(where, p) for p in src]
            if isinstance(src, list)
            else [check.path(where, src)]
        )
        names = [p.name for p in paths]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(where, duplicates, f"would overwrite each other in {dst!r}")
        dst = check.text("Image.with_source_file(dst)", dst)
        image = self
        for path in paths:
            image = image._add(Source(path, dst, is_dir=False))
        return image

    # --- reading it -----------------------------------------------------------------------

    @property
    def uri(self) -> str:
        """The container image KubeRay pods run for this Image (the default Ray image unless
        ``from_base`` named one)."""
        from flyray.config.ray_images import default_image

        return self.base_image or default_image(self.python_version)

    def validate(self) -> None:
        """Check that the local files the layers name exist (a run checks this too)."""
        for layer in self._layers:
            path = layer_file(layer)
            if path is not None and not path.exists():
                raise ConfigError("Image", str(path), "must name a file or folder that exists")

    def _add(self, layer: Layer) -> Image:
        return replace(self, _layers=(*self._layers, layer), _token=_TOKEN)


def as_image(field_name: str, value: object) -> Image | str | None:
    """An environment's ``image``: None, ``"auto"``, a container image name or an ``Image``."""
    if value is None or isinstance(value, Image):
        return value
    if isinstance(value, str) and value.strip():
        return value
    raise ConfigError(field_name, value, "must be 'auto', a container image name or a flyray.Image")
