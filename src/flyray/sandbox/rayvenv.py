"""Ray-only virtualenvs: what a stock cluster's Python has, built once and cached.

``ray_venv("2.60.0")`` is a virtualenv with ``ray[default]==2.60.0`` and nothing of flyray's:
the Python of an existing cluster that only has Ray. ``ray_venv(..., image=True)`` adds what the
``rayproject/ray`` image adds that Ray's runtime env uses (boto3 and ``smart_open[s3]``, from
ray-project/ray's ``docker/base-deps/requirements.in``): the process kubelet runs the image
``rayproject/ray:X`` in it, so that the sandbox proves what a stock image does.

They live in ``FLYRAY_VENV_CACHE`` (else ``~/.cache/flyray/venvs``), one folder per Ray version,
Python minor and flavour, built with uv (the one beside this interpreter, else on PATH; else
``python -m venv`` and pip), under a lock so that concurrent callers build it once. A folder
without its ``.complete`` marker (a build that was cut short) is built again.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from flyray.errors import SandboxError

__all__ = ["IMAGE_EXTRAS", "image_bin_dir", "image_ray_version", "ray_venv", "venv_cache_dir"]

IMAGE_EXTRAS = ("boto3", "smart_open[s3]")  # what rayproject/ray adds that runtime envs use
_MARK = ".complete"
_IMAGE = "rayproject/ray:"


def venv_cache_dir() -> Path:
    """Where Ray-only virtualenvs are kept: ``FLYRAY_VENV_CACHE`` or ~/.cache/flyray/venvs."""
    configured = os.environ.get("FLYRAY_VENV_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "flyray" / "venvs"


def image_ray_version(image: str) -> str | None:
    """The Ray version of a ``rayproject/ray:X[-pyNN][-cpu]`` image (docker.io/ too), or None."""
    name = image.removeprefix("docker.io/")
    if not name.startswith(_IMAGE):
        return None
    version = name.removeprefix(_IMAGE).split("-", 1)[0]
    return version if version and version[0].isdigit() else None


def image_bin_dir(
    image: str | None, *, on_progress: Callable[[str], None] | None = None
) -> Path | None:
    """Where the process kubelet finds ``python`` and ``ray`` for a container of ``image``: for
    a stock ``rayproject/ray:X`` image, the bin folder of its virtualenv (built if missing);
    for any other image None (the kubelet's own interpreter)."""
    version = image_ray_version(image or "")
    if version is None:
        return None
    return ray_venv(version, image=True, on_progress=on_progress) / "bin"


def ray_venv(
    ray_version: str,
    *,
    image: bool = False,
    python: str = sys.executable,
    on_progress: Callable[[str], None] | None = None,
) -> Path:
    """The cached virtualenv (built now if missing) with ``ray[default]==ray_version`` only, or
    with ``image`` what the rayproject/ray image adds; ``on_progress`` hears of a build."""
    minor = _python_minor(python)
    flavour = "image" if image else "ray"
    venv = venv_cache_dir() / f"{flavour}-{ray_version}-py{minor}"
    if (venv / _MARK).is_file():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with (venv.parent / f".{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / _MARK).is_file():
            _build(venv, ray_version, image=image, python=python, report=on_progress)
    return venv


def _build(
    venv: Path,
    ray_version: str,
    *,
    image: bool,
    python: str,
    report: Callable[[str], None] | None,
) -> None:
    report = report or (lambda line: None)
    started = time.monotonic()
    packages = [f"ray[default]=={ray_version}", *(IMAGE_EXTRAS if image else ())]
    report(f"building a virtualenv with {' '.join(packages)} in {venv} (once)")
    shutil.rmtree(venv, ignore_errors=True)
    uv = _uv()
    if uv:
        steps = [
            [uv, "venv", "--quiet", "--python", python, str(venv)],
            [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), *packages],
        ]
    else:
        steps = [
            [python, "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *packages],
        ]
    for argv in steps:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip()[-2000:]
            raise SandboxError(
                f"building the virtualenv {venv} failed: `{' '.join(argv)}` exited with "
                f"{done.returncode}: {tail}"
            )
    (venv / _MARK).write_text(" ".join(packages) + "\n")
    report(f"virtualenv ready in {time.monotonic() - started:.1f} s: {venv}")


def _uv() -> str | None:
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uv")


def _python_minor(python: str) -> str:
    if python == sys.executable:
        return f"{sys.version_info[0]}.{sys.version_info[1]}"
    argv = [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
