"""``Image``'s builder calls that only an image build realises, or that no flyray run needs.

flyray builds no image: each of these calls is recorded as one layer, a ``BuildStep`` (refused
where the image is used) or a ``NoEffect`` (reported), by ``flyray.manifest.image_env``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from flyray.config.image_layers import BuildStep, Layer, NoEffect, recorded_call

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["BuildCalls"]


class BuildCalls:
    """The part of ``Image`` that records build-only and no-effect calls (``Image`` adds them)."""

    def _add(self, layer: Layer) -> Self:
        """A copy with one more layer: ``Image`` makes it."""
        raise NotImplementedError

    def with_apt_packages(self, *packages: str, secret_mounts: Any = None) -> Self:
        """Debian packages: need a build (recorded, refused where an image is used)."""
        return self._add(BuildStep(recorded_call("with_apt_packages", *packages)))

    def with_commands(self, commands: list[str], secret_mounts: Any = None) -> Self:
        """Shell commands run while building: need a build (recorded)."""
        listed = list(commands) if isinstance(commands, (list, tuple)) else [commands]
        return self._add(BuildStep(recorded_call("with_commands", listed)))

    def with_poetry_project(
        self,
        pyproject_file: str | Path,
        poetry_lock: Path | None = None,
        extra_args: str | None = None,
        secret_mounts: Any = None,
        project_install_mode: str = "dependencies_only",
    ) -> Self:
        """A Poetry project: needs a build (recorded)."""
        return self._add(BuildStep(recorded_call("with_poetry_project", str(pyproject_file))))

    def with_pixi_project(
        self,
        manifest_file: str | Path,
        pixi_lock: Path | None = None,
        environment: str = "default",
        extra_args: str | None = None,
        secret_mounts: Any = None,
        project_install_mode: str = "dependencies_only",
    ) -> Self:
        """A pixi project (conda and PyPI packages): needs a build (recorded)."""
        return self._add(BuildStep(recorded_call("with_pixi_project", str(manifest_file))))

    def with_local_v2(self) -> Self:
        """Flyte's locally built wheels: need a build (recorded)."""
        return self._add(BuildStep("with_local_v2()"))

    def with_local_rs_controller(self) -> Self:
        """Flyte's locally built controller wheel: needs a build (recorded)."""
        return self._add(BuildStep("with_local_rs_controller()"))

    def with_local_v2_plugins(self, plugins: str | list[str] | None = None) -> Self:
        """Flyte's locally built plugin wheels: need a build (recorded)."""
        return self._add(BuildStep(recorded_call("with_local_v2_plugins", plugins)))

    def with_workdir(self, workdir: str) -> Self:
        """The image's working directory: no effect, a Ray job runs in its own working_dir."""
        why = "a Ray job runs in the working_dir Ray unpacks the task's code bundle into"
        return self._add(NoEffect(recorded_call("with_workdir", workdir), why))

    def with_dockerignore(self, path: Path) -> Self:
        """Files left out of a build context: no effect, nothing is built."""
        why = "nothing is built; the code bundle leaves out what .gitignore lists"
        return self._add(NoEffect(recorded_call("with_dockerignore", str(path)), why))

    def with_code_bundle(self, copy_style: str = "loaded_modules", dst: str = ".") -> Self:
        """Code baked into the image: no effect, flyray ships every run's code bundle anyway."""
        why = "flyray ships the task's project to the cluster as the job's working_dir"
        return self._add(NoEffect(recorded_call("with_code_bundle", copy_style), why))
