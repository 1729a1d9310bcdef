"""The official Ray image that matches the local Ray and Python: flyray's default image.

A cluster whose Ray or Python differs from the driver's fails in confusing ways (pickled
functions, wheel mismatches), so the default image mirrors this interpreter.
"""

from __future__ import annotations

import sys

from flyray.errors import ManifestError

__all__ = ["RAY_IMAGE_REPOSITORY", "default_image", "ray_version"]

RAY_IMAGE_REPOSITORY = "rayproject/ray"


def ray_version() -> str:
    """The installed Ray's version, read from package metadata (Ray itself is not imported)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ray")
    except PackageNotFoundError:
        raise ManifestError(
            "Ray is not installed here, so flyray cannot choose a matching Ray image: "
            "install ray or give the environment an image"
        ) from None


def default_image(python: tuple[int, int] = sys.version_info[:2], *, ray: str | None = None) -> str:
    """``rayproject/ray:<ray>-py<major><minor>``, e.g. ``rayproject/ray:2.60.0-py311``.

    The official tags are ``{Ray version}[-{Python}][-{platform}]``; without a platform the
    image is the CPU one. A development build of Ray maps to the ``nightly`` tag.
    """
    version = ray if ray is not None else ray_version()
    tag = "nightly" if "dev" in version else version
    major, minor = python
    return f"{RAY_IMAGE_REPOSITORY}:{tag}-py{major}{minor}"
